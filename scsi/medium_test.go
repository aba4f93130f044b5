package scsi

import (
	"bytes"
	"testing"
)

const (
	gesnMedia   = "4a 01 00 00 10 00 00 0008 00"
	ssuEject    = "1b 00 00 00 02 00"
	ssuLoad     = "1b 00 00 00 03 00"
	preventCmd  = "1e 00 00 00 01 00"
	allowCmd    = "1e 00 00 00 00 00"
	readCap10   = "25 00 00000000 00 00 00 00"
	read10Block = "28 00 00000001 00 0001 00"
	mechStatus  = "bd 00 00 00 00 00 00 00 0008 00 00"
)

// gesn returns the media event code and media status a nexus gets from
// GET EVENT STATUS NOTIFICATION.
func gesn(t *testing.T, f *fixture, n *Nexus) (event, status byte) {
	t.Helper()
	r := Execute(&Command{Nexus: n, LUNs: f.lus, LUNValid: true, CDB: hx(t, gesnMedia), ExpectedIn: 8})
	if r.Status != Good || len(r.Data) != 8 || r.Data[2] != gesnClassMedia {
		t.Fatalf("GET EVENT STATUS NOTIFICATION: %s % x", senseOf(r), r.Data)
	}
	return r.Data[4], r.Data[5]
}

// checkGESN checks the media event and status n is told, and that the
// event is told once.
func checkGESN(t *testing.T, f *fixture, n *Nexus, event, status byte) {
	t.Helper()
	if e, s := gesn(t, f, n); e != event || s != status {
		t.Fatalf("media event %02x status %02x, want %02x %02x", e, s, event, status)
	}
	if e, _ := gesn(t, f, n); e != mediaEventNoChange {
		t.Fatalf("media event %02x told twice", e)
	}
}

// TestMediumChange is a reload changing a vcdrom's file: every nexus
// hears NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED once, on its
// next command, and reads the new disc; GET EVENT STATUS NOTIFICATION
// reports new media; the old backend drains.
func TestMediumChange(t *testing.T) {
	f := cdFixture(t, 16)
	other := NewNexus("iqn.y,i,0x2", "iqn.t", 1, 1)
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaPowerOnReset)}, {uaTUR, 0, "GOOD"}})

	disc2 := newMem(32 * 2048)
	for i := range disc2.data {
		disc2.data[i] = 0xd2
	}
	drain := f.dev.SetBackend(disc2)
	if drain.Backend != f.mem {
		t.Fatalf("drain of %v, want the first disc", drain.Backend)
	}
	select {
	case <-drain.Done:
	default:
		t.Fatal("the first disc is not drained with no command in flight")
	}
	for _, n := range []*Nexus{f.nex, other} {
		runSteps(t, f, n, []step{
			{uaInquiry, 0, "GOOD"}, // INQUIRY neither reports nor clears it
			{read10Block, 0, want(uaMediumChanged)},
			{read10Block, 0, "GOOD"},
		})
		checkGESN(t, f, n, mediaEventNew, 0x02)
	}
	r := f.exec(0, hx(t, readCap10), nil)
	if !bytes.Equal(r.Data, hx(t, "0000001f 00000800")) {
		t.Fatalf("READ CAPACITY after the change: % x", r.Data)
	}
	r = f.exec(0, hx(t, read10Block), nil)
	if r.Data[0] != 0xd2 {
		t.Fatalf("READ(10) reads %02x, not the new disc", r.Data[0])
	}
	// A nexus that logs in afterwards hears of its power-on only.
	late := NewNexus("iqn.z,i,0x3", "iqn.t", 1, 1)
	runSteps(t, f, late, []step{{uaTUR, 0, want(uaPowerOnReset)}, {uaTUR, 0, "GOOD"}})
	checkGESN(t, f, late, mediaEventNoChange, 0x02)
}

// TestEmptyDrive is a vcdrom with filename = "": online without a disc.
func TestEmptyDrive(t *testing.T) {
	f := cdFixture(t, 16)
	drain := f.dev.RemoveMedium()
	if drain.Backend != f.mem || f.dev.Offline() != nil || f.dev.HasMedium() {
		t.Fatalf("after RemoveMedium: drained %v, offline %v, medium %v", drain.Backend, f.dev.Offline(), f.dev.HasMedium())
	}
	checkGESN(t, f, f.nex, mediaEventRemoval, 0x00)
	noMedium := want(ErrNoMediumTrayClosed)
	runSteps(t, f, f.nex, []step{
		{uaTUR, 0, noMedium},
		{readCap10, 0, noMedium},
		{read10Block, 0, noMedium},
		{"43 00 00 000000 00 0100 00", 0, noMedium},
		{uaInquiry, 0, "GOOD"},
		{uaReportLUNs, 0, "GOOD"},
		{"46 00 0000 000000 0100 00", 0, "GOOD"},
		{gesnMedia, 0, "GOOD"},
		{mechStatus, 0, "GOOD"},
		{"5a 08 3f 00 00 00 00 0100 00", 0, "GOOD"},
		{preventCmd, 0, "GOOD"},
		{allowCmd, 0, "GOOD"},
	})
	r := f.exec(0, hx(t, uaRequestSense), nil)
	if r.Status != Good || r.Data[2] != byte(NotReady) || r.Data[12] != 0x3a || r.Data[13] != 0x01 {
		t.Fatalf("REQUEST SENSE of an empty drive: % x", r.Data)
	}
	// The tray opens and closes on nothing: no media event.
	runSteps(t, f, f.nex, []step{{ssuEject, 0, "GOOD"}, {uaTUR, 0, want(ErrNoMediumTrayOpen)}})
	checkGESN(t, f, f.nex, mediaEventNoChange, 0x01)
	runSteps(t, f, f.nex, []step{{ssuLoad, 0, "GOOD"}, {uaTUR, 0, noMedium}})
	checkGESN(t, f, f.nex, mediaEventNoChange, 0x00)

	// A disc put in: NOT READY TO READY CHANGE, then ready.
	f.dev.SetBackend(newMem(8 * 2048))
	runSteps(t, f, f.nex, []step{{uaTUR, 0, want(uaMediumChanged)}, {uaTUR, 0, "GOOD"}})
	checkGESN(t, f, f.nex, mediaEventNew, 0x02)

	// A drive created empty.
	d := NewDevice(DeviceConfig{Name: "cd2", Type: TypeCDROM}, nil)
	d.RemoveMedium()
	g := &fixture{dev: d, lu: &LogicalUnit{Device: d}, nex: NewNexus("iqn.z,i,0x3", "iqn.t", 1, 1)}
	g.lus = NewLUNMap(map[LUN]*LogicalUnit{0: g.lu})
	runSteps(t, g, g.nex, []step{{uaTUR, 0, want(uaPowerOnReset)}, {uaTUR, 0, noMedium}, {uaInquiry, 0, "GOOD"}})
}

// TestTrayByStartStopUnit: START STOP UNIT opens and closes the tray;
// the nexus that loads is not told the medium may have changed, the
// others are; GET EVENT STATUS NOTIFICATION tells each of both events.
func TestTrayByStartStopUnit(t *testing.T) {
	f := cdFixture(t, 16)
	other := NewNexus("iqn.y,i,0x2", "iqn.t", 1, 1)
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaPowerOnReset)}})
	runSteps(t, f, f.nex, []step{
		{preventCmd, 0, "GOOD"},
		{ssuEject, 0, want(ErrMediumRemovalPrevented)},
		{allowCmd, 0, "GOOD"},
		{ssuEject, 0, "GOOD"},
		{uaTUR, 0, want(ErrNoMediumTrayOpen)},
	})
	if f.dev.HasMedium() {
		t.Fatal("HasMedium with the tray open")
	}
	runSteps(t, f, other, []step{{uaTUR, 0, want(ErrNoMediumTrayOpen)}})
	checkGESN(t, f, other, mediaEventRemoval, 0x01)
	runSteps(t, f, f.nex, []step{{ssuLoad, 0, "GOOD"}, {uaTUR, 0, "GOOD"}})
	checkGESN(t, f, f.nex, mediaEventNew, 0x02)
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaMediumChanged)}, {uaTUR, 0, "GOOD"}})
	checkGESN(t, f, other, mediaEventNew, 0x02)
	// Loading a loaded disc changes nothing.
	runSteps(t, f, f.nex, []step{{ssuLoad, 0, "GOOD"}})
	runSteps(t, f, other, []step{{uaTUR, 0, "GOOD"}})
	checkGESN(t, f, other, mediaEventNoChange, 0x02)

	// RemovalPrevented is what a reload asks before changing the disc.
	runSteps(t, f, other, []step{{preventCmd, 0, "GOOD"}})
	if !f.dev.RemovalPrevented() || !f.dev.PreventedBy(other) || f.dev.PreventedBy(f.nex) {
		t.Fatalf("under other's PREVENT: RemovalPrevented %v, by other %v, by f.nex %v",
			f.dev.RemovalPrevented(), f.dev.PreventedBy(other), f.dev.PreventedBy(f.nex))
	}
	other.Close()
	if f.dev.RemovalPrevented() || f.dev.PreventedBy(other) {
		t.Fatal("removal prevented after the nexus that prevented ended")
	}
}
