package iscsi

import (
	"encoding/binary"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scstd/scstd/scsi"
)

// Command numbering (RFC 7143 §4.2.2): CmdSN and the window
// [ExpCmdSN, MaxCmdSN] compare in 32-bit serial number arithmetic
// (RFC 1982).

// snLess reports a < b in serial number arithmetic. The undefined case
// (a and b 2^31 apart) counts as less.
func snLess(a, b uint32) bool { return a != b && int32(a-b) < 0 }

// inWindow reports whether sn lies in [exp, max].
func inWindow(sn, exp, max uint32) bool { return !snLess(sn, exp) && !snLess(max, sn) }

// windowMax is the MaxCmdSN that admits queued commands beyond ExpCmdSN
// minus those still executing: ExpCmdSN + queued - 1 - inFlight, and
// ExpCmdSN - 1 (window closed) when inFlight fills the queue.
func windowMax(exp, queued, inFlight uint32) uint32 {
	m := exp - 1
	if queued > inFlight {
		m += queued - inFlight
	}
	return m
}

// updateMax recomputes MaxCmdSN, which never moves backwards once
// advertised. ss.mu must be held.
func (ss *session) updateMax() uint32 {
	if m := windowMax(ss.expCmdSN, ss.queuedCommands(), ss.inFlight); snLess(ss.maxCmdSN, m) {
		ss.maxCmdSN = m
	}
	return ss.maxCmdSN
}

// window returns the ExpCmdSN and MaxCmdSN to send now.
func (ss *session) window() (exp, max uint32) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.expCmdSN, ss.updateMax()
}

// skipPDU marks a CmdSN that a task management function declared
// received (RFC 7143 §11.5.1) while it was missing.
var skipPDU = new(PDU)

// ordered delivers p, a PDU carrying cmdSN, in CmdSN order. An immediate
// PDU is delivered at once. A CmdSN ahead of ExpCmdSN but within the
// window waits for the gap to fill; one outside the window is silently
// dropped (RFC 7143 §4.2.2.1).
func (c *conn) ordered(p *PDU, cmdSN uint32, immediate bool) error {
	if immediate {
		c.deliver(p, false)
		return nil
	}
	ss := c.ss
	ss.mu.Lock()
	max := ss.updateMax()
	switch {
	case cmdSN == ss.expCmdSN:
		ss.expCmdSN++
		counted := p.BHS.Opcode() == OpSCSICommand
		if counted {
			ss.inFlight++
		}
		ss.mu.Unlock()
		c.deliver(p, counted)
		c.deliverHeld()
	case inWindow(cmdSN, ss.expCmdSN, max) && ss.held[cmdSN] == nil:
		ss.held[cmdSN] = p
		ss.mu.Unlock()
	default:
		exp := ss.expCmdSN
		ss.mu.Unlock()
		ss.srv.log.Debug("dropping PDU outside the command window", "op", p.BHS.Opcode(),
			"cmdsn", cmdSN, "expcmdsn", exp, "maxcmdsn", max)
		p.Release()
	}
	return nil
}

// deliverHeld delivers the held PDUs that have become next in order.
func (c *conn) deliverHeld() {
	ss := c.ss
	for {
		ss.mu.Lock()
		p := ss.held[ss.expCmdSN]
		if p == nil {
			ss.mu.Unlock()
			return
		}
		delete(ss.held, ss.expCmdSN)
		ss.expCmdSN++
		counted := p != skipPDU && p.BHS.Opcode() == OpSCSICommand
		if counted {
			ss.inFlight++
		}
		ss.mu.Unlock()
		if p != skipPDU {
			c.deliver(p, counted)
		}
	}
}

// deliver executes a PDU whose turn has come. counted says it took a
// slot of the command window (inFlight) that its response gives back.
func (c *conn) deliver(p *PDU, counted bool) {
	switch p.BHS.Opcode() {
	case OpSCSICommand:
		c.startCommand(p, counted)
	case OpNOPOut:
		c.execNOPOut(p)
	case OpTaskMgmtRequest:
		c.execTaskMgmt(p)
	case OpTextRequest:
		c.execText(p)
	case OpLogoutRequest:
		c.execLogout(p)
	default:
		p.Release()
	}
}

// uncount gives back a command window slot. ss.mu must be held.
func (ss *session) uncount(t *task) {
	if t.counted {
		t.counted = false
		ss.inFlight--
	}
}

// taskState is where a task is in its life.
type taskState uint8

const (
	taskData    taskState = iota // collecting data-out
	taskRunning                  // in scsi.Execute
	taskDone                     // answered or aborted
)

// r2t is one outstanding Ready To Transfer.
type r2t struct {
	ttt    uint32
	off    uint32
	length uint32
	got    uint32
	dataSN uint32 // next expected DataSN of its Data-Out sequence
}

// task is one SCSI command of a session.
type task struct {
	c       *conn
	itt     uint32
	lun     [8]byte
	counted bool
	read    bool
	write   bool
	edtl    uint32
	expIn   uint32 // expected data-in length
	attr    scsi.TaskAttribute
	started int64 // UnixNano when the command was taken up, for RspTimeout
	cdb     [16]byte
	extCDB  []byte // the CDB when longer than 16 bytes

	// Data-out collection; guarded by ss.mu.
	out       []byte
	outBuf    *[]byte
	outPDU    *PDU // the command PDU when its immediate data is all the data-out
	received  uint32
	unsolEnd  uint32 // end of the unsolicited (immediate + Data-Out) data
	unsolNext uint32
	unsolSN   uint32
	unsolDone bool
	r2tNext   uint32 // offset of the next R2T to send
	r2tSN     uint32
	r2ts      []r2t
	inBuf     *[]byte
	state     taskState
	aborted   bool
	// done, made when someone waits for the task, is closed when it ends.
	done       chan struct{}
	scmd       scsi.Command
	sendingR2T [maxR2TBatch]r2t
}

// maxR2TBatch bounds the R2Ts sent in one go; more follow as data arrives.
const maxR2TBatch = 16

var taskPool = sync.Pool{New: func() any { return new(task) }}

// release returns a finished task's buffers and the task to their pools.
func (t *task) release() {
	if t.outBuf != nil {
		putBuf(t.outBuf)
	}
	if t.outPDU != nil {
		t.outPDU.Release()
	}
	if t.inBuf != nil {
		putBuf(t.inBuf)
	}
	r2ts := t.r2ts[:0]
	*t = task{r2ts: r2ts}
	taskPool.Put(t)
}

// fullCDB returns the command's CDB, including an extended CDB AHS.
func (t *task) fullCDB() []byte {
	if t.extCDB != nil {
		return t.extCDB
	}
	return t.cdb[:]
}

// abortWaiting ends a task that waits for data-out on behalf of an abort, and
// releases it; a running task notices t.aborted when it completes. ss.mu
// must be held; it returns true when the task ended here.
func (t *task) abortWaiting() bool {
	if t.state != taskData {
		return false
	}
	ss := t.c.ss
	t.state = taskDone
	delete(ss.tasks, t.itt)
	ss.uncount(t)
	t.ended()
	ss.taskWG.Done()
	t.release()
	return true
}

// waitChan returns a channel closed when the task ends; ss.mu must be
// held and the task not yet ended.
func (t *task) waitChan() chan struct{} {
	if t.done == nil {
		t.done = make(chan struct{})
	}
	return t.done
}

// ended wakes the waiters of a task; ss.mu must be held.
func (t *task) ended() {
	if t.done != nil {
		close(t.done)
	}
}

// Sense data the transport itself reports (RFC 7143 §11.4.7.2).
var (
	senseCRCError          = scsi.FixedSense(scsi.AbortedCommand, 0x47, 0x05) // PROTOCOL SERVICE CRC ERROR
	senseUnexpectedUnsol   = scsi.FixedSense(scsi.AbortedCommand, 0x0c, 0x0c) // UNEXPECTED UNSOLICITED DATA
	senseIncorrectAmount   = scsi.FixedSense(scsi.AbortedCommand, 0x0c, 0x0d) // NOT ENOUGH UNSOLICITED DATA
	senseDataPhaseError    = scsi.FixedSense(scsi.AbortedCommand, 0x4b, 0x00) // DATA PHASE ERROR
	senseDataOffsetError   = scsi.FixedSense(scsi.AbortedCommand, 0x4b, 0x05) // DATA OFFSET ERROR
	senseInternalFailure   = scsi.FixedSense(scsi.HardwareError, 0x44, 0x00)  // INTERNAL TARGET FAILURE
	senseInvalidFieldInCDB = scsi.FixedSense(scsi.IllegalRequest, 0x24, 0x00)
)

// maxImmediateTasks is how many tasks a session may have before an
// immediate SCSI command, which the command window does not limit, is
// rejected.
func maxImmediateTasks(queued uint32) int { return 2*int(queued) + 64 }

// maxDataOut bounds the data-out buffer of one command; the largest
// transfer the SCSI layer accepts is well below it.
const maxDataOut = 1 << maxBufShift

// rxOrdered orders a command PDU (SCSI Command, Task Management, Text,
// Logout) by the CmdSN at bytes 24..27 and its I bit. Its fields are
// checked when its turn comes, so that a rejected command still uses its
// CmdSN and leaves no gap.
func (c *conn) rxOrdered(p *PDU) error {
	return c.ordered(p, u32(p.BHS[24:]), p.BHS.Immediate())
}

// startCommand turns a SCSI Command PDU into a task: it takes its
// immediate data, solicits the rest with R2Ts, and executes it once all
// data-out is in.
func (c *conn) startCommand(p *PDU, counted bool) {
	ss := c.ss
	var cmd SCSICommand
	err := cmd.Decode(&p.BHS)
	ss.commands.Add(1)
	np := ss.params
	imm := uint32(len(p.Data))
	reject := func(reason RejectReason) {
		if counted {
			ss.mu.Lock()
			ss.inFlight--
			ss.mu.Unlock()
		}
		c.reject(p, reason)
	}
	switch {
	case err != nil:
		reject(RejectInvalidPDUField)
		return
	case imm > 0 && (!cmd.Write || !np.ImmediateData || imm > np.FirstBurstLength || imm > cmd.ExpectedDataTransferLength):
		reject(RejectProtocolError)
		return
	case cmd.Write && !cmd.Final && np.InitialR2T && imm >= cmd.ExpectedDataTransferLength:
		// Unsolicited Data-Out announced where none may follow.
		reject(RejectProtocolError)
		return
	}

	t := taskPool.Get().(*task)
	t.c = c
	t.started = time.Now().UnixNano()
	t.itt = cmd.ITT
	t.lun = cmd.LUN
	t.counted = counted
	t.read, t.write = cmd.Read, cmd.Write
	t.edtl = cmd.ExpectedDataTransferLength
	t.cdb = cmd.CDB
	t.attr = scsi.TaskAttribute(cmd.Attr)
	t.state = taskData
	if ext, ok := p.FindAHS(AHSExtendedCDB); ok && len(ext) > 1 {
		t.extCDB = make([]byte, 16+len(ext)-1)
		copy(t.extCDB, cmd.CDB[:])
		copy(t.extCDB[16:], ext[1:])
	}
	switch {
	case cmd.Read && cmd.Write:
		if b, ok := p.FindAHS(AHSBidiReadDataLength); ok && len(b) >= 5 {
			t.expIn = binary.BigEndian.Uint32(b[1:5])
		}
	case cmd.Read:
		t.expIn = t.edtl
	}
	var early []byte // sense to answer with before any data-out
	if cmd.Write && t.edtl > 0 {
		switch {
		case t.edtl > maxDataOut:
			early = senseInvalidFieldInCDB
		case imm == t.edtl:
			t.out, t.outPDU = p.Data, p
			p = nil
		default:
			t.outBuf = getBuf(int(t.edtl))
			t.out = *t.outBuf
			copy(t.out, p.Data)
		}
		t.received = imm
		t.unsolEnd = unsolicitedEnd(t.edtl, imm, np.FirstBurstLength, np.InitialR2T, cmd.Final)
		t.unsolNext = imm
		t.unsolDone = t.unsolEnd == imm
		t.r2tNext = t.unsolEnd
	}
	if p != nil {
		p.Release()
	}

	ss.mu.Lock()
	if ss.closing {
		ss.uncount(t)
		ss.mu.Unlock()
		t.release()
		return
	}
	if !counted && len(ss.tasks) >= maxImmediateTasks(ss.queuedCommands()) {
		// Immediate commands take no window slot; bound them anyway.
		ss.mu.Unlock()
		t.release()
		c.rejectCommand(&cmd, RejectImmediateRejected)
		return
	}
	if old := ss.tasks[t.itt]; old != nil {
		// RFC 7143 §11.3.1.3: the ITT must be unique among the
		// session's tasks.
		ss.uncount(t)
		ss.mu.Unlock()
		t.release()
		c.rejectCommand(&cmd, RejectTaskInProgress)
		return
	}
	ss.tasks[t.itt] = t
	ss.taskWG.Add(1)
	if early != nil {
		t.state = taskRunning
		ss.mu.Unlock()
		c.complete(t, scsi.Result{Status: scsi.CheckCondition, Sense: early}, false)
		return
	}
	if t.received == t.edtl || !t.write {
		t.state = taskRunning
		ss.mu.Unlock()
		startExec(t)
		return
	}
	n := c.planR2TsLocked(t)
	ss.mu.Unlock()
	c.sendR2Ts(t, n)
}

// rejectCommand answers a SCSI command whose PDU is already released
// with a Reject carrying its header.
func (c *conn) rejectCommand(cmd *SCSICommand, reason RejectReason) {
	var h BHS
	cmd.Encode(&h)
	c.rejectBHS(&h, reason)
}

// planR2TsLocked moves the R2Ts that may be outstanding now into
// t.sendingR2T and returns how many. ss.mu must be held.
func (c *conn) planR2TsLocked(t *task) int {
	np := &c.ss.params
	maxOut := int(max(np.MaxOutstandingR2T, 1))
	n := 0
	for len(t.r2ts) < maxOut && t.r2tNext < t.edtl && n < maxR2TBatch {
		l := r2tLength(t.r2tNext, t.edtl, np.MaxBurstLength)
		r := r2t{ttt: c.ss.srv.nextTTT(), off: t.r2tNext, length: l}
		t.r2ts = append(t.r2ts, r)
		t.sendingR2T[n] = r
		n++
		t.r2tNext += l
	}
	return n
}

// sendR2Ts sends the first n R2Ts planned for t.
func (c *conn) sendR2Ts(t *task, n int) {
	ss := c.ss
	for i := range n {
		ss.mu.Lock()
		if t.state != taskData {
			ss.mu.Unlock()
			return
		}
		r := t.sendingR2T[i]
		sn := t.r2tSN
		t.r2tSN++
		ss.mu.Unlock()
		o := newOut(statPeek)
		(&R2T{LUN: t.lun, ITT: t.itt, TTT: r.ttt, R2TSN: sn, BufferOffset: r.off,
			DesiredDataTransferLength: r.length}).Encode(&o.bhs)
		if !c.send(o) {
			return
		}
	}
}

// unsolicitedEnd is where the unsolicited data of a write ends: after
// the immediate data, plus the unsolicited Data-Out PDUs the initiator
// announces (F clear in the command) when InitialR2T=No, up to
// FirstBurstLength (RFC 7143 §13.11, §13.14). R2Ts solicit the rest.
func unsolicitedEnd(edtl, immediate, firstBurst uint32, initialR2T, final bool) uint32 {
	if final || initialR2T {
		return immediate
	}
	return max(immediate, min(firstBurst, edtl))
}

// r2tLength is the length of the R2T starting at off: what remains of
// edtl, at most one burst.
func r2tLength(off, edtl, maxBurst uint32) uint32 {
	if maxBurst == 0 {
		maxBurst = 256 << 10
	}
	return min(edtl-off, maxBurst)
}

// rxDataOut takes one Data-Out PDU into its task. Data-Out for a task
// that no longer exists (aborted, failed) is discarded. A sequence or
// offset error ends the task with CHECK CONDITION: ErrorRecoveryLevel 0
// cannot recover it (libiscsi iSCSIdatasn).
func (c *conn) rxDataOut(p *PDU) error {
	var d DataOut
	if err := d.Decode(&p.BHS); err != nil {
		c.reject(p, RejectInvalidPDUField)
		return nil
	}
	ss := c.ss
	ss.mu.Lock()
	t := ss.tasks[d.ITT]
	if t == nil || t.state != taskData {
		ss.mu.Unlock()
		p.Release()
		return nil
	}
	n := uint32(len(p.Data))
	off := d.BufferOffset
	var fail []byte
	if d.TTT == ReservedTag {
		switch {
		case t.unsolDone:
			fail = senseUnexpectedUnsol
		case d.DataSN != t.unsolSN:
			fail = senseDataPhaseError
		case off != t.unsolNext || n > t.unsolEnd-off:
			fail = senseDataOffsetError
		default:
			copy(t.out[off:], p.Data)
			t.unsolNext += n
			t.unsolSN++
			t.received += n
			if d.Final || t.unsolNext == t.unsolEnd {
				t.unsolDone = true
				if t.unsolNext < t.unsolEnd {
					// The initiator sent less than FirstBurstLength:
					// solicit the gap, ahead of the R2Ts not yet sent.
					fail = c.solicitGapLocked(t)
				}
			}
		}
	} else {
		i := 0
		for i < len(t.r2ts) && t.r2ts[i].ttt != d.TTT {
			i++
		}
		switch {
		case i == len(t.r2ts):
			fail = senseDataPhaseError
		case d.DataSN != t.r2ts[i].dataSN:
			fail = senseDataPhaseError
		case off != t.r2ts[i].off+t.r2ts[i].got || n > t.r2ts[i].length-t.r2ts[i].got:
			fail = senseDataOffsetError
		case d.Final && n != t.r2ts[i].length-t.r2ts[i].got:
			fail = senseIncorrectAmount
		default:
			r := &t.r2ts[i]
			copy(t.out[off:], p.Data)
			r.got += n
			r.dataSN++
			t.received += n
			if r.got == r.length {
				t.r2ts = append(t.r2ts[:i], t.r2ts[i+1:]...)
			}
		}
	}
	p.Release()
	if fail != nil {
		t.state = taskRunning
		ss.mu.Unlock()
		c.complete(t, scsi.Result{Status: scsi.CheckCondition, Sense: fail}, false)
		return nil
	}
	if t.received == t.edtl && t.unsolDone && len(t.r2ts) == 0 && t.r2tNext >= t.edtl {
		t.state = taskRunning
		ss.mu.Unlock()
		startExec(t)
		return nil
	}
	nr := c.planR2TsLocked(t)
	ss.mu.Unlock()
	c.sendR2Ts(t, nr)
	return nil
}

// solicitGapLocked handles an unsolicited burst that ended short: the
// R2Ts not yet sent are planned again from the end of what arrived. An
// R2T already outstanding past the gap makes that impossible in order,
// which ends the task. ss.mu must be held.
func (c *conn) solicitGapLocked(t *task) []byte {
	if len(t.r2ts) > 0 || t.r2tNext != t.unsolEnd {
		return senseIncorrectAmount
	}
	t.r2tNext = t.unsolNext
	t.unsolEnd = t.unsolNext
	return nil
}

// failDataOut ends the task ITT with CHECK CONDITION sense when it is
// still collecting data-out (a Data-Out PDU was lost to a digest error).
func (c *conn) failDataOut(itt uint32, sense []byte) {
	ss := c.ss
	ss.mu.Lock()
	t := ss.tasks[itt]
	if t == nil || t.state != taskData {
		ss.mu.Unlock()
		return
	}
	t.state = taskRunning
	ss.mu.Unlock()
	c.complete(t, scsi.Result{Status: scsi.CheckCondition, Sense: sense}, false)
}

// Commands run on pooled executor goroutines rather than on one new
// goroutine each: a new goroutine starts on a small stack that the SCSI
// path grows (and copies) every time, a measurable part of the CPU spent
// per command. A command is handed to an idle executor when one waits,
// else to a new one, so commands never queue behind each other; at most
// maxIdleExecutors stay parked once a burst is over.
var (
	execQueue     = make(chan *task)
	idleExecutors atomic.Int32
)

// maxIdleExecutors bounds the executors kept waiting for work.
const maxIdleExecutors = 512

// startExec runs t's command on an executor goroutine.
func startExec(t *task) {
	select {
	case execQueue <- t:
	default:
		go executor(t)
	}
}

// executor runs t, then the commands handed to it while it is idle,
// until too many executors are idle.
func executor(t *task) {
	for {
		t.c.execute(t)
		if idleExecutors.Add(1) > maxIdleExecutors {
			idleExecutors.Add(-1)
			return
		}
		t = <-execQueue
		idleExecutors.Add(-1)
	}
}

// execute runs a task's SCSI command and answers it. A panic while
// answering ends this connection only.
func (c *conn) execute(t *task) {
	defer func() {
		if v := recover(); v != nil {
			c.ss.srv.log.Error("panic answering a SCSI command", "initiator", c.ss.key.initiator,
				"panic", v, "stack", string(debug.Stack()))
			c.close()
		}
	}()
	c.complete(t, c.runSCSI(t), true)
}

// runSCSI calls scsi.Execute for t. A panic is logged with the CDB and
// answered with CHECK CONDITION, INTERNAL TARGET FAILURE.
func (c *conn) runSCSI(t *task) (res scsi.Result) {
	ss := c.ss
	defer func() {
		if v := recover(); v != nil {
			ss.srv.log.Error("panic in SCSI command", "cdb", fmt.Sprintf("% x", t.fullCDB()),
				"initiator", ss.key.initiator, "panic", v, "stack", string(debug.Stack()))
			res = scsi.Result{Status: scsi.CheckCondition, Sense: senseInternalFailure}
		}
	}()
	luns, _ := ss.lunMap()
	lun, ok := scsi.DecodeLUN(t.lun)
	cmd := &t.scmd
	*cmd = scsi.Command{
		Nexus:      ss.nexus,
		LUNs:       luns,
		LUN:        lun,
		LUNValid:   ok,
		CDB:        t.fullCDB(),
		Attr:       t.attr,
		DataOut:    t.out,
		ExpectedIn: t.expIn,
	}
	if t.expIn > 0 && t.expIn <= 1<<maxBufShift {
		t.inBuf = getBuf(int(t.expIn))
		cmd.DataIn = *t.inBuf
	}
	return scsi.Execute(cmd)
}

// complete answers a task (unless it was aborted) and ends it. direct
// says the caller is the task's own goroutine, which may write the answer
// to the socket itself (sendDirect); the reader passes false.
func (c *conn) complete(t *task, res scsi.Result, direct bool) {
	ss := c.ss
	ss.mu.Lock()
	delete(ss.tasks, t.itt)
	ss.uncount(t)
	aborted := t.aborted
	t.state = taskDone
	t.ended()
	ss.mu.Unlock()
	defer ss.taskWG.Done()
	if aborted {
		t.release()
		return
	}
	c.respond(t, res, direct)
}

// residual compares what a command moved with what the initiator
// expected (RFC 7143 §11.4.5): overflow when it wanted to move more.
func residual(expected, actual uint32) (over, under bool, count uint32) {
	switch {
	case actual > expected:
		return true, false, actual - expected
	case actual < expected:
		return false, true, expected - actual
	}
	return false, false, 0
}

// dataInSegment returns the length of the Data-In PDU at offset off of
// total bytes, and whether it ends a sequence (F bit): PDUs carry at most
// maxXmit bytes and sequences at most maxBurst (RFC 7143 §13.13-14).
func dataInSegment(off, total, maxXmit, maxBurst uint32) (n uint32, final bool) {
	if maxXmit == 0 {
		maxXmit = DefaultMaxRecvDSL
	}
	if maxBurst == 0 {
		maxBurst = 256 << 10
	}
	inBurst := maxBurst - off%maxBurst
	n = min(maxXmit, inBurst, total-off)
	return n, off+n == total || n == inBurst
}

// respond sends a task's Data-In PDUs and status: in the last Data-In
// (phase collapse) when the command succeeded without sense, else in a
// SCSI Response. direct selects sendDirect over send.
func (c *conn) respond(t *task, res scsi.Result, direct bool) {
	ss := c.ss
	send := c.send
	if direct {
		send = c.sendDirect
	}
	data := res.Data
	sent := min(uint32(len(data)), t.expIn)
	if !t.read {
		sent = 0
	}
	var over, under bool
	var count uint32
	switch {
	case t.write:
		over, under, count = residual(t.edtl, res.DataOutLen)
	case t.read:
		over, under, count = residual(t.edtl, uint32(len(data)))
	default:
		over, under, count = residual(t.edtl, uint32(len(data)))
	}
	var bidiOver, bidiUnder bool
	var bidiCount uint32
	if t.read && t.write {
		bidiOver, bidiUnder, bidiCount = residual(t.expIn, uint32(len(data)))
	}
	collapse := res.Status == scsi.Good && len(res.Sense) == 0 && sent > 0 && !(t.read && t.write)
	var dataSN uint32
	for off := uint32(0); off < sent; {
		n, final := dataInSegment(off, sent, ss.params.MaxXmitDSL, ss.params.MaxBurstLength)
		last := off+n == sent
		o := newOut(statNone)
		di := DataIn{Final: final, LUN: t.lun, ITT: t.itt, TTT: ReservedTag, DataSN: dataSN, BufferOffset: off}
		if last && collapse {
			o.mode = statNext
			di.HasStatus = true
			di.Status = uint8(res.Status)
			di.Overflow, di.Underflow, di.ResidualCount = over, under, count
			o.task = t
		}
		di.Encode(&o.bhs)
		o.data = data[off : off+n]
		dataSN++
		off += n
		if !send(o) {
			if !(last && collapse) {
				t.release()
			}
			return
		}
	}
	if collapse {
		return
	}
	o := newOut(statNext)
	(&SCSIResponse{
		Overflow: over, Underflow: under, ResidualCount: count,
		BidiOverflow: bidiOver, BidiUnderflow: bidiUnder, BidiReadResidualCount: bidiCount,
		Response: CommandCompleted, Status: uint8(res.Status), ITT: t.itt, ExpDataSN: dataSN,
	}).Encode(&o.bhs)
	if len(res.Sense) > 0 {
		buf := getBuf(2 + len(res.Sense))
		binary.BigEndian.PutUint16(*buf, uint16(len(res.Sense)))
		copy((*buf)[2:], res.Sense)
		o.data, o.buf = *buf, buf
	}
	o.task = t
	send(o)
}
