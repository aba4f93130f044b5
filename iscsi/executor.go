package iscsi

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"github.com/scstd/scstd/scsi"
)

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

// execute runs a task's SCSI command and answers it. A command that may
// return much data-in first reserves it from the send budget, waiting
// while the initiator has not read what is queued; when the connection
// ends meanwhile the command is not run. A panic while answering (a bug
// of this package) ends this connection only.
func (c *conn) execute(t *task) {
	defer func() {
		if v := recover(); v != nil {
			c.ss.panicked()
			c.ss.srv.log.Error("panic answering a SCSI command", "initiator", c.ss.key.initiator,
				"panic", v, "stack", string(debug.Stack()))
			c.close()
		}
	}()
	if t.expIn > reserveMin {
		n := int64(min(t.expIn, maxDataIn))
		if err := c.sendq.reserve(n, c.closed); err != nil {
			if errors.Is(err, errNotReading) {
				c.ss.srv.log.Warn("closing connection", "initiator", c.ss.key.initiator,
					"remote", c.remote.String(), "reason", err)
				c.close()
			}
			c.complete(t, scsi.Result{Status: scsi.CheckCondition, Sense: senseInternalFailure}, viaSelf)
			return
		}
		t.reserved = n
	}
	res, _ := c.runSCSI(t, false)
	c.complete(t, res, viaSelf)
}

// runTask executes t, whose data-out is all in, on the reader: when it
// waits for nothing (scsi.TryExecute) it is answered at once, the answer
// queued for the reader's next flush; otherwise, and when it may return
// enough data-in to reserve send budget for, an executor runs it.
func (c *conn) runTask(t *task) {
	if t.expIn <= reserveMin {
		if res, ok := c.runSCSI(t, true); ok {
			c.complete(t, res, viaReader)
			return
		}
	}
	startExec(t)
}

// runSCSI calls scsi.Execute for t, or with try scsi.TryExecute, which
// reports whether it ran the command. A panic is logged with its stack
// and the CDB, counted, and answered with CHECK CONDITION, HARDWARE
// ERROR, INTERNAL TARGET FAILURE (44h/00h); the session goes on.
func (c *conn) runSCSI(t *task, try bool) (res scsi.Result, ran bool) {
	ss := c.ss
	defer func() {
		if v := recover(); v != nil {
			ss.panicked()
			ss.srv.log.Error("panic in SCSI command", "command", scsi.CommandName(t.fullCDB()),
				"cdb", fmt.Sprintf("% x", t.fullCDB()), "initiator", ss.key.initiator,
				"target", ss.key.target, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			res, ran = scsi.Result{Status: scsi.CheckCondition, Sense: senseInternalFailure}, true
		}
	}()
	luns, _ := ss.lunMap()
	lun, ok := scsi.DecodeLUN(t.lun)
	if t.unit == nil {
		// Not yet started by a TryExecute that gave the command up.
		t.startUnit(luns, lun, ok)
	}
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
		Buffers:    t,
	}
	if try {
		return scsi.TryExecute(cmd)
	}
	return scsi.Execute(cmd), true
}

// complete answers a task (unless it was aborted) and ends it: its
// data-out buffer and budget go back at once, its window slot when its
// last PDU is written (or at once when aborted). how says how the answer
// reaches the socket: viaSelf from the task's own goroutine, which may
// write it itself (sendDirect); viaReader from the reader (sendRx).
// Those waiting for the task (a logout, a task management function) are
// woken once its answer is queued, so that theirs goes out after it.
func (c *conn) complete(t *task, res scsi.Result, how via) {
	ss := c.ss
	ss.mu.Lock()
	delete(ss.tasks, t.itt)
	aborted := t.aborted
	if aborted {
		ss.uncount(t)
	}
	t.state = taskDone
	// t may be freed as soon as its answer is written: its waiters'
	// channel is taken now.
	done := t.done
	t.done = nil
	c.releaseOutLocked(t)
	ss.mu.Unlock()
	defer func() {
		if done != nil {
			close(done)
		}
		ss.taskWG.Done()
	}()
	ss.countCommand(t, &res, aborted)
	if aborted {
		c.sendq.pay(t.reserved)
		t.release()
		return
	}
	c.respond(t, res, how)
}
