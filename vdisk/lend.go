package vdisk

import (
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Lender is implemented by backends that can lend the bytes of a large
// read instead of copying them into a buffer: a read-only mapping of the
// page cache (fileio in memory) or of zero pages (nullio, and holes). The
// transport hands the lent slice to the socket's writev, so the data is
// copied once, from the page cache into the socket.
//
// LendAt returns n bytes at off and the Loan that keeps them mapped, or
// ok false when the range cannot be lent (the caller reads it with
// ReadAt). The caller must Return a non-nil loan once nothing refers to
// the bytes any more, and must never read or write them from Go: only a
// system call may. A file shrunk underneath a mapping makes that call
// fail with EFAULT (a fault inside a system call is an error, not a
// signal); Go code touching the bytes would die of SIGBUS, and writing
// them of SIGSEGV.
type Lender interface {
	LendAt(off int64, n int) (p []byte, l Loan, ok bool)
}

// Loan keeps lent bytes mapped until it is returned.
type Loan interface {
	// Return gives the loan back; the bytes it lent must no longer be
	// used by anyone.
	Return()
}

// LendMin is the smallest read worth lending: below it the copy is
// cheaper than the look-up of holes and the mapping's bookkeeping.
const LendMin = 64 << 10

// zeroLendSize is the largest read lent from the shared zero mapping.
const zeroLendSize = 16 << 20

// zeroMap is a read-only private anonymous mapping: every page of it is
// the kernel's zero page, so its zeroLendSize bytes cost no memory and a
// writev copying from it reads the same cache-hot page. It is mapped on
// first use and never unmapped; nil when the mapping failed.
var zeroMap = sync.OnceValue(func() []byte {
	b, err := unix.Mmap(-1, 0, zeroLendSize, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	return b
})

// lendZeroes lends n zero bytes from zeroMap; nothing to return.
func lendZeroes(n int) ([]byte, Loan, bool) {
	z := zeroMap()
	if n > len(z) {
		return nil, nil, false
	}
	return z[:n:n], nil, true
}

// LendAt lends zeroes: a null device reads as zeroes everywhere.
func (b *nullBackend) LendAt(off int64, n int) ([]byte, Loan, bool) {
	return lendZeroes(n)
}

// fileMap is a shared read-only mapping of a backing file, lent to reads.
// Each loan holds a reference; a mapping that the backend no longer lends
// from (it closed) is retired, and unmapped when the last loan comes
// back, so that no writev still queued on some connection refers to an
// address range that is gone (or, worse, reused).
type fileMap struct {
	b    []byte
	refs atomic.Int64
}

// mapRetired is the bit of fileMap.refs set when the mapping is retired;
// mapGone is set by whoever unmaps it, once.
const (
	mapRetired = 1 << 62
	mapGone    = 1 << 61
)

// acquire takes a reference on m; false when m was retired meanwhile.
func (m *fileMap) acquire() bool {
	if m.refs.Add(1)&mapRetired == 0 {
		return true
	}
	m.Return()
	return false
}

// Return drops a loan's reference and unmaps a retired mapping when it
// was the last.
func (m *fileMap) Return() {
	if m.refs.Add(-1) == mapRetired {
		m.unmap()
	}
}

// retire stops lending from m; it is unmapped now or when its last loan
// comes back.
func (m *fileMap) retire() {
	if m.refs.Add(mapRetired) == mapRetired {
		m.unmap()
	}
}

func (m *fileMap) unmap() {
	if m.refs.CompareAndSwap(mapRetired, mapRetired|mapGone) {
		unix.Munmap(m.b)
	}
}

// fileLend is a fileBackend's lending state.
type fileLend struct {
	mu     sync.Mutex // serialises mapping and retiring
	cur    atomic.Pointer[fileMap]
	failed atomic.Bool // mapping failed once: never tried again
	closed bool        // guarded by mu
}

// LendAt lends n bytes at off from a mapping of the file, when the file
// lives in memory (tmpfs or ramfs without swap: the lent pages are there,
// and the writev that copies them waits for no device) and was not
// opened O_DIRECT. cachestat(2) counts the pages of the range that the
// file holds: a range held whole is lent from the file's mapping, one
// that is all hole from the zero mapping, and one that mixes both is
// read (a fault on a hole of a tmpfs mapping would allocate its page: a
// sparse image would fill up with reads). lseek's SEEK_HOLE would say as
// much but scans a tmpfs file up to its next hole, to its end in a file
// without holes; mincore(2) looks every page up, 5-10 times slower than
// cachestat. Kernels before 6.5 have no cachestat: nothing is lent.
func (b *fileBackend) LendAt(off int64, n int) ([]byte, Loan, bool) {
	if b.try != tryMemory || n < LendMin || b.lend.failed.Load() || !memoryStays() {
		return nil, nil, false
	}
	end := off + int64(n)
	switch b.held(off, end) {
	case heldAll:
	case heldNone:
		// A hole, or a range past the end of a file shrunk
		// underneath: zeroes only for a hole (a short read is an
		// error, as with pread).
		if size, ok := b.rawSize(); !ok || end > size {
			return nil, nil, false
		}
		return lendZeroes(n)
	default:
		return nil, nil, false
	}
	m := b.lend.cur.Load()
	if m == nil || !m.acquire() {
		if m = b.mapFile(); m == nil {
			return nil, nil, false
		}
	}
	if off < 0 || end > int64(len(m.b)) {
		// The file grew after it was mapped: read it.
		m.Return()
		return nil, nil, false
	}
	return m.b[off:end:end], m, true
}

// What cachestat says of a range of a file.
const (
	heldSome = iota // some pages are in the file, some are holes
	heldAll         // every page is in the file (in memory)
	heldNone        // no page: holes, or past the end of the file
)

// pageSize is the size of the pages cachestat counts.
var pageSize = int64(os.Getpagesize())

// held reports whether the file holds the pages of [off, end) in
// memory, with cachestat(2). A kernel without it (ENOSYS) turns lending
// off for the backend.
//
// cachestat and rawSize's fstat are made as raw system calls, as the
// connection's socket calls are (iscsi's quietSyscalls): neither sleeps
// (a look-up in the page cache of a file in memory, a copy of its
// inode's attributes), and the runtime's entersyscall would wake its
// monitor thread (sysmon) on the first call after every idle moment.
// With them made through unix.Syscall, a 1 MiB read lent by fileio
// cost a context switch more than nullio's (2.0 against 0.9 per read in
// the benchmark, reading holes from the same zero mapping as nullio).
func (b *fileBackend) held(off, end int64) int {
	first := off &^ (pageSize - 1)
	pages := uint64((end - first + pageSize - 1) / pageSize)
	rng := [2]uint64{uint64(first), uint64(end - first)} // struct cachestat_range
	var cs [5]uint64                                     // struct cachestat; nr_cache first
	_, _, errno := unix.RawSyscall6(unix.SYS_CACHESTAT, uintptr(b.fd), uintptr(unsafe.Pointer(&rng)), uintptr(unsafe.Pointer(&cs)), 0, 0, 0)
	switch {
	case errno == unix.ENOSYS:
		b.lend.failed.Store(true)
		return heldSome
	case errno != 0:
		return heldSome
	case cs[0] == pages:
		return heldAll
	case cs[0] == 0:
		return heldNone
	}
	return heldSome
}

// rawSize is Size as a raw system call (see held); false when fstat
// failed.
func (b *fileBackend) rawSize() (int64, bool) {
	var st unix.Stat_t
	_, _, errno := unix.RawSyscall(unix.SYS_FSTAT, uintptr(b.fd), uintptr(unsafe.Pointer(&st)), 0)
	return st.Size, errno == 0
}

// mapFile maps the whole file, as long as it is now, and returns the
// mapping with a reference taken; nil when the backend is closed or the
// mapping failed.
func (b *fileBackend) mapFile() *fileMap {
	if b.lend.failed.Load() {
		return nil
	}
	b.lend.mu.Lock()
	defer b.lend.mu.Unlock()
	if b.lend.closed {
		return nil
	}
	if m := b.lend.cur.Load(); m != nil && m.acquire() {
		return m
	}
	size, err := b.Size()
	if err != nil || size <= 0 || int64(int(size)) != size {
		b.lend.failed.Store(true)
		return nil
	}
	p, err := unix.Mmap(b.fd, 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		b.lend.failed.Store(true)
		return nil
	}
	m := &fileMap{b: p}
	m.refs.Store(1)
	b.lend.cur.Store(m)
	return m
}

// closeLend retires the file's mapping: it is unmapped once the last
// loan comes back; the backend lends no more.
func (b *fileBackend) closeLend() {
	b.lend.mu.Lock()
	defer b.lend.mu.Unlock()
	b.lend.closed = true
	if m := b.lend.cur.Swap(nil); m != nil {
		m.retire()
	}
}
