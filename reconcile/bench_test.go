package reconcile

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstd/scstd/config"
)

// Scale of the reload benchmarks: 1,000 targets with 10 LUNs each, every
// LUN its own nullio device.
const (
	benchTargets       = 1000
	benchLUNsPerTarget = 10
)

// benchConfig writes the benchmark configuration; extra adds one LUN to
// the first target.
func benchConfig(extra bool) string {
	var b strings.Builder
	b.WriteString("iscsi { portals = [\"127.0.0.1:3260\"] }\nhandler \"vdisk_nullio\" {\n")
	for i := range benchTargets * benchLUNsPerTarget {
		fmt.Fprintf(&b, "  device \"n%d\" { size = \"1GiB\" }\n", i)
	}
	b.WriteString("}\n")
	for t := range benchTargets {
		fmt.Fprintf(&b, "target \"iqn.2026-11.org.example:t%d\" {\n", t)
		for l := range benchLUNsPerTarget {
			fmt.Fprintf(&b, "  lun \"%d\" { device = \"n%d\" }\n", l, t*benchLUNsPerTarget+l)
		}
		if extra && t == 0 {
			b.WriteString("  lun \"99\" { device = \"n5\" }\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func benchParse(b *testing.B, src string) *config.Config {
	cfg, diags := config.Parse([]byte(src), filepath.Join(b.TempDir(), "scst.hcl"))
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	return cfg
}

// BenchmarkReloadAddOneLUN measures one reload (FromConfig, Diff,
// prepare, commit, publish, notify) of a loaded configuration that adds
// or removes one LUN, with 1,000 targets and 10,000 LUNs running.
func BenchmarkReloadAddOneLUN(b *testing.B) {
	cfgs := [2]*config.Config{benchParse(b, benchConfig(false)), benchParse(b, benchConfig(true))}
	e, _ := newTestEngine(b)
	apply(b, e, cfgs[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		res, err := e.Apply(context.Background(), cfgs[(i+1)%2], ApplyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Plan.Changes) != 1 {
			b.Fatalf("plan:\n%s", res.Plan)
		}
	}
}

// BenchmarkReloadParseAndApply adds the decoding of the configuration
// file to the reload, as a SIGHUP does it.
func BenchmarkReloadParseAndApply(b *testing.B) {
	srcs := [2][]byte{[]byte(benchConfig(false)), []byte(benchConfig(true))}
	name := filepath.Join(b.TempDir(), "scst.hcl")
	e, _ := newTestEngine(b)
	apply(b, e, benchParse(b, string(srcs[0])))
	b.ResetTimer()
	for i := range b.N {
		cfg, diags := config.Parse(srcs[(i+1)%2], name)
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		if _, err := e.Apply(context.Background(), cfg, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiffStart measures the plan of a start: every device, target
// and LUN of the 10,000-LUN configuration added (21,000 changes).
func BenchmarkDiffStart(b *testing.B) {
	desired := FromConfig(benchParse(b, benchConfig(false)))
	running := FromConfig(benchParse(b, "iscsi { portals = [\"127.0.0.1:3260\"] }\n"))
	b.ReportAllocs()
	for b.Loop() {
		if p := Diff(running, desired, nil); len(p.Changes) < 21000 {
			b.Fatalf("%d changes", len(p.Changes))
		}
	}
}

// BenchmarkApplyStart measures the start's Apply of the 10,000-LUN
// configuration on a new engine: every device opened and every target
// built (the recorder stands in for the iSCSI server).
func BenchmarkApplyStart(b *testing.B) {
	cfg := benchParse(b, benchConfig(false))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		e := NewEngine(&recorder{}, nil, Options{StateDir: b.TempDir(), RetryInterval: -1, SizePollInterval: -1})
		b.StartTimer()
		if res := apply(b, e, cfg); len(res.Plan.Changes) < 21000 {
			b.Fatalf("%d changes", len(res.Plan.Changes))
		}
		b.StopTimer()
		e.Close()
		b.StartTimer()
	}
}
