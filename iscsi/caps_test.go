package iscsi

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"
)

// capsServer serves wireServer's snapshot with limits on a loopback
// listener and returns the server and its address.
func capsServer(t *testing.T, l Limits) (*Server, *recordLog, string) {
	t.Helper()
	s := wireServer(t, func(snap *Snapshot) { snap.Limits = l })
	lg := &recordLog{}
	s.log = slog.New(lg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { ln.Close() })
	return s, lg, ln.Addr().String()
}

// dialCaps connects from the loopback address from and reports whether
// the target kept the connection (a refused one is closed at once).
func dialCaps(t *testing.T, from, addr string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = nc.Read(make([]byte, 1))
	var ne net.Error
	return nc, errors.As(err, &ne) && ne.Timeout()
}

// TestConnectionCaps: connections beyond the per-address cap and beyond
// the total are closed at once with a log line naming the cap, except
// from a known initiator address, for which a reserve is kept.
func TestConnectionCaps(t *testing.T) {
	s, lg, addr := capsServer(t, Limits{MaxConnections: 4, MaxConnectionsPerAddress: 2, LoginTimeout: 10 * time.Second})
	for i, want := range []bool{true, true, false} {
		if _, kept := dialCaps(t, "127.0.3.1", addr); kept != want {
			t.Fatalf("connection %d from one address: kept %v, want %v", i+1, kept, want)
		}
	}
	if !lg.await("connection refused: over a cap", "cap=max_connections_per_address", "limit=2") {
		t.Errorf("no log line for the per-address cap: %q", lg.lines)
	}
	for i, want := range []bool{true, true, false} {
		if _, kept := dialCaps(t, fmt.Sprintf("127.0.3.%d", 2+i), addr); kept != want {
			t.Fatalf("connection %d beyond the first address: kept %v, want %v", i+1, kept, want)
		}
	}
	if !lg.await("connection refused: over a cap", "cap=max_connections ", "limit=4") {
		t.Errorf("no log line for the total cap: %q", lg.lines)
	}
	s.noteKnown(&net.TCPAddr{IP: net.ParseIP("127.0.3.9")})
	if _, kept := dialCaps(t, "127.0.3.9", addr); !kept {
		t.Error("a known initiator address was refused with the total cap reached")
	}
	if _, kept := dialCaps(t, "127.0.3.10", addr); kept {
		t.Error("an unknown address was let in beyond the total cap")
	}
}

// TestConnectionCapsFollowDescriptors: the total cap stays below the
// descriptor limit less the reserve.
func TestConnectionCapsFollowDescriptors(t *testing.T) {
	s := NewServer(nil)
	s.SetDescriptorLimit(fdReserve + knownReserve + 10)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.maxConnectionsLocked(DefaultLimits); m != 10 {
		t.Fatalf("cap %d with room for 10 descriptors", m)
	}
}

// TestMaxSessions: a target's sessions beyond max_sessions are refused
// with OUT OF RESOURCES; reinstating one of them is not a new session.
func TestMaxSessions(t *testing.T) {
	s := wireServer(t, func(snap *Snapshot) { snap.Targets[wireTarget].MaxSessions = 1 })
	tgt := s.Snapshot().Targets[wireTarget]
	r := &LoginResult{InitiatorName: wireInitiator, ISID: [6]byte{1}, Target: tgt}
	if _, err := s.admitSession(r); err != nil {
		t.Fatal(err)
	}
	_, err := s.admitSession(&LoginResult{InitiatorName: wireInitiator, ISID: [6]byte{2}, Target: tgt})
	var ae *AdmitError
	if !errors.As(err, &ae) || ae.Status != LoginOutOfResources {
		t.Fatalf("a second session: %v, want OUT OF RESOURCES", err)
	}
	if _, err := s.admitSession(&LoginResult{InitiatorName: wireInitiator, ISID: [6]byte{1}, Target: tgt}); err != nil {
		t.Fatalf("reinstating the one session: %v", err)
	}
}

// TestIdleConnectionCost: a connection that has not logged in costs at
// most 16 KiB: no read or write buffer before the login completes.
func TestIdleConnectionCost(t *testing.T) {
	_, _, addr := capsServer(t, Limits{LoginTimeout: time.Minute})
	const n = 400
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	// Every connection's goroutine is reading its first PDU.
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	// Both ends live in this process: the client's conns cost too.
	per := grew / n
	t.Logf("%d idle connections: %d bytes each, both ends", n, per)
	if per > 16<<10 {
		t.Errorf("an idle connection costs %d bytes", per)
	}
	for _, c := range conns {
		c.Close()
	}
}
