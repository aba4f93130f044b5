package scsi

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// naaTarget is an identification target descriptor (E4h) naming dev by
// its NAA designator: type, LU ID type/NUL/peripheral type, relative
// initiator port, designation descriptor (binary, LU, NAA, 8 bytes),
// padding, and the disk block length.
func naaTarget(d *Device) string {
	return fmt.Sprintf("e4 00 0000 01 03 00 08 %016x 000000000000000000000000 00 000200", d.id.naa)
}

// b2b is a block to block segment descriptor (02h).
func b2b(src, dst uint16, n uint16, srcLBA, dstLBA uint64) string {
	return fmt.Sprintf("02 00 0018 %04x %04x 0000 %04x %016x %016x", src, dst, n, srcLBA, dstLBA)
}

// xcopyList is a parameter list header followed by targets and segments.
func xcopyList(targets, segments []string) string {
	t, s := strings.Join(targets, " "), strings.Join(segments, " ")
	tl, sl := len(strings.ReplaceAll(t, " ", ""))/2, len(strings.ReplaceAll(s, " ", ""))/2
	return fmt.Sprintf("01 00 %04x 00000000 %08x 00000000 %s %s", tl, sl, t, s)
}

func xcopyCDB(n int) string { return fmt.Sprintf("83 00 0000000000000000 %08x 00 00", n) }

func TestExtendedCopy(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	other := NewDevice(DeviceConfig{Name: "disk2", BlockSize: 512}, newMem(64*512))
	ro := &LogicalUnit{Device: other, ReadOnly: true}
	f.lus = NewLUNMap(map[LUN]*LogicalUnit{0: f.lu, 1: {Device: other}})
	f.clearUA(t, 0)
	for i := range 8 {
		copy(f.mem.data[i*512:], bytes.Repeat([]byte{byte(0xc0 + i)}, 512))
	}
	me, it := naaTarget(f.dev), naaTarget(other)
	t10 := fmt.Sprintf("e4 00 0000 02 01 00 0d %x 000000 00000000 00 000200", "SCSTD   disk2")
	unknown := "e4 00 0000 01 03 00 08 3000000000000001 000000000000000000000000 00 000200"
	tests := []struct {
		name, list string
		plen       int // 0: the list's length
		want       string
		check      func(t *testing.T)
	}{
		{"within one device", xcopyList([]string{me}, []string{b2b(0, 0, 4, 0, 32)}), 0, good,
			func(t *testing.T) {
				if !bytes.Equal(f.mem.data[32*512:36*512], f.mem.data[0:4*512]) {
					t.Error("blocks not copied")
				}
			}},
		{"to another device by T10 vendor ID", xcopyList([]string{me, t10}, []string{b2b(0, 1, 2, 6, 60)}), 0, good,
			func(t *testing.T) {
				m := other.Backend().(*memBackend)
				if !bytes.Equal(m.data[60*512:62*512], f.mem.data[6*512:8*512]) {
					t.Error("blocks not copied")
				}
			}},
		{"two segments", xcopyList([]string{me, it}, []string{b2b(0, 1, 1, 0, 0), b2b(1, 0, 1, 0, 40)}), 0, good, nil},
		{"empty parameter list", "", 0, good, nil},
		{"short header", "01 00 0020", 0, want(ErrParamListLength), nil},
		{"list shorter than its descriptors", xcopyList([]string{me}, []string{b2b(0, 0, 4, 0, 32)}), 16 + 32 + 27,
			want(ErrParamListLength), nil},
		{"unsupported target descriptor", xcopyList([]string{"e0" + me[2:]}, []string{b2b(0, 0, 1, 0, 32)}), 0,
			want(errUnsupportedTargetDesc), nil},
		{"unsupported segment descriptor", xcopyList([]string{me}, []string{"01" + b2b(0, 0, 1, 0, 32)[2:]}), 0,
			want(errUnsupportedSegmentDesc), nil},
		{"too many target descriptors", xcopyList([]string{me, me, me}, []string{b2b(0, 0, 1, 0, 32)}), 0,
			want(errTooManyTargetDescs), nil},
		{"too many segment descriptors", xcopyList([]string{me}, slicesRepeat(b2b(0, 0, 1, 0, 32), 33)), 0,
			want(errTooManySegmentDescs), nil},
		{"descriptor lists too long", xcopyList([]string{me}, slicesRepeat(b2b(0, 0, 1, 0, 32), 36)), 0,
			want(ErrParamListLength), nil},
		{"segment names a missing target", xcopyList([]string{me}, []string{b2b(0, 1, 1, 0, 32)}), 0,
			want(errUnreachableCopyTarget), nil},
		{"unknown logical unit", xcopyList([]string{unknown}, []string{b2b(0, 0, 1, 0, 32)}), 0,
			want(errCopyTargetNotReachable), nil},
		{"beyond end of destination", xcopyList([]string{me}, []string{b2b(0, 0, 2, 0, 63)}), 0,
			want(errCopyAborted), nil},
		{"inline data", strings.Replace(xcopyList([]string{me}, []string{b2b(0, 0, 1, 0, 32)}), "00000000 e4", "00000001 e4", 1), 0,
			want(ErrParamListLength), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := hx(t, tt.list)
			n := len(out)
			if tt.plen != 0 {
				n = tt.plen
				out = out[:min(n, len(out))]
			}
			r := f.exec(0, hx(t, xcopyCDB(n)), out)
			if got := senseOf(r); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	t.Run("read-only destination", func(t *testing.T) {
		f.lus = NewLUNMap(map[LUN]*LogicalUnit{0: f.lu, 1: ro})
		list := hx(t, xcopyList([]string{me, it}, []string{b2b(0, 1, 1, 0, 0)}))
		if got := senseOf(f.exec(0, hx(t, xcopyCDB(len(list))), list)); got != want(ErrWriteProtected) {
			t.Fatalf("got %s", got)
		}
	})
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestReceiveCopyOperatingParameters(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{BlockSize: 4096})
	r := f.exec(0, hx(t, "84 03 00 00000000 000000 00000100 00 00"), nil)
	wantData := hx(t, "0000002a 01 000000 0002 0020 00000400 0ffff000 00000000 00000000 00000000 0000 0001 01 0c 00 00 000000 02 02 e4")
	if r.Status != Good || !bytes.Equal(r.Data, wantData) {
		t.Fatalf("%s\n got %x\nwant %x", senseOf(r), r.Data, wantData)
	}
	if r := f.exec(0, hx(t, "84 03 00 00000000 000000 00000008 00 00"), nil); len(r.Data) != 8 {
		t.Fatalf("ALLOCATION LENGTH ignored: %d bytes", len(r.Data))
	}
}

func TestReceiveCopyStatus(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	me := naaTarget(f.dev)
	status := func(list string) Result {
		return f.exec(0, hx(t, "84 00 "+list+" 00000000000000 00000100 00 00"), nil)
	}
	if got := senseOf(status("07")); got != want(invalidField(2, -1)) {
		t.Fatalf("no copy yet: %s", got)
	}
	// LIST IDENTIFIER 07h, LIST ID USAGE 00b (hold): two segments of 4 and 2 blocks.
	list := hx(t, "07"+xcopyList([]string{me}, []string{b2b(0, 0, 4, 0, 32), b2b(0, 0, 2, 8, 40)})[2:])
	if r := f.exec(0, hx(t, xcopyCDB(len(list))), list); r.Status != Good {
		t.Fatalf("EXTENDED COPY: %s", senseOf(r))
	}
	if r := status("07"); r.Status != Good || !bytes.Equal(r.Data, hx(t, "00000008 01 0002 00 00000c00")) {
		t.Fatalf("COPY STATUS: %s %x", senseOf(r), r.Data)
	}
	// LIST ID USAGE 10b (discard): nothing held for list 08h.
	list[0], list[1] = 0x08, 0x10
	f.exec(0, hx(t, xcopyCDB(len(list))), list)
	if got := senseOf(status("08")); got != want(invalidField(2, -1)) {
		t.Fatalf("discarded results: %s", got)
	}
	// A failing second segment: one segment processed, completed with errors.
	bad := hx(t, "09"+xcopyList([]string{me}, []string{b2b(0, 0, 1, 0, 32), b2b(0, 0, 2, 0, 63)})[2:])
	if got := senseOf(f.exec(0, hx(t, xcopyCDB(len(bad))), bad)); got != want(errCopyAborted) {
		t.Fatalf("failing copy: %s", got)
	}
	if r := status("09"); r.Status != Good || !bytes.Equal(r.Data, hx(t, "00000008 02 0001 00 00000200")) {
		t.Fatalf("COPY STATUS after failure: %s %x", senseOf(r), r.Data)
	}
	// Another nexus does not see this nexus's results.
	other := NewNexus("iqn.1994-05.com.redhat:other,i,0x1", "iqn.2026-11.org.example:t1", 1, 1)
	cmd := &Command{Nexus: other, LUNs: f.lus, LUNValid: true, CDB: hx(t, "84 00 07 00000000000000 00000100 00 00")}
	Execute(cmd) // power-on unit attention
	if got := senseOf(Execute(cmd)); got != want(invalidField(2, -1)) {
		t.Fatalf("other nexus: %s", got)
	}
}
