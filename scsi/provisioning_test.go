package scsi

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/scstd/scstd/vdisk"
)

// provStep is one command against a 64-block device of 512-byte blocks
// whose block i initially holds the byte 0xa0+i (i < 16) or zeroes.
type provStep struct {
	name string
	cdb  string
	out  string // hex; "blk:XX" is one block of byte XX, "blk:XX*N" N blocks
	want string
	// check, when set, inspects the medium afterwards.
	check func(t *testing.T, mem []byte)
}

// expand turns a provStep data-out into bytes.
func expand(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for _, part := range strings.Fields(s) {
		if !strings.HasPrefix(part, "blk:") {
			out = append(out, hx(t, part)...)
			continue
		}
		v, n := part[4:], 1
		if i := strings.IndexByte(v, '*'); i >= 0 {
			n = 0
			for _, c := range v[i+1:] {
				n = n*10 + int(c-'0')
			}
			v = v[:i]
		}
		out = append(out, bytes.Repeat(hx(t, v), 512*n)...)
	}
	return out
}

// blockIs returns a check that blocks [from, from+n) all hold byte v.
func blockIs(from, n int, v byte) func(*testing.T, []byte) {
	return func(t *testing.T, mem []byte) {
		t.Helper()
		got := mem[from*512 : (from+n)*512]
		if want := bytes.Repeat([]byte{v}, n*512); !bytes.Equal(got, want) {
			i := 0
			for got[i] == v {
				i++
			}
			t.Errorf("blocks %d..%d: byte %d is %02x, want %02x", from, from+n-1, from*512+i, got[i], v)
		}
	}
}

// checks combines checks.
func checks(cs ...func(*testing.T, []byte)) func(*testing.T, []byte) {
	return func(t *testing.T, mem []byte) {
		t.Helper()
		for _, c := range cs {
			c(t, mem)
		}
	}
}

// eopnotsupp is a thin backend whose storage cannot deallocate.
type eopnotsupp struct{ *memBackend }

func (e eopnotsupp) Unmap(off, length int64) error { return syscall.EOPNOTSUPP }

func runProv(t *testing.T, thin bool, steps []provStep) *fixture {
	t.Helper()
	f := newFixture(t, 64, DeviceConfig{})
	if thin {
		f.dev.SetBackend(unmapMem{f.mem})
	}
	for i := range 16 {
		copy(f.mem.data[i*512:], bytes.Repeat([]byte{0xa0 + byte(i)}, 512))
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := f.exec(0, hx(t, s.cdb), expand(t, s.out))
			if got := senseOf(r); got != s.want {
				t.Fatalf("%s: got %s, want %s", s.cdb, got, s.want)
			}
			if s.check != nil {
				s.check(t, f.mem.data)
			}
		})
	}
	return f
}

func TestUnmap(t *testing.T) {
	runProv(t, false, []provStep{
		{"fully provisioned device", "42 00 00000000 00 0018 00", "0016 0010 00000000 0000000000000000 00000001 00000000",
			want(ErrInvalidOpcode), blockIs(0, 1, 0xa0)},
	})
	runProv(t, true, []provStep{
		{"two descriptors", "42 00 00000000 00 0028 00",
			"0026 0020 00000000 0000000000000001 00000002 00000000 0000000000000005 00000001 00000000",
			good, checks(blockIs(0, 1, 0xa0), blockIs(1, 2, 0), blockIs(3, 1, 0xa3), blockIs(5, 1, 0), blockIs(6, 1, 0xa6))},
		{"no parameter list", "42 00 00000000 00 0000 00", "", good, nil},
		{"header only", "42 00 00000000 00 0008 00", "0006 0000 00000000", good, nil},
		{"zero blocks at end of medium", "42 00 00000000 00 0018 00",
			"0016 0010 00000000 0000000000000040 00000000 00000000", good, nil},
		{"short parameter list", "42 00 00000000 00 0004 00", "0002 0000", want(ErrParamListLength), nil},
		{"descriptor length beyond list", "42 00 00000000 00 0018 00",
			"0026 0020 00000000 0000000000000007 00000001 00000000", want(ErrParamListLength), blockIs(7, 1, 0xa7)},
		{"data-out shorter than the list", "42 00 00000000 00 0018 00", "0016 0010 00000000",
			want(ErrParamListLength), nil},
		{"beyond end: nothing unmapped", "42 00 00000000 00 0028 00",
			"0026 0020 00000000 0000000000000008 00000001 00000000 000000000000003f 00000002 00000000",
			want(ErrLBAOutOfRange), blockIs(8, 1, 0xa8)},
		{"LBA overflow", "42 00 00000000 00 0018 00",
			"0016 0010 00000000 ffffffffffffffff 00000002 00000000", want(ErrLBAOutOfRange), nil},
		{"anchor", "42 01 00000000 00 0018 00", "0016 0010 00000000 0000000000000008 00000001 00000000",
			want(invalidField(1, 0)), blockIs(8, 1, 0xa8)},
		{"too many blocks", "42 00 00000000 00 0018 00",
			"0016 0010 00000000 0000000000000000 00100001 00000000", want(ErrLBAOutOfRange), nil},
		{"too many descriptors", "42 00 00000000 00 1018 00",
			"1016 1010 00000000" + strings.Repeat(" 0000000000000008 00000001 00000000", 257),
			want(invalidParam(2, -1)), blockIs(8, 1, 0xa8)},
	})
}

func TestUnmapFallsBackToZeroes(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	f.dev.SetBackend(eopnotsupp{f.mem})
	copy(f.mem.data, bytes.Repeat([]byte{0xff}, 4*512))
	r := f.exec(0, hx(t, "42 00 00000000 00 0018 00"), hx(t, "0016 0010 00000000 0000000000000001 00000002 00000000"))
	if r.Status != Good {
		t.Fatalf("UNMAP: %s", senseOf(r))
	}
	blockIs(0, 1, 0xff)(t, f.mem.data)
	blockIs(1, 2, 0)(t, f.mem.data)
	blockIs(3, 1, 0xff)(t, f.mem.data)
}

func TestUnmapReadOnly(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	f.dev.SetBackend(unmapMem{f.mem})
	f.lu.ReadOnly = true
	r := f.exec(0, hx(t, "42 00 00000000 00 0018 00"), hx(t, "0016 0010 00000000 0000000000000001 00000002 00000000"))
	if got := senseOf(r); got != want(ErrWriteProtected) {
		t.Fatalf("UNMAP on a read-only LUN: %s", got)
	}
}

func TestWriteSame(t *testing.T) {
	runProv(t, false, []provStep{
		{"ws10 four blocks", "41 00 00000002 00 0004 00", "blk:5a", good,
			checks(blockIs(1, 1, 0xa1), blockIs(2, 4, 0x5a), blockIs(6, 1, 0xa6))},
		{"ws16 four blocks", "93 00 0000000000000008 00000004 00 00", "blk:5b", good,
			checks(blockIs(8, 4, 0x5b), blockIs(12, 1, 0xac))},
		{"ws16 zero blocks: to the end", "93 00 0000000000000030 00000000 00 00", "blk:77", good,
			checks(blockIs(47, 1, 0), blockIs(48, 16, 0x77))},
		{"ws10 zero blocks at end of medium", "41 00 00000040 00 0000 00", "blk:77", good, nil},
		{"ws10 zero blocks past end", "41 00 00000041 00 0000 00", "blk:77", want(ErrLBAOutOfRange), nil},
		{"ws10 past end", "41 00 0000003f 00 0002 00", "blk:77", want(ErrLBAOutOfRange), blockIs(63, 1, 0x77)},
		{"ws16 LBA -1", "93 00 ffffffffffffffff 00000001 00 00", "blk:77", want(ErrLBAOutOfRange), nil},
		{"beyond MAXIMUM WRITE SAME LENGTH", "93 00 0000000000000000 00100001 00 00", "blk:77",
			want(invalidField(10, -1)), nil},
		{"unmap without thin provisioning", "41 08 00000000 00 0001 00", "blk:00", want(invalidField(1, 3)), blockIs(0, 1, 0xa0)},
		{"wrprotect", "41 20 00000000 00 0001 00", "blk:00", want(invalidField(1, 7)), nil},
		{"anchor", "93 10 0000000000000000 00000001 00 00", "blk:00", want(invalidField(1, 4)), nil},
		{"lbdata", "41 02 00000000 00 0001 00", "blk:00", want(invalidField(1, 2)), nil},
		{"ndob on ws10", "41 01 00000000 00 0001 00", "", want(invalidField(1, 0)), nil},
		{"ndob", "93 01 0000000000000003 00000002 00 00", "", good, checks(blockIs(3, 2, 0), blockIs(5, 1, 0x5a))},
		{"short data-out", "41 00 00000005 00 0001 00", "00112233", want(ErrInvalidFieldInIU), blockIs(5, 1, 0x5a)},
		{"two blocks of data-out", "41 00 00000005 00 0001 00", "blk:01*2", want(ErrInvalidFieldInCDB), blockIs(5, 1, 0x5a)},
	})
	runProv(t, true, []provStep{
		{"unmap with a zero block", "41 08 00000001 00 0002 00", "blk:00", good,
			checks(blockIs(0, 1, 0xa0), blockIs(1, 2, 0), blockIs(3, 1, 0xa3))},
		{"unmap with data writes the data", "93 08 0000000000000004 00000002 00 00", "blk:99", good,
			checks(blockIs(4, 2, 0x99), blockIs(6, 1, 0xa6))},
		{"unmap with ndob", "93 09 0000000000000006 00000001 00 00", "", good, blockIs(6, 1, 0)},
	})
}

func TestCompareAndWrite(t *testing.T) {
	runProv(t, false, []provStep{
		{"match", "89 00 0000000000000001 000000 02 00 00", "blk:a1 blk:a2 blk:11*2", good,
			checks(blockIs(0, 1, 0xa0), blockIs(1, 2, 0x11), blockIs(3, 1, 0xa3))},
		{"dpo fua", "89 18 0000000000000001 000000 01 00 00", "blk:11 blk:12", good, blockIs(1, 1, 0x12)},
		{"miscompare", "89 00 0000000000000003 000000 01 00 00", "blk:a4 blk:11", want(ErrMiscompareVerify), blockIs(3, 1, 0xa3)},
		{"zero blocks", "89 00 0000000000000003 000000 00 00 00", "", good, blockIs(3, 1, 0xa3)},
		{"past end", "89 00 000000000000003f 000000 02 00 00", "blk:00*4", want(ErrLBAOutOfRange), nil},
		{"wrprotect", "89 20 0000000000000003 000000 01 00 00", "blk:a3 blk:00", want(invalidField(1, 7)), blockIs(3, 1, 0xa3)},
		{"too much data-out", "89 00 0000000000000003 000000 01 00 00", "blk:a3*2 blk:00*2", want(ErrInvalidFieldInCDB), blockIs(3, 1, 0xa3)},
		{"too little data-out", "89 00 0000000000000003 000000 02 00 00", "blk:a3 blk:a4", want(ErrInvalidFieldInIU), blockIs(3, 1, 0xa3)},
	})
}

func TestCompareAndWriteMiscompareOffset(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	for _, off := range []int{0, 27, 511, 512 + 100} {
		data := make([]byte, 4*512) // verify 2 blocks of zeroes, write 2 blocks
		data[off] = 'Z'
		r := f.exec(0, hx(t, "89 00 0000000000000010 000000 02 00 00"), data)
		if senseOf(r) != want(ErrMiscompareVerify) || r.Sense[0]&0x80 == 0 {
			t.Fatalf("offset %d: %s, sense %x", off, senseOf(r), r.Sense)
		}
		if info := binary.BigEndian.Uint32(r.Sense[3:7]); info != uint32(off) {
			t.Errorf("offset %d: INFORMATION %d", off, info)
		}
	}
}

// TestCompareAndWriteAtomic has goroutines increment a counter in one
// block with COMPARE AND WRITE, retrying on miscompare: with atomic
// compare-and-write no increment is lost. Run with -race.
func TestCompareAndWriteAtomic(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	const workers, each = 4, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for done := 0; done < each; {
				cur := f.exec(0, hx(t, "28 00 00000007 00 0001 00"), nil)
				if cur.Status != Good {
					t.Error(senseOf(cur))
					return
				}
				next := bytes.Clone(cur.Data)
				binary.BigEndian.PutUint64(next, binary.BigEndian.Uint64(next)+1)
				r := f.exec(0, hx(t, "89 00 0000000000000007 000000 01 00 00"), append(bytes.Clone(cur.Data), next...))
				switch senseOf(r) {
				case good:
					done++
				case want(ErrMiscompareVerify):
				default:
					t.Error(senseOf(r))
					return
				}
			}
		})
	}
	wg.Wait()
	if got := binary.BigEndian.Uint64(f.mem.data[7*512:]); got != workers*each {
		t.Fatalf("counter %d, want %d", got, workers*each)
	}
}

func TestOrWrite(t *testing.T) {
	runProv(t, false, []provStep{
		{"or two blocks", "8b 00 0000000000000001 00000002 00 00", "blk:0f*2", good,
			checks(blockIs(0, 1, 0xa0), blockIs(1, 1, 0xaf), blockIs(2, 1, 0xaf), blockIs(3, 1, 0xa3))},
		{"dpo fua fua_nv", "8b 1a 0000000000000003 00000001 00 00", "blk:50", good, blockIs(3, 1, 0xf3)},
		{"zero blocks", "8b 00 0000000000000000 00000000 00 00", "", good, nil},
		{"zero blocks past end", "8b 00 0000000000000041 00000000 00 00", "", want(ErrLBAOutOfRange), nil},
		{"LBA 2^63", "8b 00 8000000000000000 00000000 00 00", "", want(ErrLBAOutOfRange), nil},
		{"orprotect", "8b 40 0000000000000003 00000001 00 00", "blk:50", want(invalidField(1, 7)), blockIs(3, 1, 0xf3)},
		{"beyond maximum transfer length", "8b 00 0000000000000000 00004001 00 00", "", want(invalidField(10, -1)), nil},
	})
}

func TestWriteAtomic(t *testing.T) {
	runProv(t, false, []provStep{
		{"two blocks", "9c 00 0000000000000004 0000 0002 00 00", "blk:3c*2", good,
			checks(blockIs(4, 2, 0x3c), blockIs(6, 1, 0xa6))},
		{"fua", "9c 18 0000000000000004 0000 0001 00 00", "blk:3d", good, blockIs(4, 1, 0x3d)},
		{"zero blocks", "9c 00 0000000000000000 0000 0000 00 00", "", good, nil},
		{"past end", "9c 00 0000000000000040 0000 0001 00 00", "blk:00", want(ErrLBAOutOfRange), nil},
		{"LBA -1", "9c 00 ffffffffffffffff 0000 0000 00 00", "", want(ErrLBAOutOfRange), nil},
		{"wrprotect", "9c 20 0000000000000004 0000 0001 00 00", "blk:00", want(invalidField(1, 7)), blockIs(4, 1, 0x3d)},
	})
}

func TestWriteAtomicLimit(t *testing.T) {
	n := maxAtomicTransferBytes/512 + 1
	f := newFixture(t, n+1, DeviceConfig{})
	cdb := hx(t, "9c 00 0000000000000000 0000 0000 00 00")
	binary.BigEndian.PutUint16(cdb[12:14], uint16(n))
	if got := senseOf(f.exec(0, cdb, make([]byte, n*512))); got != want(invalidField(12, -1)) {
		t.Errorf("%d blocks: %s", n, got)
	}
	binary.BigEndian.PutUint16(cdb[12:14], uint16(n-1))
	if got := senseOf(f.exec(0, cdb, make([]byte, (n-1)*512))); got != good {
		t.Errorf("%d blocks: %s", n-1, got)
	}
}

func TestPreFetch(t *testing.T) {
	runProv(t, false, []provStep{
		{"pre-fetch 10", "34 00 00000000 00 0040 00", "", good, nil},
		{"pre-fetch 10 immed group", "34 02 0000003f 03 0001 00", "", good, nil},
		{"pre-fetch 10 zero blocks", "34 00 00000040 00 0000 00", "", good, nil},
		{"pre-fetch 10 past end", "34 00 00000041 00 0000 00", "", want(ErrLBAOutOfRange), nil},
		{"pre-fetch 10 LBA -1", "34 00 ffffffff 00 0000 00", "", want(ErrLBAOutOfRange), nil},
		{"pre-fetch 10 reserved bit", "34 01 00000000 00 0001 00", "", want(invalidField(1, -1)), nil},
		{"pre-fetch 16", "90 02 0000000000000010 00000010 00 00", "", good, nil},
		{"pre-fetch 16 LBA 2^63", "90 00 8000000000000000 00000000 00 00", "", want(ErrLBAOutOfRange), nil},
	})
}

func TestGetLBAStatusWithoutMapper(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	tests := []struct {
		cdb, want, data string
	}{
		{"9e 12 0000000000000000 00000018 00 00", good, "00000014 00000000 0000000000000000 00000040 00 000000"},
		{"9e 12 000000000000003f 00000018 00 00", good, "00000014 00000000 000000000000003f 00000001 00 000000"},
		{"9e 12 0000000000000010 00000008 00 00", good, "00000014 00000000"},
		{"9e 12 0000000000000040 00000018 00 00", want(ErrLBAOutOfRange), ""},
		{"9e 12 8000000000000000 00000018 00 00", want(ErrLBAOutOfRange), ""},
	}
	for _, tt := range tests {
		r := f.exec(0, hx(t, tt.cdb), nil)
		if got := senseOf(r); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.cdb, got, tt.want)
			continue
		}
		if tt.data != "" && !bytes.Equal(r.Data, hx(t, tt.data)) {
			t.Errorf("%s: data %x, want %s", tt.cdb, r.Data, tt.data)
		}
	}
}

// TestGetLBAStatusFileIO reads holes through vdisk's fileio backend
// (SEEK_DATA/SEEK_HOLE) after UNMAP and WRITE SAME with UNMAP.
func TestGetLBAStatusFileIO(t *testing.T) {
	be, err := vdisk.Open(vdisk.Spec{Handler: vdisk.FileIO, Filename: filepath.Join(t.TempDir(), "d.img"), Size: 64 * 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	dev := NewDevice(DeviceConfig{Name: "thin", BlockSize: 4096}, be)
	f := &fixture{dev: dev, lu: &LogicalUnit{Device: dev}}
	f.lus = NewLUNMap(map[LUN]*LogicalUnit{0: f.lu})
	f.nex = NewNexus("iqn.1994-05.com.redhat:client,i,0x23d000000001", "iqn.2026-11.org.example:t1", 1, 1)
	f.clearUA(t, 0)
	steps := []struct {
		cdb, out, want, data string
	}{
		{"9e 12 0000000000000000 00000048 00 00", "", good,
			"00000014 00000000 0000000000000000 00000040 01 000000"},
		{"2a 00 00000004 00 0008 00", strings.Repeat("ab", 8*4096), good, ""},
		{"9e 12 0000000000000000 00000048 00 00", "", good,
			"00000034 00000000 0000000000000000 00000004 01 000000 0000000000000004 00000008 00 000000 000000000000000c 00000034 01 000000"},
		{"42 00 00000000 00 0018 00", "0016 0010 00000000 0000000000000006 00000002 00000000", good, ""},
		{"93 08 000000000000000b 00000001 00 00", strings.Repeat("00", 4096), good, ""},
		{"9e 12 0000000000000005 00000038 00 00", "", good,
			"00000034 00000000 0000000000000005 00000001 00 000000 0000000000000006 00000002 01 000000 0000000000000008 00000003 00 000000"},
		{"28 00 00000006 00 0001 00", "", good, strings.Repeat("00", 4096)},
	}
	for _, s := range steps {
		var out []byte
		if s.out != "" {
			out = hx(t, s.out)
		}
		r := f.exec(0, hx(t, s.cdb), out)
		if got := senseOf(r); got != s.want {
			t.Fatalf("%s: %s, want %s", s.cdb, got, s.want)
		}
		if s.data != "" && !bytes.Equal(r.Data, hx(t, s.data)) {
			t.Fatalf("%s:\n got %x\nwant %s", s.cdb, r.Data, strings.ReplaceAll(s.data, " ", ""))
		}
	}
}

func TestProvisioningCommandsOnCDROM(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{Type: TypeCDROM, BlockSize: 2048})
	for _, cdb := range []string{"42 00 00000000 00 0000 00", "89 00 0000000000000000 000000 00 00 00", "9e 12 0000000000000000 00000018 00 00"} {
		if got := senseOf(f.exec(0, hx(t, cdb), nil)); got != want(ErrInvalidOpcode) {
			t.Errorf("%s on a CD-ROM: %s", cdb, got)
		}
	}
}

func TestUnsupported(t *testing.T) {
	for err, want := range map[error]bool{
		syscall.EOPNOTSUPP: true, syscall.ENOTTY: true, syscall.EINVAL: true,
		syscall.EIO: false, syscall.ENOSPC: false, nil: false,
	} {
		if got := unsupported(err); got != want {
			t.Errorf("unsupported(%v) = %v", err, got)
		}
	}
}
