package iscsi

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/scstd/scstd/internal/bufpool"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// taskState is where a task is in its life.
type taskState uint8

const (
	taskData    taskState = iota // collecting data-out
	taskRunning                  // in scsi.Execute
	taskDone                     // answered or aborted
)

// task is one SCSI command of a session.
type task struct {
	c       *conn
	itt     uint32
	lun     [8]byte
	counted bool // holds a command window slot
	read    bool
	write   bool
	edtl    uint32
	expIn   uint32 // expected data-in length
	attr    scsi.TaskAttribute
	started int64 // UnixNano when the command was taken up, for RspTimeout
	cdb     [16]byte
	extCDB  []byte // the CDB when longer than 16 bytes

	// Data-out collection; guarded by ss.mu. out is the buffer so far
	// (it grows per burst up to need, the bytes the CDB calls for, at
	// most edtl); what arrives beyond need is dropped.
	out         []byte
	outBuf      *[]byte
	outPDU      *PDU // the command PDU when its immediate data is all the data-out
	need        uint32
	outReserved uint32 // data-out budget reserved (budget.go)
	outQueued   bool   // waiting in conn.outWaiting for data-out budget
	received    uint32
	unsolEnd    uint32 // end of the unsolicited (immediate + Data-Out) data
	unsolNext   uint32
	unsolSN     uint32
	unsolDone   bool
	r2tNext     uint32 // offset of the next R2T to send
	r2tSN       uint32
	r2ts        []r2t
	state       taskState
	aborted     bool
	// done, made when someone waits for the task, is closed when it ends.
	done chan struct{}

	// Execution: the data-in buffer handed to scsi (DataInBuffer) and
	// the send budget reserved for the data-in.
	inBuf    *[]byte
	loan     vdisk.Loan // what keeps data-in lent by the backend mapped
	reserved int64
	sent     int64 // data-in bytes in the Data-In PDUs queued
	scmd     scsi.Command
	// unit is the counters of the logical unit the command runs on,
	// from its start to its completion (metrics.go).
	unit *scsi.IOStats
}

var taskPool = sync.Pool{New: func() any { return new(task) }}

// release returns a finished task's buffers and the task to their pools.
// Its data-out budget must have been given back (releaseOutLocked).
func (t *task) release() {
	if t.outBuf != nil {
		bufpool.Put(t.outBuf)
	}
	if t.outPDU != nil {
		t.outPDU.Release()
	}
	if t.inBuf != nil {
		bufpool.Put(t.inBuf)
	}
	if t.loan != nil {
		t.loan.Return()
	}
	r2ts := t.r2ts[:0]
	*t = task{r2ts: r2ts}
	taskPool.Put(t)
}

// DataInBuffer gives scsi.Execute a pooled buffer of exactly the data-in
// the command returns (scsi.DataInBuffers); nil beyond the largest pool
// class lets Execute allocate.
func (t *task) DataInBuffer(n int) []byte {
	if n > 1<<bufpool.MaxShift {
		return nil
	}
	if t.inBuf != nil {
		if cap(*t.inBuf) >= n {
			*t.inBuf = (*t.inBuf)[:n]
			return *t.inBuf
		}
		bufpool.Put(t.inBuf)
	}
	t.inBuf = bufpool.Get(max(n, 1))
	*t.inBuf = (*t.inBuf)[:n]
	return *t.inBuf
}

// TakesLoans lets a READ's data-in be lent by the backend
// (scsi.DataInLoans) unless data digests are on: the Data-In PDUs then
// carry a CRC of the data, which Go code would have to read.
func (t *task) TakesLoans() bool { return !t.c.ss.params.DataDigest }

// HoldLoan keeps l until the task is released, after its last Data-In
// PDU was written (or given up).
func (t *task) HoldLoan(l vdisk.Loan) {
	if t.loan != nil {
		t.loan.Return()
	}
	t.loan = l
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
	ss.countCommand(t, nil, true)
	delete(ss.tasks, t.itt)
	ss.uncount(t)
	t.c.releaseOutLocked(t)
	t.ended()
	ss.taskWG.Done()
	t.release()
	return true
}

// waitChan returns a channel closed when the task ends: once its answer
// is queued (complete), or when it is aborted waiting for data-out
// (abortWaiting). ss.mu must be held and the task not yet ended.
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
	t.attr = cmd.Attr
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
		t.received = imm
		t.unsolEnd = unsolicitedEnd(t.edtl, imm, np.FirstBurstLength, np.InitialR2T, cmd.Final)
		t.unsolNext = imm
		t.unsolDone = t.unsolEnd == imm
		t.r2tNext = t.unsolEnd
		switch {
		case t.edtl > maxDataOut:
			early = senseInvalidFieldInCDB
		case imm == t.edtl:
			t.out, t.outPDU, t.need = p.Data, p, imm
			p = nil
		default:
			t.need = c.dataOutNeed(t)
			if imm > 0 {
				// The immediate data opens the unsolicited burst.
				t.growOut(t.unsolEnd)
				copy(t.out, p.Data)
			}
		}
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
		c.complete(t, scsi.Result{Status: scsi.CheckCondition, Sense: early}, viaReader)
		return
	}
	if t.received == t.edtl || !t.write {
		t.state = taskRunning
		ss.mu.Unlock()
		c.runTask(t)
		return
	}
	c.solicitLocked(t)
	ss.mu.Unlock()
}

// rejectCommand answers a SCSI command whose PDU is already released
// with a Reject carrying its header.
func (c *conn) rejectCommand(cmd *SCSICommand, reason RejectReason) {
	var h BHS
	cmd.Encode(&h)
	c.rejectBHS(&h, reason)
}
