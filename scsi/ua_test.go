package scsi

import (
	"testing"
)

const (
	uaTUR          = "00 00000000 00"
	uaInquiry      = "12 00 00 00ff 00"
	uaReportLUNs   = "a0 00 00 000000 00001000 00 00"
	uaRequestSense = "03 00 00 00 ff 00"
)

// step is one command of a unit attention scenario and what it must get.
type step struct {
	cdb  string
	lun  LUN
	want string
}

func runSteps(t *testing.T, f *fixture, n *Nexus, steps []step) {
	t.Helper()
	for i, s := range steps {
		r := Execute(&Command{Nexus: n, LUNs: f.lus, LUN: s.lun, LUNValid: true, CDB: hx(t, s.cdb), ExpectedIn: 4096})
		if got := senseOf(r); got != s.want {
			t.Fatalf("step %d (%s on LUN %d): got %s, want %s", i, s.cdb, s.lun, got, s.want)
		}
	}
}

func TestPowerOnUnitAttention(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	n := NewNexus("iqn.x,i,0x1", "iqn.t", 1, 1)
	runSteps(t, f, n, []step{
		{uaInquiry, 0, "GOOD"},    // INQUIRY neither reports nor clears
		{uaReportLUNs, 0, "GOOD"}, // nor does REPORT LUNS
		{uaTUR, 0, want(uaPowerOnReset)},
		{uaTUR, 0, "GOOD"},
	})
}

func TestRequestSenseReportsUnitAttention(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	n := NewNexus("iqn.x,i,0x1", "iqn.t", 1, 1)
	r := Execute(&Command{Nexus: n, LUNs: f.lus, LUNValid: true, CDB: hx(t, uaRequestSense)})
	if r.Status != Good || len(r.Data) != 18 || r.Data[0] != 0x70 ||
		SenseKey(r.Data[2]) != UnitAttention || r.Data[12] != 0x29 {
		t.Fatalf("REQUEST SENSE: %s % x", senseOf(r), r.Data)
	}
	// Cleared: the next command runs, and REQUEST SENSE says NO SENSE.
	runSteps(t, f, n, []step{{uaTUR, 0, "GOOD"}})
	r = Execute(&Command{Nexus: n, LUNs: f.lus, LUNValid: true, CDB: hx(t, "03 01 00 00 ff 00")})
	if r.Status != Good || r.Data[0] != 0x72 || r.Data[1] != 0 {
		t.Fatalf("REQUEST SENSE DESC=1: % x", r.Data)
	}
	// On a LUN without a logical unit: LOGICAL UNIT NOT SUPPORTED as data.
	r = Execute(&Command{Nexus: n, LUNs: f.lus, LUN: 9, LUNValid: true, CDB: hx(t, uaRequestSense)})
	if r.Status != Good || r.Data[12] != 0x25 {
		t.Fatalf("REQUEST SENSE on LUN 9: %s % x", senseOf(r), r.Data)
	}
}

func TestDeviceEventsReachEveryNexus(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	other := NewNexus("iqn.y,i,0x2", "iqn.t", 1, 1)
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaPowerOnReset)}})

	// Capacity grows.
	f.mem.resize(128 * 512)
	if changed, err := f.dev.RefreshSize(); !changed || err != nil {
		t.Fatalf("RefreshSize = %v, %v", changed, err)
	}
	if changed, _ := f.dev.RefreshSize(); changed {
		t.Fatalf("RefreshSize reports a change twice")
	}
	for _, n := range []*Nexus{f.nex, other} {
		runSteps(t, f, n, []step{
			{uaInquiry, 0, "GOOD"},
			{uaTUR, 0, want(uaCapacityChanged)},
			{"25 00 00000000 0000 00 00", 0, "GOOD"},
		})
	}
	r := f.exec(0, hx(t, "25 00 00000000 0000 00 00"), nil)
	if be32(r.Data[0:4]) != 127 {
		t.Fatalf("READ CAPACITY(10) last LBA %d, want 127", be32(r.Data[0:4]))
	}

	// Cache settings: MODE PARAMETERS CHANGED.
	f.dev.SetCache(false, true)
	f.dev.SetCache(false, true) // no change, no second UA
	for _, n := range []*Nexus{f.nex, other} {
		runSteps(t, f, n, []step{{uaTUR, 0, want(uaModeParamsChanged)}, {uaTUR, 0, "GOOD"}})
	}

	// Logical unit reset: 29h/03h to both.
	LogicalUnitReset(f.nex, f.lu)
	for _, n := range []*Nexus{f.nex, other} {
		runSteps(t, f, n, []step{{uaTUR, 0, want(uaLUReset)}, {uaTUR, 0, "GOOD"}})
	}
	TargetReset(f.nex, f.lus)
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaLUReset)}, {uaTUR, 0, "GOOD"}})
}

func TestModeSelectTellsOtherNexusesOnly(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	other := NewNexus("iqn.y,i,0x2", "iqn.t", 1, 1)
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaPowerOnReset)}})
	// MODE SELECT(6) PF=1, 24 bytes: header (4) + caching page with WCE=0.
	param := hx(t, "00000000 0812 00000000000000000000000000000000 0000")
	r := f.exec(0, hx(t, "15 10 00 00 18 00"), param)
	if r.Status != Good {
		t.Fatalf("MODE SELECT: %s", senseOf(r))
	}
	if !f.dev.Config().WriteThrough {
		t.Fatalf("WCE=0 did not make the cache write-through")
	}
	runSteps(t, f, f.nex, []step{{uaTUR, 0, "GOOD"}})
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaModeParamsChanged)}, {uaTUR, 0, "GOOD"}})
}

func TestReportedLUNsChanged(t *testing.T) {
	d := NewDevice(DeviceConfig{Name: "d"}, newMem(64*512))
	f := &fixture{dev: d, lus: NewLUNMap(map[LUN]*LogicalUnit{0: {Device: d}, 1: {Device: d}})}
	n := NewNexus("iqn.x,i,0x1", "iqn.t", 1, 1)
	runSteps(t, f, n, []step{
		{uaTUR, 0, want(uaPowerOnReset)},
		{uaTUR, 1, want(uaPowerOnReset)},
	})
	n.ReportedLUNsChanged()
	runSteps(t, f, n, []step{
		{uaTUR, 0, want(uaReportedLUNsChange)},
		{uaTUR, 0, "GOOD"},
		{uaReportLUNs, 0, "GOOD"}, // clears it on LUN 1 too
		{uaTUR, 1, "GOOD"},
	})
	n.ReportedLUNsChanged()
	runSteps(t, f, n, []step{
		{uaTUR, 1, want(uaReportedLUNsChange)},
		{uaTUR, 0, want(uaReportedLUNsChange)},
		{uaTUR, 0, "GOOD"},
	})
}

func TestOfflineDevice(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	old := f.dev.SetOffline(nil)
	if old.Backend != f.mem || f.dev.Offline() == nil || f.dev.Backend() != nil {
		t.Fatalf("SetOffline: old %v, Offline %v", old, f.dev.Offline())
	}
	select {
	case <-old.Done:
	default:
		t.Fatal("a backend no command uses is not drained at once")
	}
	runSteps(t, f, f.nex, []step{
		{uaTUR, 0, want(ErrNotReadyManual)},
		{"28 00 00000000 00 0001 00", 0, want(ErrNotReadyManual)},
		{uaInquiry, 0, "GOOD"},
		{uaReportLUNs, 0, "GOOD"},
		{uaRequestSense, 0, "GOOD"},
	})
	f.dev.SetBackend(f.mem)
	if f.dev.Offline() != nil {
		t.Fatalf("still offline: %v", f.dev.Offline())
	}
	runSteps(t, f, f.nex, []step{{uaTUR, 0, "GOOD"}})

	// A backend whose size cannot be read leaves the device offline.
	bad := newMem(512)
	bad.failSize = errTest
	f.dev.SetBackend(bad)
	if f.dev.Offline() == nil {
		t.Fatalf("device online with a backend whose size fails")
	}
	// An offline device from the start.
	d := NewDevice(DeviceConfig{Name: "off"}, nil)
	if d.Offline() != ErrOffline || d.Size() != 0 {
		t.Fatalf("NewDevice(nil backend): %v, size %d", d.Offline(), d.Size())
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("injected")
