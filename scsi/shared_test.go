package scsi

import (
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

// memShared is a SharedPR in memory shared by several Devices, as the
// gateways of a cluster share one in etcd: Commit is a compare-and-swap
// on a revision; every commit is a change in a log that Settle delivers,
// in order, to every attached device (ApplySharedPR) up to the revision
// settled, except to the devices held back (to make stale copies).
type memShared struct {
	mu      sync.Mutex
	rev     int64
	state   *SharedPRState
	log     []sharedChange
	devices []*sharedDevice
	// fail, when set, fails Commit; fence is what Fence answers.
	fail  error
	fence *SenseError
	// atomic is the token of Atomic; atomics counts its takes.
	atomic  sync.Mutex
	atomics int
}

type sharedChange struct {
	rev   int64
	state *SharedPRState
}

// sharedDevice is an attached device and the revision delivered to it.
type sharedDevice struct {
	dev  *Device
	seen int64
	hold bool
}

func newMemShared() *memShared { return &memShared{state: &SharedPRState{}} }

// attach makes d share the hub's state, loaded at once.
func (m *memShared) attach(d *Device) {
	d.SetSharedPR(m)
	m.mu.Lock()
	rev, st := m.rev, m.state
	m.devices = append(m.devices, &sharedDevice{dev: d, seen: rev})
	m.mu.Unlock()
	if err := d.LoadSharedPR(rev, st); err != nil {
		panic(err)
	}
}

// holdBack stops (or resumes) deliveries to d.
func (m *memShared) holdBack(d *Device, hold bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.devices {
		if s.dev == d {
			s.hold = hold
		}
	}
}

func (m *memShared) Commit(rev int64, next *SharedPRState) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	if rev != m.rev {
		return 0, &StaleError{Rev: m.rev, State: m.state}
	}
	m.rev++
	m.state = next
	m.log = append(m.log, sharedChange{m.rev, next})
	return m.rev, nil
}

func (m *memShared) Settle(rev int64) error {
	m.mu.Lock()
	type delivery struct {
		d *Device
		c sharedChange
	}
	var out []delivery
	for _, s := range m.devices {
		if s.hold {
			continue
		}
		for _, c := range m.log {
			if c.rev > s.seen && c.rev <= rev {
				out = append(out, delivery{s.dev, c})
				s.seen = c.rev
			}
		}
	}
	m.mu.Unlock()
	for _, o := range out {
		if err := o.d.ApplySharedPR(o.c.rev, o.c.state); err != nil {
			return err
		}
	}
	return nil
}

func (m *memShared) Local(string) bool { return true }

func (m *memShared) Fence() *SenseError {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fence
}

func (m *memShared) Atomic() (func(), error) {
	m.atomic.Lock()
	m.atomics++
	return m.atomic.Unlock, nil
}

// TestSharedScenarios runs the reservation scenarios with their nexuses
// spread over two device servers that share the state: every command
// must get the answer it gets from one device server, unit attentions
// included, since a change completes only once both apply it.
func TestSharedScenarios(t *testing.T) {
	for _, tt := range []struct {
		name string
		test func(*testing.T)
	}{
		{"SPC2Reserve", TestSPC2Reserve},
		{"PersistentRegister", TestPersistentRegister},
		{"PersistentReserveRelease", TestPersistentReserveRelease},
		{"PersistentAccess", TestPersistentAccess},
		{"PersistentOwnership", TestPersistentOwnership},
		{"PersistentClear", TestPersistentClear},
		{"PersistentPreempt", TestPersistentPreempt},
		{"PersistentReserveOutCDBChecks", TestPersistentReserveOutCDBChecks},
		{"ReservationsConcurrent", TestReservationsConcurrent},
	} {
		t.Run(tt.name, func(t *testing.T) {
			withSharedFixtures(t)
			tt.test(t)
		})
	}
}

// TestSharedStaleCopy: a device server whose copy is stale (it has not
// applied a change yet) evaluates a PERSISTENT RESERVE OUT again against
// the current state, as serial execution would, and answers RESERVATION
// CONFLICT; READ KEYS then shows the current state.
func TestSharedStaleCopy(t *testing.T) {
	withSharedFixtures(t)
	f := newPRFixture(t)
	f.run(t, []prStep{
		{0, cdbRegister, zero + keyA + tail, good, ""},
		{1, cdbRegister, zero + keyB + tail, good, ""},
	})
	f.hub.holdBack(f.second, true)
	f.run(t, []prStep{{0, cdbReserve("1"), keyA + zero + tail, good, ""}})
	if rev, _ := f.second.SharedPRRevision(); rev != 2 {
		t.Fatalf("the held-back device is at revision %d, want 2", rev)
	}
	f.run(t, []prStep{
		// Its own copy has no reservation; the commit finds the current
		// state, where A holds WRITE EXCLUSIVE.
		{1, cdbReserve("1"), keyB + zero + tail, conflict, ""},
		{1, cdbReadResv, "", good, "00000002 00000010 aaaaaaaaaaaaaaaa"},
		{1, cdbWrite10, block, conflict, ""},
	})
	if rev, _ := f.second.SharedPRRevision(); rev != 3 {
		t.Errorf("after the stale commit the device is at revision %d, want 3", rev)
	}
}

// TestSharedUnitAttentions: the unit attentions of a change reach the
// nexuses of the other device server before the change completes.
func TestSharedUnitAttentions(t *testing.T) {
	withSharedFixtures(t)
	f := newPRFixture(t)
	f.run(t, []prStep{
		{0, cdbRegister, zero + keyA + tail, good, ""},
		{1, cdbRegister, zero + keyB + tail, good, ""},
		{1, cdbReserve("1"), keyB + zero + tail, good, ""},
		{0, cdbPreempt("1"), keyA + keyB + tail, good, ""},
		{1, cdbTUR, "", want(uaRegistrationsPreempted), ""},
		{1, cdbReadKeys, "", good, "00000003 00000008 aaaaaaaaaaaaaaaa"},
	})
}

// TestSharedSync: a device that shares its state refuses media access
// until it holds the state, then serves; a device with reservation state
// asks the store's fence, one without does not.
func TestSharedSync(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	hub := newMemShared()
	f.dev.SetSharedPR(hub)
	tests := []struct{ cdb, want string }{
		{cdbRead10, want(ErrALUATransition)},
		{cdbReadKeys, want(ErrALUATransition)},
		{"12 00 00 00ff 00", good},              // INQUIRY
		{"a0 00 00000000 00001000 00 00", good}, // REPORT LUNS
	}
	for _, tt := range tests {
		if got := senseOf(f.exec(0, hx(t, tt.cdb), nil)); got != tt.want {
			t.Errorf("before the load, %s: %s, want %s", tt.cdb, got, tt.want)
		}
	}
	if err := f.dev.LoadSharedPR(7, &SharedPRState{}); err != nil {
		t.Fatal(err)
	}
	hub.rev = 7
	hub.fence = ErrALUAUnavailable
	if got := senseOf(f.exec(0, hx(t, cdbRead10), nil)); got != good {
		t.Fatalf("a device without reservation state is fenced: %s", got)
	}
	hub.fence = nil
	if got := senseOf(f.exec(0, hx(t, cdbRegister), hx(t, zero+keyA+tail))); got != good {
		t.Fatalf("REGISTER: %s", got)
	}
	hub.fence = ErrALUAUnavailable
	for _, cdb := range []string{cdbRead10, cdbWrite10, cdbReadKeys, cdbTUR} {
		var out []byte
		if cdb == cdbWrite10 {
			out = hx(t, block)
		}
		if got := senseOf(f.exec(0, hx(t, cdb), out)); got != want(ErrALUAUnavailable) {
			t.Errorf("fenced, %s: %s", cdb, got)
		}
	}
	hub.fence = nil
	f.dev.StaleSharedPR()
	if got := senseOf(f.exec(0, hx(t, cdbRead10), nil)); got != want(ErrALUATransition) {
		t.Errorf("stale: %s", got)
	}
	// A state that does not hold together is refused: the device keeps
	// refusing media access.
	bad := &SharedPRState{PRState: PRState{Reservation: &PRReservation{Type: PRWriteExclusive}}}
	if err := f.dev.LoadSharedPR(9, bad); err == nil {
		t.Error("a reservation without registrations was loaded")
	}
	if got := senseOf(f.exec(0, hx(t, cdbRead10), nil)); got != want(ErrALUATransition) {
		t.Errorf("after a bad load: %s", got)
	}
}

// TestSharedCommitFails: a change the store cannot take changes nothing
// and answers NOT READY, ASYMMETRIC ACCESS STATE TRANSITION, which
// initiators retry; REPORT CAPABILITIES reports PTPL_C and APTPL is
// taken (the store keeps the state).
func TestSharedCommitFails(t *testing.T) {
	withSharedFixtures(t)
	f := newPRFixture(t)
	f.run(t, []prStep{
		{0, cdbReportCaps, "", good, "0008 11 90"},
		{0, cdbRegister, zero + keyA + aptplTail, good, ""},
		{0, cdbReportCaps, "", good, "0008 11 91"},
	})
	f.hub.fail = errors.New("etcd unreachable")
	f.run(t, []prStep{
		{0, cdbReserve("1"), keyA + zero + tail, want(ErrALUATransition), ""},
		{1, cdbRegister, zero + keyB + tail, want(ErrALUATransition), ""},
		{0, cdbReadResv, "", good, "00000001 00000000"},
		{1, cdbReadKeys, "", good, "00000001 00000008 aaaaaaaaaaaaaaaa"},
	})
	st := f.dev.PRStatus()
	if !st.Shared || !st.Persistent || st.Revision != 1 {
		t.Errorf("status: %+v", st)
	}
}

// TestSharedSPC2Release: an SPC-2 reservation of a nexus that ends, or of
// a device server that leaves, is released through the store.
func TestSharedSPC2Release(t *testing.T) {
	withSharedFixtures(t)
	f := newPRFixture(t)
	f.run(t, []prStep{{0, cdbReserve6, "", good, ""}, {1, cdbRead10, "", conflict, ""}})
	f.dev.nexusLost(f.nexus[0])
	waitFor(t, "the SPC-2 release of a lost nexus", func() bool { return senseOf(f.as(f.nexus[1], hx(t, cdbRead10), nil)) == good })
	f.run(t, []prStep{{1, cdbReserve6, "", good, ""}, {0, cdbRead10, "", conflict, ""}})
	f.dev.ReleaseSPC2Through(func(port string) bool { return port == f.nexus[1].TargetPort })
	waitFor(t, "the SPC-2 release through a gone port", func() bool { return senseOf(f.as(f.nexus[0], hx(t, cdbRead10), nil)) == good })
}

// TestSharedAtomicToken: COMPARE AND WRITE holds the shared atomic token.
func TestSharedAtomicToken(t *testing.T) {
	withSharedFixtures(t)
	f := newPRFixture(t)
	caw := hx(t, "89 00 0000000000000000 000000 01 00 00")
	data := hx(t, strings512("00")+block)
	if got := senseOf(f.as(f.nexus[1], caw, data)); got != good {
		t.Fatalf("COMPARE AND WRITE: %s", got)
	}
	if f.hub.atomics != 1 {
		t.Errorf("the atomic token was taken %d times, want 1", f.hub.atomics)
	}
}

// strings512 repeats a hex byte for a 512-byte block.
func strings512(b string) string {
	out := make([]byte, 0, 1024)
	for range 512 {
		out = append(out, b...)
	}
	return string(out)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("not within 5s: %s", what)
		}
	}
}

// TestSharedStateJSON: the state device servers share goes through
// JSON (etcd) and comes back equal: keys and types read what they
// print.
func TestSharedStateJSON(t *testing.T) {
	want := &SharedPRState{
		PRState: PRState{APTPL: true, Generation: 7, Registrations: []PRRegistration{
			{InitiatorPort: "iqn.a,i,0x01", TargetPort: "iqn.t,t,0x0001", Key: 0xfedcba9876543210, RelTgtPortID: 0x101},
			{InitiatorPort: "iqn.b,i,0x02", TargetPort: "iqn.t,t,0x0002", Key: 1, RelTgtPortID: 0x201},
		}, Reservation: &PRReservation{Type: PRExclusiveAccessRegOnly, InitiatorPort: "iqn.a,i,0x01", TargetPort: "iqn.t,t,0x0001"}},
		SPC2:           &PRNexus{InitiatorPort: "iqn.b,i,0x02", TargetPort: "iqn.t,t,0x0002"},
		UnitAttentions: []PRUnitAttention{{PRNexus: PRNexus{InitiatorPort: "iqn.b,i,0x02", TargetPort: "iqn.t,t,0x0002"}, ASCQ: 5}},
	}
	for _, typ := range []PRType{PRWriteExclusive, PRExclusiveAccess, PRWriteExclusiveRegOnly, PRExclusiveAccessRegOnly,
		PRWriteExclusiveAllReg, PRExclusiveAccessAllReg, PRType(9)} {
		want.Reservation.Type = typ
		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got := &SharedPRState{}
		if err := json.Unmarshal(b, got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n%+v\nwant\n%+v", b, got, want)
		}
	}
	for _, bad := range []string{`{"registrations":[{"key":"12"}]}`, `{"registrations":[{"key":"0xzz"}]}`, `{"reservation":{"type":"SOMETIMES"}}`} {
		if err := json.Unmarshal([]byte(bad), &SharedPRState{}); err == nil {
			t.Errorf("%s: read without error", bad)
		}
	}
}
