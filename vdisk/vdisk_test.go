package vdisk

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.img")
	if err := os.WriteFile(existing, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.img")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec Spec
		want string // substring of the error
	}{
		{"no handler", Spec{Filename: existing}, "no handler given"},
		{"unknown handler", Spec{Handler: "vdisk_tape"}, `unknown handler "vdisk_tape"`},
		{"fileio no filename", Spec{Handler: FileIO, Size: 1 << 20}, "vdisk_fileio needs a filename"},
		{"fileio missing without size", Spec{Handler: FileIO, Filename: filepath.Join(dir, "nope.img")},
			"vdisk: open " + filepath.Join(dir, "nope.img") + ": no such file or directory (set size to create it)"},
		{"fileio missing directory", Spec{Handler: FileIO, Filename: filepath.Join(dir, "sub", "x.img"), Size: 1 << 20},
			"directory " + filepath.Join(dir, "sub") + ": no such file or directory (create the directory first)"},
		{"fileio read-only missing", Spec{Handler: FileIO, Filename: filepath.Join(dir, "ro.img"), Size: 1 << 20, ReadOnly: true},
			"a read-only device is never created"},
		{"fileio directory", Spec{Handler: FileIO, Filename: dir}, "is a directory"},
		{"fileio char device", Spec{Handler: FileIO, Filename: "/dev/null"}, "use handler vdisk_blockio"},
		{"fileio empty file", Spec{Handler: FileIO, Filename: empty}, "is empty (set size"},
		{"fileio read-only too small", Spec{Handler: FileIO, Filename: existing, Size: 8192, ReadOnly: true}, "cannot be extended"},
		{"fileio existing too small", Spec{Handler: FileIO, Filename: existing, Size: 8192},
			"holds 4096 bytes, less than size 8192; an existing file is not extended when its device first opens it (grow it yourself, e.g. truncate -s 8192 " + existing + ", or drop size"},
		{"blockio regular file", Spec{Handler: BlockIO, Filename: existing}, "is not a block device (use handler vdisk_fileio"},
		{"blockio char device", Spec{Handler: BlockIO, Filename: "/dev/null"}, "is not a block device"},
		{"blockio directory", Spec{Handler: BlockIO, Filename: dir}, "is a directory"},
		{"blockio missing", Spec{Handler: BlockIO, Filename: filepath.Join(dir, "sdz")}, "needs an existing block device"},
		{"nullio no size", Spec{Handler: NullIO}, "needs a size greater than zero"},
		{"nullio filename", Spec{Handler: NullIO, Size: 1, Filename: existing}, "takes no filename"},
		{"vcdrom empty image", Spec{Handler: CDROM, Filename: empty}, "a read-only device needs an image"},
		{"vcdrom missing", Spec{Handler: CDROM, Filename: filepath.Join(dir, "x.iso"), Size: 1 << 20}, "never created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(tt.spec)
			if err == nil {
				b.Close()
				t.Fatalf("Open(%+v) succeeded, want error containing %q", tt.spec, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open(%+v) = %q, want it to contain %q", tt.spec, err, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "ro.img")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open created the file: %v", err)
	}
	if fi, err := os.Stat(existing); err != nil || fi.Size() != 4096 {
		t.Errorf("a refused open changed the existing file: %v %v", fi, err)
	}
}

func TestFileIOSizing(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name     string
		existing int64 // -1: no file
		size     int64
		want     int64
		extend   bool
	}{
		{"create sparse", -1, 64 * mib, 64 * mib, false},
		{"extend smaller", 4096, 8 * mib, 8 * mib, true},
		{"never shrink", 8 * mib, 4096, 8 * mib, false},
		{"size zero takes file size", 3 * mib, 0, 3 * mib, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "disk.img")
			if tt.existing >= 0 {
				if err := os.WriteFile(name, bytes.Repeat([]byte{0xAB}, int(tt.existing)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			b, err := Open(Spec{Handler: FileIO, Filename: name, Size: tt.size, Extend: tt.extend})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			got, err := b.Size()
			if err != nil || got != tt.want {
				t.Fatalf("Size() = %d, %v; want %d", got, err, tt.want)
			}
			var st unix.Stat_t
			if err := unix.Stat(name, &st); err != nil {
				t.Fatal(err)
			}
			if allocated := st.Blocks * 512; allocated > tt.existing+mib {
				t.Errorf("file has %d bytes allocated; want it sparse (at most %d)", allocated, tt.existing+mib)
			}
			if tt.existing > 0 {
				p := make([]byte, 16)
				if _, err := b.ReadAt(p, 0); err != nil || p[0] != 0xAB {
					t.Errorf("existing data lost: %x, %v", p, err)
				}
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	name := filepath.Join(t.TempDir(), "ro.img")
	if err := os.WriteFile(name, make([]byte, 1<<16), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []Spec{
		{Handler: FileIO, Filename: name, ReadOnly: true},
		{Handler: FileIO, Filename: name, ReadOnly: true, ODirect: true},
		{Handler: CDROM, Filename: name},
		{Handler: NullIO, Size: 1 << 20, ReadOnly: true},
	} {
		t.Run(string(spec.Handler), func(t *testing.T) {
			b, err := Open(spec)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, err := b.WriteAt(make([]byte, 512), 0); !errors.Is(err, ErrReadOnly) {
				t.Errorf("WriteAt = %v, want ErrReadOnly", err)
			}
			if u, ok := b.(Unmapper); ok {
				if err := u.Unmap(0, 4096); !errors.Is(err, ErrReadOnly) {
					t.Errorf("Unmap = %v, want ErrReadOnly", err)
				}
			}
			if _, err := b.ReadAt(make([]byte, 512), 0); err != nil {
				t.Errorf("ReadAt = %v", err)
			}
		})
	}
}

func TestNullIO(t *testing.T) {
	b, err := Open(Spec{Handler: NullIO, Size: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	p := bytes.Repeat([]byte{0xFF}, 4096)
	if n, err := b.WriteAt(p, 1<<30); n != len(p) || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	if n, err := b.ReadAt(p, 1<<30); n != len(p) || err != nil || !bytes.Equal(p, make([]byte, 4096)) {
		t.Fatalf("ReadAt = %d, %v, data not zeroed", n, err)
	}
	if size, _ := b.Size(); size != 1<<40 {
		t.Errorf("Size = %d", size)
	}
	if err := b.Sync(); err != nil {
		t.Error(err)
	}
	if err := b.(Unmapper).Unmap(0, 1<<20); err != nil {
		t.Error(err)
	}
	if err := b.(Zeroer).ZeroRange(0, 1<<20); err != nil {
		t.Error(err)
	}
}

// TestFileIOConcurrent writes disjoint blocks from many goroutines and
// reads them back; run with -race.
func TestFileIOConcurrent(t *testing.T) {
	for _, spec := range []Spec{
		{Handler: FileIO, Size: 1 << 20},
		{Handler: FileIO, Size: 1 << 20, ODirect: true},
		{Handler: FileIO, Size: 1 << 20, WriteThrough: true},
	} {
		name := "buffered"
		if spec.ODirect {
			name = "odirect"
		} else if spec.WriteThrough {
			name = "writethrough"
		}
		t.Run(name, func(t *testing.T) {
			spec.Filename = filepath.Join(t.TempDir(), "disk.img")
			b, err := Open(spec)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			const workers, blocks, bs = 8, 32, 512
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := w; i < blocks*workers; i += workers {
						p := bytes.Repeat([]byte{byte(i)}, bs)
						if _, err := b.WriteAt(p, int64(i*bs)); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
			p := make([]byte, bs)
			for i := range blocks * workers {
				if _, err := b.ReadAt(p, int64(i*bs)); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(p, bytes.Repeat([]byte{byte(i)}, bs)) {
					t.Fatalf("block %d holds %x...", i, p[:8])
				}
			}
		})
	}
}

// TestDirectFileBounce checks the bounce and read-modify-write paths against
// an in-memory model, with every mix of aligned and unaligned memory,
// offsets and lengths, including requests larger than a bounce buffer.
func TestDirectFileBounce(t *testing.T) {
	const size = 3 * bounceSize
	f, err := os.Create(filepath.Join(t.TempDir(), "d.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	d := &directFile{f: f, align: 4096, memAlign: 4096}
	model := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 120 {
		off := r.Int64N(size - 1)
		n := 1 + r.IntN(min(int(size-off), 2*bounceSize+100))
		switch i % 3 {
		case 0: // block aligned
			off &^= 511
			n = max(512, n&^511)
			n = min(n, int(size-off))
		}
		buf := AlignedBuffer(n + 1)
		if r.IntN(2) == 0 {
			buf = buf[1:]
		} else {
			buf = buf[:n]
		}
		if r.IntN(2) == 0 {
			for j := range buf {
				buf[j] = byte(r.Uint32())
			}
			if w, err := d.WriteAt(buf, off); w != n || err != nil {
				t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", n, off, w, err)
			}
			copy(model[off:], buf)
		} else {
			if got, err := d.ReadAt(buf, off); got != n || err != nil {
				t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", n, off, got, err)
			}
			if !bytes.Equal(buf, model[off:off+int64(n)]) {
				t.Fatalf("ReadAt(%d bytes, %d) differs from what was written", n, off)
			}
		}
	}
	all := make([]byte, size)
	if _, err := f.ReadAt(all, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all, model) {
		t.Fatal("file differs from model")
	}
}

func TestAlignedBuffer(t *testing.T) {
	for _, n := range []int{0, 1, 512, 4096, 65537} {
		b := AlignedBuffer(n)
		if len(b) != n || cap(b) != n {
			t.Errorf("AlignedBuffer(%d) has len %d cap %d", n, len(b), cap(b))
		}
		d := directFile{align: 512, memAlign: 4096}
		if n%512 == 0 && !d.aligned(b, 0) {
			t.Errorf("AlignedBuffer(%d) is not 4096-aligned", n)
		}
	}
}

func TestFileIOUnmapAndMapStatus(t *testing.T) {
	name := filepath.Join(t.TempDir(), "disk.img")
	b, err := Open(Spec{Handler: FileIO, Filename: name, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := b.(Mapper)
	if mapped, n, err := m.MapStatus(0, 1<<20); err != nil || mapped || n != 1<<20 {
		t.Fatalf("fresh file: MapStatus = %v, %d, %v; want a hole of 1 MiB", mapped, n, err)
	}
	if _, err := b.WriteAt(bytes.Repeat([]byte{1}, 256<<10), 256<<10); err != nil {
		t.Fatal(err)
	}
	if mapped, n, err := m.MapStatus(0, 1<<20); err != nil || mapped || n != 256<<10 {
		t.Errorf("MapStatus(0) = %v, %d, %v; want hole of 256 KiB", mapped, n, err)
	}
	if mapped, n, err := m.MapStatus(256<<10, 1<<20-256<<10); err != nil || !mapped || n != 256<<10 {
		t.Errorf("MapStatus(256K) = %v, %d, %v; want data of 256 KiB", mapped, n, err)
	}
	if err := b.(Unmapper).Unmap(256<<10, 128<<10); err != nil {
		t.Fatal(err)
	}
	if mapped, n, err := m.MapStatus(256<<10, 1<<20-256<<10); err != nil || mapped || n != 128<<10 {
		t.Errorf("after Unmap: MapStatus(256K) = %v, %d, %v; want hole of 128 KiB", mapped, n, err)
	}
	p := make([]byte, 128<<10)
	if _, err := b.ReadAt(p, 256<<10); err != nil || !bytes.Equal(p, make([]byte, len(p))) {
		t.Errorf("unmapped range does not read as zeroes (%v)", err)
	}
	if size, _ := b.Size(); size != 1<<20 {
		t.Errorf("Unmap changed the size to %d", size)
	}
	if _, err := b.WriteAt(bytes.Repeat([]byte{7}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.(Zeroer).ZeroRange(0, 4096); err != nil {
		t.Fatal(err)
	}
	if mapped, _, err := m.MapStatus(0, 4096); err != nil || mapped {
		t.Errorf("after ZeroRange: mapped %v, %v", mapped, err)
	}
}

// TestBlockIOLoop exercises blockio on a loop device when this machine lets
// us attach one (root and a working losetup); otherwise it is skipped and
// only the "not a block device" errors above are covered.
func TestBlockIOLoop(t *testing.T) {
	img := filepath.Join(t.TempDir(), "loop.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 4<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Skipf("cannot attach a loop device here: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", dev).Run()

	b, err := Open(Spec{Handler: BlockIO, Filename: dev})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if size, err := b.Size(); err != nil || size != 4<<20 {
		t.Fatalf("Size = %d, %v; want 4 MiB", size, err)
	}
	p := bytes.Repeat([]byte{0x5A}, 1000) // unaligned length and memory
	if _, err := b.WriteAt(p, 512); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	q := make([]byte, 1000)
	if _, err := b.ReadAt(q, 512); err != nil || !bytes.Equal(p, q) {
		t.Fatalf("read back %x..., %v", q[:8], err)
	}
	if err := b.(Unmapper).Unmap(0, 1<<20); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("Unmap = %v", err)
	}
	if _, err := b.WriteAt(p, 4096); err != nil {
		t.Fatal(err)
	}
	if err := b.(Zeroer).ZeroRange(4096, 4096); err != nil {
		t.Fatalf("ZeroRange = %v", err)
	}
	if _, err := b.ReadAt(q, 4096); err != nil || !bytes.Equal(q, make([]byte, len(q))) {
		t.Errorf("after ZeroRange read %x..., %v", q[:8], err)
	}
	if _, err := Open(Spec{Handler: BlockIO, Filename: dev, Size: 8 << 20}); err == nil || !strings.Contains(err.Error(), "cannot be extended") {
		t.Errorf("Open with size larger than device = %v", err)
	}
}
