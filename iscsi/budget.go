package iscsi

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scstd/scstd/internal/bufpool"
)

// The budget of one full-feature connection: every byte the target
// holds on behalf of one initiator is counted here, so that an initiator
// that stops reading, or sends commands it never completes, costs a
// bounded amount of memory.
//
//   - Send side: every PDU queued for the socket counts its header and
//     data segment until it is written (Data-In, responses, R2Ts, NOP-In,
//     Reject, Text). A command that may return more than reserveMin bytes
//     of data-in reserves its expected size before it executes and waits
//     while the queue is full. At sendLimit the connection stops reading
//     new PDUs; a peer that does not drain the queue within writeTimeout
//     is closed, and every socket write has that deadline.
//   - Receive side: a write command's data-out buffer is sized from its
//     CDB (clamped by ExpectedDataTransferLength) and grows per burst as
//     data arrives; before the first R2T the task reserves that size from
//     outLimit, and R2Ts wait while the reserved total is at the limit, so
//     at most outLimit bytes of solicited data are ever held.
//   - The CmdSN window (window.go) bounds the commands: a slot is given
//     back when the command's last PDU is written, not when it completes.
//     PDUs held for a missing CmdSN count too: past outLimit the
//     connection is closed.
//   - In all: the connections' send queues and data-out reservations are
//     also counted server-wide. Past sendTotal (outTotal), a connection
//     that holds more than its share stops reading (sending R2Ts) until
//     it holds less: many connections cannot add up to what one may not
//     hold. The server-wide count is kept in steps of totalGrain per
//     connection, so that it costs no shared write per PDU.
const (
	// sendLimit is the most bytes a connection may have queued (or
	// reserved) for sending before it stops reading.
	sendLimit = 16 << 20
	// outLimit is the most data-out bytes the tasks of a connection may
	// have reserved through R2Ts.
	outLimit = 32 << 20
	// reserveMin is the expected data-in length above which a command
	// reserves send budget before it executes.
	reserveMin = 64 << 10
	// maxDataIn is the most data-in a command reserves: the largest
	// transfer package scsi performs.
	maxDataIn = 8 << 20
	// writeTimeout bounds every socket write of the full-feature phase
	// and the time the queue may stay full.
	writeTimeout = 30 * time.Second
	// sendTotal and outTotal are the server-wide limits, and share what
	// a connection may hold of each when they are reached.
	sendTotal = 256 << 20
	outTotal  = 256 << 20
	share     = 256 << 10
	// totalGrain is the step in which a connection's send queue is
	// reported to the server-wide count.
	totalGrain = 64 << 10
)

// errNotReading ends a connection whose peer stopped reading.
var errNotReading = errors.New("iscsi: initiator does not read its responses")

// sendBudget counts the bytes queued for one connection's socket.
type sendBudget struct {
	limit   int64
	timeout time.Duration
	queued  atomic.Int64
	// total is the server-wide count, totalLimit its limit, share what
	// the connection may hold once it is reached; reported is what the
	// connection last added to total.
	total      *atomic.Int64
	totalLimit int64
	share      int64
	reported   atomic.Int64
	// waiters counts goroutines waiting for room; signal only locks mu
	// when there are some.
	waiters atomic.Int32
	mu      sync.Mutex
	room    chan struct{} // closed when bytes are written, if waited on
}

// connLimits are the budget of every connection of a server; tests
// lower them.
type connLimits struct {
	sendLimit    int64
	outLimit     int64
	writeTimeout time.Duration
	sendTotal    int64
	outTotal     int64
	share        int64
}

var defaultConnLimits = connLimits{sendLimit: sendLimit, outLimit: outLimit, writeTimeout: writeTimeout,
	sendTotal: sendTotal, outTotal: outTotal, share: share}

// charge counts n more bytes.
func (b *sendBudget) charge(n int64) { b.report(b.queued.Add(n)) }

// report brings the server-wide count up to q, the queue now, when it is
// a step or more away from what was reported; a retired budget reports
// nothing.
func (b *sendBudget) report(q int64) {
	if b.total == nil {
		return
	}
	r := b.reported.Load()
	if r == retired {
		return
	}
	if d := q - r; (d >= totalGrain || d <= -totalGrain || q == 0 && r != 0) && b.reported.CompareAndSwap(r, q) {
		b.total.Add(d)
	}
}

// retired is the reported value of a budget withdrawn from the
// server-wide count.
const retired = math.MinInt64

// retire withdraws the budget from the server-wide count when its
// connection has ended: what it reported goes back whatever it still
// holds (concurrent reports compute their step from a queue length
// that may be stale, and a leak must not keep the server's budget), and
// the pays of PDUs freed later report nothing.
func (b *sendBudget) retire() {
	if b.total == nil {
		return
	}
	if r := b.reported.Swap(retired); r != retired {
		b.total.Add(-r)
	}
}

// overTotal reports whether, with n more bytes, the server-wide queue
// would be at its limit and the connection (holding q) hold more than
// its share of it.
func (b *sendBudget) overTotal(q, n int64) bool {
	return b.total != nil && q+n > b.share && b.total.Load()+n >= b.totalLimit
}

// pay gives back n bytes (written, dropped or unreserved) and wakes the
// goroutines waiting for room.
func (b *sendBudget) pay(n int64) {
	if n == 0 {
		return
	}
	b.report(b.queued.Add(-n))
	if b.waiters.Load() == 0 {
		return
	}
	b.mu.Lock()
	if b.room != nil {
		close(b.room)
		b.room = nil
	}
	b.mu.Unlock()
}

// full reports whether the queue has reached its limit, or holds more
// than its share of a server-wide queue at its limit.
func (b *sendBudget) full() bool {
	q := b.queued.Load()
	return q >= b.limit || b.overTotal(q, 0)
}

// tryReserve charges n bytes if they fit; anything fits an empty queue.
func (b *sendBudget) tryReserve(n int64) bool {
	for {
		q := b.queued.Load()
		if q != 0 && (q+n > b.limit || b.overTotal(q, n)) {
			return false
		}
		if b.queued.CompareAndSwap(q, q+n) {
			b.report(q + n)
			return true
		}
	}
}

// reserve charges n bytes, waiting until they fit; n = 0 waits until the
// queue is below its limit and charges nothing. It fails with
// errNotReading when nothing was written for the budget's timeout, and
// with errConnClosed when closed is closed first.
func (b *sendBudget) reserve(n int64, closed <-chan struct{}) error {
	ok := func() bool {
		if n == 0 {
			return !b.full()
		}
		return b.tryReserve(n)
	}
	if ok() {
		return nil
	}
	return b.wait(ok, closed)
}

// drain waits until nothing is queued any more: the connection's PDUs
// are written and its commands answered. It fails like reserve.
func (b *sendBudget) drain(closed <-chan struct{}) error {
	ok := func() bool { return b.queued.Load() == 0 }
	if ok() {
		return nil
	}
	return b.wait(ok, closed)
}

// wait waits until ok, checked whenever bytes are paid back, for reserve
// and drain.
func (b *sendBudget) wait(ok func() bool, closed <-chan struct{}) error {
	b.waiters.Add(1)
	defer b.waiters.Add(-1)
	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	for {
		b.mu.Lock()
		if b.room == nil {
			b.room = make(chan struct{})
		}
		room := b.room
		b.mu.Unlock()
		if ok() {
			return nil
		}
		select {
		case <-room:
			// Progress: the peer reads.
			timer.Reset(b.timeout)
		case <-timer.C:
			return fmt.Errorf("%w: %d bytes queued, none written for %s", errNotReading, b.queued.Load(), b.timeout)
		case <-closed:
			return errConnClosed
		}
	}
}

// errConnClosed is returned by waits that end because the connection did.
var errConnClosed = errors.New("iscsi: connection closed")

// What a queued PDU holds beyond its data: the outPDU and its queue slot,
// and for a command's last PDU the task (of about 350 bytes), rounded up
// to the allocator's classes.
const (
	pduOverhead  = 160
	taskOverhead = 384
)

// footprint is the memory a queued PDU holds, as the send budget counts
// it: the buffers it keeps whole (a pooled buffer, a received PDU whose
// data it echoes), else its data, plus what the task it ends holds
// beyond the data of its Data-In PDUs (counted by each of them).
func (o *outPDU) footprint() int64 {
	n := int64(pduOverhead)
	switch {
	case o.buf != nil:
		n += int64(cap(*o.buf))
	case o.pdu != nil:
		n += int64(pduSize) + int64(len(o.pdu.Data))
		if o.pdu.buf != nil {
			n += int64(cap(*o.pdu.buf) - len(o.pdu.Data))
		}
	default:
		n += int64(len(o.data))
	}
	if t := o.task; t != nil {
		n += taskOverhead
		if t.inBuf != nil {
			n += max(int64(cap(*t.inBuf))-t.sent, 0)
		}
	}
	return n
}

// pduSize is the size of a received PDU's struct.
const pduSize = 168

// reserveOutLocked reserves t's data-out buffer size before its first
// R2T. It returns false, queueing t, when the connection's tasks hold
// too much already; releaseOutLocked plans its R2Ts later. ss.mu must be
// held.
func (c *conn) reserveOutLocked(t *task) bool {
	if t.outReserved > 0 || t.need == 0 {
		return true
	}
	if c.outHeld > 0 && (c.outHeld+int64(t.need) > c.outLimit || c.overOutTotal(t.need)) {
		if !t.outQueued {
			t.outQueued = true
			c.outWaiting = append(c.outWaiting, t)
		}
		return false
	}
	t.outReserved = t.need
	c.outHeld += int64(t.need)
	c.ss.srv.outHeld.Add(int64(t.need))
	return true
}

// overOutTotal reports whether reserving need more data-out bytes would
// pass the server-wide limit while the connection holds more than its
// share. ss.mu must be held.
func (c *conn) overOutTotal(need uint32) bool {
	l := &c.ss.srv.limits
	return l.outTotal > 0 && c.outHeld >= l.share && c.ss.srv.outHeld.Load()+int64(need) > l.outTotal
}

// releaseOutLocked returns t's data-out buffer and reservation, and
// solicits the data of the tasks that waited for budget. ss.mu must be
// held.
func (c *conn) releaseOutLocked(t *task) {
	c.dropWaitingLocked(t)
	if t.outBuf != nil {
		bufpool.Put(t.outBuf)
		t.outBuf, t.out = nil, nil
	}
	if t.outReserved == 0 {
		return
	}
	c.outHeld -= int64(t.outReserved)
	c.ss.srv.outHeld.Add(-int64(t.outReserved))
	t.outReserved = 0
	for len(c.outWaiting) > 0 {
		w := c.outWaiting[0]
		if c.outHeld > 0 && (c.outHeld+int64(w.need) > c.outLimit || c.overOutTotal(w.need)) {
			return
		}
		c.outWaiting = c.outWaiting[1:]
		w.outQueued = false
		c.solicitLocked(w)
	}
}

// dropWaitingLocked takes t off the list of tasks waiting for data-out
// budget. ss.mu must be held.
func (c *conn) dropWaitingLocked(t *task) {
	if !t.outQueued {
		return
	}
	t.outQueued = false
	for i, w := range c.outWaiting {
		if w == t {
			c.outWaiting = append(c.outWaiting[:i], c.outWaiting[i+1:]...)
			return
		}
	}
}
