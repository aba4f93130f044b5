package iscsi

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/scstd/scstd/internal/bufpool"
	"github.com/scstd/scstd/scsi"
)

// senseLUNsChanged is UNIT ATTENTION, REPORTED LUNS DATA HAS CHANGED.
var senseLUNsChanged = scsi.FixedSense(scsi.UnitAttention, 0x3f, 0x0e)

// defaultLogoutGrace is how long sessions of a removed or disabled target
// have to log out when the snapshot does not say.
const defaultLogoutGrace = 5 * time.Second

// SessionID names one live session: its I_T nexus (initiator name, ISID,
// target) and the TSIH the target gave it.
type SessionID struct {
	Target    string `json:"target"`
	Initiator string `json:"initiator"`
	ISID      string `json:"isid"` // 12 hex digits
	TSIH      uint16 `json:"tsih"`
}

// String names the session for logs: "initiator (tsih N)".
func (id SessionID) String() string { return fmt.Sprintf("%s (tsih %d)", id.Initiator, id.TSIH) }

// SessionEffect is what a reload does to one live session, as its plan
// printed it; Commit delivers it.
type SessionEffect struct {
	Session SessionID
	// LUNsChanged: the LUN map the session sees changed. It gets
	// REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh) on every LUN and an
	// Async Message carrying that sense, so that it rescans; Added LUNs
	// report no POWER ON, and Swapped LUNs, which now reach another
	// device, report INQUIRY DATA HAS CHANGED (3Fh/03h) first (see
	// scsi.Nexus.PostLUNChange).
	LUNsChanged bool
	Added       []scsi.LUN
	Removed     []scsi.LUN
	Swapped     []scsi.LUN
	// Logout: the session's target is removed or disabled. It is asked
	// to log out (Async Message event 1) and closed after the snapshot's
	// LogoutGrace.
	Logout bool
}

// sendAsync queues an Asynchronous Message (RFC 7143 §11.9) with the
// given sense data (none when nil) on the session's connection.
func (ss *session) sendAsync(m *AsyncMessage, sense []byte) bool {
	c := ss.conn.Load()
	if c == nil {
		return false
	}
	o := newOut(statNext)
	m.Encode(&o.bhs)
	if len(sense) > 0 {
		buf := bufpool.Get(2 + len(sense))
		binary.BigEndian.PutUint16(*buf, uint16(len(sense)))
		copy((*buf)[2:], sense)
		o.data, o.buf = *buf, buf
	}
	return c.send(o)
}

// requestLogout asks the initiator to log out within grace (Async
// Message event 1) and closes the session when the grace has passed.
func (ss *session) requestLogout(grace time.Duration) {
	secs := math.Ceil(grace.Seconds())
	p3 := uint16(min(max(secs, 0), math.MaxUint16))
	if !ss.sendAsync(&AsyncMessage{Event: AsyncLogoutRequest, Parameter3: p3}, nil) {
		ss.close()
		return
	}
	time.AfterFunc(grace, ss.close)
}

// Commit makes snap the state every new login and every next command
// sees, as Publish does, and delivers the effects of the change to the
// live sessions: each effect to the session it names (one that has ended
// meanwhile is skipped). LUN map changes are posted to the sessions'
// nexuses before snap becomes visible, so that no command reaches a new
// map without its unit attentions; the Async Messages and logout requests
// follow once it is visible.
//
// A live session that no effect names (it logged in while the reload
// was being prepared) is told what the new snapshot changes for it, as
// computed from its LUN maps (scsi.DiffLUNMaps), and asked to log out
// when its target is gone or disabled.
func (s *Server) Commit(snap *Snapshot, effects []SessionEffect) {
	if snap.Targets == nil {
		snap.Targets = map[string]*Target{}
	}
	grace := snap.LogoutGrace
	if grace <= 0 {
		grace = defaultLogoutGrace
	}
	var events, logouts []*session
	named := make(map[*session]bool, len(effects))
	for i := range effects {
		ef := &effects[i]
		ss := s.sessionByID(ef.Session)
		if ss == nil {
			continue
		}
		named[ss] = true
		switch {
		case ef.Logout:
			logouts = append(logouts, ss)
		case ef.LUNsChanged:
			from, _ := ss.lunMap()
			ss.nexus.PostLUNChange(scsi.LUNChange{From: from, Added: ef.Added, Removed: ef.Removed, Swapped: ef.Swapped})
			events = append(events, ss)
		}
	}
	for _, ss := range s.sessionsOf("") {
		if named[ss] {
			continue
		}
		from, ot := ss.lunMap()
		if ot == nil || !ot.Enabled {
			continue // already gone: asked to log out before
		}
		nt := snap.Targets[ss.key.target]
		if nt == nil || !nt.Enabled {
			logouts = append(logouts, ss)
			continue
		}
		c, changed := scsi.DiffLUNMaps(from, nt.LUNsFor(ss.key.initiator, ss.portalIP))
		if !changed {
			continue
		}
		if effects != nil {
			s.log.Info("session not in the reload's plan (it logged in meanwhile): telling it of its LUN map change",
				"initiator", ss.key.initiator, "target", ss.key.target, "tsih", ss.tsih)
		}
		ss.nexus.PostLUNChange(c)
		events = append(events, ss)
	}
	snap.Generation = s.gen.Add(1)
	s.snap.Store(snap)
	s.logins.prune(snap)
	for _, ss := range events {
		ss.sendAsync(&AsyncMessage{Event: AsyncSCSIEvent}, senseLUNsChanged)
	}
	for _, ss := range logouts {
		s.log.Info("requesting logout", "initiator", ss.key.initiator, "target", ss.key.target,
			"tsih", ss.tsih, "grace", grace)
		ss.requestLogout(grace)
	}
}

// sessionByID returns the live session id names, or nil.
func (s *Server) sessionByID(id SessionID) *session {
	s.mu.Lock()
	ss := s.byTSIH[id.TSIH]
	s.mu.Unlock()
	if ss == nil || ss.key.target != id.Target || ss.key.initiator != id.Initiator ||
		fmt.Sprintf("%012x", ss.key.isid[:]) != id.ISID {
		return nil
	}
	return ss
}

// CloseSession force-closes the sessions of initiator on target (SCST's
// force_close), without waiting for them to end, and returns how many
// there were; ErrNoSession when none.
func (s *Server) CloseSession(target, initiator string) (int, error) {
	n := 0
	for _, ss := range s.sessionsOf(target) {
		if ss.key.initiator == initiator {
			s.log.Info("closing session", "initiator", initiator, "target", target, "tsih", ss.tsih)
			go ss.close()
			n++
		}
	}
	if n == 0 {
		return 0, ErrNoSession
	}
	return n, nil
}
