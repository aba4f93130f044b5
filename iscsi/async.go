package iscsi

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/scstd/scstd/scsi"
)

// senseLUNsChanged is UNIT ATTENTION, REPORTED LUNS DATA HAS CHANGED.
var senseLUNsChanged = scsi.FixedSense(scsi.UnitAttention, 0x3f, 0x0e)

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
		buf := getBuf(2 + len(sense))
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

// RequestLogout asks every session of target to log out within grace and
// closes those still there afterwards. It returns at once.
func (s *Server) RequestLogout(target string, grace time.Duration) {
	for _, ss := range s.sessionsOf(target) {
		s.log.Info("requesting logout", "initiator", ss.key.initiator, "target", target, "grace", grace)
		ss.requestLogout(grace)
	}
}

// NotifyLUNsChanged tells the sessions of target whose LUN map changed
// since they were last told (a session in an initiator group the change
// did not touch is left alone): REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh)
// becomes pending as a unit attention on every LUN of the nexus, and an
// Async Message SCSI event carrying that sense makes initiators rescan.
// Call it after publishing the snapshot with the new LUN maps.
func (s *Server) NotifyLUNsChanged(target string) {
	for _, ss := range s.sessionsOf(target) {
		now, _ := ss.lunMap()
		ss.mu.Lock()
		changed := now != ss.notified
		ss.notified = now
		ss.mu.Unlock()
		if !changed {
			continue
		}
		ss.nexus.ReportedLUNsChanged()
		ss.sendAsync(&AsyncMessage{Event: AsyncSCSIEvent}, senseLUNsChanged)
	}
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
