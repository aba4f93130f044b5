package scsi

import (
	"bytes"
	"testing"

	"github.com/scstd/scstd/vdisk"
)

// lendMem is a memBackend that lends its bytes (vdisk.Lender) unless
// refuse is set, counting the loans out.
type lendMem struct {
	*memBackend
	refuse bool
	out    int
}

func (m *lendMem) LendAt(off int64, n int) ([]byte, vdisk.Loan, bool) {
	if m.refuse {
		return nil, nil, false
	}
	m.out++
	return m.data[off : off+int64(n)], memLoan{m}, true
}

type memLoan struct{ m *lendMem }

func (l memLoan) Return() { l.m.out-- }

// loanBuffers is a transport's DataInBuffers that takes loans (unless
// digests), holding the last.
type loanBuffers struct {
	digests bool
	held    vdisk.Loan
}

func (b *loanBuffers) DataInBuffer(n int) []byte { return nil }
func (b *loanBuffers) TakesLoans() bool          { return !b.digests }
func (b *loanBuffers) HoldLoan(l vdisk.Loan)     { b.held = l }

// A READ of LendMin bytes or more returns the backend's lent bytes and
// hands the loan to the transport; smaller reads, transports that read
// the data (digests) and backends that refuse get a copy.
func TestReadLendsLargeReads(t *testing.T) {
	for _, c := range []struct {
		name            string
		blocks          int
		digests, refuse bool
		lent            bool
	}{
		{"64 KiB", vdisk.LendMin / 512, false, false, true},
		{"1 MiB", 2048, false, false, true},
		{"below LendMin", vdisk.LendMin/512 - 1, false, false, false},
		{"data digests", 2048, true, false, false},
		{"backend refuses", 2048, false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 4096, DeviceConfig{})
			for i := range f.mem.data {
				f.mem.data[i] = byte(i * 13 >> 9)
			}
			be := &lendMem{memBackend: f.mem, refuse: c.refuse}
			dev := NewDevice(DeviceConfig{Name: "lend", BlockSize: 512}, be)
			lus := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: dev}})
			bufs := &loanBuffers{digests: c.digests}
			cdb := []byte{0x28, 0, 0, 0, 0, 8, 0, byte(c.blocks >> 8), byte(c.blocks), 0}
			var r Result
			for range 3 { // past the power-on unit attention
				r = Execute(&Command{Nexus: f.nex, LUNs: lus, LUN: 0, LUNValid: true, CDB: cdb,
					ExpectedIn: uint32(c.blocks * 512), Buffers: bufs})
				if r.Status == Good {
					break
				}
			}
			want := f.mem.data[8*512 : (8+c.blocks)*512]
			if r.Status != Good || !bytes.Equal(r.Data, want) {
				t.Fatalf("READ(10): %s, %d bytes, equal %v", senseOf(r), len(r.Data), bytes.Equal(r.Data, want))
			}
			if lent := &r.Data[0] == &want[0]; lent != c.lent {
				t.Errorf("data lent %v, want %v", lent, c.lent)
			}
			if (bufs.held != nil) != c.lent || be.out != btoi(c.lent) {
				t.Errorf("transport holds %v, %d loans out; want lent %v", bufs.held, be.out, c.lent)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
