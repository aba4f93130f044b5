package scsi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakePass is a Passthrough that records every command and answers from a
// script: a function of the CDB, or a small disk in memory by default.
type fakePass struct {
	mu      sync.Mutex
	cmds    []PassCommand // copies of what was passed (CDB and data copied)
	disk    []byte
	answer  func(c *PassCommand) error
	maxXfer int
	closed  bool
}

func newFakePass(blocks int) *fakePass {
	return &fakePass{disk: make([]byte, blocks*512), maxXfer: 1 << 20}
}

func (f *fakePass) BlockSize() uint32    { return 512 }
func (f *fakePass) MaxTransfer() int     { return f.maxXfer }
func (f *fakePass) Size() (int64, error) { return int64(len(f.disk)), nil }
func (f *fakePass) Close() error         { f.closed = true; return nil }

func (f *fakePass) Pass(c *PassCommand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, PassCommand{
		CDB: bytes.Clone(c.CDB), DataOut: bytes.Clone(c.DataOut), DataIn: make([]byte, len(c.DataIn)),
	})
	if f.answer != nil {
		return f.answer(c)
	}
	cdb := c.CDB
	switch Opcode(cdb[0]) {
	case Read10:
		lba, n := int(be32(cdb[2:6])), int(be16(cdb[7:9]))
		c.InLen = copy(c.DataIn, f.disk[lba*512:(lba+n)*512])
	case Write10:
		lba := int(be32(cdb[2:6]))
		copy(f.disk[lba*512:], c.DataOut)
	case ModeSense6:
		c.InLen = copy(c.DataIn, []byte{3, 0, 0, 0})
	case Inquiry:
		c.InLen = copy(c.DataIn, append([]byte{0, 0, 6, 2, 31, 0x10 | 0x08}, make([]byte, 30)...))
	}
	return nil
}

// last returns the last command passed, or nil.
func (f *fakePass) last() *PassCommand {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cmds) == 0 {
		return nil
	}
	return &f.cmds[len(f.cmds)-1]
}

func (f *fakePass) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cmds)
}

// newPassFixture is a fixture whose LUN 0 is a pass-through device
// served by fp (nil: offline).
func newPassFixture(t testing.TB, fp *fakePass, readOnlyLU bool) *fixture {
	t.Helper()
	f := &fixture{}
	f.dev = NewDevice(DeviceConfig{Name: "sdb", Type: TypeDisk, Passthrough: true}, nil)
	if fp != nil {
		f.dev.SetPassthrough(fp)
	}
	f.lu = &LogicalUnit{Device: f.dev, ReadOnly: readOnlyLU}
	f.lus = NewLUNMap(map[LUN]*LogicalUnit{0: f.lu})
	f.nex = NewNexus("iqn.1994-05.com.redhat:client,i,0x23d000000001", "iqn.2026-11.org.example:t1", 1, 7)
	f.clearUA(t, 0)
	return f
}

func TestPassthroughDataTransfers(t *testing.T) {
	fp := newFakePass(64)
	copy(fp.disk[512:], bytes.Repeat([]byte{0xab}, 1024))
	f := newPassFixture(t, fp, false)

	// READ(10) of 2 blocks at LBA 1 while the initiator expects 512
	// bytes: the device is asked for what the CDB says, and the whole
	// data comes back for the transport to truncate (overflow residual).
	r := Execute(&Command{Nexus: f.nex, LUNs: f.lus, LUN: 0, LUNValid: true,
		CDB: hx(t, "28 00 00000001 00 0002 00"), ExpectedIn: 512})
	if r.Status != Good || len(r.Data) != 1024 || r.Data[0] != 0xab || r.Data[1023] != 0xab {
		t.Fatalf("READ(10): %s, %d bytes", senseOf(r), len(r.Data))
	}
	if got := len(fp.last().DataIn); got != 1024 {
		t.Errorf("READ(10) passed with a %d-byte buffer, want 1024 (from the CDB)", got)
	}

	// WRITE(10) of 2 blocks with 1.5 blocks of data-out: the whole block
	// that arrived is written, with the CDB's count rewritten to 1; the
	// CDB's length is reported for the residual.
	out := bytes.Repeat([]byte{0xcd}, 768)
	r = f.exec(0, hx(t, "2a 00 00000004 00 0002 00"), out)
	if r.Status != Good || r.DataOutLen != 1024 {
		t.Fatalf("short WRITE(10): %s, DataOutLen %d", senseOf(r), r.DataOutLen)
	}
	c := fp.last()
	if !bytes.Equal(c.CDB, hx(t, "2a 00 00000004 00 0001 00")) || len(c.DataOut) != 512 {
		t.Errorf("short WRITE(10) passed as %x with %d bytes", c.CDB, len(c.DataOut))
	}
	if fp.disk[4*512] != 0xcd || fp.disk[5*512] != 0 {
		t.Error("short WRITE(10) did not write exactly the whole block that arrived")
	}

	// A vendor specific command: direction and length are the
	// initiator's.
	r = Execute(&Command{Nexus: f.nex, LUNs: f.lus, LUN: 0, LUNValid: true,
		CDB: hx(t, "c1 00 00 00 00 00"), ExpectedIn: 300})
	if r.Status != Good || len(fp.last().DataIn) != 300 {
		t.Errorf("vendor command: %s, passed with %d bytes of data-in, want 300", senseOf(r), len(fp.last().DataIn))
	}

	// Beyond the device's largest transfer: refused before it is passed.
	n := fp.count()
	r = f.exec(0, hx(t, "28 00 00000000 00 ffff 00"), nil)
	if senseOf(r) != "ILLEGAL_REQUEST asc=0x24 ascq=0x00" || fp.count() != n {
		t.Errorf("READ(10) of 32 MiB: %s, passed %d times", senseOf(r), fp.count()-n)
	}
}

func TestPassthroughStatusAndSense(t *testing.T) {
	descSense := hx(t, "72 03 11 00 00 00 00 0c | 00 0a 80 00 0000000000000010")
	tests := []struct {
		name      string
		answer    func(c *PassCommand) error
		wantState Status
		wantSense []byte
		offline   bool
	}{
		{"sense passed verbatim", func(c *PassCommand) error {
			c.Status, c.SenseLen = CheckCondition, copy(c.Sense, descSense)
			return nil
		}, CheckCondition, descSense, false},
		{"busy passed", func(c *PassCommand) error { c.Status = Busy; return nil }, Busy, nil, false},
		{"transport error as sense", func(c *PassCommand) error {
			return &SenseError{Key: AbortedCommand, ASC: 0x08, ASCQ: 0x01}
		}, CheckCondition, (&SenseError{Key: AbortedCommand, ASC: 0x08, ASCQ: 0x01}).AppendFixed(nil), false},
		{"device gone", func(c *PassCommand) error {
			return fmt.Errorf("sg: %w", syscall.ENODEV)
		}, CheckCondition, ErrNotReadyManual.AppendFixed(nil), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakePass(64)
			f := newPassFixture(t, fp, false)
			fp.answer = tc.answer
			r := f.exec(0, hx(t, "28 00 00000000 00 0001 00"), nil)
			if r.Status != tc.wantState || !bytes.Equal(r.Sense, tc.wantSense) {
				t.Fatalf("got %v sense %x, want %v sense %x", r.Status, r.Sense, tc.wantState, tc.wantSense)
			}
			if (f.dev.Offline() != nil) != tc.offline {
				t.Fatalf("device offline = %v, want %v", f.dev.Offline(), tc.offline)
			}
			if !tc.offline {
				return
			}
			// Offline: NOT READY without passing; a new Passthrough
			// brings it back.
			n := fp.count()
			if r := f.exec(0, hx(t, "00 00000000 00"), nil); senseOf(r) != want(ErrNotReadyManual) || fp.count() != n {
				t.Errorf("TEST UNIT READY while lost: %s, passed %d times", senseOf(r), fp.count()-n)
			}
			// The lost disk stays in the device's state until it is
			// replaced, and comes out drained, for its owner to close.
			fp2 := newFakePass(64)
			dr := f.dev.SetPassthrough(fp2)
			if dr.Pass != fp || dr.Backend != nil {
				t.Fatalf("drain of %+v, want the lost Passthrough", dr)
			}
			select {
			case <-dr.Done:
			default:
				t.Error("the lost Passthrough is not drained with no command in flight")
			}
			if r := f.exec(0, hx(t, "00 00000000 00"), nil); r.Status != Good || fp2.count() != 1 {
				t.Errorf("TEST UNIT READY after SetPassthrough: %s, passed %d times", senseOf(r), fp2.count())
			}
		})
	}
}

func TestPassthroughLocalCommands(t *testing.T) {
	fp := newFakePass(64)
	f := newPassFixture(t, fp, false)
	n := fp.count()

	// REPORT LUNS: the target's LUN map.
	r := f.exec(0, hx(t, "a0 00 00 000000 00000100 00 00"), nil)
	if r.Status != Good || !bytes.Equal(r.Data, hx(t, "00000008 00000000 0000000000000000")) {
		t.Errorf("REPORT LUNS: %s %x", senseOf(r), r.Data)
	}
	// SPC-2 reservations are the target's: another nexus conflicts
	// without the device hearing of it.
	if r := f.exec(0, hx(t, "16 00 00 00 00 00"), nil); r.Status != Good {
		t.Fatalf("RESERVE(6): %s", senseOf(r))
	}
	other := NewNexus("iqn.1994-05.com.redhat:other,i,0x23d000000002", "iqn.2026-11.org.example:t1", 1, 7)
	exec := func(nx *Nexus, cdb string, out []byte) Result {
		return Execute(&Command{Nexus: nx, LUNs: f.lus, LUN: 0, LUNValid: true, CDB: hx(t, cdb), DataOut: out, ExpectedIn: 4096})
	}
	exec(other, "00 00000000 00", nil) // power-on unit attention
	if r := exec(other, "28 00 00000000 00 0001 00", nil); r.Status != ReservationConflict {
		t.Errorf("READ from another nexus under RESERVE(6): %s", senseOf(r))
	}
	if r := f.exec(0, hx(t, "17 00 00 00 00 00"), nil); r.Status != Good {
		t.Errorf("RELEASE(6): %s", senseOf(r))
	}
	// Persistent reservations are the target's too: REGISTER, then READ
	// KEYS.
	param := hx(t, "0000000000000000 00000000000000aa 00000000 00 00 0000")
	if r := f.exec(0, hx(t, "5f 00 00 00 00 00000018 00"), param); r.Status != Good {
		t.Fatalf("PR OUT REGISTER: %s", senseOf(r))
	}
	if r := f.exec(0, hx(t, "5e 00 00 00000000 0100 00"), nil); r.Status != Good || !bytes.Equal(r.Data, hx(t, "00000001 00000008 00000000000000aa")) {
		t.Errorf("PR IN READ KEYS: %s %x", senseOf(r), r.Data)
	}
	if fp.count() != n {
		t.Errorf("%d local commands reached the device", fp.count()-n)
	}

	// The target's own unit attentions: REQUEST SENSE reports one
	// without asking the device.
	f.nex.ReportedLUNsChanged()
	if r := f.exec(0, hx(t, "03 00 00 00 ff 00"), nil); r.Status != Good || len(r.Data) < 14 || r.Data[12] != 0x3f || r.Data[13] != 0x0e {
		t.Errorf("REQUEST SENSE with REPORTED LUNS DATA HAS CHANGED pending: %s %x", senseOf(r), r.Data)
	}
	if fp.count() != n {
		t.Error("REQUEST SENSE with a target unit attention pending reached the device")
	}
	if r := f.exec(0, hx(t, "03 00 00 00 ff 00"), nil); r.Status != Good || fp.count() != n+1 {
		t.Errorf("REQUEST SENSE without one: %s, passed %d times", senseOf(r), fp.count()-n)
	}
}

func TestPassthroughDeviceIdentification(t *testing.T) {
	fp := newFakePass(64)
	// The device's page: an NAA designator of the LU, a relative target
	// port designator of its own port (association 01b).
	devPage := hx(t, "00 83 0014 | 01 03 00 08 6001405abcdef012 | 61 94 00 04 00000003")
	fp.answer = func(c *PassCommand) error {
		if Opcode(c.CDB[0]) == Inquiry && c.CDB[1]&1 != 0 && c.CDB[2] == 0x83 {
			c.InLen = copy(c.DataIn, devPage)
		}
		return nil
	}
	f := newPassFixture(t, fp, false)
	r := f.exec(0, hx(t, "12 01 83 0100 00"), nil)
	if r.Status != Good {
		t.Fatalf("INQUIRY VPD 83h: %s", senseOf(r))
	}
	b := r.Data
	if int(binary.BigEndian.Uint16(b[2:4]))+4 != len(b) {
		t.Fatalf("page length %d for %d bytes", binary.BigEndian.Uint16(b[2:4]), len(b))
	}
	if !bytes.Contains(b, hx(t, "01 03 00 08 6001405abcdef012")) {
		t.Errorf("the device's NAA designator is missing: %x", b)
	}
	if bytes.Contains(b, hx(t, "61 94 00 04 00000003")) {
		t.Errorf("the device's own relative port designator is still there: %x", b)
	}
	if !bytes.Contains(b, hx(t, "51 94 00 04 00000007")) {
		t.Errorf("the target's relative port designator (7) is missing: %x", b)
	}
	// Allocation length truncates.
	if r := f.exec(0, hx(t, "12 01 83 0008 00"), nil); len(r.Data) != 8 {
		t.Errorf("INQUIRY VPD 83h with allocation length 8: %d bytes", len(r.Data))
	}
}

func TestPassthroughReadOnly(t *testing.T) {
	fp := newFakePass(64)
	f := newPassFixture(t, fp, true)
	n := fp.count()
	for _, cdb := range []string{
		"2a 00 00000000 00 0001 00",             // WRITE(10)
		"42 00 00000000 00 0018 00",             // UNMAP
		"c1 00 00 00 00 00",                     // unknown: could write
		"04 00 00 00 00 00",                     // FORMAT UNIT
		"93 00 0000000000000000 00000001 00 00", // WRITE SAME(16)
	} {
		if r := f.exec(0, hx(t, cdb), make([]byte, 512)); senseOf(r) != want(ErrWriteProtected) {
			t.Errorf("%s on a read-only LU: %s", cdb, senseOf(r))
		}
	}
	if fp.count() != n {
		t.Errorf("%d refused writes reached the device", fp.count()-n)
	}
	if r := f.exec(0, hx(t, "28 00 00000000 00 0001 00"), nil); r.Status != Good {
		t.Errorf("READ(10) on a read-only LU: %s", senseOf(r))
	}
	if r := f.exec(0, hx(t, "1a 00 3f 00 ff 00"), nil); r.Status != Good || r.Data[2]&0x80 == 0 {
		t.Errorf("MODE SENSE(6) on a read-only LU: %s %x, want WP set", senseOf(r), r.Data)
	}
}

func TestPassthroughOffline(t *testing.T) {
	f := newPassFixture(t, nil, false)
	if r := f.exec(0, hx(t, "12 00 00 0024 00"), nil); r.Status != Good || r.Data[0] != 0x20 {
		t.Errorf("standard INQUIRY of an offline pass-through device: %s %x, want qualifier 001b", senseOf(r), r.Data)
	}
	for _, cdb := range []string{"00 00000000 00", "12 01 83 0100 00", "28 00 00000000 00 0001 00"} {
		if r := f.exec(0, hx(t, cdb), nil); senseOf(r) != want(ErrNotReadyManual) {
			t.Errorf("%s offline: %s", cdb, senseOf(r))
		}
	}
	if r := f.exec(0, hx(t, "03 00 00 00 12 00"), nil); r.Status != Good || r.Data[2] != 0x02 {
		t.Errorf("REQUEST SENSE offline: %s %x, want NOT READY in the data", senseOf(r), r.Data)
	}
}

func TestPassthroughSpreadsDeviceUnitAttentions(t *testing.T) {
	fp := newFakePass(64)
	f := newPassFixture(t, fp, false)
	other := NewNexus("iqn.1994-05.com.redhat:other,i,0x23d000000002", "iqn.2026-11.org.example:t1", 1, 7)
	exec := func(nx *Nexus, cdb string) Result {
		return Execute(&Command{Nexus: nx, LUNs: f.lus, LUN: 0, LUNValid: true, CDB: hx(t, cdb), ExpectedIn: 4096})
	}
	exec(other, "00 00000000 00") // power-on unit attention
	capacityUA := (&SenseError{Key: UnitAttention, ASC: 0x2a, ASCQ: 0x09}).AppendFixed(nil)
	fp.answer = func(c *PassCommand) error {
		c.Status, c.SenseLen = CheckCondition, copy(c.Sense, capacityUA)
		return nil
	}
	if r := exec(f.nex, "00 00000000 00"); senseOf(r) != "UNIT_ATTENTION asc=0x2a ascq=0x09" {
		t.Fatalf("device's CAPACITY DATA HAS CHANGED: %s", senseOf(r))
	}
	fp.answer = nil
	n := fp.count()
	if r := exec(other, "00 00000000 00"); senseOf(r) != "UNIT_ATTENTION asc=0x2a ascq=0x09" || fp.count() != n {
		t.Errorf("the other nexus: %s (passed %d times), want the capacity change from the target", senseOf(r), fp.count()-n)
	}
	if r := exec(f.nex, "00 00000000 00"); r.Status != Good {
		t.Errorf("the nexus the device told: %s, want no second report", senseOf(r))
	}
}

func TestPassRuleTransfer(t *testing.T) {
	tests := []struct {
		cdb   string
		dir   xferDir
		n     uint64
		known bool
	}{
		{"08 00 00 00 00 00", xferIn, 256 * 512, true},                  // READ(6), 0 = 256 blocks
		{"28 00 00000000 00 0008 00", xferIn, 4096, true},               // READ(10)
		{"88 00 0000000000000000 00000010 00 00", xferIn, 8192, true},   // READ(16)
		{"2f 00 00000000 00 0008 00", xferNone, 0, true},                // VERIFY(10) BYTCHK 0
		{"2f 02 00000000 00 0008 00", xferOut, 4096, true},              // VERIFY(10) BYTCHK 01b
		{"2f 06 00000000 00 0008 00", xferOut, 512, true},               // VERIFY(10) BYTCHK 11b
		{"89 00 0000000000000000 000000 04 00 00", xferOut, 4096, true}, // COMPARE AND WRITE, 4 blocks twice
		{"93 00 0000000000000000 00000100 00 00", xferOut, 512, true},   // WRITE SAME(16): one block
		{"93 01 0000000000000000 00000100 00 00", xferNone, 0, true},    // WRITE SAME(16) NDOB
		{"12 01 83 0200 00", xferIn, 0x200, true},                       // INQUIRY
		{"25 00 00000000 00 00 00 00", xferIn, 8, true},                 // READ CAPACITY(10)
		{"9e 10 0000000000000000 00000020 00 00", xferIn, 32, true},     // READ CAPACITY(16)
		{"15 10 00 00 18 00", xferOut, 24, true},                        // MODE SELECT(6)
		{"00 00 00 00 00 00", xferNone, 0, true},                        // TEST UNIT READY
		{"04 10 00 00 00 00", xferNone, 0, false},                       // FORMAT UNIT: the initiator's
		{"c1 00 00 00 00 00", xferNone, 0, false},                       // vendor specific
	}
	for _, tc := range tests {
		cdb := hx(t, tc.cdb)
		dir, n, known := passRules[cdb[0]].transfer(cdb, 512)
		if dir != tc.dir || n != tc.n || known != tc.known {
			t.Errorf("%s: %v %d %v, want %v %d %v", tc.cdb, dir, n, known, tc.dir, tc.n, tc.known)
		}
	}
}

func TestPassthroughBlockLimits(t *testing.T) {
	fp := newFakePass(64)
	fp.maxXfer = 64 << 10
	fp.answer = func(c *PassCommand) error {
		b := make([]byte, 64)
		b[1], b[3] = 0xb0, 0x3c
		binary.BigEndian.PutUint32(b[8:], 0)      // MAXIMUM TRANSFER LENGTH: not reported
		binary.BigEndian.PutUint32(b[12:], 65536) // OPTIMAL TRANSFER LENGTH
		c.InLen = copy(c.DataIn, b)
		return nil
	}
	f := newPassFixture(t, fp, false)
	r := f.exec(0, hx(t, "12 01 b0 0040 00"), nil)
	if r.Status != Good || be32(r.Data[8:]) != 128 || be32(r.Data[12:]) != 128 {
		t.Errorf("Block Limits: %s, maximum %d optimal %d blocks, want 128 (64 KiB of 512)", senseOf(r), be32(r.Data[8:]), be32(r.Data[12:]))
	}
	// A 10-byte CDB reaches the device as 10 bytes, not the 16 of the
	// iSCSI CDB field.
	f.exec(0, hx(t, "28 00 00000000 00 0001 00 000000000000"), nil)
	if n := len(fp.last().CDB); n != 10 {
		t.Errorf("READ(10) passed as a %d-byte CDB", n)
	}
}

// Data-in is cut to the length INQUIRY and MODE SENSE data gives itself,
// for host adapters that report no residual.
func TestPassthroughTrimsSelfDescribedData(t *testing.T) {
	fp := newFakePass(64)
	fp.answer = func(c *PassCommand) error {
		clear(c.DataIn)
		switch Opcode(c.CDB[0]) {
		case Inquiry:
			if c.CDB[1]&1 != 0 {
				copy(c.DataIn, []byte{0, 0xb1, 0, 0x3c})
			} else {
				copy(c.DataIn, []byte{0, 0, 6, 2, 31})
			}
		case ModeSense6:
			copy(c.DataIn, []byte{11, 0, 0, 8})
		case ModeSense10:
			copy(c.DataIn, []byte{0, 14, 0, 0})
		}
		c.InLen = len(c.DataIn) // no residual reported
		return nil
	}
	f := newPassFixture(t, fp, false)
	for cdb, want := range map[string]int{
		"12 00 00 00ff 00":              36,
		"12 01 b1 00ff 00":              64,
		"12 01 b1 0010 00":              16,
		"1a 00 3f 00 ff 00":             12,
		"5a 00 3f 00 00 00 00 00ff 00 ": 16,
	} {
		if r := f.exec(0, hx(t, cdb), nil); r.Status != Good || len(r.Data) != want {
			t.Errorf("%s: %s, %d bytes, want %d", cdb, senseOf(r), len(r.Data), want)
		}
	}
}

// A command inside the disk holds a reference on it: the Passthrough a
// device stops serving from drains when that command completes, and new
// commands go to the new one.
func TestPassthroughDrainsAfterLastCommand(t *testing.T) {
	fp := newFakePass(64)
	f := newPassFixture(t, fp, false)
	entered, release := make(chan struct{}), make(chan struct{})
	fp.answer = func(c *PassCommand) error {
		close(entered)
		<-release
		c.Status = Good
		return nil
	}
	done := make(chan Result)
	go func() { done <- f.exec(0, hx(t, "00 00000000 00"), nil) }()
	<-entered
	fp2 := newFakePass(64)
	dr := f.dev.SetPassthrough(fp2)
	if dr.Pass != fp {
		t.Fatalf("drain of %+v", dr)
	}
	if r := f.exec(0, hx(t, "00 00000000 00"), nil); r.Status != Good || fp2.count() != 1 {
		t.Errorf("TEST UNIT READY after the swap: %s, %d passed to the new disk", senseOf(r), fp2.count())
	}
	select {
	case <-dr.Done:
		t.Fatal("drained while a command is inside the old disk")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if r := <-done; r.Status != Good {
		t.Fatalf("the command across the swap: %s", senseOf(r))
	}
	select {
	case <-dr.Done:
	case <-time.After(5 * time.Second):
		t.Fatal("not drained after the last command completed")
	}
	if dr := f.dev.SetOffline(nil); dr.Pass != fp2 {
		t.Errorf("SetOffline drained %+v, want the serving Passthrough", dr)
	}
}

// closingPass counts commands passed to it after Close.
type closingPass struct {
	*fakePass
	closed  atomic.Bool
	lateUse *atomic.Int64
}

func (c *closingPass) Pass(p *PassCommand) error {
	if c.closed.Load() {
		c.lateUse.Add(1)
	}
	p.Status = Good
	if c.closed.Load() {
		c.lateUse.Add(1)
	}
	return nil
}

func (c *closingPass) Close() error { c.closed.Store(true); return nil }

// Commands race Passthrough swaps: no disk gets a command after its
// drain said it could be closed.
func TestPassthroughDrainRace(t *testing.T) {
	var late atomic.Int64
	newPass := func() *closingPass { return &closingPass{fakePass: newFakePass(1), lateUse: &late} }
	d := NewDevice(DeviceConfig{Name: "sdb", Type: TypeDisk, Passthrough: true}, nil)
	d.SetPassthrough(newPass())
	raceSwaps(d, Command{CDB: []byte{0, 0, 0, 0, 0, 0}}, func() {
		dr := d.SetPassthrough(newPass())
		<-dr.Done
		dr.Close()
	})
	if n := late.Load(); n != 0 {
		t.Fatalf("%d commands passed to a disk after its drain", n)
	}
}
