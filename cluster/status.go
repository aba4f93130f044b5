package cluster

import (
	"maps"
	"slices"
	"time"
)

// Status is the gateway's view of the cluster, for `scstd status`.
type Status struct {
	Gateway string   `json:"gateway"`
	Prefix  string   `json:"prefix"`
	Etcd    []string `json:"etcd"`
	// State is Connected, Unreachable, Connecting or NameInUse, since
	// Since; Error says why when not connected.
	State State     `json:"state"`
	Since time.Time `json:"since"`
	Error string    `json:"error,omitempty"`
	// Lease is the lease ID in hex, LeaseTTL its TTL as etcd granted it.
	Lease    string `json:"lease,omitempty"`
	LeaseTTL string `json:"lease_ttl"`
	// LeaseDeadline is how long the lease is sure to live by this
	// gateway's clock (the local deadline); negative once it has passed.
	// Fence says, once the fence time passed, what the gateway refuses.
	LeaseDeadline string `json:"lease_deadline_in,omitempty"`
	Fence         string `json:"fence,omitempty"`
	// PortState is this gateway's own state: transitioning (joining),
	// active, standby (drained). Revision is the revision of the shared
	// state it has applied; LogicalUnits how many it shares.
	PortState    string `json:"port_state"`
	Revision     int64  `json:"revision"`
	LogicalUnits int    `json:"logical_units"`
	// ConfigHash is the hash this gateway publishes.
	ConfigHash string `json:"config_hash"`
	// Members are the gateways with a member key, by name; MembersAsOf
	// is when the list was last current (set when etcd is unreachable).
	Members     []MemberStatus `json:"members"`
	MembersAsOf *time.Time     `json:"members_as_of,omitempty"`
	// Drift names the members whose configuration hash differs from
	// this gateway's.
	Drift []string `json:"drift,omitempty"`
	// Reconnect is a reconnection with new settings in progress.
	Reconnect *ReconnectStatus `json:"reconnect,omitempty"`
	// RestartRequired lists the changes of the cluster block that the
	// running gateway has not applied (set by the daemon).
	RestartRequired []string `json:"restart_required,omitempty"`
}

// MemberStatus is one member as this gateway sees it.
type MemberStatus struct {
	Member
	// Self marks this gateway.
	Self bool `json:"self,omitempty"`
	// ConfigMatches says whether the member runs this gateway's
	// configuration.
	ConfigMatches bool `json:"config_matches"`
	// Drained says that the member is asked to be standby (scstd
	// cluster drain); Acknowledged is the revision it last acknowledged.
	Drained      bool  `json:"drained,omitempty"`
	Acknowledged int64 `json:"acknowledged"`
}

// ReconnectStatus is a session with new settings that has not taken over
// yet.
type ReconnectStatus struct {
	Etcd  []string  `json:"etcd"`
	State State     `json:"state"`
	Since time.Time `json:"since"`
	Error string    `json:"error,omitempty"`
}

// Status returns the gateway's view of the cluster.
func (n *Node) Status() Status {
	n.mu.Lock()
	cur, next, self := n.cur, n.next, n.self
	n.mu.Unlock()
	st := Status{Gateway: cur.opts.Gateway, Prefix: cur.opts.Prefix, Etcd: cur.opts.Endpoints, ConfigHash: self.ConfigHash}
	cur.mu.Lock()
	st.State, st.Since, st.Error = cur.state, cur.since, cur.err
	if cur.lease != 0 {
		st.Lease = leaseText(cur.lease)
	}
	ttl := cur.ttl
	if ttl == 0 {
		ttl = cur.opts.LeaseTTL
	}
	st.LeaseTTL = ttl.String()
	if !cur.fence.IsZero() {
		left := time.Until(cur.fence).Round(time.Millisecond)
		st.LeaseDeadline = left.String()
	}
	cur.mu.Unlock()
	if n.Fence() != nil {
		st.Fence = "fenced: media access to logical units with reservations is refused until etcd renews the lease"
	}
	sh := &n.sh
	sh.mu.Lock()
	if st.State != Connected && !sh.at.IsZero() {
		at := sh.at
		st.MembersAsOf = &at
	}
	st.PortState, st.Revision, st.LogicalUnits = sh.self, sh.applied, len(sh.lus)
	for _, name := range slices.Sorted(maps.Keys(sh.members)) {
		m := sh.members[name].Member
		ms := MemberStatus{Member: m, Self: name == st.Gateway, ConfigMatches: m.ConfigHash == self.ConfigHash,
			Drained: sh.admin[name] == stateStandby, Acknowledged: sh.acks[name]}
		if !ms.ConfigMatches {
			st.Drift = append(st.Drift, name)
		}
		st.Members = append(st.Members, ms)
	}
	sh.mu.Unlock()
	if next != nil {
		next.mu.Lock()
		st.Reconnect = &ReconnectStatus{Etcd: next.opts.Endpoints, State: next.state, Since: next.since, Error: next.err}
		next.mu.Unlock()
	}
	return st
}
