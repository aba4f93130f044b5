package scsi

import (
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
)

const (
	tgtA = "iqn.2026-11.org.example:t1" // the fixture's nexus
	tgtB = "iqn.2026-11.org.example:t2"
)

// aluaFixture is a device in a device group of two target port groups:
// "a" (id 1, active/optimized, preferred) holding target A's port
// (relative port 1) and "b" (id 2, standby) holding target B's (port 2),
// with a nexus through each.
type aluaFixture struct {
	*fixture
	a, b *TargetPortGroup
	nexB *Nexus
	dg   *DeviceGroup
}

func newALUAFixture(t *testing.T, explicit bool, store ALUAStore) *aluaFixture {
	t.Helper()
	f := &aluaFixture{fixture: newFixture(t, 64, DeviceConfig{})}
	f.a = NewTargetPortGroup("a", 1, ActiveOptimized, true)
	f.b = NewTargetPortGroup("b", 2, Standby, false)
	f.dg = NewDeviceGroup("dg", explicit, []PortGroupMember{
		{Group: f.b, Targets: []string{tgtB}, Ports: []uint16{2}},
		{Group: f.a, Targets: []string{tgtA}, Ports: []uint16{1}},
	}, store)
	f.dev.SetDeviceGroup(f.dg)
	f.nexB = NewNexus("iqn.1994-05.com.redhat:client,i,0x23d000000001", tgtB, 1, 2)
	f.clearUA(t, 0)
	f.clearUAOn(t, f.nexB)
	return f
}

func (f *aluaFixture) execOn(n *Nexus, cdb, out []byte) Result {
	return Execute(&Command{Nexus: n, LUNs: f.lus, LUN: 0, LUNValid: true, CDB: cdb, DataOut: out, ExpectedIn: 1 << 20})
}

// clearUAOn consumes n's pending unit attentions with INQUIRY-proof
// REQUEST SENSE (which every state allows).
func (f *aluaFixture) clearUAOn(t *testing.T, n *Nexus) {
	t.Helper()
	for range 10 {
		r := f.execOn(n, hx(t, "03 00 00 00 12 00"), nil)
		if r.Status != Good || SenseKey(r.Data[2]) != UnitAttention {
			return
		}
	}
	t.Fatal("unit attentions do not clear")
}

func TestInquiryTPGS(t *testing.T) {
	for _, c := range []struct {
		name     string
		group    bool
		explicit bool
		want     byte // byte 5: 3PC (08h) | TPGS
	}{
		{"no device group: TPGS 00b", false, false, 0x08},
		{"implicit: TPGS 01b", true, false, 0x18},
		{"implicit and explicit: TPGS 11b", true, true, 0x38},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 64, DeviceConfig{})
			if c.group {
				tpg := NewTargetPortGroup("a", 1, ActiveOptimized, false)
				f.dev.SetDeviceGroup(NewDeviceGroup("dg", c.explicit, []PortGroupMember{{Group: tpg, Targets: []string{tgtA}, Ports: []uint16{1}}}, nil))
			}
			r := f.exec(0, hx(t, "12 00 00 0060 00"), nil)
			if r.Status != Good || r.Data[5] != c.want {
				t.Fatalf("INQUIRY byte 5 = %02x (%s), want %02x", r.Data[5], senseOf(r), c.want)
			}
		})
	}
}

func TestReportTargetPortGroups(t *testing.T) {
	f := newALUAFixture(t, false, nil)
	for _, c := range []struct {
		name, cdb, want string
	}{
		{"length only", "a3 0a 00000000 00000400 00 00",
			"00000018" + // RETURN DATA LENGTH 24
				"80 cf 0001 00 00 00 01" + "0000 0001" + // PREF, active/optimized; T O U S AN AO supported; group 1; 1 port: relative port 1
				"02 cf 0002 00 00 00 01" + "0000 0002"}, // standby; group 2; relative port 2
		{"extended header", "a3 2a 00000000 00000400 00 00",
			"0000001c" + "10 00 0000" + // RETURN DATA LENGTH 28; FORMAT TYPE 001b; IMPLICIT TRANSITION TIME 0
				"80 cf 0001 00 00 00 01" + "0000 0001" +
				"02 cf 0002 00 00 00 01" + "0000 0002"},
		{"allocation length cuts", "a3 0a 00000000 00000006 00 00", "00000018 80cf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.exec(0, hx(t, c.cdb), nil)
			if r.Status != Good {
				t.Fatalf("RTPG: %s", senseOf(r))
			}
			if got := hex.EncodeToString(r.Data); got != strings.ReplaceAll(c.want, " ", "") {
				t.Errorf("RTPG data\n got %s\nwant %s", got, strings.ReplaceAll(c.want, " ", ""))
			}
		})
	}
	if r := f.exec(0, hx(t, "a3 4a 00000000 00000400 00 00"), nil); senseOf(r) != want(invalidField(1, 7)) {
		t.Errorf("PARAMETER DATA FORMAT 010b: %s", senseOf(r))
	}
	// The target port group designator of VPD 83h matches the port's
	// group on each path.
	for _, c := range []struct {
		n    *Nexus
		port string
	}{{f.nex, "00000001"}, {f.nexB, "00000002"}} {
		r := f.execOn(c.n, hx(t, "12 01 83 0400 00"), nil)
		m := designators(t, r.Data)
		if got := hex.EncodeToString(m[assocTargetPort|desigTgtPortGroup]); got != c.port {
			t.Errorf("%s: target port group designator %s, want %s", c.n.TargetName, got, c.port)
		}
		if got := hex.EncodeToString(m[assocTargetPort|desigRelTgtPort]); got != c.port {
			t.Errorf("%s: relative target port designator %s, want %s", c.n.TargetName, got, c.port)
		}
	}
}

func TestALUACommandsNeedADeviceGroup(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	if r := f.exec(0, hx(t, "a3 0a 00000000 00000400 00 00"), nil); senseOf(r) != want(ErrInvalidOpcode) {
		t.Errorf("RTPG without a device group: %s", senseOf(r))
	}
	// REPORT SUPPORTED OPERATION CODES, one command: RTPG (A3h/0Ah) not
	// supported (SUPPORT 001b).
	if r := f.exec(0, hx(t, "a3 0c 02 a3 000a 00000100 00 00"), nil); r.Status != Good || r.Data[1] != supportNo {
		t.Errorf("RSOC for RTPG without a device group: % x", r.Data)
	}
	implicit := newALUAFixture(t, false, nil)
	if r := implicit.exec(0, hx(t, "a3 0c 02 a3 000a 00000100 00 00"), nil); r.Status != Good || r.Data[1] != supportYes {
		t.Errorf("RSOC for RTPG in a device group: % x", r.Data)
	}
	if r := implicit.exec(0, hx(t, "a4 0a 00000000 00000008 00 00"), hx(t, "00000000 01 00 0001")); senseOf(r) != want(ErrInvalidOpcode) {
		t.Errorf("STPG in an implicit device group: %s", senseOf(r))
	}
}

func TestALUAStates(t *testing.T) {
	cdbs := []struct{ name, cdb, out string }{
		{"TEST UNIT READY", "00 00000000 00", ""},
		{"READ(10)", "28 00 00000000 00 0001 00", ""},
		{"WRITE(10)", "2a 00 00000000 00 0001 00", strings.Repeat("00", 512)},
		{"INQUIRY", "12 00 00 0024 00", ""},
		{"REPORT LUNS", "a0 00 00 000000 00000100 00 00", ""},
		{"REQUEST SENSE", "03 00 00 00 12 00", ""},
		{"REPORT TARGET PORT GROUPS", "a3 0a 00000000 00000400 00 00", ""},
		{"SET TARGET PORT GROUPS", "a4 0a 00000000 00000008 00 00", "00000000 02 00 0002"},
		{"MODE SENSE(6)", "1a 00 3f 00 ff 00", ""},
		{"PERSISTENT RESERVE IN", "5e 00 0000000000 0100 00", ""},
		{"REPORT SUPPORTED OPERATION CODES", "a3 0c 00 00 0000 00001000 00 00", ""},
	}
	good := "GOOD"
	for _, c := range []struct {
		state ALUAState
		sense string // of the commands refused
		// allowed lists the commands of cdbs that run, by index
		allowed []int
	}{
		{ActiveOptimized, "", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{ActiveNonOptimized, "", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{Standby, want(ErrALUAStandby), []int{3, 4, 5, 6, 7, 8, 9, 10}},
		{Unavailable, want(ErrALUAUnavailable), []int{3, 4, 5, 6, 7, 10}},
		{Transitioning, want(ErrALUATransition), []int{3, 4, 5, 6}},
		{OfflineState, want(ErrALUAOffline), []int{3, 4, 5, 6}},
	} {
		t.Run(c.state.String(), func(t *testing.T) {
			f := newALUAFixture(t, true, nil)
			f.b.word.Store(tpgWord(c.state, false, tpgStatusNone))
			for i, cmd := range cdbs {
				expect := c.sense
				if contains(c.allowed, i) {
					expect = good
				}
				var out []byte
				if cmd.out != "" {
					out = hx(t, cmd.out)
				}
				// Through B, in the state; STPG asks for B's own state.
				f.b.word.Store(tpgWord(c.state, false, tpgStatusNone))
				r := f.execOn(f.nexB, hx(t, cmd.cdb), out)
				if got := senseOf(r); got != expect {
					t.Errorf("%s through a %s port: %s, want %s", cmd.name, c.state, got, expect)
				}
				f.clearUAOn(t, f.nexB)
				// Through A (active/optimized), everything runs.
				f.a.word.Store(tpgWord(ActiveOptimized, true, tpgStatusNone))
				if cmd.name != "SET TARGET PORT GROUPS" {
					if r := f.exec(0, hx(t, cmd.cdb), out); r.Status != Good {
						t.Errorf("%s through the active port: %s", cmd.name, senseOf(r))
					}
				}
			}
			// REQUEST SENSE reports the state as its data.
			f.b.word.Store(tpgWord(c.state, false, tpgStatusNone))
			r := f.execOn(f.nexB, hx(t, "03 00 00 00 12 00"), nil)
			key, asc, ascq := SenseKey(r.Data[2]), r.Data[12], r.Data[13]
			got := (&SenseError{Key: key, ASC: asc, ASCQ: ascq}).Error()[len("scsi: "):]
			if wantRS := c.sense; wantRS == "" && key != NoSense || wantRS != "" && got != wantRS {
				t.Errorf("REQUEST SENSE data: %s, want %q", got, c.sense)
			}
		})
	}
}

func contains(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestALUAStateChangeReachesOnlyItsPorts(t *testing.T) {
	f := newALUAFixture(t, false, nil)
	f.b.SetState(ActiveNonOptimized, false)
	// B's nexus: ASYMMETRIC ACCESS STATE CHANGED once, then the new state.
	if r := f.execOn(f.nexB, hx(t, "00 00000000 00"), nil); senseOf(r) != want(uaALUAChanged) {
		t.Errorf("first command through B: %s, want the unit attention", senseOf(r))
	}
	if r := f.execOn(f.nexB, hx(t, "00 00000000 00"), nil); r.Status != Good {
		t.Errorf("second command through B: %s", senseOf(r))
	}
	// A's nexus: nothing.
	if r := f.exec(0, hx(t, "00 00000000 00"), nil); r.Status != Good {
		t.Errorf("command through A: %s", senseOf(r))
	}
	// RTPG reports the change as implicit (STATUS CODE 02h).
	r := f.exec(0, hx(t, "a3 0a 00000000 00000400 00 00"), nil)
	if d := r.Data[16:24]; d[0] != 0x01 || d[5] != tpgStatusImplicit {
		t.Errorf("group 2 descriptor % x", d)
	}
	// A new device group that moves A's port to another group reaches A.
	c := NewTargetPortGroup("c", 3, ActiveOptimized, false)
	f.dev.SetDeviceGroup(NewDeviceGroup("dg", false, []PortGroupMember{
		{Group: c, Targets: []string{tgtA}, Ports: []uint16{1}},
		{Group: f.b, Targets: []string{tgtB}, Ports: []uint16{2}},
	}, nil))
	if r := f.exec(0, hx(t, "00 00000000 00"), nil); senseOf(r) != want(uaALUAChanged) {
		t.Errorf("A moved to another group: %s", senseOf(r))
	}
	if r := f.execOn(f.nexB, hx(t, "00 00000000 00"), nil); r.Status != Good {
		t.Errorf("B kept its group: %s", senseOf(r))
	}
}

// blockingStore holds a SET TARGET PORT GROUPS in its transition until
// released, and fails it when told.
type blockingStore struct {
	entered chan []PortGroupState
	release chan error
}

func (s *blockingStore) Transition(group, initiator string, states []PortGroupState) error {
	s.entered <- states
	return <-s.release
}

func TestSetTargetPortGroups(t *testing.T) {
	store := &blockingStore{entered: make(chan []PortGroupState, 1), release: make(chan error, 1)}
	f := newALUAFixture(t, true, store)
	// Through A: B becomes active/optimized, A standby (failover).
	var wg sync.WaitGroup
	var res Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		res = f.exec(0, hx(t, "a4 0a 00000000 0000000c 00 00"), hx(t, "00000000 00 00 0002 02 00 0001"))
	}()
	if got := <-store.entered; len(got) != 2 || got[0] != (PortGroupState{2, ActiveOptimized}) || got[1] != (PortGroupState{1, Standby}) {
		t.Fatalf("store asked for %v", got)
	}
	// During the transition both groups report transitioning, and media
	// access through either answers ASYMMETRIC ACCESS STATE TRANSITION.
	r := f.execOn(f.nexB, hx(t, "a3 0a 00000000 00000400 00 00"), nil)
	if r.Status != Good || r.Data[4] != 0x8f || r.Data[16] != 0x0f {
		t.Errorf("RTPG during the transition: % x", r.Data)
	}
	if r := f.execOn(f.nexB, hx(t, "28 00 00000000 00 0001 00"), nil); senseOf(r) != want(ErrALUATransition) {
		t.Errorf("READ through B during the transition: %s", senseOf(r))
	}
	store.release <- nil
	wg.Wait()
	if res.Status != Good {
		t.Fatalf("STPG: %s", senseOf(res))
	}
	// A sent it: no unit attention there, and A is now standby.
	if r := f.exec(0, hx(t, "28 00 00000000 00 0001 00"), nil); senseOf(r) != want(ErrALUAStandby) {
		t.Errorf("READ through A after the failover: %s", senseOf(r))
	}
	// B: the unit attention, then media access.
	if r := f.execOn(f.nexB, hx(t, "28 00 00000000 00 0001 00"), nil); senseOf(r) != want(uaALUAChanged) {
		t.Errorf("first command through B: %s", senseOf(r))
	}
	if r := f.execOn(f.nexB, hx(t, "28 00 00000000 00 0001 00"), nil); r.Status != Good {
		t.Errorf("READ through B after the failover: %s", senseOf(r))
	}
	r = f.execOn(f.nexB, hx(t, "a3 0a 00000000 00000400 00 00"), nil)
	after := "00000018" + "82cf0001 00010001 00000001" + "00cf0002 00010001 00000002" // PREF kept; STATUS CODE 01h: by STPG
	if got := hex.EncodeToString(r.Data); got != strings.ReplaceAll(after, " ", "") {
		t.Errorf("RTPG after the failover\n got %s\nwant %s", got, after)
	}

	// A store that fails: HARDWARE ERROR, SET TARGET PORT GROUPS COMMAND
	// FAILED, and the states from before.
	store.release <- errors.New("no quorum")
	r = f.execOn(f.nexB, hx(t, "a4 0a 00000000 00000008 00 00"), hx(t, "00000000 02 00 0002"))
	<-store.entered
	if senseOf(r) != want(ErrSTPGFailed) {
		t.Errorf("STPG with a failing store: %s", senseOf(r))
	}
	if s, _ := f.b.State(); s != ActiveOptimized {
		t.Errorf("group 2 after a failed STPG: %s", s)
	}

	for _, c := range []struct{ name, cdb, out, want string }{
		{"transitioning asked", "a4 0a 00000000 00000008 00 00", "00000000 0f 00 0002", want(invalidParam(4, 3))},
		{"unknown group", "a4 0a 00000000 00000008 00 00", "00000000 00 00 0009", want(invalidParam(6, -1))},
		{"group twice", "a4 0a 00000000 0000000c 00 00", "00000000 00 00 0002 01 00 0002", want(invalidParam(10, -1))},
		{"length not a multiple of 4", "a4 0a 00000000 00000006 00 00", "00000000 0000", want(ErrParamListLength)},
	} {
		if r := f.execOn(f.nexB, hx(t, c.cdb), hx(t, c.out)); senseOf(r) != c.want {
			t.Errorf("STPG, %s: %s, want %s", c.name, senseOf(r), c.want)
		}
	}
	if m := f.dg.Members(); len(m) != 2 || m[0].Group != f.a || m[1].Group != f.b {
		t.Errorf("members not in identifier order: %v", m)
	}
}
