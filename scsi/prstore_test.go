package scsi

import (
	"errors"
	"reflect"
	"testing"
)

// memStore is a PRStore in memory, with failure injection.
type memStore struct {
	saved   *PRState
	saves   int
	removes int
	fail    error
}

func (m *memStore) Save(st PRState) error {
	if m.fail != nil {
		return m.fail
	}
	m.saves++
	m.saved = &st
	return nil
}

func (m *memStore) Remove() error {
	if m.fail != nil {
		return m.fail
	}
	m.removes++
	m.saved = nil
	return nil
}

// aptplTail is the end of a PR OUT parameter list with APTPL set (byte
// 20 bit 0).
const aptplTail = "00000000 01 000000"

func TestAPTPL(t *testing.T) {
	f := newPRFixture(t)
	store := &memStore{}
	f.dev.SetPRStore(store)
	initiator, target := f.nex.InitiatorPort, f.nex.TargetPort
	other := f.nexus[1].InitiatorPort

	f.run(t, []prStep{
		// REPORT CAPABILITIES: CRH, PTPL_C (byte 2 = 11h); TMV, ALLOW
		// COMMANDS 001b, PTPL_A clear (byte 3 = 90h).
		{0, cdbReportCaps, "", good, "0008 11 90"},
		{0, cdbRegister, zero + keyA + aptplTail, good, ""},
		// PTPL_A now set.
		{0, cdbReportCaps, "", good, "0008 11 91"},
		{1, cdbRegister, zero + keyB + tail, good, ""}, // APTPL clear here would turn it off: see below
	})
	// The second REGISTER had APTPL clear: the last one decides, so the
	// state was removed.
	if store.saved != nil || store.removes != 1 {
		t.Fatalf("after a REGISTER with APTPL clear: saved %+v, %d removes", store.saved, store.removes)
	}
	f.run(t, []prStep{
		{1, cdbRegister, keyB + keyB + aptplTail, good, ""}, // same key again, APTPL on
		{0, cdbReserve("1"), keyA + zero + tail, good, ""},  // APTPL is ignored for RESERVE; saved anyway
	})
	wantState := PRState{APTPL: true, Generation: 3, Registrations: []PRRegistration{
		{InitiatorPort: initiator, TargetPort: target, Key: 0xaaaaaaaaaaaaaaaa, RelTgtPortID: 1},
		{InitiatorPort: other, TargetPort: target, Key: 0xbbbbbbbbbbbbbbbb, RelTgtPortID: 1},
	}, Reservation: &PRReservation{Type: PRWriteExclusive, InitiatorPort: initiator, TargetPort: target}}
	if store.saved == nil || !reflect.DeepEqual(*store.saved, wantState) {
		t.Fatalf("saved %+v\nwant %+v", store.saved, wantState)
	}

	// A change that cannot be saved is undone and fails with INSUFFICIENT
	// REGISTRATION RESOURCES; the status says why.
	store.fail = errors.New("disk full")
	f.run(t, []prStep{
		{1, cdbPreempt("1"), keyB + keyA + tail, want(errPersistFailed), ""},
		{0, cdbReadResv, "", good, "00000003 00000010 aaaaaaaaaaaaaaaa"}, // A still holds it
	})
	if st := f.dev.PRStatus(); st.Error != "disk full" || !st.Persistent {
		t.Errorf("status after a failed save: %+v", st)
	}
	store.fail = nil

	// A restart: a new device restored from what was saved serves the
	// same keys and reservation, and the holder still holds it.
	dev := NewDevice(DeviceConfig{Name: "disk1"}, newMem(64*512))
	dev.SetPRStore(store)
	if err := dev.RestorePR(*store.saved, nil); err != nil {
		t.Fatal(err)
	}
	g := &prFixture{fixture: &fixture{mem: f.mem, dev: dev, lu: &LogicalUnit{Device: dev}}}
	g.fixture.lus = NewLUNMap(map[LUN]*LogicalUnit{0: g.lu})
	g.nexus = f.nexus
	for _, n := range g.nexus {
		g.as(n, hx(t, cdbTUR), nil)
		g.as(n, hx(t, cdbTUR), nil)
	}
	g.run(t, []prStep{
		{0, cdbReadKeys, "", good, "00000003 00000010 aaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbb"},
		{0, cdbReadResv, "", good, "00000003 00000010 aaaaaaaaaaaaaaaa 00000000 00 01"},
		{0, cdbReportCaps, "", good, "0008 11 91"},
		{1, cdbWrite10, block, conflict, ""},
		{0, cdbWrite10, block, good, ""},
		// APTPL off: the saved state goes.
		{0, cdbRegister, keyA + keyA + tail, good, ""},
	})
	if store.saved != nil {
		t.Errorf("APTPL off left %+v saved", store.saved)
	}
}

func TestAPTPLWithoutStore(t *testing.T) {
	f := newPRFixture(t)
	f.run(t, []prStep{
		{0, cdbReportCaps, "", good, "0008 10 90"}, // PTPL_C clear
		{0, cdbRegister, zero + keyA + aptplTail, want(invalidParam(20, 0)), ""},
		// APTPL is ignored for other service actions.
		{0, cdbRegister, zero + keyA + tail, good, ""},
		{0, cdbReserve("1"), keyA + zero + aptplTail, good, ""},
	})
}

func TestRestorePRRefusesBadState(t *testing.T) {
	reg := PRRegistration{InitiatorPort: "iqn.a,i,0x1", TargetPort: "iqn.t,t,0x1", Key: 1}
	for _, c := range []struct {
		name string
		st   PRState
	}{
		{"zero key", PRState{Registrations: []PRRegistration{{InitiatorPort: "iqn.a,i,0x1", TargetPort: "iqn.t,t,0x1"}}}},
		{"registered twice", PRState{Registrations: []PRRegistration{reg, reg}}},
		{"bad type", PRState{Registrations: []PRRegistration{reg}, Reservation: &PRReservation{Type: 2, InitiatorPort: reg.InitiatorPort, TargetPort: reg.TargetPort}}},
		{"holder not registered", PRState{Registrations: []PRRegistration{reg}, Reservation: &PRReservation{Type: PRWriteExclusive, InitiatorPort: "iqn.b,i,0x1", TargetPort: reg.TargetPort}}},
		{"reservation without registrations", PRState{Reservation: &PRReservation{Type: PRWriteExclusiveAllReg}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := NewDevice(DeviceConfig{Name: "d"}, nil)
			if err := d.RestorePR(c.st, nil); err == nil {
				t.Fatal("accepted")
			}
			st := d.PRStatus()
			if st.Error == "" || len(st.Registrations) != 0 || st.Reservation != nil {
				t.Errorf("status %+v", st)
			}
		})
	}
	d := NewDevice(DeviceConfig{Name: "d"}, nil)
	d.RestorePR(PRState{}, errors.New("unexpected end of JSON input"))
	if st := d.PRStatus(); st.Error != "unexpected end of JSON input" {
		t.Errorf("read error not reported: %+v", st)
	}
}
