package reconcile

import (
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/scstd/scstd/scsi"
)

// fakeShared is a SharedState that records what the engine attaches and
// detaches, and loads an empty state into every device it is given.
type fakeShared struct {
	mu       sync.Mutex
	attached map[string]*scsi.Device // by NAA in hex
	detached []string
}

func (f *fakeShared) Attach(naa []byte, name string, d *scsi.Device) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attached == nil {
		f.attached = map[string]*scsi.Device{}
	}
	f.attached[hex.EncodeToString(naa)] = d
	d.SetSharedPR(fakePR{})
	d.LoadSharedPR(1, &scsi.SharedPRState{})
}

func (f *fakeShared) Detach(naa []byte, d *scsi.Device) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detached = append(f.detached, hex.EncodeToString(naa))
}

// fakePR is a scsi.SharedPR that takes every change.
type fakePR struct{}

func (fakePR) Commit(rev int64, _ *scsi.SharedPRState) (int64, error) { return rev + 1, nil }
func (fakePR) Settle(int64) error                                     { return nil }
func (fakePR) Local(string) bool                                      { return true }
func (fakePR) Fence() *scsi.SenseError                                { return nil }
func (fakePR) Atomic() (func(), error)                                { return func() {}, nil }

// gatewayConfig is one gateway of a three-gateway cluster exporting
// null1 through target a, each gateway's ports one target port group.
func gatewayConfig(gateway, prefix string) string {
	return `
cluster {
  etcd    = ["http://127.0.0.1:2379"]
  gateway = "` + gateway + `"
  prefix  = "` + prefix + `"
  member "gw1" { id = 1 }
  member "gw2" { id = 2 }
  member "gw3" { id = 3 }
}
handler "vdisk_nullio" {
  device "null1" { size = "1MiB" }
}
target "iqn.2026-11.org.example:a" {
  rel_tgt_id = 5
  lun "0" { device = "null1" }
}
device_group "dg1" {
  devices = ["null1"]
  target_group "gw1" {
    group_id  = 1
    gateway   = "gw1"
    preferred = true
    targets   = ["iqn.2026-11.org.example:a"]
  }
  target_group "gw2" {
    group_id = 2
    gateway  = "gw2"
    state    = "active/non-optimized"
    targets  = ["iqn.2026-11.org.example:a"]
  }
  target_group "gw3" {
    group_id = 3
    gateway  = "gw3"
    state    = "standby"
    targets  = ["iqn.2026-11.org.example:a"]
  }
}
`
}

// TestGatewayEngine: a gateway of a cluster serves its target with its
// own target portal group tag and relative port, derives the NAA
// designator from the cluster's prefix (the same on every gateway, not
// the state directory's), gives its devices to the shared state, lists
// every gateway's ports in REPORT TARGET PORT GROUPS, and shows the
// states the cluster gives the gateways, with ASYMMETRIC ACCESS STATE
// CHANGED on its sessions when any changes.
func TestGatewayEngine(t *testing.T) {
	var naa [2]string
	var rs [2]*recorder
	var es [2]*Engine
	var shared [2]*fakeShared
	for i, gw := range []string{"gw2", "gw3"} {
		e, r := newTestEngine(t)
		shared[i] = &fakeShared{}
		e.SetShared(shared[i])
		apply(t, e, parse(t, gatewayConfig(gw, "/scstd/a/")))
		st := e.Status()
		naa[i] = st.Devices[0].NAA
		es[i], rs[i] = e, r
	}
	if naa[0] == "" || naa[0] != naa[1] {
		t.Fatalf("NAA designators %q and %q: the gateways must agree", naa[0], naa[1])
	}
	if _, ok := shared[0].attached[strings.TrimPrefix(naa[0], "naa.")]; !ok || len(shared[0].attached) != 1 {
		t.Fatalf("attached %v, want %s", shared[0].attached, naa[0])
	}
	other, _ := newTestEngine(t)
	other.SetShared(&fakeShared{})
	apply(t, other, parse(t, gatewayConfig("gw1", "/scstd/b/")))
	if got := other.Status().Devices[0].NAA; got == naa[0] {
		t.Errorf("another prefix derives the same NAA designator %s", got)
	}

	e, r := es[0], rs[0]
	tgt := r.snap.Targets[iqnA]
	if r.snap.TPGT != 2 || tgt.RelTgtPortID != 2<<8|5 {
		t.Fatalf("gw2 serves with TPGT %d, relative port %#x", r.snap.TPGT, tgt.RelTgtPortID)
	}
	r.login(iqnA, "iqn.x:host1")
	n := scsi.NewNexus("iqn.x:host1,i,0x000000000001", iqnA, r.snap.TPGT, tgt.RelTgtPortID)
	const tur, rtpg = "00 00000000 00", "a3 0a 00000000 00001000 00 00"
	runCDB(t, r, iqnA, n, tur, nil) // power on
	want := "00000024" +
		"80 cf 0001 00 00 00 01 0000 0105" + // gw1: active/optimized, preferred, port 1·256+5
		"01 cf 0002 00 00 00 01 0000 0205" + // gw2: active/non-optimized (configured)
		"02 cf 0003 00 00 00 01 0000 0305" // gw3: standby
	if got := hex.EncodeToString(runCDB(t, r, iqnA, n, rtpg, nil).Data); got != strings.ReplaceAll(want, " ", "") {
		t.Fatalf("REPORT TARGET PORT GROUPS\n got %s\nwant %s", got, strings.ReplaceAll(want, " ", ""))
	}

	// gw1 leaves: unavailable; gw2 itself transitioning.
	e.SetGatewayStates(map[string]scsi.ALUAState{"gw1": scsi.Unavailable, "gw2": scsi.Transitioning})
	if got := senseText(runCDB(t, r, iqnA, n, tur, nil)); got != (&scsi.SenseError{Key: scsi.UnitAttention, ASC: 0x2a, ASCQ: 0x06}).Error() {
		t.Fatalf("after the change: %s, want ASYMMETRIC ACCESS STATE CHANGED", got)
	}
	if got := senseText(runCDB(t, r, iqnA, n, tur, nil)); got != scsi.ErrALUATransition.Error() {
		t.Fatalf("transitioning: %s", got)
	}
	d := runCDB(t, r, iqnA, n, rtpg, nil).Data
	if d[4]&0x0f != byte(scsi.Unavailable) || d[16]&0x0f != byte(scsi.Transitioning) {
		t.Fatalf("states %x %x", d[4], d[16])
	}
	// gw1 back; gw3's state alone changes: this gateway's sessions are
	// told too.
	e.SetGatewayStates(map[string]scsi.ALUAState{"gw3": scsi.Unavailable})
	if got := senseText(runCDB(t, r, iqnA, n, tur, nil)); got != (&scsi.SenseError{Key: scsi.UnitAttention, ASC: 0x2a, ASCQ: 0x06}).Error() {
		t.Fatalf("after gw3's change: %s", got)
	}
	if got := senseText(runCDB(t, r, iqnA, n, tur, nil)); got != "GOOD" {
		t.Fatalf("active/non-optimized again: %s", got)
	}
	e.SetGatewayStates(map[string]scsi.ALUAState{"gw3": scsi.Unavailable})
	if got := senseText(runCDB(t, r, iqnA, n, tur, nil)); got != "GOOD" {
		t.Fatalf("the same states again raise %s", got)
	}
	st := e.Status().DeviceGroups[0].TargetGroups
	if st[2].Gateway != "gw3" || st[2].State != scsi.Unavailable || st[2].Configured != scsi.Standby || st[2].Ports[0] != 3<<8|5 {
		t.Errorf("status %+v", st[2])
	}

	// A reload that only changes another gateway's configured state
	// reaches this gateway's session too, as its plan says.
	res := apply(t, e, parse(t, strings.Replace(gatewayConfig("gw2", "/scstd/a/"), `state    = "standby"`, `state    = "active/non-optimized"`, 1)))
	if s := res.Plan.String(); !strings.Contains(s, "target_group.gw3") || !strings.Contains(s, "unit attention: asymmetric access state changed") {
		t.Fatalf("plan:\n%s", s)
	}
	if got := senseText(runCDB(t, r, iqnA, n, tur, nil)); got != (&scsi.SenseError{Key: scsi.UnitAttention, ASC: 0x2a, ASCQ: 0x06}).Error() {
		t.Fatalf("after the reload: %s", got)
	}
	if d := runCDB(t, r, iqnA, n, rtpg, nil).Data; d[28]&0x0f != byte(scsi.Unavailable) {
		t.Fatalf("gw3 reported %x: the cluster's state overrides the configured one", d[28])
	}
	e.SetGatewayStates(nil)
	if got := senseText(runCDB(t, r, iqnA, n, tur, nil)); got != (&scsi.SenseError{Key: scsi.UnitAttention, ASC: 0x2a, ASCQ: 0x06}).Error() {
		t.Fatalf("after the override ends: %s", got)
	}
	if d := runCDB(t, r, iqnA, n, rtpg, nil).Data; d[28]&0x0f != byte(scsi.ActiveNonOptimized) {
		t.Fatalf("gw3 reported %x, want its new configured state", d[28])
	}

	// The device leaves the file: it is detached.
	apply(t, e, parse(t, strings.NewReplacer(`  lun "0" { device = "null1" }`+"\n", "", `devices = ["null1"]`, `devices = ["null2"]`,
		`device "null1" { size = "1MiB" }`, `device "null2" { size = "1MiB" }`).Replace(gatewayConfig("gw2", "/scstd/a/"))))
	if len(shared[0].detached) != 1 {
		t.Errorf("detached %v", shared[0].detached)
	}
}
