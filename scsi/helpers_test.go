package scsi

import (
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// memBackend is a vdisk.Backend in memory, with failure injection.
type memBackend struct {
	mu       sync.Mutex
	data     []byte
	syncs    int
	failRead error
	failWrit error
	failSync error
	failSize error
}

func newMem(size int) *memBackend { return &memBackend{data: make([]byte, size)} }

func (m *memBackend) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failRead != nil {
		return 0, m.failRead
	}
	if off >= int64(len(m.data)) {
		return 0, errors.New("EOF")
	}
	n := copy(p, m.data[off:])
	return n, nil
}

func (m *memBackend) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWrit != nil {
		return 0, m.failWrit
	}
	if off+int64(len(p)) > int64(len(m.data)) {
		return 0, syscall.ENOSPC
	}
	return copy(m.data[off:], p), nil
}

func (m *memBackend) Size() (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSize != nil {
		return 0, m.failSize
	}
	return int64(len(m.data)), nil
}

func (m *memBackend) Sync() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.syncs++
	return m.failSync
}

func (m *memBackend) Close() error { return nil }

func (m *memBackend) resize(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := make([]byte, n)
	copy(d, m.data)
	m.data = d
}

// unmapMem is a memBackend that can deallocate (zero) ranges.
type unmapMem struct{ *memBackend }

func (u unmapMem) Unmap(off, length int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.data[off : off+length])
	return nil
}

// hx decodes a hex string that may contain spaces and '|' separators.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// fixture is one device at LUN 0 of a map, seen through one nexus whose
// power-on unit attention has been consumed.
type fixture struct {
	mem *memBackend
	dev *Device
	lus *LUNMap
	nex *Nexus
	lu  *LogicalUnit
}

func newFixture(t testing.TB, blocks int, cfg DeviceConfig) *fixture {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "disk1"
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 512
	}
	f := &fixture{mem: newMem(blocks * int(cfg.BlockSize))}
	f.dev = NewDevice(cfg, f.mem)
	f.lu = &LogicalUnit{Device: f.dev}
	f.lus = NewLUNMap(map[LUN]*LogicalUnit{0: f.lu})
	f.nex = NewNexus("iqn.1994-05.com.redhat:client,i,0x23d000000001", "iqn.2026-11.org.example:t1", 1, 1)
	f.clearUA(t, 0)
	return f
}

// clearUA consumes the pending unit attentions of lun.
func (f *fixture) clearUA(t testing.TB, lun LUN) {
	t.Helper()
	for i := 0; i < 10; i++ {
		r := f.exec(lun, hx(t, "00 00000000 00"), nil)
		if r.Status == Good || len(r.Sense) < 3 || SenseKey(r.Sense[2]) != UnitAttention {
			return
		}
	}
	t.Fatal("unit attentions do not clear")
}

func (f *fixture) exec(lun LUN, cdb, out []byte) Result {
	return Execute(&Command{Nexus: f.nex, LUNs: f.lus, LUN: lun, LUNValid: true,
		CDB: cdb, DataOut: out, ExpectedIn: 1 << 20})
}

// senseOf returns key/asc/ascq of a result ("GOOD" when good).
func senseOf(r Result) string {
	if r.Status != CheckCondition {
		return r.Status.String()
	}
	if len(r.Sense) < 14 {
		return "short sense"
	}
	e := SenseError{Key: SenseKey(r.Sense[2] & 0xf), ASC: r.Sense[12], ASCQ: r.Sense[13]}
	return e.Error()[len("scsi: "):]
}

// want builds the senseOf string of a sense condition.
func want(e *SenseError) string { return e.Error()[len("scsi: "):] }
