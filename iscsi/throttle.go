package iscsi

import (
	"errors"
	"net"
	"sync"
	"time"
)

// The CHAP guessing throttle. Every check of a CHAP response is charged
// to three keys: the CHAP user name the initiator gave (across addresses),
// its source prefix (an IPv4 address or an IPv6 /64, peerKey) and one key
// for all. Each key is a bucket of wrong guesses: a burst, then one more
// per interval. A check needs a token in each of its keys and runs alone
// on them (at most one check per key in flight); a wrong guess spends
// the tokens, a right one spends nothing. So a CHAP user gets at most
// userPolicy's burst and rate of wrong guesses checked, whatever the
// number of connections or addresses, and an address or the whole target
// theirs.
//
// The throttle must not lock out the user under attack: a prefix that
// authenticated as a user before skips that user's key and the global one
// (a correct secret from an address the user logs in from is not delayed
// by an attack from elsewhere; a wrong guess from it ends that); a check
// from a prefix with no recent failures may take the user's second, smaller
// bucket kept for such prefixes, and when it must wait it goes before
// the checks of prefixes that failed. The two user buckets together
// allow userPolicy's figures. A check that could not start before its
// login's deadline is refused unchecked (0301h, SERVICE UNAVAILABLE: try
// later).

// throttlePolicy is the bucket of one kind of key.
type throttlePolicy struct {
	burst int           // wrong guesses checked at once
	every time.Duration // one more after each such interval
}

// The policies: after 5 wrong guesses, 10 a minute per user (3 and 8 a
// minute in userPolicy, 2 and 2 a minute for prefixes with no failures
// in cleanPolicy) and per prefix; after 20, 60 a minute in all.
var (
	userPolicy   = throttlePolicy{burst: 3, every: 7500 * time.Millisecond}
	cleanPolicy  = throttlePolicy{burst: 2, every: 30 * time.Second}
	prefixPolicy = throttlePolicy{burst: 5, every: 6 * time.Second}
	globalPolicy = throttlePolicy{burst: 20, every: time.Second}
)

const (
	// knownGoodFor is how long a prefix that authenticated as a user
	// skips that user's key.
	knownGoodFor = 30 * 24 * time.Hour
	// maxThrottleEntries bounds the buckets (users and prefixes) and,
	// separately, the known-good pairs.
	maxThrottleEntries = 4096
)

// ErrThrottled refuses a CHAP check that would have waited past the
// login's deadline.
var ErrThrottled = errors.New("iscsi: too many failed CHAP attempts; try again later")

// ThrottleError is ErrThrottled for one CHAP user, as a login failure:
// 0301h, the target is busy, so that initiators retry instead of taking
// it for a wrong secret.
type ThrottleError struct {
	User string // the CHAP name the initiator gave
}

// Error implements error.
func (e *ThrottleError) Error() string { return ErrThrottled.Error() }

// Unwrap makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottleError) Unwrap() error { return ErrThrottled }

// LoginStatus is SERVICE UNAVAILABLE.
func (e *ThrottleError) LoginStatus() uint16 { return uint16(LoginServiceUnavailable) }

// bucket is the state of one key.
type bucket struct {
	policy *throttlePolicy
	tokens float64   // wrong guesses that may be checked now; may be negative
	at     time.Time // when tokens was last brought up to date
	busy   bool      // a check holds the key
	// waiting and cleanWaiting count the checks waiting for the key, all
	// and those from prefixes with no failures.
	waiting, cleanWaiting int
	failures              int // wrong guesses recorded, for logs
	// recent counts the wrong guesses and the checks refused unchecked
	// since the bucket was last full: a prefix with none is clean.
	recent int
}

// refill brings b's tokens up to now; a full bucket forgets its recent
// failures.
func (b *bucket) refill(now time.Time) {
	if b.tokens < float64(b.policy.burst) {
		b.tokens = min(float64(b.policy.burst), b.tokens+float64(now.Sub(b.at))/float64(b.policy.every))
		if b.tokens >= float64(b.policy.burst) {
			b.recent = 0
		}
	}
	b.at = now
}

// idle reports whether b carries nothing a fresh bucket would not.
func (b *bucket) idle() bool {
	return !b.busy && b.waiting == 0 && b.tokens >= float64(b.policy.burst)
}

// wait is how long a check that has waiters ahead of it waits for a
// token.
func (b *bucket) wait(ahead int) time.Duration {
	lack := float64(ahead+1) - b.tokens
	if lack <= 0 {
		return 0
	}
	return time.Duration(lack * float64(b.policy.every))
}

// LoginThrottle limits the CHAP responses checked per user, per source
// prefix and in all. Safe for concurrent use; use NewLoginThrottle.
type LoginThrottle struct {
	now func() time.Time

	mu      sync.Mutex
	users   map[string]*bucket
	clean   map[string]*bucket // the users' buckets for prefixes with no failures
	prefix  map[string]*bucket
	global  bucket
	good    map[goodKey]time.Time
	changed chan struct{} // closed and replaced when a key is released
	users0  *throttlePolicy
	clean0  *throttlePolicy
	prefix0 *throttlePolicy
}

// goodKey is a prefix that authenticated as a user.
type goodKey struct{ user, prefix string }

// NewLoginThrottle returns an empty throttle with the default policies.
func NewLoginThrottle() *LoginThrottle {
	return newLoginThrottle(time.Now, userPolicy, cleanPolicy, prefixPolicy, globalPolicy)
}

func newLoginThrottle(now func() time.Time, user, clean, prefix, global throttlePolicy) *LoginThrottle {
	t := &LoginThrottle{
		now:     now,
		users:   make(map[string]*bucket),
		clean:   make(map[string]*bucket),
		prefix:  make(map[string]*bucket),
		good:    make(map[goodKey]time.Time),
		changed: make(chan struct{}),
		users0:  &user,
		clean0:  &clean,
		prefix0: &prefix,
	}
	g := global
	t.global = bucket{policy: &g, tokens: float64(g.burst), at: now()}
	return t
}

// checkKeys are the buckets one check is charged to.
type checkKeys struct {
	b     [3]*bucket
	n     int
	clean bool // the prefix has no recent failures nor refusals
}

// keysLocked returns the buckets of a check by user from prefix, made if
// need be. t.mu must be held.
func (t *LoginThrottle) keysLocked(user, prefix string, now time.Time) checkKeys {
	var k checkKeys
	p := t.bucketLocked(t.prefix, prefix, t.prefix0, now)
	// A prefix that failed, or kept trying while refused, is not clean.
	k.clean = p.recent == 0
	k.b[0], k.n = p, 1
	if until, ok := t.good[goodKey{user, prefix}]; ok && now.Before(until) {
		return k
	}
	k.b[1] = t.bucketLocked(t.users, user, t.users0, now)
	if k.clean {
		if c := t.bucketLocked(t.clean, user, t.clean0, now); !c.busy && c.tokens >= 1 {
			k.b[1] = c
		}
	}
	k.b[2] = &t.global
	k.n = 3
	return k
}

// bucketLocked returns m[name], made with policy p if missing; a full
// table first drops its idle buckets (they hold no state), else its
// oldest. t.mu must be held.
func (t *LoginThrottle) bucketLocked(m map[string]*bucket, name string, p *throttlePolicy, now time.Time) *bucket {
	if b := m[name]; b != nil {
		b.refill(now)
		return b
	}
	if len(m) >= maxThrottleEntries {
		var oldest string
		var at time.Time
		for k, b := range m {
			b.refill(now)
			if b.idle() {
				delete(m, k)
			} else if !b.busy && b.waiting == 0 && (oldest == "" || b.at.Before(at)) {
				oldest, at = k, b.at
			}
		}
		if len(m) >= maxThrottleEntries && oldest != "" {
			delete(m, oldest)
		}
	}
	b := &bucket{policy: p, tokens: float64(p.burst), at: now}
	m[name] = b
	return b
}

// Check is one CHAP check that holds its keys; Done releases them.
type Check struct {
	t      *LoginThrottle
	keys   checkKeys
	user   string
	prefix string
}

// Begin waits until a CHAP response of user from remote may be checked
// and holds the check's keys until Done. It fails with an error wrapping
// ErrThrottled, without waiting, when the check could not start before
// deadline.
func (t *LoginThrottle) Begin(user string, remote net.Addr, deadline time.Time) (*Check, error) {
	prefix := peerKey(remote)
	t.mu.Lock()
	// The keys are fixed at the start; while registered as a waiter on
	// them they are never dropped from the table.
	k := t.keysLocked(user, prefix, t.now())
	registered := false
	for {
		now := t.now()
		var wait time.Duration
		free := true
		for _, b := range k.b[:k.n] {
			b.refill(now)
			ahead := b.waiting
			if k.clean {
				ahead = b.cleanWaiting
			}
			if registered {
				ahead--
			}
			if b.busy || b.tokens < 1 || (!k.clean && b.cleanWaiting > 0) {
				free = false
			}
			wait = max(wait, b.wait(ahead))
		}
		if free {
			if registered {
				k.unwait()
			}
			for _, b := range k.b[:k.n] {
				b.busy = true
			}
			t.mu.Unlock()
			return &Check{t: t, keys: k, user: user, prefix: prefix}, nil
		}
		if now.Add(wait).After(deadline) {
			if registered {
				k.unwait()
			}
			// Trying while refused costs the prefix like a failure.
			k.b[0].tokens--
			k.b[0].recent++
			t.mu.Unlock()
			return nil, &ThrottleError{User: user}
		}
		if !registered {
			registered = true
			for _, b := range k.b[:k.n] {
				b.waiting++
				if k.clean {
					b.cleanWaiting++
				}
			}
		}
		changed := t.changed
		t.mu.Unlock()
		if wait == 0 {
			// Tokens are there but a key is busy: its release wakes us.
			wait = deadline.Sub(now)
		}
		timer := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
		t.mu.Lock()
	}
}

// unwait takes a waiter off the keys. The throttle's mu must be held.
func (k *checkKeys) unwait() {
	for _, b := range k.b[:k.n] {
		b.waiting--
		if k.clean {
			b.cleanWaiting--
		}
	}
}

// Done records the outcome of the check and releases its keys: a wrong
// guess spends a token of each key (a prefix that was known good for the
// user no longer is); a right one makes the prefix known good.
func (c *Check) Done(ok bool) {
	t := c.t
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range c.keys.b[:c.keys.n] {
		b.busy = false
		if !ok {
			b.refill(now)
			b.tokens--
			b.failures++
			b.recent++
		}
	}
	g := goodKey{c.user, c.prefix}
	if ok {
		if _, known := t.good[g]; !known && len(t.good) >= maxThrottleEntries {
			for k, until := range t.good {
				if !now.Before(until) || len(t.good) >= maxThrottleEntries {
					delete(t.good, k)
				}
				if len(t.good) < maxThrottleEntries {
					break
				}
			}
		}
		t.good[g] = now.Add(knownGoodFor)
	} else if _, known := t.good[g]; known {
		delete(t.good, g)
		// The wrong guess skipped the user's key: charge it there too.
		u := t.bucketLocked(t.users, c.user, t.users0, now)
		u.tokens--
		u.failures++
		u.recent++
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// Failures returns the wrong guesses recorded for user and for the prefix
// of remote, for logs.
func (t *LoginThrottle) Failures(user string, remote net.Addr) (byUser, byPrefix int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.users[user]; b != nil {
		byUser = b.failures
	}
	if b := t.clean[user]; b != nil {
		byUser += b.failures
	}
	if b := t.prefix[peerKey(remote)]; b != nil {
		byPrefix = b.failures
	}
	return byUser, byPrefix
}
