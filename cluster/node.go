package cluster

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scstd/scstd/scsi"
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
	// State is where the gateway's ports stand: "transitioning" while
	// it joins, "active" (their configured states), "standby" when
	// drained.
	State string `json:"state,omitempty"`
}

// Node is this gateway's membership in the cluster: the session that
// holds its member key and, during Reconnect, the one that will take it
// over.
type Node struct {
	log *slog.Logger
	// base is the origin of fenceAt, on the monotonic clock.
	base time.Time
	// fenceAt is when media access to logical units with reservation
	// state stops, as time since base: two thirds of the lease TTL after
	// the send time of the last keep-alive etcd answered (Fence).
	fenceAt atomic.Int64
	// seq numbers this gateway's reservation writes.
	seq atomic.Uint64

	mu   sync.Mutex
	self Member
	cur  *session
	// next is a session with new settings that has not joined yet; it
	// replaces cur once it holds the member key.
	next   *session
	closed bool
	// ids are the gateways' ids by name (SetIDs), never changed in
	// place.
	ids map[string]uint16
	// onStates receives the gateways' ALUA states (SetStatesHook).
	onStates func(map[string]scsi.ALUAState)

	// sh is the shared state (state.go).
	sh shared
	// ackKick and statesKick wake the acknowledgement and states loops;
	// done ends them.
	ackKick, statesKick chan struct{}
	done                chan struct{}
}

// Join starts this gateway's membership: it connects to etcd, grants a
// lease, puts its member key (transitioning), reads the shared state,
// follows it, and keeps the lease alive, in goroutines of its own,
// retrying until it succeeds; Join itself does not wait for etcd. self's
// Gateway is taken from opts.
func Join(opts Options, self Member, log *slog.Logger) *Node {
	self.Gateway = opts.Gateway
	n := &Node{log: log, self: self, base: time.Now(), sh: newShared(), ids: opts.IDs,
		ackKick: make(chan struct{}, 1), statesKick: make(chan struct{}, 1), done: make(chan struct{})}
	n.mu.Lock()
	n.cur = n.start(opts, nil)
	go n.cur.run()
	n.mu.Unlock()
	go n.ackLoop()
	go n.statesLoop()
	return n
}

// SetStatesHook makes hook receive the ALUA states the cluster gives
// gateways' ports (by gateway; one not named shows its configured
// states) whenever they change, and now.
func (n *Node) SetStatesHook(hook func(map[string]scsi.ALUAState)) {
	n.mu.Lock()
	n.onStates = hook
	n.mu.Unlock()
	n.kickStates()
}

// opts returns the settings of the session that holds the member key,
// with the gateways' current ids.
func (n *Node) opts() Options {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.cur.opts
	o.IDs = n.ids
	return o
}

// SetIDs gives the gateways' ids (member blocks) after a reload that
// changed them.
func (n *Node) SetIDs(ids map[string]uint16) {
	n.mu.Lock()
	n.ids = ids
	n.mu.Unlock()
	n.kickStates()
}

// current returns the session that holds the member key.
func (n *Node) current() *session {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur
}

// start makes a new session; replaces is the session whose member key
// it takes over, or nil. The caller runs it (go s.run()) once it is
// recorded as cur or next.
func (n *Node) start(opts Options, replaces *session) *session {
	return newSession(n, opts, replaces)
}

// member returns what this gateway publishes.
func (n *Node) member() Member {
	n.mu.Lock()
	m := n.self
	n.mu.Unlock()
	n.sh.mu.Lock()
	m.State = n.sh.self
	n.sh.mu.Unlock()
	return m
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
func (n *Node) Options() Options { return n.opts() }

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
	go s.run()
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
		// The new session reads the shared state and follows it.
		s.resync()
		old.close(true)
		n.log.Info("cluster: reconnected; the previous lease is revoked", "etcd", opts.Endpoints, "lease", leaseText(s.leaseID()))
	}()
}

// Close leaves the cluster: it deletes its acknowledgement (a gateway
// that stopped serving is no gateway to wait for), revokes the lease (so
// that the other gateways see this one leave at once) and closes the
// connections, within about a second when etcd does not answer.
func (n *Node) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	cur, next := n.cur, n.next
	n.next = nil
	n.mu.Unlock()
	close(n.done)
	if next != nil {
		next.close(true)
	}
	cur.leave()
	cur.close(true)
}
