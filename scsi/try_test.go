package scsi

import (
	"bytes"
	"testing"

	"github.com/scstd/scstd/vdisk"
)

// tryMem is a memBackend that also tries I/O without waiting
// (vdisk.NoWaiter), or says it would wait when wouldBlock is set.
type tryMem struct {
	*memBackend
	wouldBlock       bool
	tries, tryWrites int
}

func (m *tryMem) TryReadAt(p []byte, off int64) (int, error) {
	m.tries++
	if m.wouldBlock {
		return 0, vdisk.ErrWouldBlock
	}
	return m.ReadAt(p, off)
}

func (m *tryMem) TryWriteAt(p []byte, off int64) (int, error) {
	m.tries++
	if m.wouldBlock {
		return 0, vdisk.ErrWouldBlock
	}
	m.tryWrites++
	return m.WriteAt(p, off)
}

// newTryFixture is newFixture on a tryMem backend.
func newTryFixture(t *testing.T, cfg DeviceConfig) (*fixture, *tryMem) {
	t.Helper()
	f := newFixture(t, 64, cfg)
	m := &tryMem{memBackend: f.mem}
	f.dev = NewDevice(f.dev.cfg, m)
	f.lu = &LogicalUnit{Device: f.dev}
	f.lus = NewLUNMap(map[LUN]*LogicalUnit{0: f.lu})
	f.clearUA(t, 0)
	return f, m
}

func (f *fixture) try(cdb, out []byte) (Result, bool) {
	return TryExecute(&Command{Nexus: f.nex, LUNs: f.lus, LUN: 0, LUNValid: true,
		CDB: cdb, DataOut: out, ExpectedIn: 1 << 20})
}

// TryExecute runs what waits for nothing and gives up the rest, having
// done nothing that Execute then does differently.
func TestTryExecute(t *testing.T) {
	block := bytes.Repeat([]byte{0x5a}, 512)
	tests := []struct {
		name       string
		cfg        DeviceConfig
		wouldBlock bool
		cdb        string
		out        []byte
		ok         bool
		want       string // senseOf the result when ok
	}{
		{"read from memory", DeviceConfig{}, false, cdbRead10, nil, true, good},
		{"read(16)", DeviceConfig{}, false, "88 00 0000000000000000 00000001 00 00", nil, true, good},
		{"read that would wait", DeviceConfig{}, true, cdbRead10, nil, false, ""},
		{"write to memory", DeviceConfig{}, false, cdbWrite10, block, true, good},
		{"write that would wait", DeviceConfig{}, true, cdbWrite10, block, false, ""},
		{"write with FUA waits for the flush", DeviceConfig{}, false, "2a 08 00000000 00 0001 00", block, false, ""},
		{"write-through waits for the flush", DeviceConfig{WriteThrough: true}, false, cdbWrite10, block, false, ""},
		{"FUA with nv_cache flushes nothing", DeviceConfig{NVCache: true}, false, "2a 08 00000000 00 0001 00", block, true, good},
		{"read out of range fails at once", DeviceConfig{}, true, "28 00 00001000 00 0001 00", nil, true, want(ErrLBAOutOfRange)},
		{"write to a read-only device fails at once", DeviceConfig{ReadOnly: true}, true, cdbWrite10, block, true, want(ErrWriteProtected)},
		{"test unit ready", DeviceConfig{}, true, cdbTUR, nil, true, good},
		{"synchronize cache is not tried", DeviceConfig{}, false, "35 00 00000000 00 0000 00", nil, false, ""},
		{"compare and write is not tried", DeviceConfig{}, false, "89 00 0000000000000000 000000 01 00 00", append(make([]byte, 512), block...), false, ""},
		{"inquiry is not tried", DeviceConfig{}, false, "12 00 00 00ff 00", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, m := newTryFixture(t, tt.cfg)
			m.wouldBlock = tt.wouldBlock
			r, ok := f.try(hx(t, tt.cdb), tt.out)
			if ok != tt.ok {
				t.Fatalf("TryExecute ok = %v, want %v (%s)", ok, tt.ok, senseOf(r))
			}
			if ok {
				if got := senseOf(r); got != tt.want {
					t.Fatalf("TryExecute: %s, want %s", got, tt.want)
				}
				return
			}
			if m.tryWrites != 0 {
				t.Errorf("a command given up wrote %d times", m.tryWrites)
			}
			// What was given up runs in full with Execute.
			m.wouldBlock = false
			if got := senseOf(f.exec(0, hx(t, tt.cdb), tt.out)); got != good {
				t.Errorf("Execute after TryExecute: %s", got)
			}
		})
	}
}

// A write tried and run reaches the medium; a read returns it.
func TestTryExecuteData(t *testing.T) {
	f, m := newTryFixture(t, DeviceConfig{})
	block := bytes.Repeat([]byte{0xa5}, 512)
	if r, ok := f.try(hx(t, "2a 00 00000003 00 0001 00"), block); !ok || r.Status != Good {
		t.Fatalf("write: ok %v, %s", ok, senseOf(r))
	}
	if !bytes.Equal(m.data[3*512:4*512], block) {
		t.Fatal("the write did not reach the backend")
	}
	r, ok := f.try(hx(t, "28 00 00000003 00 0001 00"), nil)
	if !ok || !bytes.Equal(r.Data, block) {
		t.Fatalf("read: ok %v, data %x", ok, r.Data[:8])
	}
}

// A backend without vdisk.NoWaiter (blockio, a pass-through device) is
// never tried, nor is a command without a LUN map; a LUN without a
// logical unit is answered at once.
func TestTryExecuteNeedsNoWaiter(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	if _, ok := f.try(hx(t, cdbRead10), nil); ok {
		t.Error("a read from a backend that cannot try without waiting was run")
	}
	if r, ok := TryExecute(&Command{Nexus: f.nex, LUNs: f.lus, LUN: 5, LUNValid: true, CDB: hx(t, cdbRead10)}); !ok || senseOf(r) != want(ErrLUNotSupported) {
		t.Errorf("a read from a LUN without a logical unit: ok %v, %s", ok, senseOf(r))
	}
	if _, ok := TryExecute(&Command{Nexus: f.nex, CDB: hx(t, cdbRead10)}); ok {
		t.Error("a command without a LUN map was run")
	}
}

// The reservation lock is held while persistent reservations are saved
// (an fsync): a command tried without waiting gives up rather than wait
// for it, and takes no unit attention meanwhile.
func TestTryExecuteReservationLock(t *testing.T) {
	f, _ := newTryFixture(t, DeviceConfig{})
	r := &f.dev.res

	r.mu.Lock()
	r.deliver(nexusOf(f.nex), uaReservationsPreempted)
	r.mu.Unlock()
	r.mu.Lock()
	if _, ok := f.try(hx(t, cdbRead10), nil); ok {
		t.Fatal("ran while the reservation lock (unit attention queued) was held")
	}
	r.mu.Unlock()
	if res, ok := f.try(hx(t, cdbRead10), nil); !ok || senseOf(res) != want(uaReservationsPreempted) {
		t.Fatalf("after the lock: ok %v, %s; want the unit attention", ok, senseOf(res))
	}

	r.mu.Lock()
	r.reserved, r.resType = true, PRWriteExclusive
	r.setWord()
	r.mu.Unlock()
	r.mu.Lock()
	if _, ok := f.try(hx(t, cdbRead10), nil); ok {
		t.Fatal("ran while the reservation lock (reservation active) was held")
	}
	r.mu.Unlock()
	if res, ok := f.try(hx(t, cdbWrite10), bytes.Repeat([]byte{1}, 512)); !ok || res.Status != ReservationConflict {
		t.Fatalf("after the lock: ok %v, %s; want RESERVATION CONFLICT", ok, senseOf(res))
	}
}

// The path a connection's reader runs for every read allocates nothing.
func TestTryExecuteAllocs(t *testing.T) {
	f, _ := newTryFixture(t, DeviceConfig{})
	cmd := &Command{Nexus: f.nex, LUNs: f.lus, LUN: 0, LUNValid: true, CDB: hx(t, cdbRead10),
		ExpectedIn: 512, DataIn: make([]byte, 512)}
	if n := testing.AllocsPerRun(200, func() {
		if _, ok := TryExecute(cmd); !ok {
			t.Fatal("not run")
		}
	}); n > 0 {
		t.Errorf("TryExecute of a read allocates %v times", n)
	}
}

// shortTryMem is a memBackend whose tries read or write the first half of
// p and then say they would wait, as preadv2 and pwritev2 with RWF_NOWAIT
// do when the page cache holds part of the range; it records every byte
// range written.
type shortTryMem struct {
	*memBackend
	writes [][2]int64 // offset and length of each write, tried or not
}

func (m *shortTryMem) TryReadAt(p []byte, off int64) (int, error) {
	n, err := m.ReadAt(p[:len(p)/2], off)
	if err != nil {
		return n, err
	}
	return n, vdisk.ErrWouldBlock
}

func (m *shortTryMem) TryWriteAt(p []byte, off int64) (int, error) {
	n, err := m.WriteAt(p[:len(p)/2], off)
	if err != nil {
		return n, err
	}
	return n, vdisk.ErrWouldBlock
}

func (m *shortTryMem) WriteAt(p []byte, off int64) (int, error) {
	m.writes = append(m.writes, [2]int64{off, int64(len(p))})
	return m.memBackend.WriteAt(p, off)
}

// A write the backend took in part before it would have waited has
// changed the medium: it is not given up (an Execute that came later
// could answer RESERVATION CONFLICT or NOT READY for a command whose data
// is partly written) but finished and answered GOOD, each byte written
// once.
func TestTryExecuteShortWrite(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	m := &shortTryMem{memBackend: f.mem}
	f.dev = NewDevice(f.dev.cfg, m)
	f.lu = &LogicalUnit{Device: f.dev}
	f.lus = NewLUNMap(map[LUN]*LogicalUnit{0: f.lu})
	f.clearUA(t, 0)

	data := make([]byte, 4*512)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	r, ok := f.try(hx(t, "2a 00 00000002 00 0004 00"), data)
	if !ok || r.Status != Good {
		t.Fatalf("a write partly taken: ok %v, %s; want it run, GOOD", ok, senseOf(r))
	}
	if !bytes.Equal(m.data[2*512:6*512], data) {
		t.Error("the write is not on the medium")
	}
	want := [][2]int64{{2 * 512, 2 * 512}, {4 * 512, 2 * 512}}
	if len(m.writes) != len(want) || m.writes[0] != want[0] || m.writes[1] != want[1] {
		t.Errorf("writes (offset, length) %v, want %v: each byte once", m.writes, want)
	}
	// A read that ran short is given up with no data-in: Execute reads
	// it again.
	if r, ok := f.try(hx(t, "28 00 00000002 00 0004 00"), nil); ok || r.Data != nil {
		t.Errorf("a read that ran short: ok %v, %d bytes of data-in; want it given up with none", ok, len(r.Data))
	}
}
