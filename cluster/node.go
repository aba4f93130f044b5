package cluster

import (
	"log/slog"
	"sync"
	"time"
)

// Member is what a gateway publishes about itself in its member key.
type Member struct {
	Gateway  string `json:"gateway"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	// Portals are the gateway's iSCSI listen addresses.
	Portals []string  `json:"portals,omitempty"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	// ConfigHash identifies the configuration the gateway runs (its last
	// applied reload), with the gateway's own name left out, so that
	// gateways that run the same file have the same hash.
	ConfigHash string `json:"config_hash"`
}

// Node is this gateway's membership in the cluster: the session that
// holds its member key and, during Reconnect, the one that will take it
// over.
type Node struct {
	log *slog.Logger

	mu   sync.Mutex
	self Member
	cur  *session
	// next is a session with new settings that has not joined yet; it
	// replaces cur once it holds the member key.
	next   *session
	closed bool
}

// Join starts this gateway's membership: it connects to etcd, grants a
// lease, puts its member key and keeps it alive, in goroutines of its own,
// retrying until it succeeds; Join itself does not wait for etcd. self's
// Gateway is taken from opts.
func Join(opts Options, self Member, log *slog.Logger) *Node {
	self.Gateway = opts.Gateway
	n := &Node{log: log, self: self}
	n.cur = n.start(opts, nil)
	return n
}

// start runs a new session; replaces is the session whose member key it
// takes over, or nil.
func (n *Node) start(opts Options, replaces *session) *session {
	s := newSession(n, opts, replaces)
	go s.run()
	return s
}

// member returns what this gateway publishes.
func (n *Node) member() Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.self
}

// SetConfigHash publishes the hash of the configuration the gateway now
// runs.
func (n *Node) SetConfigHash(hash string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.self.ConfigHash == hash {
		return
	}
	n.self.ConfigHash = hash
	for _, s := range []*session{n.cur, n.next} {
		if s != nil {
			s.republish()
		}
	}
}

// Options returns the settings the node runs with: those of the session
// that holds the member key.
func (n *Node) Options() Options {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur.opts
}

// Reconnect moves the membership to new connection settings (endpoints,
// TLS files, credentials, timeouts, lease TTL), make-before-break: a new
// session connects and takes the member key over from the running one's
// lease, and only then is the running one closed and its lease revoked.
// Until then the running session serves, and Status shows how the new
// one fares. The gateway's name and prefix must stay the same.
func (n *Node) Reconnect(opts Options) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	if n.next != nil {
		go n.next.close(true)
	}
	s := n.start(opts, n.cur)
	n.next = s
	n.log.Info("cluster: reconnecting to etcd with new settings", "etcd", opts.Endpoints, "lease_ttl", opts.LeaseTTL)
	go func() {
		select {
		case <-s.joined:
		case <-s.done:
			return
		}
		n.mu.Lock()
		if n.next != s {
			n.mu.Unlock()
			return
		}
		old := n.cur
		n.cur, n.next = s, nil
		n.mu.Unlock()
		old.close(true)
		n.log.Info("cluster: reconnected; the previous lease is revoked", "etcd", opts.Endpoints, "lease", leaseText(s.leaseID()))
	}()
}

// Close leaves the cluster: it revokes the lease (so that the other
// gateways see this one leave at once) and closes the connections,
// within about a second when etcd does not answer.
func (n *Node) Close() {
	n.mu.Lock()
	n.closed = true
	cur, next := n.cur, n.next
	n.next = nil
	n.mu.Unlock()
	if next != nil {
		next.close(true)
	}
	cur.close(true)
}
