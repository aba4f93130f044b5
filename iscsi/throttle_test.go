package iscsi

import (
	"net"
	"testing"
	"time"
)

// throttleClock is a manually advanced clock.
type throttleClock struct{ t time.Time }

func (c *throttleClock) now() time.Time          { return c.t }
func (c *throttleClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func throttleAddr(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }

func TestThrottleDelays(t *testing.T) {
	clk := &throttleClock{t: time.Unix(1_000_000, 0)}
	th := newLoginThrottle(clk.now, 16)
	a := throttleAddr("192.0.2.7", 40000)
	want := []time.Duration{0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := th.Failed(a); got != w {
			t.Fatalf("failure %d: delay %v, want %v", i+1, got, w)
		}
		if got := th.Wait(a); got != w {
			t.Fatalf("failure %d: Wait %v, want %v", i+1, got, w)
		}
		if th.Failures(a) != i+1 {
			t.Fatalf("Failures = %d, want %d", th.Failures(a), i+1)
		}
	}
	// Another port of the same host is the same address.
	if th.Wait(throttleAddr("192.0.2.7", 40001)) != 30*time.Second {
		t.Fatal("the port is part of the key")
	}
	// An IPv4-mapped IPv6 address is the IPv4 address.
	if th.Wait(throttleAddr("::ffff:192.0.2.7", 1)) != 30*time.Second {
		t.Fatal("IPv4-mapped address not folded")
	}
	// Other hosts are not affected.
	if th.Wait(throttleAddr("192.0.2.8", 40000)) != 0 {
		t.Fatal("another address is throttled")
	}
	clk.advance(10 * time.Second)
	if got := th.Wait(a); got != 20*time.Second {
		t.Fatalf("Wait after 10s = %v, want 20s", got)
	}
	clk.advance(20 * time.Second)
	if got := th.Wait(a); got != 0 {
		t.Fatalf("Wait after the delay = %v", got)
	}
}

func TestThrottleForgetAndSuccess(t *testing.T) {
	clk := &throttleClock{t: time.Unix(1_000_000, 0)}
	th := newLoginThrottle(clk.now, 16)
	a := throttleAddr("2001:db8::5", 3260)
	th.Failed(a)
	th.Failed(a)
	if d := th.Failed(a); d != 2*time.Second {
		t.Fatalf("third failure: %v", d)
	}
	clk.advance(throttleForget)
	if th.Failures(a) != 0 {
		t.Fatal("failures not forgotten after the quiet period")
	}
	if d := th.Failed(a); d != 0 {
		t.Fatalf("first failure after the quiet period: %v, want 0", d)
	}
	th.Failed(a)
	th.Succeeded(a)
	if th.Failures(a) != 0 || th.Wait(a) != 0 || th.Len() != 0 {
		t.Fatal("success does not reset")
	}
}

func TestThrottleBoundedTable(t *testing.T) {
	clk := &throttleClock{t: time.Unix(1_000_000, 0)}
	th := newLoginThrottle(clk.now, 4)
	addrs := []net.Addr{throttleAddr("10.0.0.1", 1), throttleAddr("10.0.0.2", 1), throttleAddr("10.0.0.3", 1), throttleAddr("10.0.0.4", 1)}
	for _, a := range addrs {
		th.Failed(a)
		th.Failed(a)
		clk.advance(time.Second)
	}
	if th.Len() != 4 {
		t.Fatalf("Len = %d", th.Len())
	}
	// A fifth address evicts the one that failed longest ago.
	th.Failed(throttleAddr("10.0.0.5", 1))
	if th.Len() != 4 || th.Failures(addrs[0]) != 0 || th.Failures(addrs[1]) != 2 {
		t.Fatalf("Len=%d, failures of the oldest %d, of the next %d", th.Len(), th.Failures(addrs[0]), th.Failures(addrs[1]))
	}
	// Once everything is forgotten, a new address clears the whole table.
	clk.advance(throttleForget)
	th.Failed(throttleAddr("10.0.0.6", 1))
	if th.Len() != 1 {
		t.Fatalf("Len after expiry = %d, want 1", th.Len())
	}
	// Many addresses never grow the table past its bound.
	for i := 0; i < 1000; i++ {
		th.Failed(throttleAddr(net.IPv4(10, 1, byte(i>>8), byte(i)).String(), 1))
	}
	if th.Len() != 4 {
		t.Fatalf("Len after a flood = %d", th.Len())
	}
}

func TestThrottleConcurrent(t *testing.T) {
	th := NewLoginThrottle()
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			a := throttleAddr("198.51.100.1", 1)
			for i := 0; i < 200; i++ {
				th.Failed(a)
				th.Wait(a)
				th.Failures(a)
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	if n := th.Failures(throttleAddr("198.51.100.1", 2)); n != 800 {
		t.Fatalf("Failures = %d, want 800", n)
	}
}
