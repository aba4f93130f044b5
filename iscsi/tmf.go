package iscsi

import (
	"github.com/scstd/scstd/scsi"
)

// execTaskMgmt performs a task management function (RFC 7143 §11.5,
// SAM-5 §7). The tasks it affects are marked aborted at once, in CmdSN
// order with the commands around it; waiting for the running ones, the
// SCSI side of resets and the response happen in a goroutine so that the
// connection keeps reading. Aborted tasks get no response. Only the
// tasks of this session are aborted: commands of other sessions complete,
// and their initiators learn of a reset from the unit attention.
func (c *conn) execTaskMgmt(p *PDU) {
	var req TaskMgmtRequest
	if err := req.Decode(&p.BHS); err != nil {
		c.reject(p, RejectInvalidPDUField)
		return
	}
	p.Release()
	ss := c.ss
	luns, target := ss.lunMap()
	lun, lunOK := scsi.DecodeLUN(req.LUN)
	var lu *scsi.LogicalUnit
	if lunOK {
		lu = luns.Lookup(lun)
	}

	var waits []chan struct{}
	var after func()
	resp := TMFunctionComplete
	switch req.Function {
	case TMAbortTask:
		resp, waits = c.abortTask(&req)
	case TMAbortTaskSet, TMClearTaskSet:
		waits = c.abortTasks(func(t *task) bool { return t.lun == req.LUN })
	case TMLogicalUnitReset:
		if lu == nil {
			resp = TMLUNDoesNotExist
			break
		}
		waits = c.abortTasks(func(t *task) bool { return t.lun == req.LUN })
		after = func() { scsi.LogicalUnitReset(ss.nexus, lu) }
	case TMTargetWarmReset, TMTargetColdReset:
		waits = c.abortTasks(func(*task) bool { return true })
		after = func() { scsi.TargetReset(ss.nexus, luns) }
	case TMClearACA:
		resp = TMFunctionNotSupported
	case TMTaskReassign:
		resp = TMReassignmentNotSupported
	default:
		resp = TMFunctionRejected
	}
	ss.srv.log.Info("task management", "function", req.Function, "initiator", ss.key.initiator,
		"target", ss.key.target, "lun", lun, "rtt", req.RTT, "response", resp)

	ss.mu.Lock()
	if ss.closing {
		ss.mu.Unlock()
		return
	}
	ss.taskWG.Add(1)
	ss.mu.Unlock()
	go func() {
		defer ss.taskWG.Done()
		for _, d := range waits {
			<-d
		}
		if after != nil {
			after()
		}
		o := newOut(statNext)
		(&TaskMgmtResponse{Response: resp, ITT: req.ITT}).Encode(&o.bhs)
		if req.Function == TMTargetColdReset && target != nil {
			// A cold reset ends every session of the target once the
			// response is out (SAM-5 §7.11; RFC 7143 §11.5.1).
			name := target.Name
			o.after = func() {
				for _, other := range ss.srv.sessionsOf(name) {
					go other.close()
				}
			}
		}
		c.send(o)
	}()
	// An ABORT TASK may have declared a missing CmdSN received.
	c.deliverHeld()
}

// abortTask handles ABORT TASK: the referenced task is aborted if it
// exists. If it does not, RFC 7143 §11.5.1 decides by RefCmdSN: within
// the command window and before the request itself, the command is
// considered received (it will not run if it arrives) and the function
// completes; otherwise the task does not exist.
func (c *conn) abortTask(req *TaskMgmtRequest) (TMResponse, []chan struct{}) {
	ss := c.ss
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if t := ss.tasks[req.RTT]; t != nil {
		t.aborted = true
		if t.abortWaiting() {
			return TMFunctionComplete, nil
		}
		return TMFunctionComplete, []chan struct{}{t.waitChan()}
	}
	ref := req.RefCmdSN
	max := ss.updateMax()
	if !inWindow(ref, ss.expCmdSN, max) || (!req.Immediate && !snLess(ref, req.CmdSN)) {
		return TMTaskDoesNotExist, nil
	}
	if p := ss.held[ref]; p != nil && p != skipPDU {
		if p.BHS.ITT() != req.RTT {
			return TMTaskDoesNotExist, nil
		}
		ss.heldBytes -= int64(cap(p.Data))
		p.Release()
	}
	ss.held[ref] = skipPDU
	return TMFunctionComplete, nil
}

// abortTasks aborts the session's tasks that match and returns what to
// wait for: the done channels of those running now.
func (c *conn) abortTasks(match func(*task) bool) []chan struct{} {
	ss := c.ss
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var waits []chan struct{}
	for _, t := range ss.tasks {
		if !match(t) {
			continue
		}
		t.aborted = true
		if !t.abortWaiting() {
			waits = append(waits, t.waitChan())
		}
	}
	return waits
}
