package iscsi

import "github.com/scstd/scstd/scsi"

// r2t is one outstanding Ready To Transfer.
type r2t struct {
	ttt    uint32
	off    uint32
	length uint32
	got    uint32
	dataSN uint32 // next expected DataSN of its Data-Out sequence
}

// maxDataOut bounds the data-out buffer of one command; the largest
// transfer the SCSI layer accepts is well below it.
const maxDataOut = 1 << maxBufShift

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
