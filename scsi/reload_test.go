package scsi

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lunMapFixture is two devices and a nexus that has addressed LUN 0 (d0)
// and LUN 1 (d1) and consumed their power-on unit attentions.
type lunMapFixture struct {
	d0, d1, d2 *Device
	nex        *Nexus
	cur        *LUNMap
}

func newLUNMapFixture(t *testing.T) *lunMapFixture {
	t.Helper()
	f := &lunMapFixture{
		d0:  NewDevice(DeviceConfig{Name: "d0"}, newMem(64*512)),
		d1:  NewDevice(DeviceConfig{Name: "d1"}, newMem(64*512)),
		d2:  NewDevice(DeviceConfig{Name: "d2"}, newMem(64*512)),
		nex: NewNexus("iqn.x,i,0x1", "iqn.t", 1, 1),
	}
	f.cur = NewLUNMap(map[LUN]*LogicalUnit{0: {Device: f.d0}, 1: {Device: f.d1}})
	f.run(t, f.cur, []step{
		{uaTUR, 0, want(uaPowerOnReset)},
		{uaTUR, 1, want(uaPowerOnReset)},
		{uaTUR, 0, "GOOD"},
	})
	return f
}

func (f *lunMapFixture) run(t *testing.T, m *LUNMap, steps []step) {
	t.Helper()
	for i, s := range steps {
		r := Execute(&Command{Nexus: f.nex, LUNs: m, LUN: s.lun, LUNValid: true, CDB: hx(t, s.cdb), ExpectedIn: 4096})
		if got := senseOf(r); got != s.want {
			t.Fatalf("step %d (%s on LUN %d): got %s, want %s", i, s.cdb, s.lun, got, s.want)
		}
	}
}

func TestLUNChangeSwap(t *testing.T) {
	f := newLUNMapFixture(t)
	next := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: f.d2}, 1: {Device: f.d1}})
	f.nex.PostLUNChange(LUNChange{From: f.cur, Swapped: []LUN{0}})
	// Commands still on the old map see nothing yet.
	f.run(t, f.cur, []step{{uaTUR, 0, "GOOD"}})
	// Through the new map: INQUIRY DATA HAS CHANGED on the swapped LUN,
	// then REPORTED LUNS DATA HAS CHANGED; never POWER ON.
	f.run(t, next, []step{
		{uaInquiry, 0, "GOOD"},
		{uaTUR, 0, want(uaInquiryChanged)},
		{uaTUR, 0, want(uaReportedLUNsChange)},
		{uaTUR, 0, "GOOD"},
		{uaTUR, 1, want(uaReportedLUNsChange)},
		{uaTUR, 1, "GOOD"},
	})
}

func TestLUNChangeAddedReportsNoPowerOn(t *testing.T) {
	f := newLUNMapFixture(t)
	next := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: f.d0}, 1: {Device: f.d1}, 5: {Device: f.d2}})
	f.nex.PostLUNChange(LUNChange{From: f.cur, Added: []LUN{5}})
	f.run(t, next, []step{
		{uaTUR, 5, want(uaReportedLUNsChange)},
		{uaTUR, 5, "GOOD"},
		{uaReportLUNs, 0, "GOOD"}, // clears it on LUN 0 and 1
		{uaTUR, 0, "GOOD"},
		{uaTUR, 1, "GOOD"},
	})
	// Removed again, then added back: still no power-on.
	again := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: f.d0}, 1: {Device: f.d1}})
	f.nex.PostLUNChange(LUNChange{From: next, Removed: []LUN{5}})
	f.run(t, again, []step{{uaTUR, 0, want(uaReportedLUNsChange)}, {uaReportLUNs, 0, "GOOD"}})
	f.nex.PostLUNChange(LUNChange{From: again, Added: []LUN{5}})
	f.run(t, next, []step{{uaTUR, 5, want(uaReportedLUNsChange)}, {uaTUR, 5, "GOOD"}})
}

func TestLUNChangesApplyInOrder(t *testing.T) {
	f := newLUNMapFixture(t)
	m1 := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: f.d2}, 1: {Device: f.d1}})
	m2 := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: f.d2}, 1: {Device: f.d0}})
	f.nex.PostLUNChange(LUNChange{From: f.cur, Swapped: []LUN{0}})
	f.nex.PostLUNChange(LUNChange{From: m1, Swapped: []LUN{1}})
	// A command on m1 applies the first change only.
	f.run(t, m1, []step{{uaTUR, 1, want(uaReportedLUNsChange)}, {uaReportLUNs, 1, "GOOD"}})
	// The next map applies the second.
	f.run(t, m2, []step{
		{uaTUR, 1, want(uaInquiryChanged)},
		{uaTUR, 0, want(uaInquiryChanged)},
		{uaTUR, 0, want(uaReportedLUNsChange)},
		{uaTUR, 1, want(uaReportedLUNsChange)},
		{uaTUR, 1, "GOOD"},
	})
}

func TestUnannouncedSwapIsInquiryChanged(t *testing.T) {
	f := newLUNMapFixture(t)
	next := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: f.d2}, 1: {Device: f.d1}})
	f.run(t, next, []step{{uaTUR, 0, want(uaInquiryChanged)}, {uaTUR, 0, "GOOD"}})
}

func TestSwapOfUnaddressedLUNKeepsPowerOn(t *testing.T) {
	d0, d1 := NewDevice(DeviceConfig{Name: "d0"}, newMem(64*512)), NewDevice(DeviceConfig{Name: "d1"}, newMem(64*512))
	n := NewNexus("iqn.x,i,0x1", "iqn.t", 1, 1)
	m := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: d0}})
	next := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: d1}})
	n.PostLUNChange(LUNChange{From: m, Swapped: []LUN{0}})
	f := &lunMapFixture{nex: n}
	f.run(t, next, []step{{uaTUR, 0, want(uaPowerOnReset)}, {uaTUR, 0, "GOOD"}})
}

// slowMem is a backend whose reads wait for release, and which records
// when it is closed.
type slowMem struct {
	*memBackend
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	closed  time.Time
}

func (s *slowMem) ReadAt(p []byte, off int64) (int, error) {
	s.started <- struct{}{}
	<-s.release
	return s.memBackend.ReadAt(p, off)
}

func (s *slowMem) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed.IsZero() {
		panic("closed twice")
	}
	s.closed = time.Now()
	return nil
}

func TestRetiredBackendDrainsAfterLastCommand(t *testing.T) {
	slow := &slowMem{memBackend: newMem(64 * 512), started: make(chan struct{}), release: make(chan struct{})}
	d := NewDevice(DeviceConfig{Name: "d"}, slow)
	m := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: d}})
	n := NewNexus("iqn.x,i,0x1", "iqn.t", 1, 1)
	f := &lunMapFixture{nex: n}
	f.run(t, m, []step{{uaTUR, 0, want(uaPowerOnReset)}})

	done := make(chan Result)
	go func() {
		done <- Execute(&Command{Nexus: n, LUNs: m, LUN: 0, LUNValid: true, CDB: hx(t, "28 00 00000000 00 0001 00"), ExpectedIn: 512})
	}()
	<-slow.started
	dr := d.SetOffline(nil)
	if dr.Backend != slow {
		t.Fatalf("drain of %v", dr.Backend)
	}
	select {
	case <-dr.Done:
		t.Fatal("drained while a READ is inside the backend")
	case <-time.After(50 * time.Millisecond):
	}
	close(slow.release)
	if r := <-done; r.Status != Good {
		t.Fatalf("READ across the swap: %s", senseOf(r))
	}
	select {
	case <-dr.Done:
	case <-time.After(5 * time.Second):
		t.Fatal("not drained after the last command completed")
	}
	// The device is offline now: new commands do not take the old backend.
	f.run(t, m, []step{{"28 00 00000000 00 0001 00", 0, want(ErrNotReadyManual)}})
}

// closingMem fails a test when it is read after Close.
type closingMem struct {
	*memBackend
	closed  atomic.Bool
	lateUse *atomic.Int64
}

func (c *closingMem) ReadAt(p []byte, off int64) (int, error) {
	if c.closed.Load() {
		c.lateUse.Add(1)
	}
	n, err := c.memBackend.ReadAt(p, off)
	if c.closed.Load() {
		c.lateUse.Add(1)
	}
	return n, err
}

func (c *closingMem) Close() error { c.closed.Store(true); return nil }

func TestDrainRace(t *testing.T) {
	// Commands race backend swaps: no backend is read after its drain
	// said it could be closed.
	var late atomic.Int64
	newBackend := func() *closingMem { return &closingMem{memBackend: newMem(64 * 512), lateUse: &late} }
	d := NewDevice(DeviceConfig{Name: "d"}, newBackend())
	raceSwaps(d, Command{CDB: []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, ExpectedIn: 512}, func() {
		dr := d.SetBackend(newBackend())
		<-dr.Done
		dr.Backend.Close()
	})
	if n := late.Load(); n != 0 {
		t.Fatalf("%d reads of a backend after its drain", n)
	}
}

// raceSwaps runs cmd on LUN 0 (device d) from four nexuses while swap
// runs 300 times, and returns once the commands have stopped.
func raceSwaps(d *Device, cmd Command, swap func()) {
	m := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: d}})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		n := NewNexus("iqn.x,i,0x"+string(rune('1'+g)), "iqn.t", 1, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := cmd
				c.Nexus, c.LUNs, c.LUN, c.LUNValid = n, m, 0, true
				Execute(&c)
			}
		}()
	}
	for range 300 {
		swap()
	}
	close(stop)
	wg.Wait()
}

// TestStateChannelMadeOnRetire: a device serving from storage holds no
// drain channel until the storage is retired (10,000 devices held
// 10,000 channels that only a reload replacing their storage uses);
// retired without commands, the drain is done at once.
func TestStateChannelMadeOnRetire(t *testing.T) {
	d := NewDevice(DeviceConfig{Name: "d"}, newMem(64*512))
	if st := d.state.Load(); st.idle != nil {
		t.Error("a serving state made its drain channel before it was retired")
	}
	dr := d.SetOffline(nil)
	if dr.Done == nil {
		t.Fatal("a retired state gave no drain channel")
	}
	select {
	case <-dr.Done:
	default:
		t.Error("a state retired without commands is not drained")
	}
}
