package iscsi

import (
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawWriter writes byte slices to a socket with writev(2) through the
// socket's syscall.RawConn, either waiting for room in the socket (in
// the runtime's poller, which keeps the connection's write deadline) or
// not at all: a connection's reader, which must never block on a
// socket write, sends what the socket takes at once and leaves the rest
// to the connection's writer goroutine.
//
// The socket is non-blocking: writev(2) never sleeps, so it is made
// without telling the runtime (RawSyscall, as rawReader's reads), which
// would otherwise wake its monitor thread (sysmon) on the first system
// call after every idle moment (quietSyscalls in rawread.go).
type rawWriter struct {
	rc syscall.RawConn
	// fn is rc.Write's callback, made once so that a write allocates
	// nothing; vec and wait are its arguments, n and err its results.
	fn   func(fd uintptr) bool
	vec  [][]byte
	wait bool
	n    int
	err  syscall.Errno
	iov  []unix.Iovec
}

// maxIOV is the most slices one writev takes (the kernel's UIO_MAXIOV).
const maxIOV = 1024

// newRawWriter returns a rawWriter for w, or nil when w is not a socket
// with a file descriptor (a net.Pipe in tests).
func newRawWriter(w io.Writer) *rawWriter {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawWriter{rc: rc}
	r.fn = r.write
	return r
}

// writev writes vec, none of whose slices is empty. With wait it returns
// once all is written or an error occurred; without, also as soon as
// the socket takes no more (done false, no error). It returns what is
// left unwritten: the unwritten tail of vec, whose first slice may be
// cut where the write stopped.
func (r *rawWriter) writev(vec [][]byte, wait bool) (rest [][]byte, done bool, err error) {
	defer func() { r.vec = nil }()
	for len(vec) > 0 {
		r.vec, r.wait, r.n, r.err = vec, wait, 0, 0
		if err := r.rc.Write(r.fn); err != nil {
			return vec, true, err
		}
		if r.err == unix.EAGAIN {
			return vec, false, nil
		}
		if r.err != 0 {
			return vec, true, &netErr{op: "writev", err: r.err}
		}
		vec = consumeVec(vec, r.n)
	}
	return vec, true, nil
}

// write is the RawConn callback: one writev of at most maxIOV slices. It
// asks to be called again once the socket has room (returns false) only
// when told to wait.
func (r *rawWriter) write(fd uintptr) bool {
	iov := r.iov[:0]
	for _, b := range r.vec[:min(len(r.vec), maxIOV)] {
		v := unix.Iovec{Base: unsafe.SliceData(b)}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	r.iov = iov
	for {
		n, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)))
		switch e {
		case 0:
			r.n = int(n)
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if r.wait {
				return false
			}
			r.err = e
		default:
			r.err = e
		}
		clear(iov)
		return true
	}
}

// consumeVec drops the first n bytes of vec.
func consumeVec(vec [][]byte, n int) [][]byte {
	for n > 0 && len(vec) > 0 {
		if n < len(vec[0]) {
			vec[0] = vec[0][n:]
			return vec
		}
		n -= len(vec[0])
		vec[0] = nil
		vec = vec[1:]
	}
	return vec
}

// netErr is a failed socket system call, as the net package reports one.
type netErr struct {
	op  string
	err syscall.Errno
}

func (e *netErr) Error() string { return e.op + ": " + e.err.Error() }

func (e *netErr) Unwrap() error { return e.err }
