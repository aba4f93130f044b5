package iscsi

import (
	"github.com/scstd/scstd/internal/bufpool"
	"github.com/scstd/scstd/scsi"
)

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
const maxDataOut = 1 << bufpool.MaxShift

// maxR2TBatch bounds the R2Ts sent in one go; more follow as data arrives.
const maxR2TBatch = 16

// dataOutNeed is the size of t's data-out buffer: the bytes its CDB
// calls for on the addressed logical unit, at most the expected data
// transfer length; the latter alone when the CDB does not say (package
// scsi refuses such commands or reads a parameter list from them).
func (c *conn) dataOutNeed(t *task) uint32 {
	luns, _ := c.ss.lunMap()
	lun, ok := scsi.DecodeLUN(t.lun)
	if !ok || luns == nil {
		return t.edtl
	}
	if n, ok := scsi.DataOutLength(luns.Lookup(lun), t.fullCDB()); ok {
		return min(n, t.edtl)
	}
	return t.edtl
}

// growOut makes t's data-out buffer cover the first end bytes (at most
// t.need): a burst's buffer is taken when its data starts to arrive,
// never for the whole transfer up front. ss.mu must be held, or t not
// yet shared.
func (t *task) growOut(end uint32) {
	end = min(end, t.need)
	if uint32(len(t.out)) >= end {
		return
	}
	b := bufpool.Get(int(end))
	*b = (*b)[:min(cap(*b), int(t.need))]
	copy(*b, t.out)
	if t.outBuf != nil {
		bufpool.Put(t.outBuf)
	}
	t.outBuf, t.out = b, *b
}

// takeOut stores data-out bytes at off; those beyond the buffer (past
// what the CDB calls for) are dropped.
func (t *task) takeOut(off uint32, data []byte) {
	if off < uint32(len(t.out)) {
		copy(t.out[off:], data)
	}
}

// solicitLocked sends the R2Ts that may be outstanding now for t, once
// t holds its data-out budget (reserveOutLocked); R2Ts go out in R2TSN
// order under ss.mu, which must be held.
func (c *conn) solicitLocked(t *task) {
	if t.state != taskData || t.r2tNext >= t.edtl || !c.reserveOutLocked(t) {
		return
	}
	np := &c.ss.params
	maxOut := int(max(np.MaxOutstandingR2T, 1))
	for n := 0; len(t.r2ts) < maxOut && t.r2tNext < t.edtl && n < maxR2TBatch; n++ {
		l := r2tLength(t.r2tNext, t.edtl, np.MaxBurstLength)
		r := r2t{ttt: c.ss.srv.nextTTT(), off: t.r2tNext, length: l}
		t.r2ts = append(t.r2ts, r)
		t.r2tNext += l
		o := newOut(statPeek)
		(&R2T{LUN: t.lun, ITT: t.itt, TTT: r.ttt, R2TSN: t.r2tSN, BufferOffset: r.off,
			DesiredDataTransferLength: l}).Encode(&o.bhs)
		t.r2tSN++
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
			t.growOut(t.unsolEnd)
			t.takeOut(off, p.Data)
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
			t.growOut(r.off + r.length)
			t.takeOut(off, p.Data)
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
		c.complete(t, scsi.Result{Status: scsi.CheckCondition, Sense: fail}, viaReader)
		return nil
	}
	if t.received == t.edtl && t.unsolDone && len(t.r2ts) == 0 && t.r2tNext >= t.edtl {
		t.state = taskRunning
		ss.mu.Unlock()
		c.runTask(t)
		return nil
	}
	c.solicitLocked(t)
	ss.mu.Unlock()
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
	c.complete(t, scsi.Result{Status: scsi.CheckCondition, Sense: sense}, viaReader)
}
