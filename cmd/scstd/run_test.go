package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/reconcile"
)

// TestStartPlanRenderedWhenAsked: the start's plan is rendered when the
// admin API first shows the start (as the last reload, or as the reload
// that already applied what a later one finds), the same text and JSON a
// reload's reply carries, whether settle packed it meanwhile or not; once
// the start is shown nowhere it is dropped.
func TestStartPlanRenderedWhenAsked(t *testing.T) {
	plan := reconcile.Plan{Changes: []reconcile.Change{
		{Op: reconcile.AddDevice, Addr: reconcile.DeviceAddr("n1"), After: reconcile.Device{Handler: "vdisk_nullio", Size: 1 << 30}, Impact: reconcile.Hot},
	}}
	for _, packed := range []bool{false, true} {
		t.Run(map[bool]string{false: "unrendered", true: "packed"}[packed], func(t *testing.T) {
			start := func() *daemonState {
				d := &daemonState{}
				d.record(admin.ReloadReply{OK: true, Trigger: triggerStart, Generation: 1, ConfigHash: "h1", Changes: 1}, true)
				d.renderLater(plan)
				if packed {
					if !d.packStart() || d.packed == nil || d.unrendered != nil {
						t.Fatal("the start's plan was not packed")
					}
				}
				return d
			}
			wantText, wantDetail := plan.String(), string(marshalDetail(plan))

			d := start()
			if r := d.LastReload(); r.Plan != wantText || string(r.Detail) != wantDetail {
				t.Errorf("last reload after the start: plan %q, detail %s; want %q, %s", r.Plan, r.Detail, wantText, wantDetail)
			}
			if d.packStart() {
				t.Error("packed a plan already rendered")
			}

			d = start()
			r := d.record(admin.ReloadReply{OK: true, Trigger: triggerWatch, Generation: 1, ConfigHash: "h1"}, false)
			if r.AlreadyApplied == nil || r.AlreadyApplied.Plan != wantText || r.AlreadyApplied.Trigger != triggerStart {
				t.Errorf("a reload that finds the start's configuration: already applied %+v, want the start with its plan", r.AlreadyApplied)
			}

			d = start()
			d.record(admin.ReloadReply{OK: true, Trigger: triggerAdmin, Generation: 2, ConfigHash: "h2", Changes: 1, Plan: "+ x"}, true)
			if d.unrendered != nil || d.packed != nil {
				t.Error("the start's plan is kept after a reload replaced it as the last and the last applied")
			}
			if r := d.LastReload(); r.Plan != "+ x" || strings.Contains(r.Plan, "n1") {
				t.Errorf("last reload: %+v", r)
			}
		})
	}
}

// TestPackPlan: a packed plan unpacks to the very bytes of its text and
// JSON, for a start's plan of 1,000 devices, and it is much smaller than
// them.
func TestPackPlan(t *testing.T) {
	var p reconcile.Plan
	for i := range 1000 {
		name := fmt.Sprintf("n%d", i)
		p.Changes = append(p.Changes,
			reconcile.Change{Op: reconcile.AddDevice, Addr: reconcile.DeviceAddr(name), After: reconcile.Device{Handler: "vdisk_nullio", Size: 1 << 30, USN: name}, Impact: reconcile.Hot})
	}
	for _, tc := range []struct {
		name string
		plan reconcile.Plan
	}{{"empty", reconcile.Plan{}}, {"1,000 devices", p}} {
		t.Run(tc.name, func(t *testing.T) {
			pp := packPlan(tc.plan)
			text, detail, err := pp.unpack()
			if err != nil {
				t.Fatal(err)
			}
			wantText, wantDetail := tc.plan.String(), marshalDetail(tc.plan)
			if text != wantText || !bytes.Equal(detail, wantDetail) {
				t.Errorf("unpacked %d bytes of text, %d of JSON; want %d, %d", len(text), len(detail), len(wantText), len(wantDetail))
			}
			if n := len(wantText) + len(wantDetail); n > 10000 && len(pp.gz) > n/8 {
				t.Errorf("packed %d bytes into %d", n, len(pp.gz))
			}
		})
	}
}

// TestReserveFor: the reserve kept after the start is what a reload of
// the configuration allocates, by its device and LUN blocks, bounded.
func TestReserveFor(t *testing.T) {
	var b strings.Builder
	b.WriteString("handler \"vdisk_nullio\" {\n")
	for i := range 4 {
		fmt.Fprintf(&b, "  device \"n%d\" { size = \"1GiB\" }\n", i)
	}
	b.WriteString("}\ntarget \"iqn.2026-11.org.example:t\" {\n  lun \"0\" { device = \"n0\" }\n")
	b.WriteString("  group \"g\" {\n    initiators = [\"iqn.x:*\"]\n    lun \"0\" { device = \"n1\" }\n    lun \"1\" { device = \"n2\" }\n  }\n}\n")
	cfg, diags := config.Parse([]byte(b.String()), filepath.Join(t.TempDir(), "scst.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got, want := reserveFor(cfg), (4+3)*reloadBytesPerBlock; got != want {
		t.Errorf("reserve %d, want %d (4 devices, 3 LUNs)", got, want)
	}
	big := &config.Config{Devices: make([]*config.Device, maxReserve/reloadBytesPerBlock+1)}
	if got := reserveFor(big); got != maxReserve {
		t.Errorf("reserve %d for %d devices, want the bound %d", got, len(big.Devices), maxReserve)
	}
}
