package iscsi

import (
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scstd/scstd/scsi"
)

// AdmitError is why admitSession refused a normal session; the login
// answers with Status.
type AdmitError struct {
	Status LoginStatus // the Login Response status to send
	Msg    string      // why, for the log
}

// Error describes the refusal.
func (e *AdmitError) Error() string { return fmt.Sprintf("iscsi: %s: %s", e.Status, e.Msg) }

// ErrNoSession is returned by CloseSession when no session matches.
var ErrNoSession = errors.New("iscsi: no such session")

// reinstateWait bounds how long admitting a session waits for the session
// it reinstates to finish its commands.
const reinstateWait = 30 * time.Second

// admitTimeout is how long an admitted session may wait for its
// full-feature phase to start before it is dropped.
const admitTimeout = 30 * time.Second

// sessionKey identifies a session for reinstatement (RFC 7143 §4.4.3):
// initiator name, ISID and target.
type sessionKey struct {
	initiator string
	isid      [6]byte
	target    string
}

// session is one normal iSCSI session (an I_T nexus). scstd runs
// MaxConnections=1, so a session has at most one connection.
type session struct {
	srv       *Server
	key       sessionKey
	tsih      uint16
	alias     string
	tpgt      uint16
	params    Negotiated
	nexus     *scsi.Nexus
	created   time.Time
	firstConn *LoginResult
	portalIP  string // IP of the portal the session logged in on

	conn atomic.Pointer[conn]
	// luns caches the LUN map of the last snapshot generation seen.
	luns atomic.Pointer[lunCache]

	// mu guards the command window, the task table and closing.
	mu       sync.Mutex
	expCmdSN uint32
	maxCmdSN uint32 // last MaxCmdSN advertised; never decreases
	inFlight uint32 // non-immediate SCSI commands delivered and not answered
	held     map[uint32]*PDU
	// heldBytes is the data of the held PDUs, bounded by outLimit.
	heldBytes int64
	tasks     map[uint32]*task // by ITT
	closing   bool

	commands atomic.Uint64 // SCSI commands received, for status
	io       scsi.IOStats  // completed commands, for status and metrics (metrics.go)
	panics   atomic.Uint64 // panics recovered while serving its commands
	done     chan struct{} // closed when the session has ended
	endOnce  sync.Once
	// taskWG counts running tasks; the session ends after they finish.
	taskWG sync.WaitGroup
}

// lunCache is the LUN map of one snapshot generation for a session.
type lunCache struct {
	gen    uint64
	target *Target
	luns   *scsi.LUNMap
}

// admitSession registers the normal session a login is about to complete
// and returns its TSIH. The login calls it before its final response.
// A request naming an existing TSIH would add a connection, which scstd
// refuses (MaxConnections=1). A session with the same initiator, ISID
// and target is reinstated: its connection is closed and its commands
// finish before the new one is admitted.
func (s *Server) admitSession(r *LoginResult) (uint16, error) {
	if r == nil || r.Target == nil {
		return 0, &AdmitError{Status: LoginTargetError, Msg: "no target"}
	}
	key := sessionKey{initiator: r.InitiatorName, isid: r.ISID, target: r.Target.Name}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, &AdmitError{Status: LoginServiceUnavailable, Msg: "server shutting down"}
	}
	if r.TSIH != 0 {
		old := s.byTSIH[r.TSIH]
		s.mu.Unlock()
		if old == nil || old.key != key {
			return 0, &AdmitError{Status: LoginSessionDoesNotExist, Msg: fmt.Sprintf("TSIH %d", r.TSIH)}
		}
		return 0, &AdmitError{Status: LoginTooManyConnections, Msg: "MaxConnections is 1"}
	}
	old := s.sessions[key]
	s.mu.Unlock()
	if old != nil {
		s.log.Info("reinstating session", "initiator", key.initiator, "isid", fmt.Sprintf("%x", key.isid),
			"target", key.target, "tsih", old.tsih)
		old.close()
		select {
		case <-old.done:
		case <-time.After(reinstateWait):
			return 0, &AdmitError{Status: LoginServiceUnavailable, Msg: "old session still busy"}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, &AdmitError{Status: LoginServiceUnavailable, Msg: "server shutting down"}
	}
	if other := s.sessions[key]; other != nil {
		// Another login reinstated the same session meanwhile.
		return 0, &AdmitError{Status: LoginServiceUnavailable, Msg: "concurrent reinstatement"}
	}
	if m := r.Target.MaxSessions; m > 0 && s.sessionCountLocked(key.target) >= m {
		s.refused("max_sessions", m, r.Remote)
		return 0, &AdmitError{Status: LoginOutOfResources,
			Msg: fmt.Sprintf("target %s has max_sessions (%d) sessions", key.target, m)}
	}
	tsih := s.allocTSIH()
	if tsih == 0 {
		return 0, &AdmitError{Status: LoginOutOfResources, Msg: "no TSIH left"}
	}
	t := r.Target
	normalize(&r.Params)
	ss := &session{
		srv:       s,
		key:       key,
		tsih:      tsih,
		alias:     r.InitiatorAlias,
		tpgt:      r.TPGT,
		params:    r.Params,
		created:   time.Now(),
		firstConn: r,
		portalIP:  PortalIP(r.Portal),
		expCmdSN:  r.ExpCmdSN,
		held:      make(map[uint32]*PDU),
		tasks:     make(map[uint32]*task),
		done:      make(chan struct{}),
		nexus: scsi.NewNexus(fmt.Sprintf("%s,i,0x%x", r.InitiatorName, r.ISID), t.Name,
			r.TPGT, t.RelTgtPortID),
	}
	ss.maxCmdSN = ss.expCmdSN + max(t.QueuedCommands, 1) - 1
	s.sessions[key] = ss
	s.byTSIH[tsih] = ss
	r.TSIH = tsih
	// A login that fails after admission leaves no connection: drop the
	// session if its full-feature phase never starts.
	time.AfterFunc(admitTimeout, func() {
		if ss.conn.Load() == nil {
			ss.close()
		}
	})
	return tsih, nil
}

// sessionCountLocked returns how many sessions target has. s.mu must be
// held.
func (s *Server) sessionCountLocked(target string) int {
	n := 0
	for _, ss := range s.byTSIH {
		if ss.key.target == target {
			n++
		}
	}
	return n
}

// allocTSIH returns an unused non-zero TSIH, or 0. s.mu must be held.
func (s *Server) allocTSIH() uint16 {
	for range 1 << 16 {
		s.lastTSIH++
		if s.lastTSIH != 0 && s.byTSIH[s.lastTSIH] == nil {
			return s.lastTSIH
		}
	}
	return 0
}

// removeSession unregisters ss.
func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.key] == ss {
		delete(s.sessions, ss.key)
	}
	if s.byTSIH[ss.tsih] == ss {
		delete(s.byTSIH, ss.tsih)
	}
	s.mu.Unlock()
}

// sessionsOf returns the sessions of target (all when target is "").
func (s *Server) sessionsOf(target string) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.byTSIH))
	for _, ss := range s.byTSIH {
		if target == "" || ss.key.target == target {
			out = append(out, ss)
		}
	}
	return out
}

// runSession runs the full-feature phase of the session admitted for r
// on nc until the connection ends, then ends the session.
func (s *Server) runSession(nc net.Conn, fr *FrameReader, r *LoginResult) {
	s.mu.Lock()
	ss := s.byTSIH[r.TSIH]
	s.mu.Unlock()
	if ss == nil || ss.firstConn != r {
		s.log.Warn("full-feature phase without an admitted session", "tsih", r.TSIH)
		return
	}
	c := newConn(ss, nc, fr, r)
	if !ss.conn.CompareAndSwap(nil, c) {
		return
	}
	// Once the session has ended (its tasks too), the connection gives
	// back its share of the server-wide send budget, whatever it held.
	defer c.sendq.retire()
	defer func() {
		// A bug in the connection's own code ends this session only.
		if v := recover(); v != nil {
			ss.panicked()
			s.log.Error("panic in session", "initiator", ss.key.initiator, "target", ss.key.target,
				"panic", v, "stack", string(debug.Stack()))
			c.close()
			ss.end()
		}
	}()
	s.log.Info("session started", "initiator", ss.key.initiator, "target", ss.key.target,
		"tsih", ss.tsih, "remote", nc.RemoteAddr().String(), "header_digest", ss.params.HeaderDigest,
		"data_digest", ss.params.DataDigest)
	err := c.run()
	ss.end()
	s.log.Info("session ended", "initiator", ss.key.initiator, "target", ss.key.target,
		"tsih", ss.tsih, "reason", err)
}

// close starts ending the session: its connection is closed, which stops
// the reader; end then waits for the tasks.
func (ss *session) close() {
	ss.mu.Lock()
	ss.closing = true
	ss.mu.Unlock()
	if c := ss.conn.Load(); c != nil {
		c.close()
		return
	}
	// Admitted but its login never completed: nothing runs.
	ss.end()
}

// end aborts what is left, waits for running tasks and unregisters the
// session. It is idempotent.
func (ss *session) end() {
	ss.mu.Lock()
	ss.closing = true
	for _, t := range ss.tasks {
		t.aborted = true
		t.abortWaiting()
	}
	for sn, p := range ss.held {
		if p != skipPDU {
			p.Release()
		}
		delete(ss.held, sn)
	}
	ss.heldBytes = 0
	ss.mu.Unlock()
	ss.taskWG.Wait()
	ss.endOnce.Do(func() {
		ss.srv.removeSession(ss)
		// I_T nexus loss: SPC-2 reservations and medium removal
		// preventions of this nexus go.
		ss.nexus.Close()
		close(ss.done)
	})
}

// panicked counts a panic recovered while serving the session.
func (ss *session) panicked() {
	ss.panics.Add(1)
	ss.srv.panics.Add(1)
}

// lunMap returns the LUN map the session's initiator sees in the current
// snapshot (nil when the target is gone), and the target.
func (ss *session) lunMap() (*scsi.LUNMap, *Target) {
	snap := ss.srv.snap.Load()
	if lc := ss.luns.Load(); lc != nil && lc.gen == snap.Generation {
		return lc.luns, lc.target
	}
	t := snap.Targets[ss.key.target]
	lc := &lunCache{gen: snap.Generation, target: t}
	if t != nil && t.Enabled {
		lc.luns = t.LUNsFor(ss.key.initiator, ss.portalIP)
	}
	ss.luns.Store(lc)
	return lc.luns, lc.target
}

// queuedCommands is the target's current command window size.
func (ss *session) queuedCommands() uint32 {
	if _, t := ss.lunMap(); t != nil && t.QueuedCommands > 0 {
		return t.QueuedCommands
	}
	if q := ss.firstConn.Target.QueuedCommands; q > 0 {
		return q
	}
	return 32
}

// normalize replaces limits a negotiation left at zero with the RFC 7143
// defaults, so that a zero never stalls a transfer.
func normalize(p *Negotiated) {
	if p.MaxRecvDSL == 0 {
		p.MaxRecvDSL = DefaultMaxRecvDSL
	}
	if p.MaxXmitDSL == 0 {
		p.MaxXmitDSL = DefaultMaxRecvDSL
	}
	if p.MaxBurstLength == 0 {
		p.MaxBurstLength = 262144
	}
	if p.FirstBurstLength == 0 {
		p.FirstBurstLength = min(65536, p.MaxBurstLength)
	}
	if p.MaxOutstandingR2T == 0 {
		p.MaxOutstandingR2T = 1
	}
}
