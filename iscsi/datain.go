package iscsi

import (
	"encoding/binary"

	"github.com/scstd/scstd/internal/bufpool"
	"github.com/scstd/scstd/scsi"
)

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
// SCSI Response. how selects send, sendDirect or sendRx.
func (c *conn) respond(t *task, res scsi.Result, how via) {
	ss := c.ss
	send := c.send
	switch how {
	case viaSelf:
		send = c.sendDirect
	case viaReader:
		send = c.sendRx
	}
	// The data-in reservation becomes the PDUs' own cost.
	c.sendq.pay(t.reserved)
	t.reserved = 0
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
	t.sent = int64(sent)
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
		o.lent = t.loan != nil
		dataSN++
		off += n
		if !send(o) {
			if !(last && collapse) {
				// Earlier Data-In PDUs may still be being written
				// from the task's buffer.
				o := newOut(statNone)
				o.task = t
				c.bury(o)
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
		buf := bufpool.Get(2 + len(res.Sense))
		binary.BigEndian.PutUint16(*buf, uint16(len(res.Sense)))
		copy((*buf)[2:], res.Sense)
		o.data, o.buf = *buf, buf
	}
	o.task = t
	send(o)
}
