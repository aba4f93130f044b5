package scsi

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// prStep is one command in a reservation scenario: who sends it, the CDB
// and data-out in hex, and the outcome (senseOf form, or a status name).
type prStep struct {
	who  int // index of the nexus: 0, 1 or 2
	cdb  string
	out  string
	want string
	// data, when set, is the hex prefix the data-in must start with.
	data string
}

// Keys and parameter lists used in the scenarios.
const (
	keyA = "aaaaaaaaaaaaaaaa"
	keyB = "bbbbbbbbbbbbbbbb"
	keyC = "cccccccccccccccc"
	zero = "0000000000000000"
	tail = "00000000 00 000000" // obsolete, flags, reserved
)

// CDBs used in the scenarios.
const (
	cdbTUR        = "00 00000000 00"
	cdbRead10     = "28 00 00000000 00 0001 00"
	cdbWrite10    = "2a 00 00000000 00 0001 00"
	cdbReserve6   = "16 00000000 00"
	cdbRelease6   = "17 00000000 00"
	cdbReserve10  = "56 00 00 00000000 0000 00"
	cdbRelease10  = "57 00 00 00000000 0000 00"
	cdbReadKeys   = "5e 00 00000000 00 1000 00"
	cdbReadResv   = "5e 01 00000000 00 1000 00"
	cdbReportCaps = "5e 02 00000000 00 1000 00"
	cdbFullStatus = "5e 03 00000000 00 1000 00"
	cdbRegister   = "5f 00 00 0000 00000018 00"
	cdbRegIgnore  = "5f 06 00 0000 00000018 00"
	cdbClear      = "5f 03 00 0000 00000018 00"
)

func cdbReserve(typ string) string { return "5f 01 0" + typ + " 0000 00000018 00" }
func cdbReleasePR(typ string) string {
	return "5f 02 0" + typ + " 0000 00000018 00"
}
func cdbPreempt(typ string) string { return "5f 04 0" + typ + " 0000 00000018 00" }

var (
	good     = "GOOD"
	conflict = "RESERVATION_CONFLICT"
	block    = strings.Repeat("5a", 512)
)

// prFixture is a device seen through three I_T nexuses: two initiators
// and the first initiator again through another target port. With
// sharedFixtures set (withSharedFixtures), the second and third nexuses
// reach the logical unit through a second device server (a second
// Device on the same storage) that shares the reservation state with the
// first through a memShared.
type prFixture struct {
	*fixture
	nexus [3]*Nexus
	// lus is the LUN map each nexus sends through.
	lus [3]*LUNMap
	// hub and second are the shared store and the second device, with
	// sharedFixtures.
	hub    *memShared
	second *Device
}

// sharedFixtures makes newPRFixture spread its nexuses over two device
// servers that share the reservation state.
var sharedFixtures bool

// withSharedFixtures sets sharedFixtures for the rest of the test.
func withSharedFixtures(t *testing.T) {
	sharedFixtures = true
	t.Cleanup(func() { sharedFixtures = false })
}

func newPRFixture(t *testing.T) *prFixture {
	f := &prFixture{fixture: newFixture(t, 64, DeviceConfig{})}
	f.nexus[0] = f.nex
	f.nexus[1] = NewNexus("iqn.1994-05.com.redhat:other,i,0x23d000000002", "iqn.2026-11.org.example:t1", 1, 1)
	f.nexus[2] = NewNexus(f.nex.InitiatorPort, "iqn.2026-11.org.example:t1", 2, 2)
	f.lus = [3]*LUNMap{f.fixture.lus, f.fixture.lus, f.fixture.lus}
	if sharedFixtures {
		f.hub = newMemShared()
		f.second = NewDevice(DeviceConfig{Name: "disk1", BlockSize: 512}, f.mem)
		f.hub.attach(f.dev)
		f.hub.attach(f.second)
		second := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: f.second}})
		f.lus[1], f.lus[2] = second, second
	}
	for _, n := range f.nexus[1:] {
		f.as(n, hx(t, cdbTUR), nil) // power-on unit attention
	}
	return f
}

func (f *prFixture) as(n *Nexus, cdb, out []byte) Result {
	lus := f.fixture.lus
	for i, m := range f.nexus {
		if m == n && f.lus[i] != nil {
			lus = f.lus[i]
		}
	}
	return Execute(&Command{Nexus: n, LUNs: lus, LUN: 0, LUNValid: true,
		CDB: cdb, DataOut: out, ExpectedIn: 1 << 16})
}

func (f *prFixture) run(t *testing.T, steps []prStep) {
	t.Helper()
	for i, s := range steps {
		var out []byte
		if s.out != "" {
			out = hx(t, s.out)
		}
		r := f.as(f.nexus[s.who], hx(t, s.cdb), out)
		if got := senseOf(r); got != s.want {
			t.Fatalf("step %d: nexus %d %s: got %s, want %s", i, s.who, s.cdb, got, s.want)
		}
		if s.data != "" && !bytes.HasPrefix(r.Data, hx(t, s.data)) {
			t.Fatalf("step %d: nexus %d %s: data %x, want prefix %s", i, s.who, s.cdb, r.Data, s.data)
		}
	}
}

func TestSPC2Reserve(t *testing.T) {
	tests := []struct {
		name  string
		steps []prStep
	}{
		{"reserve and release", []prStep{
			{0, cdbReserve6, "", good, ""},
			{0, cdbReserve6, "", good, ""}, // the holder may reserve again
			{0, cdbRead10, "", good, ""},
			{1, cdbReserve6, "", conflict, ""},
			{1, cdbRelease6, "", good, ""}, // a no-op from another nexus
			{1, cdbRead10, "", conflict, ""},
			{1, cdbTUR, "", conflict, ""},
			{1, "12 00 00 00ff 00", "", good, ""}, // INQUIRY is allowed
			{0, cdbRelease6, "", good, ""},
			{1, cdbReserve10, "", good, ""},
			{0, cdbWrite10, block, conflict, ""},
			{1, cdbRelease10, "", good, ""},
			{0, cdbWrite10, block, good, ""},
		}},
		{"persistent reservation commands conflict under RESERVE", []prStep{
			{0, cdbReserve6, "", good, ""},
			{0, cdbReadKeys, "", conflict, ""},
			{0, cdbRegIgnore, zero + keyA + tail, conflict, ""},
			{0, cdbRelease6, "", good, ""},
			{0, cdbReadKeys, "", good, ""},
		}},
		{"registrations make RESERVE and RELEASE conflict", []prStep{
			{1, cdbRegIgnore, zero + keyB + tail, good, ""},
			{0, cdbReserve6, "", conflict, ""},
			{0, cdbRelease10, "", conflict, ""},
			{1, cdbRegister, keyB + zero + tail, good, ""},
			{0, cdbReserve6, "", good, ""},
			{0, cdbRelease6, "", good, ""},
		}},
		{"third-party reserve refused", []prStep{
			{0, "56 10 00 00000000 0000 00", "", want(invalidField(1, 4)), ""},
			{0, "16 01 00 00 00 00", "", want(invalidField(1, 0)), ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { newPRFixture(t).run(t, tt.steps) })
	}
}

func TestSPC2ReleasedByResetAndNexusLoss(t *testing.T) {
	f := newPRFixture(t)
	f.run(t, []prStep{{0, cdbReserve6, "", good, ""}, {1, cdbRead10, "", conflict, ""}})
	f.dev.resetReservations()
	f.run(t, []prStep{{1, cdbReserve6, "", good, ""}, {0, cdbRead10, "", conflict, ""}})
	f.dev.nexusLost(f.nexus[0]) // not the holder: nothing happens
	f.run(t, []prStep{{0, cdbRead10, "", conflict, ""}})
	f.dev.nexusLost(f.nexus[1])
	f.run(t, []prStep{{0, cdbRead10, "", good, ""}})
}

func TestPersistentRegister(t *testing.T) {
	newPRFixture(t).run(t, []prStep{
		{0, cdbReadKeys, "", good, "00000000 00000000"},
		// unregistered, RESERVATION KEY must be zero
		{0, cdbRegister, keyA + keyB + tail, conflict, ""},
		// unregistered with a zero key: nothing happens, generation kept
		{0, cdbRegister, zero + zero + tail, good, ""},
		{0, cdbReadKeys, "", good, "00000000 00000000"},
		{0, cdbRegister, zero + keyA + tail, good, ""},
		{0, cdbReadKeys, "", good, "00000001 00000008" + keyA},
		// re-registering needs the current key
		{0, cdbRegister, zero + keyC + tail, conflict, ""},
		{0, cdbRegister, keyA + keyC + tail, good, ""},
		{1, cdbRegIgnore, zero + keyB + tail, good, ""},
		{2, cdbRegIgnore, keyC + keyC + tail, good, ""}, // same initiator, other port: its own nexus
		{1, cdbReadKeys, "", good, "00000004 00000018" + keyC + keyB + keyC},
		{1, cdbRegIgnore, zero + keyA + tail, good, ""},
		{0, cdbRegister, keyC + zero + tail, good, ""},
		{0, cdbReadKeys, "", good, "00000006 00000010" + keyA + keyC},
		// parameter list checks
		{0, "5f 00 00 0000 00000010 00", zero + keyA, want(ErrParamListLength), ""},
		{0, cdbRegIgnore, zero + keyA + "00000000 01 000000", aptplRefused(), ""},
		{0, cdbRegIgnore, zero + keyA + "00000000 04 000000", want(invalidParam(20, 2)), ""},
		{0, cdbRegIgnore, zero + keyA + "00000000 08 000000", want(invalidParam(20, 3)), ""},
		{0, cdbRegIgnore, zero + keyA, want(ErrParamListLength), ""},
	})
}

// aptplRefused is the answer to a REGISTER with APTPL on a device with
// nowhere to keep its state: refused, unless the device shares its
// state (the shared store keeps it).
func aptplRefused() string {
	if sharedFixtures {
		return good
	}
	return want(invalidParam(20, 0))
}

func TestPersistentReserveRelease(t *testing.T) {
	for _, typ := range []string{"1", "3", "5", "6", "7", "8"} {
		t.Run("type "+typ, func(t *testing.T) {
			key, shared := keyA, typ == "7" || typ == "8"
			if shared {
				key = zero // all registrants: READ RESERVATION reports key 0
			}
			f := newPRFixture(t)
			f.run(t, []prStep{
				{0, cdbReserve(typ), keyA + zero + tail, conflict, ""}, // not registered
				{0, cdbRegIgnore, zero + keyA + tail, good, ""},
				{0, cdbReserve(typ), keyB + zero + tail, conflict, ""}, // wrong key
				{0, cdbReserve(typ), keyA + zero + tail, good, ""},
				{0, cdbReserve(typ), keyA + zero + tail, good, ""},
				{0, cdbReadResv, "", good, "00000001 00000010" + key + "00000000 00 0" + typ + " 0000"},
				{0, cdbReleasePR("9"), keyA + zero + tail, want(errInvalidRelease), ""},
				{1, cdbRegIgnore, zero + keyB + tail, good, ""},
				{1, cdbReleasePR(typ), keyB + zero + tail, good, ""}, // releases only when shared
				{1, cdbReadResv, "", good, "00000002"},
			})
			if r := f.as(f.nexus[1], hx(t, cdbReadResv), nil); (be32(r.Data[4:8]) == 0) != shared {
				t.Fatalf("after RELEASE from a registrant: %x", r.Data)
			}
			if shared {
				f.run(t, []prStep{{0, cdbTUR, "", want(uaReservationsReleased), ""}})
			}
			f.run(t, []prStep{
				{0, cdbReleasePR(typ), keyA + zero + tail, good, ""},
				{0, cdbReadResv, "", good, "00000002 00000000"},
			})
		})
	}
}

// TestPersistentAccess follows libiscsi's test_prout_reserve_access: what a
// registered and an unregistered second initiator may read and write under
// each type.
func TestPersistentAccess(t *testing.T) {
	tests := []struct {
		typ                        string
		regRead, regWrite          bool
		unregRead, unregWrite      bool
		holderAfterUnregisterIsOne bool
	}{
		{"1", true, false, true, false, true},
		{"3", false, false, false, false, true},
		{"5", true, true, true, false, true},
		{"6", true, true, false, false, true},
		{"7", true, true, true, false, true},
		{"8", true, true, false, false, true},
	}
	outcome := func(ok bool) string {
		if ok {
			return good
		}
		return conflict
	}
	for _, tt := range tests {
		t.Run("type "+tt.typ, func(t *testing.T) {
			newPRFixture(t).run(t, []prStep{
				{0, cdbRegIgnore, zero + keyA + tail, good, ""},
				{1, cdbRegIgnore, zero + keyB + tail, good, ""},
				{0, cdbReserve(tt.typ), keyA + zero + tail, good, ""},
				{0, cdbRead10, "", good, ""},
				{0, cdbWrite10, block, good, ""},
				{1, cdbRead10, "", outcome(tt.regRead), ""},
				{1, cdbWrite10, block, outcome(tt.regWrite), ""},
				{1, cdbTUR, "", good, ""},
				{1, "9e 10 0000000000000000 00000020 00 00", "", good, ""}, // READ CAPACITY(16)
				{1, cdbRegister, keyB + zero + tail, good, ""},
				{1, cdbRead10, "", outcome(tt.unregRead), ""},
				{1, cdbWrite10, block, outcome(tt.unregWrite), ""},
				{2, cdbRead10, "", outcome(tt.unregRead), ""}, // same initiator, other target port
				{0, cdbReleasePR(tt.typ), keyA + zero + tail, good, ""},
				{1, cdbWrite10, block, good, ""},
			})
		})
	}
}

// TestPersistentOwnership follows libiscsi's
// test_prout_reserve_ownership: the holder unregistering releases the
// reservation, except for the all-registrants types.
func TestPersistentOwnership(t *testing.T) {
	for _, typ := range []string{"1", "3", "5", "6", "7", "8"} {
		t.Run("type "+typ, func(t *testing.T) {
			shared := typ == "7" || typ == "8"
			f := newPRFixture(t)
			f.run(t, []prStep{
				{0, cdbRegIgnore, zero + keyA + tail, good, ""},
				{1, cdbRegIgnore, zero + keyB + tail, good, ""},
				{0, cdbReserve(typ), keyA + zero + tail, good, ""},
				{0, cdbRegister, keyA + zero + tail, good, ""},
			})
			if shared {
				f.run(t, []prStep{
					{0, cdbReadResv, "", good, "00000003 00000010" + zero + "00000000 00 0" + typ},
					{1, cdbReleasePR(typ), keyB + zero + tail, good, ""},
					{1, cdbReadResv, "", good, "00000003 00000000"},
					{1, cdbTUR, "", good, ""},
				})
				return
			}
			ua := good
			if typ == "5" || typ == "6" {
				ua = want(uaReservationsReleased)
			}
			f.run(t, []prStep{
				{0, cdbReadResv, "", good, "00000003 00000000"},
				{1, cdbTUR, "", ua, ""},
				{1, cdbTUR, "", good, ""},
			})
		})
	}
}

func TestPersistentClear(t *testing.T) {
	newPRFixture(t).run(t, []prStep{
		{0, cdbRegIgnore, zero + keyA + tail, good, ""},
		{1, cdbRegIgnore, zero + keyB + tail, good, ""},
		{0, cdbReserve("3"), keyA + zero + tail, good, ""},
		{1, cdbClear, keyA + zero + tail, conflict, ""}, // wrong key
		{1, cdbClear, keyB + zero + tail, good, ""},
		{1, cdbReadKeys, "", good, "00000003 00000000"},
		{1, cdbReadResv, "", good, "00000003 00000000"},
		{0, cdbTUR, "", want(uaReservationsPreempted), ""},
		{0, cdbRead10, "", good, ""},
		{1, cdbTUR, "", good, ""}, // the clearing nexus gets no unit attention
	})
}

func TestPersistentPreempt(t *testing.T) {
	tests := []struct {
		name  string
		steps []prStep
	}{
		{"remove a registration without reservation", []prStep{
			{0, cdbRegIgnore, zero + keyA + tail, good, ""},
			{1, cdbRegIgnore, zero + keyB + tail, good, ""},
			{1, cdbPreempt("3"), keyB + keyA + tail, good, ""},
			{0, cdbTUR, "", want(uaRegistrationsPreempted), ""},
			{1, cdbTUR, "", good, ""},
			{0, cdbReadKeys, "", good, "00000003 00000008" + keyB},
			{1, cdbPreempt("3"), keyB + keyC + tail, conflict, ""}, // nobody has key C
			{1, cdbPreempt("3"), keyB + zero + tail, want(invalidParam(8, -1)), ""},
			{0, cdbPreempt("3"), keyA + keyB + tail, conflict, ""}, // A is no longer registered
		}},
		{"take over the holder's reservation", []prStep{
			{0, cdbRegIgnore, zero + keyA + tail, good, ""},
			{1, cdbRegIgnore, zero + keyB + tail, good, ""},
			{0, cdbReserve("1"), keyA + zero + tail, good, ""},
			{1, cdbWrite10, block, conflict, ""},
			{1, cdbPreempt("3"), keyB + keyA + tail, good, ""},
			{1, cdbReadResv, "", good, "00000003 00000010" + keyB + "00000000 00 03"},
			{1, cdbWrite10, block, good, ""},
			{0, cdbTUR, "", want(uaRegistrationsPreempted), ""},
			{0, cdbRead10, "", conflict, ""},
		}},
		{"all registrants with key zero", []prStep{
			{0, cdbRegIgnore, zero + keyA + tail, good, ""},
			{1, cdbRegIgnore, zero + keyB + tail, good, ""},
			{2, cdbRegIgnore, zero + keyC + tail, good, ""},
			{0, cdbReserve("8"), keyA + zero + tail, good, ""},
			{1, cdbPreempt("1"), keyB + zero + tail, good, ""},
			{1, cdbReadKeys, "", good, "00000004 00000008" + keyB},
			{1, cdbReadResv, "", good, "00000004 00000010" + keyB + "00000000 00 01"},
			{0, cdbTUR, "", want(uaRegistrationsPreempted), ""},
			{2, cdbTUR, "", want(uaRegistrationsPreempted), ""},
			{0, cdbWrite10, block, conflict, ""},
		}},
		{"preempt and abort", []prStep{
			{0, cdbRegIgnore, zero + keyA + tail, good, ""},
			{1, cdbRegIgnore, zero + keyB + tail, good, ""},
			{0, cdbReserve("6"), keyA + zero + tail, good, ""},
			{1, "5f 05 03 0000 00000018 00", keyB + keyA + tail, good, ""},
			{1, cdbReadResv, "", good, "00000003 00000010" + keyB + "00000000 00 03"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { newPRFixture(t).run(t, tt.steps) })
	}
}

func TestPersistentReserveIn(t *testing.T) {
	f := newPRFixture(t)
	f.run(t, []prStep{
		{0, cdbReportCaps, "", good, "0008 10 90 ea 01 0000"},
		{0, "5e 00 00000000 00 0004 00", "", good, "00000000"}, // truncated to 4 bytes
		{0, cdbRegIgnore, zero + keyA + tail, good, ""},
		{1, cdbRegIgnore, zero + keyB + tail, good, ""},
		{0, cdbReserve("1"), keyA + zero + tail, good, ""},
	})
	r := f.as(f.nexus[0], hx(t, cdbFullStatus), nil)
	// header; descriptor A: key, reserved, R_HOLDER, type, reserved, RTPI,
	// additional length, TransportID ("iqn...client,i,0x23d000000001" is
	// 45 bytes, NUL-terminated and padded to 48).
	id := "iqn.1994-05.com.redhat:client,i,0x23d000000001"
	wantA := keyA + "00000000 01 01 00000000 0001 00000034" + "45 00 0030" + hexOf(id) + "00 00"
	if len(id) != 46 {
		t.Fatalf("id length %d", len(id))
	}
	if got, want := r.Data[8:8+24+52], hx(t, wantA); !bytes.Equal(got, want) {
		t.Fatalf("READ FULL STATUS descriptor:\n got %x\nwant %x", got, want)
	}
	if n := int(be32(r.Data[4:8])); n != len(r.Data)-8 || n != 2*(24+52) {
		t.Fatalf("ADDITIONAL LENGTH %d, data %d bytes", n, len(r.Data))
	}
	if len(f.as(f.nexus[0], hx(t, "5e 03 00000000 00 0010 00"), nil).Data) != 16 {
		t.Fatal("READ FULL STATUS ignores ALLOCATION LENGTH")
	}
}

func hexOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString(strings.ToLower(string("0123456789abcdef"[s[i]>>4]) + string("0123456789abcdef"[s[i]&15])))
	}
	return b.String()
}

func TestPersistentReserveOutCDBChecks(t *testing.T) {
	newPRFixture(t).run(t, []prStep{
		{0, cdbRegIgnore, zero + keyA + tail, good, ""},
		{0, "5f 01 13 0000 00000018 00", keyA + zero + tail, want(invalidField(2, 7)), ""}, // scope 1
		{0, "5f 01 02 0000 00000018 00", keyA + zero + tail, want(invalidField(2, 3)), ""}, // type 2
		{0, "5f 04 00 0000 00000018 00", keyA + zero + tail, want(invalidField(2, 3)), ""}, // preempt type 0
		{0, "5f 01 01 0000 00000000 00", "", want(ErrParamListLength), ""},
		{0, "5f 07 00 0000 00000018 00", keyA + zero + tail, want(invalidField(1, 4)), ""}, // REGISTER AND MOVE
		{0, "5e 04 00000000 00 1000 00", "", want(invalidField(1, 4)), ""},
		{0, "5e 1f 00000000 00 1000 00", "", want(invalidField(1, 4)), ""},
	})
}

func TestReservationConflictFastPath(t *testing.T) {
	f := newPRFixture(t)
	tk := &task{cmd: &Command{Nexus: f.nexus[1], CDB: hx(t, cdbRead10)}, dev: f.dev, lu: f.lu}
	if n := testing.AllocsPerRun(100, func() {
		if f.dev.reservationConflict(tk) {
			t.Fatal("conflict without a reservation")
		}
	}); n > 0 {
		t.Errorf("reservation check on an unreserved device allocates %v times", n)
	}
	if f.dev.reservationUA(f.nexus[0]) != nil {
		t.Error("unit attention without reservation changes")
	}
}

func TestPRTypeString(t *testing.T) {
	for typ, want := range map[PRType]string{
		PRWriteExclusive: "WRITE_EXCLUSIVE", PRExclusiveAccessAllReg: "EXCLUSIVE_ACCESS_ALL_REGISTRANTS", 2: "PR_TYPE_2",
	} {
		if typ.String() != want {
			t.Errorf("%d: %s, want %s", typ, typ, want)
		}
	}
	if PROutPreemptAndAbort.String() != "PREEMPT_AND_ABORT" || PRInReadFullStatus.String() != "READ_FULL_STATUS" {
		t.Error("service action names")
	}
}

// FuzzPersistentReservations drives PERSISTENT RESERVE OUT from three I_T
// nexuses with arbitrary service actions, types and keys, and checks after
// each step that the state reads back consistently: READ KEYS and READ
// FULL STATUS agree, the generation never goes back, a reservation has a
// valid type, and nothing panics.
func FuzzPersistentReservations(f *testing.F) {
	f.Add([]byte{0, 6, 1, 1, 0, 1, 1, 1, 1, 6, 3, 2, 1, 4, 3, 2})
	f.Add([]byte{0, 6, 0, 1, 1, 6, 0, 2, 0, 1, 7, 1, 1, 0, 0, 2, 0, 3, 0, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		p := newPRFixture(t)
		keys := [4]string{zero, keyA, keyB, keyC}
		var gen uint32
		for i := 0; i+3 < len(ops) && i < 400; i += 4 {
			who, sa, typ, k := int(ops[i]%3), ops[i+1]%7, ops[i+2]%9, ops[i+3]
			cdb := hx(t, "5f 00 00 0000 00000018 00")
			cdb[1], cdb[2] = sa, typ
			out := hx(t, keys[k&3]+keys[k>>2&3]+tail)
			r := p.as(p.nexus[who], cdb, out)
			if r.Status == CheckCondition && SenseKey(r.Sense[2]) == HardwareError {
				t.Fatalf("op %d panicked", i/4)
			}
			if r.Status == CheckCondition && SenseKey(r.Sense[2]) == UnitAttention {
				continue
			}
			var keysIn, full, resv Result
			for {
				keysIn = p.as(p.nexus[who], hx(t, cdbReadKeys), nil)
				if keysIn.Status != CheckCondition {
					break
				}
			}
			full = p.as(p.nexus[who], hx(t, cdbFullStatus), nil)
			resv = p.as(p.nexus[who], hx(t, cdbReadResv), nil)
			if keysIn.Status != Good || full.Status != Good || resv.Status != Good {
				t.Fatalf("op %d: PRIN failed: %s %s %s", i/4, senseOf(keysIn), senseOf(full), senseOf(resv))
			}
			g := be32(keysIn.Data[0:4])
			if g < gen {
				t.Fatalf("op %d: generation went back from %d to %d", i/4, gen, g)
			}
			gen = g
			nKeys := int(be32(keysIn.Data[4:8])) / 8
			nFull := 0
			for d := full.Data[8:]; len(d) >= 24; nFull++ {
				d = d[24+be32(d[20:24]):]
			}
			if nKeys != nFull || nKeys > 3 {
				t.Fatalf("op %d: READ KEYS lists %d, READ FULL STATUS %d", i/4, nKeys, nFull)
			}
			if be32(resv.Data[4:8]) == 16 && !PRType(resv.Data[21]&0xf).valid() {
				t.Fatalf("op %d: reservation of type %d", i/4, resv.Data[21])
			}
			if be32(resv.Data[4:8]) == 16 && nKeys == 0 {
				t.Fatalf("op %d: reservation without registrations", i/4)
			}
		}
	})
}

// TestReservationsConcurrent registers, reserves, preempts and releases
// from three nexuses while each also reads and writes; run with -race.
// Whatever the interleaving, every command must end in GOOD, RESERVATION
// CONFLICT or a reservation unit attention.
func TestReservationsConcurrent(t *testing.T) {
	f := newPRFixture(t)
	keys := []string{keyA, keyB, keyC}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			me := keys[w]
			steps := []struct{ cdb, out string }{
				{cdbRegIgnore, zero + me + tail},
				{cdbReserve("5"), me + zero + tail},
				{cdbWrite10, block},
				{cdbRead10, ""},
				{cdbPreempt("1"), me + keys[(w+1)%3] + tail},
				{cdbReleasePR("5"), me + zero + tail},
				{cdbReleasePR("1"), me + zero + tail},
				{cdbReadKeys, ""},
				{cdbRegister, me + zero + tail},
			}
			for range 20 {
				for _, s := range steps {
					var out []byte
					if s.out != "" {
						out = hx(t, s.out)
					}
					r := f.as(f.nexus[w], hx(t, s.cdb), out)
					switch {
					case r.Status == Good, r.Status == ReservationConflict:
					case r.Status == CheckCondition && SenseKey(r.Sense[2]) == UnitAttention && r.Sense[12] == 0x2a:
					case r.Status == CheckCondition && r.Sense[12] == 0x26 && r.Sense[13] == 0x04:
						// RELEASE naming the other type of a reservation held
					default:
						t.Errorf("nexus %d %s: %s", w, s.cdb, senseOf(r))
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
