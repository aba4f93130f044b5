package iscsi

import (
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawReader reads a full-feature connection's socket with read(2)
// through its syscall.RawConn (the runtime's poller keeps the read
// deadline and parks the reader while the socket is empty), and gives
// the initiator's sending thread the CPU once before it parks in the
// middle of a PDU.
//
// Why: an initiator sends a PDU's header and its data segment in two
// system calls (libiscsi: send of the header, writev of the data). On
// loopback, or whenever initiator and target share a CPU, the header's
// arrival wakes the reader on the sender's CPU, where it preempts the
// sender before its data is sent; the reader finds the socket empty,
// sleeps in the poller, and is woken again by the data as soon as the
// sender runs: two wake-ups and three reads for every write command,
// each wake-up a context switch. With sched_yield(2) between the empty
// read and the sleep, the sender runs on and sends its data (and what
// else it has queued), and the reader's next read takes it all: at
// QD32 4 KiB writes on the team's VMs the daemon's CPU per write
// halved (docs/benchmarks.md). A yield with no other task on the CPU
// returns at once; it is tried once per read, and only inside a PDU,
// never while the connection is idle between PDUs.
//
// Its system calls (read of a non-blocking socket, sched_yield) never
// sleep, and are made as quietSyscalls.
type rawReader struct {
	rc syscall.RawConn
	// fn is rc.Read's callback, made once so that a read allocates
	// nothing; p is its argument, n and err its results.
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err syscall.Errno
	// partial is set by the FrameReader while it is inside a PDU.
	partial bool
	// yielded is set once the current read has yielded.
	yielded bool
	// yield gives the CPU away: sched_yield(2), or what a test counts.
	yield func()
}

// newRawReader returns a rawReader for r, or nil when r is not a socket
// with a file descriptor (a net.Pipe in tests).
func newRawReader(r io.Reader) *rawReader {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	rr := &rawReader{rc: rc, yield: schedYield}
	rr.fn = rr.read
	return rr
}

// Read reads what the socket holds into p, at least one byte, waiting
// for it in the runtime's poller. At end of stream it returns io.EOF.
func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err, r.yielded = p, 0, 0, false
	err := r.rc.Read(r.fn)
	r.p = nil
	switch {
	case err != nil:
		return 0, err
	case r.err != 0:
		return 0, &netErr{op: "read", err: r.err}
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// read is the RawConn callback: one read(2), again after a yield when
// the socket is empty inside a PDU; false asks the poller to wait.
func (r *rawReader) read(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.p))), uintptr(len(r.p)))
		switch e {
		case 0:
			r.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if r.partial && !r.yielded {
				r.yielded = true
				r.yield()
				continue
			}
			return false
		default:
			r.err = e
			return true
		}
	}
}

// quietSyscalls: the system calls a connection makes for every command
// (its socket reads and writes, the yield, a write into a file in
// memory; vdisk's TryWriteAt for tmpfs) go through unix.RawSyscall,
// without the runtime's entersyscall/exitsyscall. None of them sleeps
// waiting for anything (the socket is non-blocking, the file waits for
// no device), so the runtime loses nothing by not being told: it would
// only hand the goroutine's P to another thread when a call lasts, and
// none does. What it gains: the runtime parks its monitor thread
// (sysmon) whenever every P is idle, and the first entersyscall after
// that wakes it (a futex wake-up) and sets it polling every 20 µs for
// the next millisecond. A daemon serving QD32 I/O goes idle and busy
// again many times a millisecond, so sysmon was woken over and over: a
// quarter of the CPU per 4 KiB fileio write in perf's samples. Measured
// on this VM with all of them raw, against the same build with the
// socket reads and the yield alone raw: 7.9 -> 6.1 µs of daemon CPU per
// fileio write, context switches per write 0.15 -> 0.07.

// schedYield lets the other tasks runnable on this CPU run first.
func schedYield() { unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
