package iscsi

import "fmt"

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

// stamp returns the ExpCmdSN and MaxCmdSN of a PDU being written; slot
// says the PDU is a command's last, whose window slot it gives back
// first.
func (ss *session) stamp(slot bool) (exp, max uint32) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if slot {
		ss.inFlight--
	}
	return ss.expCmdSN, ss.updateMax()
}

// skipPDU marks a CmdSN that a task management function declared
// received (RFC 7143 §11.5.1) while it was missing.
var skipPDU = new(PDU)

// ordered delivers p, a PDU carrying cmdSN, in CmdSN order. An immediate
// PDU is delivered at once. A non-immediate one must lie in the window
// [ExpCmdSN, MaxCmdSN] or is silently dropped (RFC 7143 §4.2.2.1), even
// at ExpCmdSN when the window is closed (MaxCmdSN = ExpCmdSN - 1); one
// ahead of ExpCmdSN waits for the gap to fill. A SCSI command takes a
// window slot, given back when its last PDU is written.
func (c *conn) ordered(p *PDU, cmdSN uint32, immediate bool) error {
	if immediate {
		c.deliver(p, false)
		return nil
	}
	ss := c.ss
	ss.mu.Lock()
	max := ss.updateMax()
	switch {
	case !inWindow(cmdSN, ss.expCmdSN, max) || ss.held[cmdSN] != nil:
		exp := ss.expCmdSN
		ss.mu.Unlock()
		ss.srv.log.Debug("dropping PDU outside the command window", "op", p.BHS.Opcode(),
			"cmdsn", cmdSN, "expcmdsn", exp, "maxcmdsn", max)
		p.Release()
	case cmdSN != ss.expCmdSN && ss.heldBytes+int64(cap(p.Data)) > c.outLimit:
		// Only an initiator that skips CmdSNs on purpose makes the
		// target hold this much for a gap.
		ss.mu.Unlock()
		p.Release()
		return fmt.Errorf("iscsi: %d bytes of PDUs held for a missing CmdSN %d", ss.heldBytes, ss.expCmdSN)
	case cmdSN == ss.expCmdSN:
		ss.expCmdSN++
		counted := p.BHS.Opcode() == OpSCSICommand
		if counted {
			ss.inFlight++
		}
		ss.mu.Unlock()
		c.deliver(p, counted)
		c.deliverHeld()
	default:
		ss.held[cmdSN] = p
		ss.heldBytes += int64(cap(p.Data))
		ss.mu.Unlock()
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
		ss.heldBytes -= int64(cap(p.Data))
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

// rxOrdered orders a command PDU (SCSI Command, Task Management, Text,
// Logout) by the CmdSN at bytes 24..27 and its I bit. Its fields are
// checked when its turn comes, so that a rejected command still uses its
// CmdSN and leaves no gap.
func (c *conn) rxOrdered(p *PDU) error {
	return c.ordered(p, u32(p.BHS[24:]), p.BHS.Immediate())
}
