package vdisk

import (
	"errors"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// NoWaiter is implemented by backends that can try a read or a write
// without waiting for a device, so that a caller on a goroutine that must
// not block (the connection's reader) runs the I/O itself when it is
// served from memory, and hands it to a goroutine that may wait only
// when it is not.
//
// TryReadAt and TryWriteAt return ErrWouldBlock when the I/O would wait
// for storage, with n the bytes done before it would: a read's first n
// bytes of p are filled, to be read again; a write's are on the medium,
// so a caller with n > 0 finishes the write (WriteAt of p[n:]) rather
// than give it up, as the medium has changed. Other errors are the I/O's
// own.
type NoWaiter interface {
	TryReadAt(p []byte, off int64) (int, error)
	TryWriteAt(p []byte, off int64) (int, error)
}

// ErrWouldBlock says that an I/O tried with NoWaiter would have waited for
// storage; the caller does it with ReadAt or WriteAt where it may wait.
var ErrWouldBlock = errors.New("vdisk: the I/O would wait for storage")

// TryReadAt fills p with zeroes: a null device never waits.
func (b *nullBackend) TryReadAt(p []byte, off int64) (int, error) { return b.ReadAt(p, off) }

// TryWriteAt discards p: a null device never waits.
func (b *nullBackend) TryWriteAt(p []byte, off int64) (int, error) { return b.WriteAt(p, off) }

// How a fileBackend tries I/O without waiting.
const (
	// tryNever: the file is opened with O_DIRECT, every I/O reaches the
	// device.
	tryNever uint8 = iota
	// tryMemory: the file lives in memory (tmpfs, ramfs): its I/O
	// waits for no device, unless its pages can be swapped out.
	tryMemory
	// tryKernel: the page cache of a file system with a device behind
	// it; preadv2/pwritev2 with RWF_NOWAIT say whether the pages are
	// there (a file system without RWF_NOWAIT support answers
	// EOPNOTSUPP once, and that direction is not tried again).
	tryKernel
)

// tryMode says how b's I/O is tried without waiting, from the file
// system holding f (statfs) and whether it is opened O_DIRECT.
func tryMode(fd int, direct bool) uint8 {
	if direct {
		return tryNever
	}
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil {
		return tryNever
	}
	switch st.Type {
	case unix.TMPFS_MAGIC, unix.RAMFS_MAGIC:
		return tryMemory
	}
	return tryKernel
}

// TryReadAt reads len(p) bytes at off when they are in memory.
func (b *fileBackend) TryReadAt(p []byte, off int64) (int, error) {
	switch b.try {
	case tryMemory:
		if !memoryStays() {
			return 0, ErrWouldBlock
		}
		if rwQuiet(unix.SYS_PREAD64, b.fd, p, off) {
			return len(p), nil
		}
		return b.rw.ReadAt(p, off)
	case tryKernel:
		if b.noTryRead.Load() {
			return 0, ErrWouldBlock
		}
		n, err := rwNoWait(unix.SYS_PREADV2, b.fd, p, off)
		if err == unix.EOPNOTSUPP {
			b.noTryRead.Store(true)
			return 0, ErrWouldBlock
		}
		return n, err
	}
	return 0, ErrWouldBlock
}

// TryWriteAt writes p at off when that waits for no device: a file in
// memory, or a page cache write the file system takes with RWF_NOWAIT. A
// write-through (O_DSYNC) file always waits.
func (b *fileBackend) TryWriteAt(p []byte, off int64) (int, error) {
	if b.readOnly {
		return 0, ErrReadOnly
	}
	if b.writeThrough {
		return 0, ErrWouldBlock
	}
	switch b.try {
	case tryMemory:
		if !memoryStays() {
			return 0, ErrWouldBlock
		}
		if rwQuiet(unix.SYS_PWRITE64, b.fd, p, off) {
			return len(p), nil
		}
		return b.rw.WriteAt(p, off)
	case tryKernel:
		if b.noTryWrite.Load() {
			return 0, ErrWouldBlock
		}
		n, err := rwNoWait(unix.SYS_PWRITEV2, b.fd, p, off)
		if err == unix.EOPNOTSUPP {
			b.noTryWrite.Store(true)
			return 0, ErrWouldBlock
		}
		return n, err
	}
	return 0, ErrWouldBlock
}

// rwQuiet is pread(2) or pwrite(2) (trap) of p at off in a file in
// memory, made without telling the Go runtime (RawSyscall): the call
// waits for no device, and a system call the runtime is told about wakes
// its monitor thread after every idle moment, a cost per command that
// measured more than the write itself on the team's VMs (iscsi's
// quietSyscalls in rawread.go has the figures). Like a page fault, the
// call may still wait for the inode's lock or for memory; the P is held
// meanwhile, as it is through a page fault. It reports false when the
// call failed or was short: the caller does it again with ReadAt or
// WriteAt, which report the error (or the end of the file) as before.
func rwQuiet(trap uintptr, fd int, p []byte, off int64) bool {
	if len(p) == 0 {
		return true
	}
	n, _, errno := unix.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), uintptr(off), 0, 0)
	return errno == 0 && int(n) == len(p)
}

// rwNoWait is preadv2 or pwritev2 (trap) of p at off with RWF_NOWAIT. A
// short transfer is ErrWouldBlock with the bytes transferred, EAGAIN is
// ErrWouldBlock with none; EOPNOTSUPP (no RWF_NOWAIT in this file system,
// for this direction) is returned as such.
func rwNoWait(trap uintptr, fd int, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	iov := unix.Iovec{Base: unsafe.SliceData(p)}
	iov.SetLen(len(p))
	// 64-bit: the offset's high half (the fifth argument) is ignored.
	r, _, errno := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, uintptr(off), 0, unix.RWF_NOWAIT)
	n := int(r)
	switch {
	case errno == unix.EOPNOTSUPP:
		return 0, unix.EOPNOTSUPP
	case errno == unix.EAGAIN:
		return 0, ErrWouldBlock
	case errno == 0 && n < len(p):
		return n, ErrWouldBlock
	case errno != 0:
		return 0, errno
	}
	return n, nil
}

// memoryStays reports whether pages in memory stay there: no swap space
// is configured, so a file in tmpfs is never partly on a device. The
// answer is cached for a second (swapon is rare; a page swapped out in
// that second costs one read that waits).
func memoryStays() bool {
	now := time.Now().UnixNano()
	next := swapCheck.next.Load()
	if now < next || !swapCheck.next.CompareAndSwap(next, now+int64(time.Second)) {
		return swapCheck.none.Load()
	}
	var si unix.Sysinfo_t
	none := unix.Sysinfo(&si) == nil && si.Totalswap == 0
	swapCheck.none.Store(none)
	return none
}

// swapCheck caches memoryStays' answer.
var swapCheck struct {
	next atomic.Int64
	none atomic.Bool
}
