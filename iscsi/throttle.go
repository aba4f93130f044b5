package iscsi

import (
	"net"
	"sync"
	"time"
)

// The failed-login throttle's policy.
const (
	// throttleBase is the delay after the second consecutive failure; it
	// doubles with each further one.
	throttleBase = time.Second
	// throttleMax caps the delay.
	throttleMax = 30 * time.Second
	// throttleForget is the quiet period after which an address's failures
	// are forgotten.
	throttleForget = 10 * time.Minute
	// throttleMaxEntries bounds the table: addresses beyond it evict the
	// one that failed longest ago.
	throttleMaxEntries = 4096
)

// LoginThrottle slows down an initiator address that keeps failing to
// authenticate: the first failure costs nothing, the next ones 1s, 2s, 4s
// ... up to 30s, and the count is forgotten after 10 quiet minutes or at a
// successful login. Addresses are keyed by IP alone (not port), each IPv6
// address on its own. The table holds at most 4096 addresses, so a flood
// from many addresses costs bounded memory. Safe for concurrent use; the
// zero value is not usable, use NewLoginThrottle.
//
// Seam for login.go: a login answered with 0201h calls Failed and waits
// the returned delay before sending that response and closing; a new
// connection calls Wait first and waits that long before reading its first
// Login Request (so that parallel connections gain nothing); a successful
// login calls Succeeded. The log line for a failure names the address, the
// CHAP user (AuthError.User) and Failures, never the secret.
type LoginThrottle struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[string]*throttleEntry
	max     int
}

type throttleEntry struct {
	failures int       // consecutive failures
	last     time.Time // time of the last failure
	until    time.Time // no new attempt is served before this
}

// NewLoginThrottle returns an empty throttle on the real clock.
func NewLoginThrottle() *LoginThrottle { return newLoginThrottle(time.Now, throttleMaxEntries) }

func newLoginThrottle(now func() time.Time, maxEntries int) *LoginThrottle {
	return &LoginThrottle{now: now, entries: make(map[string]*throttleEntry), max: maxEntries}
}

// throttleKey returns the IP of addr (PortalIP form), or its string for a
// non-IP address.
func throttleKey(addr net.Addr) string { return PortalIP(addr) }

// throttleDelay is the delay after the n-th consecutive failure.
func throttleDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	if n-2 >= 5 { // 1s << 5 = 32s is past the cap; larger shifts overflow
		return throttleMax
	}
	return min(throttleBase<<(n-2), throttleMax)
}

// Failed records a failed login from addr and returns how long to wait
// before answering it.
func (t *LoginThrottle) Failed(addr net.Addr) time.Duration {
	k := throttleKey(addr)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[k]
	if e != nil && now.Sub(e.last) >= throttleForget {
		e.failures = 0
	}
	if e == nil {
		t.makeRoom(now)
		e = &throttleEntry{}
		t.entries[k] = e
	}
	e.failures++
	e.last = now
	d := throttleDelay(e.failures)
	e.until = now.Add(d)
	return d
}

// Wait returns how long a new login attempt from addr must wait before it
// is served: what is left of the delay of its last failure.
func (t *LoginThrottle) Wait(addr net.Addr) time.Duration {
	k := throttleKey(addr)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[k]
	if e == nil || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// Failures returns the number of consecutive failures recorded for addr
// (0 once forgotten).
func (t *LoginThrottle) Failures(addr net.Addr) int {
	k := throttleKey(addr)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[k]
	if e == nil || now.Sub(e.last) >= throttleForget {
		return 0
	}
	return e.failures
}

// Succeeded forgets addr's failures.
func (t *LoginThrottle) Succeeded(addr net.Addr) {
	k := throttleKey(addr)
	t.mu.Lock()
	delete(t.entries, k)
	t.mu.Unlock()
}

// Len returns the number of addresses in the table.
func (t *LoginThrottle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// makeRoom makes space for one more entry when the table is full: it drops
// every forgotten entry and, if none was, the one whose last failure is the
// oldest. The caller holds t.mu.
func (t *LoginThrottle) makeRoom(now time.Time) {
	if len(t.entries) < t.max {
		return
	}
	var oldestKey string
	var oldest time.Time
	found := false
	for k, e := range t.entries {
		if now.Sub(e.last) >= throttleForget {
			delete(t.entries, k)
			continue
		}
		if !found || e.last.Before(oldest) {
			oldestKey, oldest, found = k, e.last, true
		}
	}
	if len(t.entries) >= t.max {
		delete(t.entries, oldestKey)
	}
}
