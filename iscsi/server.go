package iscsi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrServerClosed is returned by Serve and SetPortals after Shutdown.
var ErrServerClosed = errors.New("iscsi: server closed")

// Server is the iSCSI target engine: portals (listeners), logins, and the
// sessions they create. The configuration it serves is the Snapshot last
// published; sessions read it lock-free on every command.
type Server struct {
	log  *slog.Logger
	snap atomic.Pointer[Snapshot]
	gen  atomic.Uint64

	mu       sync.Mutex
	closed   bool
	portals  map[string]*portal // by configured address
	serving  map[net.Listener]struct{}
	conns    map[net.Conn]struct{} // every accepted connection, in login or in a session
	sessions map[sessionKey]*session
	byTSIH   map[uint16]*session
	lastTSIH uint16
	wg       sync.WaitGroup // accept loops and connection goroutines
	// ttt hands out target transfer tags (R2T, NOP-In pings); unique
	// server-wide so that a tag never matches another connection's.
	ttt atomic.Uint32
	// limits is the budget of every full-feature connection, sendHeld
	// and outHeld the server-wide counts (budget.go).
	limits   connLimits
	sendHeld atomic.Int64
	outHeld  atomic.Int64
	// panics counts the panics recovered while serving commands.
	panics atomic.Uint64
	// caps counts connections against the snapshot's Limits; guarded
	// by mu.
	caps connCaps
	// throttle slows down CHAP guessing (throttle.go).
	throttle *LoginThrottle
	// reclaim gives memory back after connections end (reclaim.go).
	reclaim reclaimer
	// logins counts logins per target (metrics.go).
	logins loginCounts
}

// portal is one listening address.
type portal struct {
	addr string
	ln   net.Listener
}

// NewServer returns a server with no portals and an empty snapshot
// (Generation 0, disabled). Publish a snapshot and call SetPortals to
// start serving.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		log:      log,
		portals:  make(map[string]*portal),
		serving:  make(map[net.Listener]struct{}),
		conns:    make(map[net.Conn]struct{}),
		sessions: make(map[sessionKey]*session),
		byTSIH:   make(map[uint16]*session),
		limits:   defaultConnLimits,
		caps: connCaps{byPeer: make(map[string]int), known: make(map[string]time.Time),
			refusals: make(map[string]*refusalLog)},
		throttle: NewLoginThrottle(),
	}
	s.snap.Store(&Snapshot{Targets: map[string]*Target{}})
	return s
}

// Publish makes snap the configuration every new login and every next
// command sees. It sets snap.Generation; snap must not be modified
// afterwards. Live sessions keep what they negotiated; a lowered
// QueuedCommands shows in the next MaxCmdSN they are sent. Sessions whose
// LUN map changes are told, and those of a target gone or disabled are
// asked to log out, as Commit does for sessions no effect names.
func (s *Server) Publish(snap *Snapshot) { s.Commit(snap, nil) }

// Snapshot returns the configuration currently published.
func (s *Server) Snapshot() *Snapshot { return s.snap.Load() }

// SetPortals makes the server listen on exactly addrs ("host:port"). It
// is two-phase: every new address is bound first, and if one fails the
// others just bound are closed and nothing changes. Addresses already
// listening keep their socket; removed ones stop accepting, while the
// connections they accepted live on.
func (s *Server) SetPortals(addrs []string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	want := make(map[string]bool, len(addrs))
	var bind []string
	for _, a := range addrs {
		if want[a] {
			continue
		}
		want[a] = true
		if s.portals[a] == nil {
			bind = append(bind, a)
		}
	}
	s.mu.Unlock()

	bound := make([]*portal, 0, len(bind))
	for _, a := range bind {
		ln, err := listenPortal(a)
		if err != nil {
			for _, p := range bound {
				p.ln.Close()
			}
			return fmt.Errorf("iscsi: portal %s: %w", a, err)
		}
		bound = append(bound, &portal{addr: a, ln: ln})
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		for _, p := range bound {
			p.ln.Close()
		}
		return ErrServerClosed
	}
	var stop []*portal
	for a, p := range s.portals {
		if !want[a] {
			stop = append(stop, p)
			delete(s.portals, a)
		}
	}
	for _, p := range bound {
		s.portals[p.addr] = p
		s.serving[p.ln] = struct{}{}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.acceptLoop(p.ln)
		}()
	}
	s.mu.Unlock()
	for _, p := range stop {
		p.ln.Close()
		s.log.Info("portal closed", "addr", p.addr)
	}
	for _, p := range bound {
		s.log.Info("portal listening", "addr", p.ln.Addr().String())
	}
	return nil
}

// listenPortal listens on addr as portalListenConfig says.
func listenPortal(addr string) (net.Listener, error) {
	network, lc := portalListenConfig(addr)
	return lc.Listen(context.Background(), network, addr)
}

// portalListenConfig returns how addr is bound. Go's "tcp" binds a
// wildcard dual-stack (one IPv6 socket that takes IPv4 too), so that
// "0.0.0.0:P" would hold the IPv6 addresses of port P and "[::]:P" the
// IPv4 ones. A portal is bound in its own family instead: "tcp4" for an
// IPv4 address, "tcp6" with IPV6_V6ONLY for an IPv6 one, so that
// "0.0.0.0:P" and "[::]:P" coexist. Host names keep "tcp".
func portalListenConfig(addr string) (network string, lc net.ListenConfig) {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	switch {
	case err != nil || ip == nil:
		return "tcp", lc
	case ip.To4() != nil:
		return "tcp4", lc
	}
	lc.Control = func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		}); err != nil {
			return err
		}
		return serr
	}
	return "tcp6", lc
}

// Portals returns the addresses the server listens on, in no particular
// order. Wildcard addresses are returned as bound ("0.0.0.0:3260").
func (s *Server) Portals() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, 0, len(s.serving))
	for ln := range s.serving {
		out = append(out, ln.Addr())
	}
	return out
}

// Serve accepts connections on ln until ln fails or the server shuts
// down; it always returns a non-nil error, ErrServerClosed after
// Shutdown. It is for listeners made outside SetPortals (tests, socket
// activation); ln is listed by Portals while served.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.serving[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	return s.acceptLoop(ln)
}

// acceptLoop runs one listener, starting a goroutine per connection. A
// connection over a cap (Limits) is closed at once.
func (s *Server) acceptLoop(ln net.Listener) error {
	defer func() {
		s.mu.Lock()
		delete(s.serving, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// EMFILE and friends: back off and keep the portal up.
			if ok, suppressed := s.logAllowed("accept"); ok {
				s.log.Warn("accept failed", "addr", ln.Addr().String(), "err", err,
					"failures_since_last_line", suppressed)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		peer := peerKey(nc.RemoteAddr())
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		cap, limit := s.admitConnLocked(peer, time.Now())
		if cap != "" {
			s.mu.Unlock()
			nc.Close()
			s.refused(cap, limit, nc.RemoteAddr())
			continue
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handleConn(nc, peer)
	}
}

// handleConn runs one TCP connection: login, then the full-feature phase
// of a normal session. Discovery sessions end inside login. Until the
// login completes the connection holds no buffer beyond the PDU being
// read: the reader reads straight from the socket.
func (s *Server) handleConn(nc net.Conn, peer string) {
	defer func() {
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.releaseConnLocked(peer)
		s.mu.Unlock()
		s.reclaimSoon()
		s.wg.Done()
	}()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tc.SetKeepAlive(true)
	}
	fr := newUnbufferedFrameReader(nc)
	r, err := s.login(nc, fr)
	if err != nil {
		s.log.Debug("login failed", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	if r == nil {
		return
	}
	fr.buffer()
	s.runSession(nc, fr, r)
}

// Shutdown stops every listener, asks every session to end (an Async
// Message requesting logout, then closing), and waits for the connection
// goroutines to finish or ctx to end, in which case the remaining
// connections are closed and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closed = true
	lns := make([]net.Listener, 0, len(s.serving))
	for ln := range s.serving {
		lns = append(lns, ln)
	}
	clear(s.portals)
	sessions := make([]*session, 0, len(s.byTSIH))
	for _, ss := range s.byTSIH {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	grace := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(dl)/2)
	}
	for _, ss := range sessions {
		ss.requestLogout(grace)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	// Connections still in login are closed at once; sessions get the
	// grace period to log out.
	s.mu.Lock()
	for nc := range s.conns {
		if !s.connHasSession(nc) {
			nc.Close()
		}
	}
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for nc := range s.conns {
			nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// connHasSession reports whether nc carries a full-feature session.
// s.mu must be held.
func (s *Server) connHasSession(nc net.Conn) bool {
	for _, ss := range s.byTSIH {
		if c := ss.conn.Load(); c != nil && c.nc == nc {
			return true
		}
	}
	return false
}

// nextTTT returns a target transfer tag, never ReservedTag.
func (s *Server) nextTTT() uint32 {
	for {
		if t := s.ttt.Add(1); t != ReservedTag {
			return t
		}
	}
}
