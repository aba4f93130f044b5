package scsi

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
)

func TestReadWrite(t *testing.T) {
	good := "GOOD"
	cases := []struct {
		name string
		cdb  string
		out  int // data-out bytes, filled with 0xa5
		want string
		in   int // data-in length when good
	}{
		{"READ6 1 block at 0", "08 000000 01 00", 0, good, 512},
		{"READ6 length 0 means 256", "08 000000 00 00", 0, good, 256 * 512},
		{"READ6 past end", "08 0003ff 02 00", 0, want(ErrLBAOutOfRange), 0},
		{"READ10 last block", "28 00 000003ff 00 0001 00", 0, good, 512},
		{"READ10 0 blocks at capacity", "28 00 00000400 00 0000 00", 0, good, 0},
		{"READ10 0 blocks past capacity", "28 00 00000401 00 0000 00", 0, want(ErrLBAOutOfRange), 0},
		{"READ10 LBA -1", "28 00 ffffffff 00 0001 00", 0, want(ErrLBAOutOfRange), 0},
		{"READ10 DPO FUA", "28 18 00000000 00 0001 00", 0, good, 512},
		{"READ10 RDPROTECT=1", "28 20 00000000 00 0001 00", 0, want(invalidField(1, 7)), 0},
		{"READ12 2 blocks", "a8 00 00000010 00000002 00 00", 0, good, 1024},
		{"READ16 overflowing LBA+len", "88 00 ffffffffffffffff 00000002 00 00", 0, want(ErrLBAOutOfRange), 0},
		{"READ16 above max transfer", "88 00 0000000000000000 00004001 00 00", 0, want(ErrInvalidFieldInCDB), 0},
		{"WRITE6 1 block", "0a 000000 01 00", 512, good, 0},
		{"WRITE10 FUA", "2a 08 00000000 00 0001 00", 512, good, 0},
		{"WRITE10 WRPROTECT=1", "2a 20 00000000 00 0001 00", 512, want(invalidField(1, 7)), 0},
		{"WRITE12 0 blocks", "aa 00 00000000 00000000 00 00", 0, good, 0},
		{"WRITE16 past end", "8a 00 00000000000003ff 00000002 00 00", 1024, want(ErrLBAOutOfRange), 0},
		{"VERIFY10 BYTCHK=0 in range", "2f 00 00000000 00 0010 00", 0, good, 0},
		{"VERIFY10 BYTCHK=0 past end", "2f 00 000003ff 00 0002 00", 0, want(ErrLBAOutOfRange), 0},
		{"VERIFY10 BYTCHK=2 reserved", "2f 04 00000000 00 0001 00", 0, want(ErrInvalidFieldInCDB), 0},
		{"SYNCHRONIZE CACHE10 all", "35 00 00000000 00 0000 00", 0, good, 0},
		{"SYNCHRONIZE CACHE16 past end", "91 00 0000000000000400 00000001 00 00", 0, want(ErrLBAOutOfRange), 0},
		{"WRITE AND VERIFY10 BYTCHK=1", "2e 02 00000000 00 0001 00", 512, good, 0},
		{"WRITE AND VERIFY12 BYTCHK=3", "ae 06 00000000 00000001 00 00", 512, want(ErrInvalidFieldInCDB), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 1024, DeviceConfig{})
			out := bytes.Repeat([]byte{0xa5}, c.out)
			r := f.exec(0, hx(t, c.cdb), out)
			if got := senseOf(r); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			if r.Status == Good && len(r.Data) != c.in {
				t.Fatalf("data-in %d bytes, want %d", len(r.Data), c.in)
			}
		})
	}
}

// TestShortDataOutWritesWholeBlocks: when the initiator's expected
// transfer length is shorter than the CDB's, the whole blocks that arrived
// are written, the rest is not, and DataOutLen tells the transport what
// the CDB asked for (the overflow residual).
func TestShortDataOutWritesWholeBlocks(t *testing.T) {
	cases := []struct {
		name    string
		cdb     string
		out     int
		written int // blocks that must hold the new data
	}{
		{"WRITE10 2 blocks, 1 sent", "2a 00 00000000 00 0002 00", 512, 1},
		{"WRITE10 1 block, 200 bytes sent", "2a 00 00000000 00 0001 00", 200, 0},
		{"WRITE12 3 blocks, 1024 bytes sent", "aa 00 00000000 00000003 00 00", 1024, 2},
		{"WRITE16 2 blocks, none sent", "8a 00 0000000000000000 00000002 00 00", 0, 0},
		{"WRITE6 256 blocks, 1 sent", "0a 000000 00 00", 512, 1},
		{"WRITE AND VERIFY10 BYTCHK=1, 2 blocks, 1 sent", "2e 02 00000000 00 0002 00", 512, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 1024, DeviceConfig{})
			f.exec(0, hx(t, "2a 00 00000000 00 0004 00"), bytes.Repeat([]byte{0x61}, 4*512))
			cdb := hx(t, c.cdb)
			r := f.exec(0, cdb, bytes.Repeat([]byte{0x62}, c.out))
			if r.Status != Good {
				t.Fatalf("got %s, want GOOD", senseOf(r))
			}
			want := decodeRW(cdb).n * 512
			if uint64(r.DataOutLen) != want {
				t.Errorf("DataOutLen = %d, want %d (the CDB's length)", r.DataOutLen, want)
			}
			got := f.exec(0, hx(t, "28 00 00000000 00 0004 00"), nil).Data
			for blk := 0; blk < 4; blk++ {
				wantByte := byte(0x61)
				if blk < c.written {
					wantByte = 0x62
				}
				if !bytes.Equal(got[blk*512:(blk+1)*512], bytes.Repeat([]byte{wantByte}, 512)) {
					t.Errorf("block %d does not hold %#x", blk, wantByte)
				}
			}
		})
	}
}

func TestWriteThenReadAndVerify(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	pat := make([]byte, 1024)
	for i := range pat {
		pat[i] = byte(i*7 + i/512)
	}
	// WRITE(10) LBA 5, 2 blocks
	if r := f.exec(0, hx(t, "2a 00 00000005 00 0002 00"), pat); r.Status != Good {
		t.Fatalf("write: %s", senseOf(r))
	}
	if f.mem.syncs != 0 {
		t.Fatalf("write without FUA synced")
	}
	// READ(16) LBA 5, 2 blocks
	r := f.exec(0, hx(t, "88 00 0000000000000005 00000002 00 00"), nil)
	if !bytes.Equal(r.Data, pat) {
		t.Fatal("read back differs")
	}
	// VERIFY(10) BYTCHK=1 equal
	if r := f.exec(0, hx(t, "2f 02 00000005 00 0002 00"), pat); r.Status != Good {
		t.Fatalf("verify: %s", senseOf(r))
	}
	// VERIFY(10) BYTCHK=1 with byte 700 flipped: MISCOMPARE, INFORMATION 700
	bad := bytes.Clone(pat)
	bad[700] ^= 0xff
	r = f.exec(0, hx(t, "2f 02 00000005 00 0002 00"), bad)
	if senseOf(r) != want(ErrMiscompareVerify) {
		t.Fatalf("verify mismatch: %s", senseOf(r))
	}
	if r.Sense[0]&0x80 == 0 || be32(r.Sense[3:7]) != 700 {
		t.Fatalf("INFORMATION % x, want valid 700", r.Sense[:7])
	}
	// VERIFY(16) BYTCHK=3: one block compared with each of 2 blocks
	if r := f.exec(0, hx(t, "8f 06 0000000000000005 00000002 00 00"), pat[:512]); senseOf(r) != want(ErrMiscompareVerify) {
		t.Fatalf("bytchk 3: %s", senseOf(r))
	}
	// WRITE(10) FUA syncs; with nv_cache it does not.
	f.exec(0, hx(t, "2a 08 00000000 00 0001 00"), pat[:512])
	if f.mem.syncs != 1 {
		t.Fatalf("FUA write: %d syncs, want 1", f.mem.syncs)
	}
	f.dev.SetCache(true, false)
	f.clearUA(t, 0)
	f.exec(0, hx(t, "2a 08 00000000 00 0001 00"), pat[:512])
	f.exec(0, hx(t, "35 00 00000000 00 0000 00"), nil)
	if f.mem.syncs != 1 {
		t.Fatalf("nv_cache: %d syncs, want 1", f.mem.syncs)
	}
}

func TestBackendErrors(t *testing.T) {
	cases := []struct {
		name   string
		inject func(*memBackend)
		cdb    string
		want   *SenseError
	}{
		{"read EIO", func(m *memBackend) { m.failRead = syscall.EIO }, "28 00 00000000 00 0001 00", ErrReadError},
		{"write EIO", func(m *memBackend) { m.failWrit = syscall.EIO }, "2a 00 00000000 00 0001 00", ErrWriteError},
		{"write ENOSPC", func(m *memBackend) { m.failWrit = syscall.ENOSPC }, "2a 00 00000000 00 0001 00", ErrSpaceAllocationFailed},
		{"write EROFS", func(m *memBackend) { m.failWrit = syscall.EROFS }, "2a 00 00000000 00 0001 00", ErrWriteProtected},
		{"sync EIO", func(m *memBackend) { m.failSync = syscall.EIO }, "35 00 00000000 00 0000 00", ErrWriteError},
		{"write EDQUOT wrapped", func(m *memBackend) { m.failWrit = fmt.Errorf("vdisk: write: %w", syscall.EDQUOT) }, "2a 00 00000000 00 0001 00", ErrSpaceAllocationFailed},
		{"write EOPNOTSUPP", func(m *memBackend) { m.failWrit = syscall.EOPNOTSUPP }, "2a 00 00000000 00 0001 00", ErrInvalidFieldInCDB},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 16, DeviceConfig{})
			c.inject(f.mem)
			r := f.exec(0, hx(t, c.cdb), make([]byte, 512))
			if senseOf(r) != want(c.want) {
				t.Fatalf("got %s, want %s", senseOf(r), want(c.want))
			}
		})
	}
}
