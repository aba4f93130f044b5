package scsi

import (
	"bytes"
	"encoding/binary"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sanitizeParam builds an OVERWRITE parameter list: byte 0, the
// INITIALIZATION PATTERN LENGTH field and the pattern.
func sanitizeParam(b0 byte, ipLen int, pattern []byte) []byte {
	p := []byte{b0, 0, byte(ipLen >> 8), byte(ipLen)}
	return append(p, pattern...)
}

// sanitizeCDB builds a SANITIZE CDB with byte 1 and PARAMETER LIST LENGTH.
func sanitizeCDB(b1 byte, plen int) []byte {
	return []byte{0x48, b1, 0, 0, 0, 0, 0, byte(plen >> 8), byte(plen), 0}
}

func TestSanitizeChecks(t *testing.T) {
	full := bytes.Repeat([]byte{0xaa}, 512)
	cases := []struct {
		name string
		cdb  []byte
		out  []byte
		want string
	}{
		{"overwrite, no parameters", sanitizeCDB(0x01, 0), nil, want(invalidField(7, -1))},
		{"overwrite, 4 bytes of parameters", sanitizeCDB(0x01, 4), sanitizeParam(1, 0, nil), want(invalidField(7, -1))},
		{"overwrite, block length + 5", sanitizeCDB(0x01, 517), make([]byte, 520), want(invalidField(7, -1))},
		{"overwrite count 0", sanitizeCDB(0x01, 516), sanitizeParam(0, 512, full), want(invalidParam(0, 4))},
		{"pattern length 0", sanitizeCDB(0x01, 516), sanitizeParam(1, 0, full), want(invalidParam(2, -1))},
		{"pattern longer than a block", sanitizeCDB(0x01, 516), sanitizeParam(1, 516, full), want(invalidParam(2, -1))},
		{"pattern longer than the list", sanitizeCDB(0x01, 8), sanitizeParam(1, 5, full[:4]), want(invalidParam(2, -1))},
		{"TEST field", sanitizeCDB(0x01, 8), sanitizeParam(0x21, 4, full[:4]), want(invalidParam(0, 6))},
		{"short data-out", sanitizeCDB(0x01, 516), sanitizeParam(1, 512, full[:10]), want(ErrParamListLength)},
		{"block erase with parameters", sanitizeCDB(0x02, 8), make([]byte, 8), want(invalidField(7, -1))},
		{"exit failure mode with parameters", sanitizeCDB(0x1f, 8), make([]byte, 8), want(invalidField(7, -1))},
		{"exit failure mode outside failure mode", sanitizeCDB(0x1f, 0), nil, want(errCommandSequence)},
		{"reserved bit in byte 1", sanitizeCDB(0x42, 0), nil, want(invalidField(1, 6))},
		{"reserved byte 4", []byte{0x48, 0x02, 0, 0, 4, 0, 0, 0, 0, 0}, nil, want(invalidField(4, -1))},
		{"crypto erase", sanitizeCDB(0x03, 0), nil, want(invalidField(1, 4))},
		{"service action 0", sanitizeCDB(0x00, 0), nil, want(invalidField(1, 4))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 64, DeviceConfig{})
			f.mem.data[0] = 0x5a
			r := f.exec(0, c.cdb, c.out)
			if got := senseOf(r); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			if f.mem.data[0] != 0x5a {
				t.Fatal("a refused SANITIZE changed the medium")
			}
		})
	}
}

func TestSanitizeOverwrite(t *testing.T) {
	cases := []struct {
		name    string
		b0      byte
		pattern []byte
		block   []byte // every block afterwards
	}{
		{"one full block", 0x01, bytes.Repeat([]byte{0xaa}, 512), bytes.Repeat([]byte{0xaa}, 512)},
		{"half a block, repeated", 0x01, bytes.Repeat([]byte{0x11, 0x22}, 128), bytes.Repeat([]byte{0x11, 0x22}, 256)},
		{"4 bytes, 3 passes with INVERT", 0x83, []byte{1, 2, 3, 4}, bytes.Repeat([]byte{1, 2, 3, 4}, 128)},
		{"zero pattern", 0x01, []byte{0}, make([]byte, 512)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 64, DeviceConfig{})
			for i := range f.mem.data {
				f.mem.data[i] = byte(i)
			}
			p := sanitizeParam(c.b0, len(c.pattern), c.pattern)
			if r := f.exec(0, sanitizeCDB(0x01, len(p)), p); r.Status != Good {
				t.Fatalf("SANITIZE: %s", senseOf(r))
			}
			for lba := 0; lba < 64; lba++ {
				if got := f.mem.data[lba*512 : (lba+1)*512]; !bytes.Equal(got, c.block) {
					t.Fatalf("block %d: % x...", lba, got[:8])
				}
			}
			if f.mem.syncs == 0 {
				t.Fatal("the overwrite was not flushed")
			}
		})
	}
}

func TestFillPatternInvert(t *testing.T) {
	buf := make([]byte, 8)
	fillPattern(buf, 4, []byte{0x0f, 0xf0, 0x01}, true)
	if w := []byte{0xf0, 0x0f, 0xfe, 0xf0, 0xf0, 0x0f, 0xfe, 0xf0}; !bytes.Equal(buf, w) {
		t.Fatalf("got % x, want % x", buf, w)
	}
}

func TestSanitizeBlockErase(t *testing.T) {
	for _, thin := range []bool{false, true} {
		f := newFixture(t, 64, DeviceConfig{})
		if thin {
			f.dev.SetBackend(unmapMem{f.mem})
		}
		for i := range f.mem.data {
			f.mem.data[i] = 0xee
		}
		if r := f.exec(0, sanitizeCDB(0x02, 0), nil); r.Status != Good {
			t.Fatalf("thin %v: %s", thin, senseOf(r))
		}
		if !allZero(f.mem.data) {
			t.Fatalf("thin %v: the medium is not erased", thin)
		}
	}
}

func TestSanitizeFailureMode(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	f.mem.failWrit = syscall.EIO
	p := sanitizeParam(1, 1, []byte{0x77})
	if r := f.exec(0, sanitizeCDB(0x01, len(p)), p); senseOf(r) != want(ErrSanitizeFailed) {
		t.Fatalf("failed SANITIZE: %s", senseOf(r))
	}
	if r := f.exec(0, hx(t, "28 00 00000000 00 0001 00"), nil); senseOf(r) != want(ErrSanitizeFailed) {
		t.Fatalf("READ in failure mode: %s", senseOf(r))
	}
	if r := f.exec(0, hx(t, "12 00 00 00 24 00"), nil); r.Status != Good {
		t.Fatalf("INQUIRY in failure mode: %s", senseOf(r))
	}
	if r := f.exec(0, sanitizeCDB(0x1f, 0), nil); senseOf(r) != want(errCommandSequence) {
		t.Fatalf("EXIT FAILURE MODE after a SANITIZE without AUSE: %s", senseOf(r))
	}
	if r := f.exec(0, sanitizeCDB(0x21, len(p)), p); senseOf(r) != want(ErrSanitizeFailed) {
		t.Fatalf("failed SANITIZE with AUSE: %s", senseOf(r))
	}
	if r := f.exec(0, sanitizeCDB(0x1f, 0), nil); r.Status != Good {
		t.Fatalf("EXIT FAILURE MODE: %s", senseOf(r))
	}
	if r := f.exec(0, hx(t, "28 00 00000000 00 0001 00"), nil); r.Status != Good {
		t.Fatalf("READ after EXIT FAILURE MODE: %s", senseOf(r))
	}
}

// gateMem is a memBackend whose writes wait until the gate opens.
type gateMem struct {
	*memBackend
	gate    chan struct{}
	started sync.Once
	writing chan struct{}
}

func (g *gateMem) WriteAt(p []byte, off int64) (int, error) {
	g.started.Do(func() { close(g.writing) })
	<-g.gate
	return g.memBackend.WriteAt(p, off)
}

func TestSanitizeImmedInProgress(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	g := &gateMem{memBackend: f.mem, gate: make(chan struct{}), writing: make(chan struct{})}
	f.dev.SetBackend(g)
	f.clearUA(t, 0)
	p := sanitizeParam(1, 1, []byte{0x99})
	if r := f.exec(0, sanitizeCDB(0x81, len(p)), p); r.Status != Good {
		t.Fatalf("SANITIZE IMMED: %s", senseOf(r))
	}
	<-g.writing
	inProgress := "NOT_READY asc=0x04 ascq=0x1b"
	for _, cdb := range []string{"00 00000000 00", "28 00 00000000 00 0001 00", "1b 00 00 00 01 00", "48 02 00 00 00 00 00 00 00 00"} {
		if r := f.exec(0, hx(t, cdb), nil); senseOf(r) != inProgress || r.Sense[15] != 0x80 {
			t.Fatalf("%s during SANITIZE: %s % x", cdb, senseOf(r), r.Sense)
		}
	}
	if r := f.exec(0, hx(t, "12 00 00 00 24 00"), nil); r.Status != Good {
		t.Fatalf("INQUIRY during SANITIZE: %s", senseOf(r))
	}
	r := f.exec(0, hx(t, "03 00 00 00 12 00"), nil)
	if r.Status != Good || len(r.Data) < 18 || r.Data[2] != byte(NotReady) || r.Data[12] != 0x04 || r.Data[13] != 0x1b || r.Data[15] != 0x80 {
		t.Fatalf("REQUEST SENSE during SANITIZE: %s % x", senseOf(r), r.Data)
	}
	close(g.gate)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := f.exec(0, hx(t, "00 00000000 00"), nil)
		if r.Status == Good {
			break
		}
		if senseOf(r) != inProgress || time.Now().After(deadline) {
			t.Fatalf("TUR after SANITIZE: %s", senseOf(r))
		}
		time.Sleep(time.Millisecond)
	}
	if !bytes.Equal(f.mem.data, bytes.Repeat([]byte{0x99}, len(f.mem.data))) {
		t.Fatal("the IMMED overwrite did not complete")
	}
}

func TestSoftwareWriteProtect(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	control := func(b4 string) []byte {
		return hx(t, "00000000 0a0a 02 10 "+b4+" 00 0000 ffff 0000")
	}
	if r := f.exec(0, hx(t, "1a 08 4a 00 ff 00"), nil); r.Status != Good || r.Data[4+4] != controlSWP {
		t.Fatalf("changeable control page: %s % x", senseOf(r), r.Data)
	}
	if r := f.exec(0, hx(t, "15 10 00 00 10 00"), control("08")); r.Status != Good {
		t.Fatalf("MODE SELECT SWP=1: %s", senseOf(r))
	}
	r := f.exec(0, hx(t, "1a 08 0a 00 ff 00"), nil)
	if r.Status != Good || r.Data[2]&modeDevSpecWP == 0 || r.Data[4+4] != controlSWP {
		t.Fatalf("current control page: %s % x", senseOf(r), r.Data)
	}
	p := sanitizeParam(1, 1, []byte{0x99})
	for _, c := range []struct {
		cdb []byte
		out []byte
	}{
		{hx(t, "2a 00 00000000 00 0001 00"), make([]byte, 512)},
		{sanitizeCDB(0x01, len(p)), p},
		{sanitizeCDB(0x02, 0), nil},
	} {
		if r := f.exec(0, c.cdb, c.out); senseOf(r) != want(ErrSoftwareWriteProtected) {
			t.Fatalf("% x with SWP: %s", c.cdb, senseOf(r))
		}
	}
	if r := f.exec(0, hx(t, "28 00 00000000 00 0001 00"), nil); r.Status != Good {
		t.Fatalf("READ with SWP: %s", senseOf(r))
	}
	if r := f.exec(0, hx(t, "15 10 00 00 10 00"), control("00")); r.Status != Good {
		t.Fatalf("MODE SELECT SWP=0: %s", senseOf(r))
	}
	if r := f.exec(0, hx(t, "2a 00 00000000 00 0001 00"), make([]byte, 512)); r.Status != Good {
		t.Fatalf("WRITE after SWP=0: %s", senseOf(r))
	}
}

func TestSanitizeReportedSupported(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	for _, c := range []struct {
		sa   byte
		want bool
	}{{0x01, true}, {0x02, true}, {0x03, false}, {0x1f, true}} {
		// REPORT SUPPORTED OPERATION CODES, one command (reporting
		// options 010b): SUPPORT 011b or 001b.
		r := f.exec(0, []byte{0xa3, 0x0c, 0x02, 0x48, 0, c.sa, 0, 0, 1, 0, 0, 0}, nil)
		if r.Status != Good {
			t.Fatalf("RSOC SANITIZE %#x: %s", c.sa, senseOf(r))
		}
		if got := r.Data[1]&0x07 == 0x03; got != c.want {
			t.Fatalf("SANITIZE %#x supported %v, want %v (% x)", c.sa, got, c.want, r.Data)
		}
	}
	if s := SanitizeAction(0x05).String(); !strings.Contains(s, "05") {
		t.Fatalf("String %q", s)
	}
}

// physMem is a memBackend reporting a physical block size.
type physMem struct {
	*memBackend
	pbs int64
}

func (p physMem) PhysicalBlockSize() int64 { return p.pbs }

func TestLBPPBExponent(t *testing.T) {
	cases := []struct {
		bs   uint32
		pbs  int64
		want byte
	}{
		{512, 4096, 3},
		{512, 512, 0},
		{4096, 4096, 0},
		{512, 65536, 7},
		{512, 3072, 0}, // not a power of two
		{4096, 512, 0},
	}
	for _, c := range cases {
		f := newFixture(t, 64, DeviceConfig{BlockSize: c.bs})
		f.dev.SetBackend(physMem{f.mem, c.pbs})
		f.clearUA(t, 0)
		r := f.exec(0, hx(t, "9e 10 0000000000000000 00000020 00 00"), nil)
		if r.Status != Good || r.Data[13]&0x0f != c.want {
			t.Fatalf("bs %d pbs %d: %s exponent %d, want %d", c.bs, c.pbs, senseOf(r), r.Data[13]&0x0f, c.want)
		}
		r = f.exec(0, hx(t, "12 01 b0 00 40 00"), nil)
		if got := binary.BigEndian.Uint16(r.Data[6:8]); r.Status != Good || got != 1<<c.want {
			t.Fatalf("bs %d pbs %d: OPTIMAL TRANSFER LENGTH GRANULARITY %d", c.bs, c.pbs, got)
		}
	}
}
