package iscsi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scstd/scstd/internal/bufpool"
	"golang.org/x/sys/unix"
)

// ConnState is the state of a full-feature connection, as status shows it.
type ConnState uint8

// Connection states.
const (
	ConnFullFeature ConnState = iota // logged in, serving commands
	ConnLoggingOut                   // Logout Response queued
	ConnClosing                      // being torn down
)

// String returns the state's name ("FULL_FEATURE").
func (s ConnState) String() string {
	switch s {
	case ConnFullFeature:
		return "FULL_FEATURE"
	case ConnLoggingOut:
		return "LOGGING_OUT"
	case ConnClosing:
		return "CLOSING"
	}
	return fmt.Sprintf("CONN_STATE_%d", uint8(s))
}

// conn is one full-feature connection: a reader goroutine (run) that
// decodes PDUs and dispatches them, command goroutines, and a send queue
// that one goroutine at a time drains to the socket.
//
// Whoever drains the queue owns the socket for writing. A command
// goroutine answering its command drains it itself when nobody else is
// (sendDirect), which saves a wake-up of another goroutine per command;
// pings and async events queue and kick the writer goroutine (send). The
// reader never blocks on a socket write: an initiator that stops reading
// while it still sends Data-Out must not stall it. It runs the commands
// that wait for nothing itself (scsi.TryExecute: a read or write served
// from memory), queues their answers without a wake-up (sendRx), and
// sends them when it has read every PDU the socket had for it
// (flushRx): as much as the socket takes at once, one writev for the
// whole batch, the rest left to the writer goroutine (handoff).
//
// What the connection holds is bounded by its budget (budget.go).
//
// Lock order: ss.mu before wmu. send and sendRx may be called with ss.mu
// held; sendDirect, which may write, must not.
type conn struct {
	ss     *session
	nc     net.Conn
	fr     *FrameReader
	fw     *FrameWriter
	cid    uint16
	portal net.Addr
	remote net.Addr

	// wmu guards outq, writing, handoff, grave and wdead.
	wmu sync.Mutex
	// outq holds the PDUs queued for the socket, in send order.
	outq []*outPDU
	// spare is the drained batch's slice, reused for the next queue.
	spare []*outPDU
	// writing is set while a goroutine drains outq.
	writing bool
	// handoff is set when the reader, which may not wait for the
	// socket, left the batch it was writing to the writer goroutine.
	handoff bool
	// grave holds PDUs refused or abandoned while a batch was being
	// written, whose buffers that batch may still be writing from; the
	// drainer frees them when it is done.
	grave []*outPDU
	// wdead is set once the connection has ended and nothing more is written.
	wdead bool
	// kick wakes the writer goroutine to drain outq.
	kick chan struct{}
	// refresh is when the write deadline is next moved forward; only
	// the goroutine draining the queue touches it.
	refresh time.Time

	// sendq counts the bytes queued for the socket.
	sendq sendBudget
	// outHeld is the data-out budget reserved by tasks through R2Ts,
	// outLimit its limit, and outWaiting the tasks waiting for it, in
	// arrival order; guarded by ss.mu.
	outHeld    int64
	outLimit   int64
	outWaiting []*task

	closed    chan struct{}
	closeOnce sync.Once
	state     atomic.Uint32 // ConnState

	// statSN is the next StatSN; only the goroutine draining the send
	// queue touches it.
	statSN uint32

	// The batch being written, touched only by the goroutine draining
	// the queue: cur[curNext:] are still to be encoded, encoded are in
	// the FrameWriter waiting for its flush (freed after it).
	cur     []*outPDU
	curNext int
	encoded []*outPDU

	// rxQueued counts the answers the reader queued with sendRx since it
	// last flushed them; only the reader touches it.
	rxQueued int

	// pingTTT is the TTT of the outstanding target ping, ReservedTag if none.
	pingTTT atomic.Uint32
}

// sendMode says how the writer fills a PDU's StatSN field.
type sendMode uint8

const (
	// statNone leaves StatSN alone (Data-In without status).
	statNone sendMode = iota
	// statPeek writes the next StatSN without advancing it (R2T,
	// unsolicited NOP-In).
	statPeek
	// statNext assigns the next StatSN and advances it (responses).
	statNext
)

// outPDU is one PDU queued for the writer. The writer fills StatSN,
// ExpCmdSN and MaxCmdSN (bytes 24..35, common to every target PDU) when
// it sends it, so that they are current and in wire order.
type outPDU struct {
	bhs  BHS
	data []byte
	mode sendMode
	// lent says that data is lent from a file's mapping (vdisk.Lender):
	// it goes to the socket from where it is, whatever its size, and no
	// Go code reads it.
	lent bool
	// Released after the PDU is written: a pooled buffer, a received PDU
	// whose data is echoed, a task whose data-in buffer is in use. The
	// PDU that carries a task is its last: writing it gives back the
	// task's command window slot.
	buf  *[]byte
	pdu  *PDU
	task *task
	// after runs when the PDU is freed: once the batch holding it is
	// flushed, or when it is dropped unwritten because the connection
	// ended. Only senders that do not hold ss.mu set it.
	after func()
	// cost is what the PDU counts against q, paid back when it is freed.
	cost int64
	q    *sendBudget
}

var outPool = sync.Pool{New: func() any { return new(outPDU) }}

func newOut(mode sendMode) *outPDU {
	o := outPool.Get().(*outPDU)
	o.mode = mode
	return o
}

// free runs o's after func, releases what o holds, pays back its cost
// and returns it to the pool.
func (o *outPDU) free() {
	if o.after != nil {
		o.after()
	}
	if o.q != nil {
		o.q.pay(o.cost)
	}
	if o.buf != nil {
		bufpool.Put(o.buf)
	}
	if o.pdu != nil {
		o.pdu.Release()
	}
	if o.task != nil {
		o.task.release()
	}
	*o = outPDU{}
	outPool.Put(o)
}

func newConn(ss *session, nc net.Conn, fr *FrameReader, r *LoginResult) *conn {
	c := &conn{
		ss:       ss,
		nc:       nc,
		fr:       fr,
		fw:       NewFrameWriter(nc),
		cid:      r.CID,
		portal:   r.Portal,
		remote:   nc.RemoteAddr(),
		kick:     make(chan struct{}, 1),
		closed:   make(chan struct{}),
		statSN:   r.StatSN,
		outLimit: ss.srv.limits.outLimit,
	}
	l := &ss.srv.limits
	c.sendq.limit, c.sendq.timeout = l.sendLimit, l.writeTimeout
	if l.sendTotal > 0 {
		c.sendq.total, c.sendq.totalLimit, c.sendq.share = &ss.srv.sendHeld, l.sendTotal, l.share
	}
	if c.portal == nil {
		c.portal = nc.LocalAddr()
	}
	p := ss.params
	fr.SetDigests(p.HeaderDigest, p.DataDigest)
	fr.SetMaxRecvDSL(p.MaxRecvDSL)
	c.fw.SetDigests(p.HeaderDigest, p.DataDigest)
	c.pingTTT.Store(ReservedTag)
	return c
}

// close tears the connection down; idempotent.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.state.Store(uint32(ConnClosing))
		close(c.closed)
		c.nc.Close()
	})
}

// send queues o for the writer goroutine. It returns false (and frees o)
// when the connection is closing. It may be called with ss.mu held.
func (c *conn) send(o *outPDU) bool {
	return c.enqueue(o, viaWriter)
}

// sendDirect queues o like send and, when no other goroutine is writing,
// writes the queue on the calling goroutine. Only command goroutines use
// it: a socket write may block for as long as the initiator does not read
// (at most writeTimeout). It must not be called with ss.mu held.
func (c *conn) sendDirect(o *outPDU) bool {
	return c.enqueue(o, viaSelf)
}

// sendRx queues o for the reader's next flushRx, without waking anyone:
// only the reader goroutine uses it.
func (c *conn) sendRx(o *outPDU) bool {
	c.rxQueued++
	return c.enqueue(o, viaReader)
}

// via says how a queued PDU reaches the socket.
type via uint8

const (
	// viaWriter: the writer goroutine is kicked to write it (send).
	viaWriter via = iota
	// viaSelf: the caller writes the queue itself unless another
	// goroutine is writing (sendDirect).
	viaSelf
	// viaReader: the reader writes the queue when it has read all the
	// socket had for it (sendRx, flushRx).
	viaReader
)

func (c *conn) enqueue(o *outPDU, how via) bool {
	c.wmu.Lock()
	if c.wdead || c.state.Load() == uint32(ConnClosing) {
		c.buryLocked(o)
		return false
	}
	o.cost, o.q = o.footprint(), &c.sendq
	c.sendq.charge(o.cost)
	c.outq = append(c.outq, o)
	if c.writing || how == viaReader {
		c.wmu.Unlock()
		return true
	}
	if how == viaWriter {
		c.wmu.Unlock()
		c.kickWriter()
		return true
	}
	c.writing = true
	c.drainLocked(true)
	return true
}

// kickWriter wakes the writer goroutine.
func (c *conn) kickWriter() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// rxBatch is the most answers the reader queues before it flushes them,
// even while it still has PDUs to read.
const rxBatch = 64

// flushRx writes what the reader queued with sendRx, as far as the
// socket takes it without waiting (the writer goroutine writes the rest),
// unless another goroutine is writing already (it writes them too).
// With wait, which only a reader that reads no more may ask, it writes
// all of it.
func (c *conn) flushRx(wait bool) {
	c.rxQueued = 0
	c.wmu.Lock()
	if c.writing || len(c.outq) == 0 {
		c.wmu.Unlock()
		return
	}
	c.writing = true
	c.drainLocked(wait)
}

// bury frees o, a PDU that will not be written, once no batch in
// progress may still be writing from the buffers it releases.
func (c *conn) bury(o *outPDU) {
	c.wmu.Lock()
	c.buryLocked(o)
}

// buryLocked is bury with c.wmu held; it releases c.wmu.
func (c *conn) buryLocked(o *outPDU) {
	if c.writing {
		c.grave = append(c.grave, o)
		c.wmu.Unlock()
		return
	}
	c.wmu.Unlock()
	o.free()
}

// drainLocked writes outq in batches until it is empty, then clears
// c.writing and frees the grave. c.wmu is held on entry and released on
// return; c.writing must be set. Without wait (the reader) it writes only
// what the socket takes at once: when the socket is full it leaves the
// batch to the writer goroutine (c.handoff), c.writing still set.
func (c *conn) drainLocked(wait bool) {
	for {
		if c.cur == nil {
			if len(c.outq) == 0 {
				break
			}
			c.cur = c.outq
			c.outq = c.spare[:0]
			c.spare = nil
		}
		c.wmu.Unlock()
		done := c.writeBatch(wait)
		c.wmu.Lock()
		if !done {
			c.handoff = true
			c.wmu.Unlock()
			c.kickWriter()
			return
		}
		clear(c.cur)
		c.spare = c.cur[:0]
		c.cur = nil
	}
	c.writing = false
	grave := c.grave
	c.grave = nil
	c.wmu.Unlock()
	for _, o := range grave {
		o.free()
	}
}

// writeBatch writes the batch c.cur: its PDUs go into the FrameWriter
// while they fit its buffer, then out in one vectored write, and so on.
// Without wait it returns false as soon as the socket takes no more;
// what is encoded stays in the FrameWriter for the next call. A write
// error closes the connection; the rest of the batch is freed unwritten.
func (c *conn) writeBatch(wait bool) bool {
	c.armWriteDeadline()
	for {
		for c.curNext < len(c.cur) {
			o := c.cur[c.curNext]
			if c.fw.pending() && !c.fw.room(0, len(o.data)) {
				break
			}
			c.curNext++
			c.encode(o)
		}
		done, err := c.fw.flush(wait)
		if !done {
			return false
		}
		for _, o := range c.encoded {
			o.free()
		}
		clear(c.encoded)
		c.encoded = c.encoded[:0]
		if err != nil {
			for _, o := range c.cur[c.curNext:] {
				o.free()
			}
			c.curNext = len(c.cur)
			c.writeFailed(err)
		}
		if c.curNext == len(c.cur) {
			c.curNext = 0
			return true
		}
	}
}

// armWriteDeadline moves the socket's write deadline to writeTimeout
// from now, at most every quarter of it: no write may block longer
// than the budget's timeout.
func (c *conn) armWriteDeadline() {
	now := time.Now()
	if now.Before(c.refresh) {
		return
	}
	c.nc.SetWriteDeadline(now.Add(c.sendq.timeout))
	c.refresh = now.Add(c.sendq.timeout / 4)
}

// writeFailed closes the connection after a socket write failed, saying
// why when the initiator stopped reading.
func (c *conn) writeFailed(err error) {
	switch {
	case c.state.Load() == uint32(ConnClosing):
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.ss.srv.log.Warn("closing connection: the initiator does not read",
			"initiator", c.ss.key.initiator, "remote", c.remote.String(),
			"queued_bytes", c.sendq.queued.Load(), "write_timeout", c.sendq.timeout)
	case errors.Is(err, unix.EFAULT):
		// Data-In lent from a backing file's mapping (vdisk.Lender)
		// that was truncated before the bytes went out.
		c.ss.srv.log.Error("closing connection: the data of a read could not be sent, its backing file shrank underneath (truncated by another program?)",
			"initiator", c.ss.key.initiator, "remote", c.remote.String(), "err", err)
	}
	c.close()
}

// run serves the connection until it ends and returns why.
func (c *conn) run() error {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		c.pingLoop()
	}()
	c.ss.mu.Lock()
	closing := c.ss.closing
	c.ss.mu.Unlock()
	var err error
	if closing {
		err = errors.New("session closed before full-feature phase")
	} else {
		err = c.readLoop()
	}
	c.close()
	<-writerDone
	<-pingDone
	c.teardown()
	return err
}

// teardown frees what the connection still holds for its socket once
// its reader (the caller), writer and pinger have stopped and the socket
// is closed: the queue, the PDUs refused or abandoned meanwhile, and the
// batch being written. Every PDU is freed exactly once, which pays its
// cost back to the send budget and runs its after func; nothing is
// queued afterwards (wdead).
//
// The batch has an owner that frees it, whatever the interleaving with
// close: a command goroutine still writing (sendDirect) finishes on the
// closed socket and frees the queue and the grave with its batch; a
// batch the reader handed off is the teardown's own, since the writer
// may have seen the connection closed and stopped before the handoff
// (its kick then lost), and the reader is the caller. Draining it on
// the closed socket fails at once and frees it with the rest.
func (c *conn) teardown() {
	c.wmu.Lock()
	c.wdead = true
	switch {
	case c.handoff:
		c.handoff = false
		c.drainLocked(true)
	case c.writing:
		// A command goroutine is still writing a batch, maybe from the
		// buffers these PDUs release: it frees them when done.
		c.grave = append(c.grave, c.outq...)
		c.outq = nil
		c.wmu.Unlock()
	default:
		c.writing = true
		c.drainLocked(true)
	}
}

// readLoop reads and dispatches PDUs until the connection fails. While
// the send queue is full it reads nothing: an initiator that does not
// read its answers cannot make the target queue more. The answers it
// queued itself go out before it may wait: for the socket to have more
// for it, or for room in the send queue.
func (c *conn) readLoop() error {
	for {
		if c.rxQueued > 0 && (c.rxQueued >= rxBatch || !c.fr.hasPDU() || c.sendq.full()) {
			c.flushRx(false)
		}
		if c.sendq.full() {
			if err := c.sendq.reserve(0, c.closed); err != nil {
				if errors.Is(err, errNotReading) {
					c.ss.srv.log.Warn("closing connection", "initiator", c.ss.key.initiator,
						"remote", c.remote.String(), "reason", err)
				}
				return err
			}
		}
		p, err := c.fr.Read()
		if err != nil {
			var dde *DataDigestError
			if errors.As(err, &dde) && p != nil {
				c.dataDigestError(p)
				continue
			}
			var pe *ProtocolError
			if errors.As(err, &pe) {
				c.ss.srv.log.Warn("closing connection on framing error", "remote", c.remote.String(), "err", err)
				return err
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				c.linger()
				return io.EOF
			}
			return err
		}
		if err := c.dispatch(p); err != nil {
			return err
		}
	}
}

// linger, on the reader once the peer has half-closed its connection,
// waits until every answer to what it sent is written before the
// connection closes: the reader's own queue, which it writes itself, a
// batch it handed off, and the answers of commands still running, once
// they complete; then the connection closes at once. It gives up when
// the commands do not complete within the write timeout, when nothing
// was written for the write timeout (the peer does not read), or when
// the connection is closed (it was this one's EOF, a logout, a ping that
// got no answer, a reinstatement). Commands still waiting for data-out
// get none: they end with the session.
func (c *conn) linger() {
	if c.rxQueued > 0 {
		c.flushRx(true)
	}
	if c.awaitTasks(c.runningTasks()) == nil {
		c.sendq.drain(c.closed)
	}
}

// rxHandler handles one received PDU and owns it (releases it when done).
// A non-nil error ends the connection.
type rxHandler func(c *conn, p *PDU) error

// rxHandlers is the dispatch table, indexed by initiator opcode.
var rxHandlers [64]rxHandler

func init() {
	rxHandlers[OpNOPOut] = (*conn).rxNOPOut
	rxHandlers[OpSCSICommand] = (*conn).rxOrdered
	rxHandlers[OpTaskMgmtRequest] = (*conn).rxOrdered
	rxHandlers[OpTextRequest] = (*conn).rxOrdered
	rxHandlers[OpDataOut] = (*conn).rxDataOut
	rxHandlers[OpLogoutRequest] = (*conn).rxOrdered
	rxHandlers[OpSNACKRequest] = (*conn).rxSNACK
	rxHandlers[OpLoginRequest] = (*conn).rxLoginInFFP
}

func (c *conn) dispatch(p *PDU) error {
	h := rxHandlers[p.BHS.Opcode()]
	if h == nil {
		c.reject(p, RejectCommandNotSupported)
		return nil
	}
	return h(c, p)
}

// reject answers p with a Reject PDU carrying its header and releases p.
func (c *conn) reject(p *PDU, reason RejectReason) {
	c.rejectBHS(&p.BHS, reason)
	p.Release()
}

// rejectBHS sends a Reject PDU carrying the rejected header h.
func (c *conn) rejectBHS(h *BHS, reason RejectReason) {
	o := newOut(statNext)
	(&Reject{Reason: reason}).Encode(&o.bhs)
	buf := bufpool.Get(BHSLen)
	copy(*buf, h[:])
	o.data, o.buf = *buf, buf
	c.ss.srv.log.Debug("reject", "op", h.Opcode(), "reason", reason, "itt", h.ITT())
	c.send(o)
}

// rxLoginInFFP rejects a Login Request on a full-feature connection
// (RFC 7143 §6.2: protocol error).
func (c *conn) rxLoginInFFP(p *PDU) error {
	c.reject(p, RejectProtocolError)
	return nil
}

// rxSNACK rejects SNACKs: scstd runs ErrorRecoveryLevel 0, at which SNACK
// is not supported (RFC 7143 §7.1).
func (c *conn) rxSNACK(p *PDU) error {
	c.reject(p, RejectProtocolError)
	return nil
}

// execText answers a Text Request in the full-feature phase. scstd
// offers no full-feature text keys (no renegotiation; SendTargets is
// served in discovery sessions), so every key is answered NotUnderstood
// in one final Text Response. A request continued over several PDUs is
// answered for the keys of each PDU alone.
func (c *conn) execText(p *PDU) {
	var req TextRequest
	if err := req.Decode(&p.BHS); err != nil {
		c.reject(p, RejectInvalidPDUField)
		return
	}
	keys, err := ParseText(p.Data)
	p.Release()
	if err != nil {
		keys = nil
	}
	var answer Text
	for _, kv := range keys {
		answer.Add(kv.Key, "NotUnderstood")
	}
	o := newOut(statNext)
	(&TextResponse{Final: true, LUN: req.LUN, ITT: req.ITT, TTT: ReservedTag}).Encode(&o.bhs)
	if len(answer) > 0 {
		b := AppendText(nil, answer)
		if m := int(c.ss.params.MaxXmitDSL); m > 0 && len(b) > m {
			// Whole keys only.
			b = b[:bytes.LastIndexByte(b[:m], 0)+1]
		}
		o.data = b
	}
	c.send(o)
}

// dataDigestError handles a PDU whose data segment failed its digest:
// Reject (RFC 7143 §7.8). For a Data-Out the command cannot complete at
// ErrorRecoveryLevel 0 and ends with CHECK CONDITION, PROTOCOL SERVICE CRC
// ERROR; a command PDU is discarded unnumbered, and the initiator
// reissues it.
func (c *conn) dataDigestError(p *PDU) {
	var itt uint32 = ReservedTag
	if p.BHS.Opcode() == OpDataOut {
		itt = p.BHS.ITT()
	}
	c.reject(p, RejectDataDigestError)
	if itt != ReservedTag {
		c.failDataOut(itt, senseCRCError)
	}
}

// writeLoop drains the send queue whenever send kicks it and no command
// goroutine is draining it already, and goes on with a batch the reader
// left to it (handoff), also once the connection is closed, so that the
// batch's PDUs are freed. A handoff after it stopped is teardown's.
func (c *conn) writeLoop() {
	for {
		closed := false
		select {
		case <-c.kick:
		case <-c.closed:
			closed = true
		}
		c.wmu.Lock()
		switch {
		case c.handoff:
			c.handoff = false
			c.drainLocked(true)
		case closed || c.writing:
			c.wmu.Unlock()
		default:
			c.writing = true
			c.drainLocked(true)
		}
		if closed {
			return
		}
	}
}

// encode fills o's sequence numbers and adds it to the FrameWriter; o is
// freed once the FrameWriter has flushed it. The last PDU of a command
// gives back its window slot as it goes out, so that its MaxCmdSN
// already counts the slot free.
func (c *conn) encode(o *outPDU) {
	switch o.mode {
	case statPeek:
		put32(o.bhs[24:], c.statSN)
	case statNext:
		put32(o.bhs[24:], c.statSN)
		c.statSN++
	}
	slot := o.task != nil && o.task.counted
	if slot {
		o.task.counted = false
	}
	exp, max := c.ss.stamp(slot)
	put32(o.bhs[28:], exp)
	put32(o.bhs[32:], max)
	c.fw.queuePDU(&o.bhs, nil, o.data, o.lent)
	c.encoded = append(c.encoded, o)
}
