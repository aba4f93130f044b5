package vdisk

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// shmDir returns a directory of its own in /dev/shm (tmpfs), removed when
// the test ends; the test is skipped without one, or when swap makes
// tmpfs pages go to a device (nothing is lent then).
func shmDir(t testing.TB) string {
	t.Helper()
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) != nil || st.Type != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	if !memoryStays() {
		t.Skip("swap is configured: tmpfs pages may be on a device, nothing is lent")
	}
	dir, err := os.MkdirTemp("/dev/shm", "vdisk-lend-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// sent is what a system call reads from p: it is written to a pipe and
// read back, as the transport's writev reads lent bytes (a test may look
// at them from Go; the daemon never does).
func sent(t *testing.T, p []byte) ([]byte, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "sent")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := unix.Write(int(f.Fd()), p); err != nil {
		return nil, err
	}
	return os.ReadFile(f.Name())
}

// allocated is the bytes the file holds (st_blocks), not its size.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// mapped reports whether p's pages are mapped in this process (mincore
// fails with ENOMEM on an address range that is not).
func mapped(p []byte) bool {
	vec := make([]byte, (len(p)+os.Getpagesize()-1)/os.Getpagesize())
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), uintptr(unsafe.Pointer(&vec[0])))
	return errno != unix.ENOMEM
}

// openFilled opens spec's fileio backend (Handler set here) and writes
// fill over [from, to) in 1 MiB writes.
func openFilled(t testing.TB, s Spec, fill byte, from, to int64) Backend {
	t.Helper()
	s.Handler = FileIO
	b, err := Open(s)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{fill}, 1<<20)
	for off := from; off < to; off += int64(len(chunk)) {
		if _, err := b.WriteAt(chunk[:min(int64(len(chunk)), to-off)], off); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// A fileio backend in tmpfs lends data from a mapping of its file, holes
// from the zero mapping, and refuses what it must read: small reads,
// ranges mixing data and holes, ranges past the mapping.
func TestFileIOLend(t *testing.T) {
	dir := shmDir(t)
	path := filepath.Join(dir, "lend.img")
	b, err := Open(Spec{Handler: FileIO, Filename: path, Size: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pattern := make([]byte, 1<<20)
	for i := range pattern {
		pattern[i] = byte(i*7 + i>>12)
	}
	if _, err := b.WriteAt(pattern, 1<<20); err != nil {
		t.Fatal(err)
	}
	before := allocated(t, path)
	l := b.(Lender)

	p, loan, ok := l.LendAt(1<<20, 1<<20)
	if !ok || loan == nil {
		t.Fatalf("LendAt of data = %v, %v; want a loan from the file's mapping", ok, loan)
	}
	if got, err := sent(t, p); err != nil || !bytes.Equal(got, pattern) {
		t.Fatalf("lent data: %v, equal %v", err, bytes.Equal(got, pattern))
	}
	loan.Return()

	// A hole is lent as zeroes, and reading it allocates nothing in the
	// sparse file.
	p, loan, ok = l.LendAt(3<<20, 1<<20)
	if !ok || loan != nil {
		t.Fatalf("LendAt of a hole = %v, %v; want zeroes with nothing to return", ok, loan)
	}
	if got, err := sent(t, p); err != nil || !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Fatalf("lent hole: %v", err)
	}
	if after := allocated(t, path); after != before {
		t.Errorf("the file holds %d bytes after a hole was lent, %d before", after, before)
	}

	for _, c := range []struct {
		name string
		off  int64
		n    int
	}{
		{"small read", 1 << 20, LendMin - 512},
		{"data then a hole", 2<<20 - 64<<10, 128 << 10},
		{"a hole then data", 1<<20 - 64<<10, 128 << 10},
		{"a hole past the end", 4<<20 - 64<<10, 128 << 10},
		{"past the end", 5 << 20, 1 << 20},
	} {
		if _, _, ok := l.LendAt(c.off, c.n); ok {
			t.Errorf("%s: lent, want it read", c.name)
		}
	}

	// The file grew after it was mapped (by another writer): the new
	// range is read, not lent past the mapping.
	if err := os.Truncate(path, 8<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteAt(pattern, 6<<20); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := l.LendAt(6<<20, 1<<20); ok {
		t.Error("lent beyond the mapping's end")
	}
}

// A mapping outlives the backend's Close while a loan holds it, and is
// unmapped when the last loan comes back; a backend closed lends no more.
func TestFileIOLendOutlivesClose(t *testing.T) {
	dir := shmDir(t)
	b := openFilled(t, Spec{Filename: filepath.Join(dir, "close.img"), Size: 2 << 20}, 0x5a, 0, 1<<20)
	pattern := bytes.Repeat([]byte{0x5a}, 1<<20)
	l := b.(Lender)
	p1, loan1, ok1 := l.LendAt(0, 1<<20)
	p2, loan2, ok2 := l.LendAt(0, 512<<10)
	if !ok1 || !ok2 {
		t.Fatal("not lent")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := sent(t, p1); err != nil || !bytes.Equal(got, pattern) {
		t.Fatalf("lent data after Close: %v", err)
	}
	loan1.Return()
	if !mapped(p2) {
		t.Fatal("unmapped while a loan still holds it")
	}
	loan2.Return()
	if mapped(p2) {
		t.Error("still mapped after the last loan came back from a closed backend")
	}
	if _, _, ok := l.LendAt(0, 1<<20); ok {
		t.Error("a closed backend lent")
	}
}

// A file shrunk under a loan makes the system call that reads the lent
// bytes fail with EFAULT: an error for the caller, not a signal.
func TestFileIOLendTruncated(t *testing.T) {
	dir := shmDir(t)
	path := filepath.Join(dir, "shrink.img")
	b := openFilled(t, Spec{Filename: path, Size: 2 << 20}, 1, 0, 2<<20)
	defer b.Close()
	p, loan, ok := b.(Lender).LendAt(1<<20, 1<<20)
	if !ok {
		t.Fatal("not lent")
	}
	defer loan.Return()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := sent(t, p); !errors.Is(err, unix.EFAULT) {
		t.Errorf("writing lent bytes of a truncated file: %v, want EFAULT", err)
	}
}

// Nothing is lent from a file that does not live in memory, or is opened
// O_DIRECT: the writev that copies lent pages would wait for the device.
func TestFileIOLendOnlyInMemory(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil && (st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC) {
		t.Skip("the temporary directory is in memory")
	}
	for _, direct := range []bool{false, true} {
		b, _ := tryOpen(t, dir, Spec{ODirect: direct})
		if _, err := b.WriteAt(make([]byte, 1<<20), 0); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := b.(Lender).LendAt(0, 1<<20); ok {
			t.Errorf("O_DIRECT %v: lent from a file on a device", direct)
		}
		b.Close()
		os.Remove(filepath.Join(dir, "try.img"))
	}
}

// nullio lends zeroes up to the zero mapping's size.
func TestNullIOLend(t *testing.T) {
	b, err := Open(Spec{Handler: NullIO, Size: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	l := b.(Lender)
	p, loan, ok := l.LendAt(0, 1<<20)
	if !ok || loan != nil || len(p) != 1<<20 {
		t.Fatalf("LendAt = %d bytes, %v, %v", len(p), loan, ok)
	}
	if got, err := sent(t, p); err != nil || !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Fatalf("lent zeroes: %v", err)
	}
	if _, _, ok := l.LendAt(0, zeroLendSize+512); ok {
		t.Error("lent more than the zero mapping holds")
	}
}

// Lending and returning allocates nothing.
func TestLendAllocs(t *testing.T) {
	dir := shmDir(t)
	b := openFilled(t, Spec{Filename: filepath.Join(dir, "allocs.img"), Size: 2 << 20}, 0, 0, 1<<20)
	defer b.Close()
	l := b.(Lender)
	if _, loan, ok := l.LendAt(0, 1<<20); ok {
		loan.Return() // the first maps the file
	}
	n := testing.AllocsPerRun(100, func() {
		if _, loan, ok := l.LendAt(0, 1<<20); ok {
			loan.Return()
		}
	})
	if n > 0 {
		t.Errorf("LendAt and Return allocate %v times", n)
	}
}

// BenchmarkFileIOLend lends 1 MiB reads from a 256 MiB tmpfs file
// without holes, cycling through it: the cost of the look-up of holes.
func BenchmarkFileIOLend(b *testing.B) {
	dir := shmDir(b)
	be := openFilled(b, Spec{Filename: filepath.Join(dir, "bench.img"), Size: 256 << 20}, 1, 0, 256<<20)
	defer be.Close()
	l := be.(Lender)
	var sum byte
	for off := int64(0); off < 256<<20; off += 1 << 20 {
		// The transport's writev faults the pages in: so does this.
		p, loan, _ := l.LendAt(off, 1<<20)
		for i := 0; i < len(p); i += 4096 {
			sum += p[i]
		}
		loan.Return()
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, loan, ok := l.LendAt(int64(i%256)<<20, 1<<20)
		if !ok || loan == nil {
			b.Fatal("not lent")
		}
		loan.Return()
	}
}

// A resize opens the file anew (Spec.Extend) and closes the old backend
// once its commands drained: the new backend lends the grown range from
// a mapping of its own, the old mapping stays until its loans come back.
func TestFileIOLendResize(t *testing.T) {
	dir := shmDir(t)
	path := filepath.Join(dir, "grow.img")
	old := openFilled(t, Spec{Filename: path, Size: 2 << 20}, 3, 0, 2<<20)
	p, loan, ok := old.(Lender).LendAt(1<<20, 1<<20)
	if !ok {
		t.Fatal("not lent")
	}
	grown := openFilled(t, Spec{Filename: path, Size: 4 << 20, Extend: true}, 4, 2<<20, 4<<20)
	defer grown.Close()
	q, loan2, ok := grown.(Lender).LendAt(3<<20, 1<<20)
	if !ok {
		t.Fatal("the grown range is not lent by the reopened backend")
	}
	defer loan2.Return()
	if got, err := sent(t, q); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{4}, 1<<20)) {
		t.Fatalf("grown range: %v", err)
	}
	old.Close()
	if got, err := sent(t, p); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{3}, 1<<20)) {
		t.Fatalf("the old backend's loan after its Close: %v", err)
	}
	loan.Return()
	if mapped(p) {
		t.Error("the old mapping outlived its last loan")
	}
}

// BenchmarkLentCopy measures the copy the kernel makes of a lent 1 MiB
// read, as writev does, by where it comes from: the zero mapping (nullio:
// one cache-hot page), and a 1 GiB tmpfs file read through from start to
// end (fileio: every byte from memory). The copy goes to a 16 MiB tmpfs
// ring with pwrite, as socket buffers are filled. The gap is what
// reading distinct pages from memory costs against one page in cache: a
// part of why fileio's 1 MiB reads trail nullio's (docs/benchmarks.md,
// "Latest results").
func BenchmarkLentCopy(b *testing.B) {
	const mib = 1 << 20
	dir := shmDir(b)
	ring, err := os.Create(filepath.Join(dir, "ring"))
	if err != nil {
		b.Fatal(err)
	}
	defer ring.Close()
	run := func(b *testing.B, l Lender, span int64) {
		// A first pass maps the pages in, as the daemon's earlier reads
		// have: what is timed is the copy alone.
		for off := int64(0); off < span; off += mib {
			p, loan, ok := l.LendAt(off, mib)
			if !ok {
				b.Fatal("not lent")
			}
			unix.Pwrite(int(ring.Fd()), p, 0)
			if loan != nil {
				loan.Return()
			}
		}
		b.SetBytes(mib)
		for i := 0; b.Loop(); i++ {
			p, loan, ok := l.LendAt(int64(i)*mib%span, mib)
			if !ok {
				b.Fatal("not lent")
			}
			if _, err := unix.Pwrite(int(ring.Fd()), p, int64(i%16)*mib); err != nil {
				b.Fatal(err)
			}
			if loan != nil {
				loan.Return()
			}
		}
	}
	b.Run("nullio", func(b *testing.B) {
		be, err := Open(Spec{Handler: NullIO, Size: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		run(b, be.(Lender), 1<<30)
	})
	b.Run("fileio-1GiB", func(b *testing.B) {
		be := openFilled(b, Spec{Filename: filepath.Join(dir, "copy.img"), Size: 1 << 30}, 1, 0, 1<<30)
		defer be.Close()
		run(b, be.(Lender), 1<<30)
	})
}
