package main

import (
	"strings"
	"testing"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/reconcile"
)

// TestStartPlanRenderedWhenAsked: the start's plan is rendered when the
// admin API first shows the start (as the last reload, or as the reload
// that already applied what a later one finds), the same text and JSON a
// reload's reply carries; once the start is shown nowhere it is dropped.
func TestStartPlanRenderedWhenAsked(t *testing.T) {
	plan := reconcile.Plan{Changes: []reconcile.Change{
		{Op: reconcile.AddDevice, Addr: reconcile.DeviceAddr("n1"), After: reconcile.Device{Handler: "vdisk_nullio", Size: 1 << 30}, Impact: reconcile.Hot},
	}}
	start := func() *daemonState {
		d := &daemonState{}
		d.record(admin.ReloadReply{OK: true, Trigger: triggerStart, Generation: 1, ConfigHash: "h1", Changes: 1}, true)
		d.renderLater(plan)
		return d
	}
	wantText, wantDetail := plan.String(), string(marshalDetail(plan))

	d := start()
	if r := d.LastReload(); r.Plan != wantText || string(r.Detail) != wantDetail {
		t.Errorf("last reload after the start: plan %q, detail %s; want %q, %s", r.Plan, r.Detail, wantText, wantDetail)
	}

	d = start()
	r := d.record(admin.ReloadReply{OK: true, Trigger: triggerWatch, Generation: 1, ConfigHash: "h1"}, false)
	if r.AlreadyApplied == nil || r.AlreadyApplied.Plan != wantText || r.AlreadyApplied.Trigger != triggerStart {
		t.Errorf("a reload that finds the start's configuration: already applied %+v, want the start with its plan", r.AlreadyApplied)
	}

	d = start()
	d.record(admin.ReloadReply{OK: true, Trigger: triggerAdmin, Generation: 2, ConfigHash: "h2", Changes: 1, Plan: "+ x"}, true)
	if d.unrendered != nil {
		t.Error("the start's plan is kept after a reload replaced it as the last and the last applied")
	}
	if r := d.LastReload(); r.Plan != "+ x" || strings.Contains(r.Plan, "n1") {
		t.Errorf("last reload: %+v", r)
	}
}
