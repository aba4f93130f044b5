package iscsi

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func throttleAddr(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }

// fastThrottle has the default policies' shape on a clock compressed so
// that every stands for 6 seconds.
func fastThrottle(every time.Duration) *LoginThrottle {
	return newLoginThrottle(time.Now, throttlePolicy{burst: 3, every: every * 5 / 4},
		throttlePolicy{burst: 2, every: every * 5}, throttlePolicy{burst: 5, every: every},
		throttlePolicy{burst: 20, every: every / 6})
}

// guess runs one wrong (or right) CHAP check through th and reports
// whether it was checked.
func guess(th *LoginThrottle, user string, from net.Addr, right bool, within time.Duration, inFlight *atomic.Int32, most *atomic.Int32) bool {
	chk, err := th.Begin(user, from, time.Now().Add(within))
	if err != nil {
		if !errors.Is(err, ErrThrottled) {
			panic(err)
		}
		return false
	}
	if inFlight != nil {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Millisecond)
		inFlight.Add(-1)
	}
	chk.Done(right)
	return true
}

// TestThrottleParallelAndRotating: however many connections or
// addresses guess one user's secret at once, the user's wrong guesses
// are checked one at a time, at most the burst and then one per
// interval; and the throttle answers quickly "not now" to those that
// would wait past their deadline (which costs their address a token:
// hammering slows the hammering address further).
func TestThrottleParallelAndRotating(t *testing.T) {
	const every = 100 * time.Millisecond
	for _, tc := range []struct {
		name      string
		addresses int
	}{
		{"300 connections from one address", 1},
		{"300 connections from 64 addresses", 64},
		{"300 connections from 300 IPv6 /64s", 300},
	} {
		th := fastThrottle(every)
		var checked, inFlight, most atomic.Int32
		var wg sync.WaitGroup
		start := time.Now()
		for i := range 300 {
			from := throttleAddr(fmt.Sprintf("127.0.%d.%d", i%tc.addresses/250, 1+i%tc.addresses%250), 40000+i)
			if tc.addresses == 300 {
				from = throttleAddr(fmt.Sprintf("2001:db8:0:%x::1", i), 40000)
			}
			wg.Go(func() {
				if guess(th, "joe", from, false, time.Second, &inFlight, &most) {
					checked.Add(1)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		limit := int32(5 + elapsed/every + 1)
		if n := checked.Load(); n > limit || n < 1 {
			t.Errorf("%s: %d wrong guesses checked in %s, want 1 to %d", tc.name, n, elapsed.Round(time.Millisecond), limit)
		}
		if most.Load() != 1 {
			t.Errorf("%s: %d checks of one user at once", tc.name, most.Load())
		}
		if elapsed > 3*time.Second {
			t.Errorf("%s: the refused guesses took %s to answer", tc.name, elapsed)
		}
	}
}

// TestThrottleKnownGoodNotDelayed: while one user's guesses are
// throttled, a correct secret from an address that authenticated as that
// user before is checked at once; a wrong one from there ends that.
func TestThrottleKnownGoodNotDelayed(t *testing.T) {
	th := fastThrottle(time.Second)
	home := throttleAddr("192.0.2.10", 1)
	if !guess(th, "joe", home, true, time.Second, nil, nil) {
		t.Fatal("first login not checked")
	}
	attacker := throttleAddr("198.51.100.7", 1)
	checked := 0
	for range 5 {
		if guess(th, "joe", attacker, false, 100*time.Millisecond, nil, nil) {
			checked++
		}
	}
	start := time.Now()
	if !guess(th, "joe", home, true, 50*time.Millisecond, nil, nil) {
		t.Fatal("a correct secret from the user's own address was throttled")
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("a correct secret from the user's own address waited %s", d)
	}
	// A correct secret from an address that never failed: the bucket
	// kept for clean addresses, not drained by one attacking address.
	start = time.Now()
	if !guess(th, "joe", throttleAddr("203.0.113.9", 1), true, 50*time.Millisecond, nil, nil) {
		t.Fatal("a correct secret from a clean address was throttled")
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("a correct secret from a clean address waited %s", d)
	}
	// A wrong guess from there: the address is known good no more.
	guess(th, "joe", home, false, 50*time.Millisecond, nil, nil)
	if guess(th, "joe", home, false, 50*time.Millisecond, nil, nil) {
		t.Error("a known-good address keeps skipping the user's throttle after a wrong guess")
	}
	if u, p := th.Failures("joe", home); u != checked+1 || p != 1 {
		t.Errorf("failures: user %d, address %d; want %d and 1", u, p, checked+1)
	}
}

// TestThrottleCleanFirst: a check from an address with no failures goes
// before the waiting checks of addresses that failed.
func TestThrottleCleanFirst(t *testing.T) {
	th := fastThrottle(200 * time.Millisecond)
	attacker := throttleAddr("198.51.100.7", 1)
	for range 5 {
		guess(th, "joe", attacker, false, time.Second, nil, nil)
	}
	var order []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			guess(th, "joe", attacker, false, 2*time.Second, nil, nil)
			mu.Lock()
			order = append(order, "dirty")
			mu.Unlock()
		})
	}
	time.Sleep(20 * time.Millisecond)
	wg.Go(func() {
		guess(th, "joe", throttleAddr("203.0.113.5", 1), true, 2*time.Second, nil, nil)
		mu.Lock()
		order = append(order, "clean")
		mu.Unlock()
	})
	wg.Wait()
	if len(order) != 4 || order[0] != "clean" {
		t.Errorf("order %v: the clean address waited behind the others", order)
	}
}

// TestThrottlePerPrefixAndGlobal: one address spraying many user names
// is held by its prefix's key; many addresses spraying many names by the
// global key.
func TestThrottlePerPrefixAndGlobal(t *testing.T) {
	th := fastThrottle(time.Second)
	from := throttleAddr("198.51.100.7", 1)
	n := 0
	for i := range 20 {
		if guess(th, fmt.Sprintf("user%d", i), from, false, 10*time.Millisecond, nil, nil) {
			n++
		}
	}
	if n != 5 {
		t.Errorf("one address, 20 names: %d guesses checked, want the burst of 5", n)
	}
	n = 0
	for i := range 100 {
		if guess(th, fmt.Sprintf("name%d", i), throttleAddr(fmt.Sprintf("10.1.%d.1", i), 1), false, 10*time.Millisecond, nil, nil) {
			n++
		}
	}
	if n > 20 {
		t.Errorf("100 addresses, 100 names: %d guesses checked, want at most the global burst of 20 less what was spent", n)
	}
}

// TestThrottleBoundedTable: a flood of addresses never grows the table
// past its bound, and buckets that refilled hold no state.
func TestThrottleBoundedTable(t *testing.T) {
	th := newLoginThrottle(time.Now, throttlePolicy{burst: 1 << 30, every: time.Nanosecond},
		throttlePolicy{burst: 1 << 30, every: time.Nanosecond},
		throttlePolicy{burst: 1, every: time.Millisecond}, throttlePolicy{burst: 1 << 30, every: time.Nanosecond})
	for i := range 3 * maxThrottleEntries {
		guess(th, "joe", throttleAddr(fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff), 1), false, time.Second, nil, nil)
	}
	th.mu.Lock()
	n := len(th.prefix)
	th.mu.Unlock()
	if n > maxThrottleEntries {
		t.Fatalf("%d prefixes kept, bound %d", n, maxThrottleEntries)
	}
}

// TestPeerKey: IPv4 addresses count alone, IPv6 ones by /64, IPv4-mapped
// ones as IPv4.
func TestPeerKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{throttleAddr("192.0.2.7", 1), "192.0.2.7"},
		{throttleAddr("::ffff:192.0.2.7", 2), "192.0.2.7"},
		{throttleAddr("2001:db8:1:2:3:4:5:6", 3), "2001:db8:1:2::/64"},
		{throttleAddr("2001:db8:1:2:ffff::1", 3), "2001:db8:1:2::/64"},
	} {
		if got := peerKey(tc.addr); got != tc.want {
			t.Errorf("peerKey(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
