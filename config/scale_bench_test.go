package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system time, to report CPU per
// operation beside wall time on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scaleSrc is the configuration of the scale benchmarks: 1,000 targets
// of 10 LUNs, each LUN its own nullio device; extra adds a LUN.
func scaleSrc(extra bool) []byte {
	var b strings.Builder
	b.WriteString("iscsi { portals = [\"127.0.0.1:3260\"] }\nhandler \"vdisk_nullio\" {\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "  device \"n%d\" { size = \"1GiB\" }\n", i)
	}
	b.WriteString("}\n")
	for t := range 1000 {
		fmt.Fprintf(&b, "target \"iqn.2026-11.org.example:t%d\" {\n", t)
		for l := range 10 {
			fmt.Fprintf(&b, "  lun \"%d\" { device = \"n%d\" }\n", l, t*10+l)
		}
		if extra && t == 0 {
			b.WriteString("  lun \"99\" { device = \"n5\" }\n")
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// BenchmarkScaleParse decodes and validates the 10,000-LUN file.
func BenchmarkScaleParse(b *testing.B) {
	src := scaleSrc(false)
	name := filepath.Join(b.TempDir(), "scst.hcl")
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if _, diags := Parse(src, name); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
