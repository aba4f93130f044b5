package iscsi

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits are the caps that keep peers from exhausting the target before
// or without logging in: connections in all and per initiator address,
// and how long a login and an idle discovery session may take. A zero
// field takes its DefaultLimits value.
type Limits struct {
	// MaxConnections caps the TCP connections in all: logins, discovery
	// sessions and normal sessions. Over it a new connection is closed at
	// once, unless it comes from a known initiator address (one that
	// logged in to a normal session lately), for which knownReserve more
	// are kept.
	MaxConnections int
	// MaxConnectionsPerAddress caps the connections from one initiator
	// address: an IPv4 address, or an IPv6 /64.
	MaxConnectionsPerAddress int
	// LoginTimeout bounds a login, from the connection to its last Login
	// Response.
	LoginTimeout time.Duration
	// DiscoveryIdleTimeout closes a discovery session that sends nothing
	// for this long.
	DiscoveryIdleTimeout time.Duration
}

// DefaultLimits are the limits of the iscsi block's defaults.
var DefaultLimits = Limits{
	MaxConnections:           4096,
	MaxConnectionsPerAddress: 256,
	LoginTimeout:             15 * time.Second,
	DiscoveryIdleTimeout:     30 * time.Second,
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultLimits.MaxConnections
	}
	if l.MaxConnectionsPerAddress <= 0 {
		l.MaxConnectionsPerAddress = DefaultLimits.MaxConnectionsPerAddress
	}
	if l.LoginTimeout <= 0 {
		l.LoginTimeout = DefaultLimits.LoginTimeout
	}
	if l.DiscoveryIdleTimeout <= 0 {
		l.DiscoveryIdleTimeout = DefaultLimits.DiscoveryIdleTimeout
	}
	return l
}

const (
	// knownReserve is how many connections beyond MaxConnections are
	// kept for known initiator addresses.
	knownReserve = 64
	// fdReserve is how many file descriptors are kept for everything
	// but iSCSI connections: the admin socket, backing files, listeners,
	// iSNS, logs.
	fdReserve = 256
	// knownFor is how long an address that logged in stays known.
	knownFor = 24 * time.Hour
	// maxKnown bounds the table of known addresses.
	maxKnown = 4096
	// refusalLogEvery is the least time between two log lines about one
	// cap refusing connections.
	refusalLogEvery = 10 * time.Second
)

// peerKey is the address a peer is counted under: its IPv4 address, or
// the /64 of its IPv6 address (one host or site can hold a whole /64).
func peerKey(addr net.Addr) string {
	ip := PortalIP(addr)
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// connCaps is the accounting of connections against Limits; the fields
// are guarded by Server.mu, but for refusals.
type connCaps struct {
	total  int
	byPeer map[string]int
	// known holds the peers that logged in to a normal session, with
	// when they last did.
	known map[string]time.Time
	// fdLimit is the process's descriptor limit (0: unknown).
	fdLimit int
	// refusals rate-limits the log lines of each cap; guarded by logMu
	// (taken with or without Server.mu).
	logMu    sync.Mutex
	refusals map[string]*refusalLog
}

// refusalLog is the rate limit of one cap's log lines.
type refusalLog struct {
	last       time.Time
	suppressed int
}

// SetDescriptorLimit tells the server how many file descriptors the
// process may open, so that MaxConnections never takes the ones the rest
// of the daemon needs (fdReserve, and knownReserve for known initiators).
func (s *Server) SetDescriptorLimit(n int) {
	s.mu.Lock()
	s.caps.fdLimit = n
	s.mu.Unlock()
}

// maxConnections is the effective cap on connections in all. s.mu must
// be held.
func (s *Server) maxConnectionsLocked(l Limits) int {
	m := l.MaxConnections
	if fd := s.caps.fdLimit; fd > 0 {
		m = min(m, max(fd-fdReserve-knownReserve, 1))
	}
	return m
}

// admitConnLocked counts a new connection from peer against the caps and
// returns "" when it may be served, else the name of the cap it is over
// and that cap's value. s.mu must be held.
func (s *Server) admitConnLocked(peer string, now time.Time) (string, int) {
	l := s.Snapshot().Limits.withDefaults()
	if s.caps.byPeer[peer] >= l.MaxConnectionsPerAddress {
		return "max_connections_per_address", l.MaxConnectionsPerAddress
	}
	if m := s.maxConnectionsLocked(l); s.caps.total >= m {
		if s.caps.total >= m+knownReserve || !s.knownLocked(peer, now) {
			return "max_connections", m
		}
	}
	s.caps.total++
	s.caps.byPeer[peer]++
	return "", 0
}

// releaseConnLocked uncounts a connection of peer. s.mu must be held.
func (s *Server) releaseConnLocked(peer string) {
	s.caps.total--
	if s.caps.byPeer[peer]--; s.caps.byPeer[peer] <= 0 {
		delete(s.caps.byPeer, peer)
	}
}

// knownLocked reports whether peer logged in to a normal session within
// knownFor, or has one now. s.mu must be held.
func (s *Server) knownLocked(peer string, now time.Time) bool {
	if t, ok := s.caps.known[peer]; ok && now.Sub(t) < knownFor {
		return true
	}
	for _, ss := range s.byTSIH {
		if c := ss.conn.Load(); c != nil && peerKey(c.remote) == peer {
			return true
		}
	}
	return false
}

// noteKnown records that peer logged in to a normal session.
func (s *Server) noteKnown(addr net.Addr) {
	peer := peerKey(addr)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.caps.known[peer]; !ok && len(s.caps.known) >= maxKnown {
		oldest, first := "", true
		for k, t := range s.caps.known {
			if first || t.Before(s.caps.known[oldest]) {
				oldest, first = k, false
			}
		}
		delete(s.caps.known, oldest)
	}
	s.caps.known[peer] = now
}

// refused logs that a cap refused a connection or a login, rate-limited.
func (s *Server) refused(cap string, limit int, remote net.Addr) {
	if ok, suppressed := s.logAllowed(cap); ok {
		from := ""
		if remote != nil {
			from = remote.String()
		}
		s.log.Warn("connection refused: over a cap", "cap", cap, "limit", limit,
			"remote", from, "refused_since_last_line", suppressed)
	}
}

// logAllowed rate-limits a kind of log line to one per refusalLogEvery;
// it returns whether to log now and how many lines of the kind were
// dropped since the last one.
func (s *Server) logAllowed(kind string) (bool, int) {
	now := time.Now()
	s.caps.logMu.Lock()
	defer s.caps.logMu.Unlock()
	r := s.caps.refusals[kind]
	if r == nil {
		r = &refusalLog{}
		s.caps.refusals[kind] = r
	}
	if now.Sub(r.last) < refusalLogEvery {
		r.suppressed++
		return false, 0
	}
	suppressed := r.suppressed
	r.last, r.suppressed = now, 0
	return true, suppressed
}
