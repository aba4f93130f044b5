package iscsi

import (
	"time"
)

// rxNOPOut handles a NOP-Out (RFC 7143 §11.18): a ping from the
// initiator, answered with a NOP-In echoing its data, or the answer to a
// target ping (TTT set), or both.
func (c *conn) rxNOPOut(p *PDU) error {
	var n NOPOut
	if err := n.Decode(&p.BHS); err != nil {
		c.reject(p, RejectProtocolError)
		return nil
	}
	if n.TTT != ReservedTag {
		c.pingTTT.CompareAndSwap(n.TTT, ReservedTag)
	}
	if n.ITT == ReservedTag {
		// No answer wanted; such a NOP-Out is immediate and takes no CmdSN.
		p.Release()
		return nil
	}
	return c.ordered(p, n.CmdSN, n.Immediate)
}

// execNOPOut answers a NOP-Out ping with a NOP-In carrying its ITT, LUN
// and data (at most MaxXmitDataSegmentLength bytes of it).
func (c *conn) execNOPOut(p *PDU) {
	var n NOPOut
	n.Decode(&p.BHS)
	o := newOut(statNext)
	(&NOPIn{LUN: n.LUN, ITT: n.ITT, TTT: ReservedTag}).Encode(&o.bhs)
	if len(p.Data) > 0 {
		d := p.Data
		if m := c.ss.params.MaxXmitDSL; m > 0 && uint32(len(d)) > m {
			d = d[:m]
		}
		o.data, o.pdu = d, p
	} else {
		p.Release()
	}
	c.send(o)
}

// nopTimes returns the target's current NopInInterval, NopInTimeout and
// RspTimeout.
func (c *conn) nopTimes() (interval, timeout, rsp time.Duration) {
	_, t := c.ss.lunMap()
	if t == nil {
		t = c.ss.firstConn.Target
	}
	interval, timeout = t.NopInInterval, t.NopInTimeout
	if timeout <= 0 {
		timeout = interval
	}
	return interval, timeout, t.RspTimeout
}

// overdue reports whether a command of the session has waited longer than
// rsp for its response.
func (ss *session) overdue(rsp time.Duration, now time.Time) bool {
	limit := now.Add(-rsp).UnixNano()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, t := range ss.tasks {
		if t.started < limit {
			return true
		}
	}
	return false
}

// pingTick is how often pingLoop looks at the connection: often enough
// for the intervals at hand, at most once a second.
func pingTick(interval, timeout, rsp time.Duration) time.Duration {
	d := time.Second
	if interval > 0 {
		d = min(d, interval/2, timeout/2)
	}
	if rsp > 0 {
		d = min(d, rsp/2)
	}
	return max(d, 10*time.Millisecond)
}

// pingLoop sends a NOP-In ping (ITT reserved, TTT set) every
// NopInInterval and closes the connection when the initiator has not
// answered it within NopInTimeout. Only the answer counts, a NOP-Out
// carrying the ping's TTT: an initiator that keeps sending but no longer
// reads is not alive. It also closes the connection when a command has
// waited longer than RspTimeout. The times are read from the current
// snapshot, so a reload changes them for live sessions.
func (c *conn) pingLoop() {
	sent := time.Now()
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		interval, timeout, rsp := c.nopTimes()
		timer.Reset(pingTick(interval, timeout, rsp))
		select {
		case <-c.closed:
			return
		case <-timer.C:
		}
		now := time.Now()
		if rsp > 0 && c.ss.overdue(rsp, now) {
			c.ss.srv.log.Warn("command exceeded RspTimeout, closing connection",
				"initiator", c.ss.key.initiator, "remote", c.remote.String(), "rsp_timeout", rsp)
			c.close()
			return
		}
		if interval <= 0 {
			continue
		}
		if c.pingTTT.Load() != ReservedTag {
			if now.Sub(sent) >= timeout {
				c.ss.srv.log.Warn("NOP-In ping unanswered, closing connection",
					"initiator", c.ss.key.initiator, "remote", c.remote.String(), "timeout", timeout)
				c.close()
				return
			}
			continue
		}
		if now.Sub(sent) < interval {
			continue
		}
		ttt := c.ss.srv.nextTTT()
		c.pingTTT.Store(ttt)
		sent = now
		o := newOut(statPeek)
		(&NOPIn{ITT: ReservedTag, TTT: ttt}).Encode(&o.bhs)
		c.send(o)
	}
}
