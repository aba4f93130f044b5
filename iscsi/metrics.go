package iscsi

import (
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scstd/scstd/scsi"
)

// This file holds what the server counts for status and metrics, each
// at one place per event: a SCSI command when it completes (per session
// and per LUN, in scsi.IOStats), a login when it succeeds or fails (per
// target, by reason). Readers take the values at scrape time from the
// live sessions and the snapshot, so nothing outlives what it counts.

// startUnit notes the logical unit a task is about to run on, for its
// counters: the unit's queue depth grows until countCommand.
func (t *task) startUnit(luns *scsi.LUNMap, lun scsi.LUN, ok bool) {
	if !ok {
		return
	}
	if u := luns.Lookup(lun); u != nil && u.Stats != nil {
		t.unit = u.Stats
		t.unit.Start()
	}
}

// countCommand counts a completed task in its session's and its logical
// unit's counters: its class, status, the data-in bytes it answers with
// (as respond sends them), the data-out bytes received and the time since
// it arrived. An aborted task counts as TASK ABORTED (res may then be
// nil).
func (ss *session) countCommand(t *task, res *scsi.Result, aborted bool) {
	d := time.Duration(time.Now().UnixNano() - t.started)
	class := scsi.ClassOf(t.fullCDB())
	st, sense := scsi.TaskAborted, []byte(nil)
	var in uint64
	if !aborted {
		st, sense = res.Status, res.Sense
		if t.read {
			in = uint64(min(uint32(len(res.Data)), t.expIn))
		}
	}
	out := uint64(t.received)
	ss.io.Record(class, st, sense, in, out, d)
	if t.unit != nil {
		t.unit.Done(class, st, sense, in, out, d)
		t.unit = nil
	}
}

// Login failure reasons, as the login_failures metric labels them: the
// Login Response status class that refused the login, or why no status
// was sent.
const (
	LoginReasonAuthentication     = "authentication"      // CHAP failed (0201h)
	LoginReasonThrottled          = "throttled"           // CHAP refused unchecked after too many failures
	LoginReasonAuthorization      = "authorization"       // not allowed: ACL, portal, iSNS (0202h)
	LoginReasonNotFound           = "not_found"           // no such target (0203h)
	LoginReasonDisabled           = "target_disabled"     // the target is disabled (0203h)
	LoginReasonNotAllowed         = "not_allowed"         // allowed_portals, no LUN for the initiator, or iSNS access control (0203h)
	LoginReasonTargetRemoved      = "target_removed"      // 0204h
	LoginReasonRedirected         = "redirected"          // redirect = "..." (0101h, 0102h)
	LoginReasonInitiatorError     = "initiator_error"     // other 02xxh: protocol, version, parameters
	LoginReasonServiceUnavailable = "service_unavailable" // 0301h: iSCSI disabled, shutting down
	LoginReasonOutOfResources     = "out_of_resources"    // 0302h: max_sessions, no TSIH
	LoginReasonTargetError        = "target_error"        // 0300h and others
	LoginReasonTimeout            = "timeout"             // login_timeout passed
	LoginReasonConnection         = "connection"          // the connection broke or the peer left
)

// loginReason classifies a failed login's error.
func loginReason(err error) string {
	switch {
	case errors.Is(err, ErrThrottled):
		return LoginReasonThrottled
	case errors.Is(err, os.ErrDeadlineExceeded):
		return LoginReasonTimeout
	}
	st, ok := statusOf(err)
	if !ok {
		return LoginReasonConnection
	}
	switch st {
	case LoginAuthFailed:
		return LoginReasonAuthentication
	case LoginAuthorizationFailure:
		return LoginReasonAuthorization
	case LoginNotFound:
		return LoginReasonNotFound
	case LoginTargetRemoved:
		return LoginReasonTargetRemoved
	case LoginTargetMovedTemp, LoginTargetMovedPerm:
		return LoginReasonRedirected
	case LoginServiceUnavailable:
		return LoginReasonServiceUnavailable
	case LoginOutOfResources:
		return LoginReasonOutOfResources
	}
	if st>>8 == 0x02 {
		return LoginReasonInitiatorError
	}
	return LoginReasonTargetError
}

// loginCounts counts logins per target. The key "" gathers discovery
// sessions and logins to a target the snapshot does not have, so that
// names an initiator makes up never become keys.
type loginCounts struct {
	mu      sync.Mutex
	targets map[string]*TargetLogins
}

// TargetLogins are the logins of one target since it was added ("": the
// discovery sessions and logins naming no target this server has).
type TargetLogins struct {
	Target string `json:"target"`
	// Logins counts the normal sessions logged in.
	Logins uint64 `json:"logins"`
	// Failures counts the failed logins by reason (the LoginReason
	// constants).
	Failures map[string]uint64 `json:"failures,omitempty"`
}

// countLogin counts one login to target (see loginCounts for ""): a
// success when reason is "".
func (s *Server) countLogin(target, reason string) {
	lc := &s.logins
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.targets == nil {
		lc.targets = make(map[string]*TargetLogins)
	}
	tl := lc.targets[target]
	if tl == nil {
		tl = &TargetLogins{Target: target}
		lc.targets[target] = tl
	}
	if reason == "" {
		tl.Logins++
		return
	}
	if tl.Failures == nil {
		tl.Failures = make(map[string]uint64)
	}
	tl.Failures[reason]++
}

// loginOutcome is the target a login counts under (its target when the
// snapshot has it, else "") and, for a failed one, the reason. A target
// that refuses with NOT FOUND (so as not to tell an initiator it may not
// see it) is disabled, or does not allow the initiator.
func (c *loginConn) loginOutcome(err error) (target, reason string) {
	t := c.target
	if t == nil && c.targetName != "" {
		t = c.snap.Targets[c.targetName]
		if t == nil {
			t = c.snap.Targets[strings.ToLower(c.targetName)]
		}
	}
	if t != nil {
		target = t.Name
	}
	if err == nil {
		return target, ""
	}
	reason = loginReason(err)
	if reason == LoginReasonNotFound && t != nil {
		reason = LoginReasonNotAllowed
		if !t.Enabled {
			reason = LoginReasonDisabled
		}
	}
	return target, reason
}

// prune drops the counts of the targets snap no longer has, when it is
// published: a target removed and added again starts from zero, also when
// no one asked for the counts in between.
func (lc *loginCounts) prune(snap *Snapshot) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for name := range lc.targets {
		if _, ok := snap.Targets[name]; !ok && name != "" {
			delete(lc.targets, name)
		}
	}
}

// Logins returns the login counts of the targets the published snapshot
// has, and of "" (discovery sessions and unknown targets), sorted by
// target. (A login that began before its target was removed may count
// after the prune; it is not shown.)
func (s *Server) Logins() []TargetLogins {
	snap := s.Snapshot()
	lc := &s.logins
	lc.mu.Lock()
	defer lc.mu.Unlock()
	out := make([]TargetLogins, 0, len(lc.targets))
	for name, tl := range lc.targets {
		if _, ok := snap.Targets[name]; !ok && name != "" {
			continue
		}
		c := *tl
		c.Failures = maps.Clone(tl.Failures)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b TargetLogins) int { return strings.Compare(a.Target, b.Target) })
	return out
}
