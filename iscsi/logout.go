package iscsi

import (
	"errors"
	"fmt"
	"time"
)

// logoutResponse decides the answer to a logout request on connection
// cid: scstd has one connection per session and no connection recovery
// (ErrorRecoveryLevel 0), so closing the session or this connection both
// end the session.
func logoutResponse(req *LogoutRequest, cid uint16) LogoutResponseCode {
	switch req.Reason {
	case LogoutCloseSession:
		return LogoutSuccess
	case LogoutCloseConnection:
		if req.CID != cid {
			return LogoutCIDNotFound
		}
		return LogoutSuccess
	}
	return LogoutRecoveryNotSupported
}

// logoutReleaseWait bounds how long a logout waits for the release of
// the session's SPC-2 reservations when the device shares them.
const logoutReleaseWait = 2 * time.Second

// execLogout handles a Logout Request (RFC 7143 §11.14). On success no
// new command is accepted, tasks waiting for data-out are aborted, the
// running ones complete and their answers are queued, then the Logout
// Response goes out behind them (§11.15: it reports the cleanup done)
// and the connection closes once it is flushed. Running tasks that do
// not complete within the connection's write timeout make it a
// CLEANUP_FAILED response: the connection closes all the same, and
// their answers are lost.
func (c *conn) execLogout(p *PDU) {
	var req LogoutRequest
	if err := req.Decode(&p.BHS); err != nil {
		c.reject(p, RejectInvalidPDUField)
		return
	}
	p.Release()
	ss := c.ss
	code := logoutResponse(&req, c.cid)
	ss.srv.log.Info("logout", "initiator", ss.key.initiator, "target", ss.key.target,
		"tsih", ss.tsih, "reason", req.Reason, "response", code)
	var waits []chan struct{}
	if code == LogoutSuccess {
		c.state.Store(uint32(ConnLoggingOut))
		ss.mu.Lock()
		ss.closing = true
		for _, t := range ss.tasks {
			if t.state == taskData {
				t.aborted = true
				t.abortWaiting()
				continue
			}
			// Running: let it finish and answer.
			waits = append(waits, t.waitChan())
		}
		ss.mu.Unlock()
	}
	resp := &LogoutResponse{Response: code, ITT: req.ITT}
	if code == LogoutSuccess {
		resp.Time2Wait = uint16(min(ss.params.DefaultTime2Wait, 3600))
	}
	send := func() {
		if code == LogoutSuccess {
			// The initiator may act through another nexus as soon as
			// it reads the response: the session's SPC-2 reservations
			// go first (shared ones settled).
			ss.nexus.ReleaseReservations(logoutReleaseWait)
		}
		o := newOut(statNext)
		resp.Encode(&o.bhs)
		if code == LogoutSuccess {
			o.after = c.close
		}
		c.send(o)
	}
	if len(waits) == 0 {
		// send may wait for the reservations' release on this, the
		// reader's, goroutine: the answers it queued go out first.
		if c.rxQueued > 0 {
			c.flushRx(false)
		}
		send()
		return
	}
	go func() {
		if err := c.awaitTasks(waits); errors.Is(err, errTasksRunning) {
			ss.srv.log.Warn("logout: commands still running, answering CLEANUP_FAILED",
				"initiator", ss.key.initiator, "target", ss.key.target, "tsih", ss.tsih, "err", err)
			resp.Response, resp.Time2Wait = LogoutCleanupFailed, 0
		}
		send()
	}()
}

// errTasksRunning is awaitTasks' error when commands did not complete in time.
var errTasksRunning = errors.New("iscsi: commands still running")

// awaitTasks waits until the tasks whose done channels are waits have
// ended (their answers queued), at most the connection's write timeout
// (errTasksRunning) or until the connection closes (errConnClosed).
func (c *conn) awaitTasks(waits []chan struct{}) error {
	if len(waits) == 0 {
		return nil
	}
	timer := time.NewTimer(c.sendq.timeout)
	defer timer.Stop()
	for i, d := range waits {
		select {
		case <-d:
		case <-timer.C:
			return fmt.Errorf("%w: %d after %s", errTasksRunning, len(waits)-i, c.sendq.timeout)
		case <-c.closed:
			return errConnClosed
		}
	}
	return nil
}

// runningTasks returns the done channels of the connection's commands
// that are running: their answers are still to come.
func (c *conn) runningTasks() []chan struct{} {
	ss := c.ss
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var waits []chan struct{}
	for _, t := range ss.tasks {
		if t.c == c && t.state == taskRunning {
			waits = append(waits, t.waitChan())
		}
	}
	return waits
}
