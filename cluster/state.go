package cluster

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scstd/scstd/scsi"
)

// This file is the state the gateways share, as this gateway knows it:
// who is a member (and in what state), what each acknowledged, which
// gateways are drained, and the logical units' reservations. One
// linearizable read of the whole prefix at revision R loads it (load);
// a watch from R+1 keeps it (dispatch). Every change that others wait
// for (a reservation, a member's state, a drain) is acknowledged once
// applied: P/acks/<gw> holds the revision up to which this gateway has
// applied everything.

// The states a gateway publishes in its member key.
const (
	// stateTransitioning: joining, its ports transitioning until it has
	// loaded the shared state and the others have seen it join.
	stateTransitioning = "transitioning"
	// stateActive: its ports in their configured states.
	stateActive = "active"
	// stateStandby: drained (scstd cluster drain), its ports standby.
	stateStandby = "standby"
)

// memberEntry is a member key as the watch saw it.
type memberEntry struct {
	Member
	lease clientv3.LeaseID
}

// shared is the node's copy of the shared state. Lock order: Node.mu,
// then shared.mu, then lu.mu; no device method is called with any of
// them held.
type shared struct {
	mu sync.Mutex
	// changed is closed and replaced at every change, for waiters.
	changed chan struct{}
	// synced is set once the state is loaded and the watch follows it;
	// epoch counts the loads and losses, so that work queued before one
	// is dropped.
	synced bool
	epoch  uint64
	// rev is the last revision dispatched; at when the view was last
	// current.
	rev int64
	at  time.Time

	members map[string]memberEntry
	acks    map[string]int64
	admin   map[string]string
	// revoked holds when this gateway saw another revoke a gateway's
	// lease: that gateway may serve until it notices, a lease TTL.
	revoked map[string]time.Time
	lus     map[string]*lu

	// pending counts, by revision, the reservation changes queued and
	// not yet applied to their devices, and the unreadable reservation
	// values not yet replaced (unreadable); applied is the revision up to
	// which everything is applied, acked the last one acknowledged, and
	// ackDue says a change others wait for was applied since.
	pending map[int64]int
	applied int64
	acked   int64
	ackDue  bool

	// self is this gateway's own state (state*).
	self string
}

func newShared() shared {
	return shared{changed: make(chan struct{}), members: map[string]memberEntry{}, acks: map[string]int64{},
		admin: map[string]string{}, revoked: map[string]time.Time{}, lus: map[string]*lu{},
		pending: map[int64]int{}, self: stateTransitioning}
}

// broadcast wakes the waiters; sh.mu must be held.
func (sh *shared) broadcast() {
	close(sh.changed)
	sh.changed = make(chan struct{})
}

// advance recomputes applied from the pending changes, up to rev (the
// last revision dispatched); sh.mu must be held.
func (sh *shared) advance() {
	next := sh.rev
	for r := range sh.pending {
		next = min(next, r-1)
	}
	if next > sh.applied {
		sh.applied = next
	}
}

// prValue is a logical unit's reservation key: the state, and who wrote
// it with a sequence number, so that a writer can tell its own write
// after a timeout.
type prValue struct {
	Writer string              `json:"writer"`
	Seq    uint64              `json:"seq"`
	State  *scsi.SharedPRState `json:"state"`
}

// decodePR reads a reservation key's value; an empty value is the empty
// state.
func decodePR(b []byte) (*scsi.SharedPRState, error) {
	if len(b) == 0 {
		return &scsi.SharedPRState{}, nil
	}
	var v prValue
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if v.State == nil {
		v.State = &scsi.SharedPRState{}
	}
	return v.State, nil
}

// job is work for a logical unit's applier, in order: a change to
// apply, the whole state to load, or an unreadable state (stale: media
// access waits). counted says the job is counted in sh.pending until
// done.
type job struct {
	load    bool
	stale   bool
	counted bool
	rev     int64
	state   *scsi.SharedPRState
	epoch   uint64
}

// load replaces the node's copy with the state read at revision rev:
// every attached device loads its logical unit's state, and the node
// acknowledges rev. Called by the session that follows the state.
func (n *Node) load(rev int64, kvs []*mvccpb.KeyValue) {
	o := n.opts()
	sh := &n.sh
	sh.mu.Lock()
	sh.epoch++
	sh.members, sh.acks, sh.admin = map[string]memberEntry{}, map[string]int64{}, map[string]string{}
	sh.pending = map[int64]int{}
	for _, l := range sh.lus {
		l.reset()
	}
	for _, kv := range kvs {
		n.put(o, kv, false)
	}
	for _, l := range sh.lus {
		l.enqueue(l.loadJob(sh.epoch))
	}
	first := sh.at.IsZero()
	sh.rev, sh.applied, sh.synced, sh.ackDue, sh.at = rev, rev, true, true, time.Now()
	// An unreadable reservation value (put) holds the acknowledgement
	// below its revision.
	for r := range sh.pending {
		sh.applied = min(sh.applied, r-1)
	}
	names := slices.Sorted(maps.Keys(sh.members))
	sh.broadcast()
	sh.mu.Unlock()
	if first {
		n.log.Info("cluster: members", "gateways", names)
	}
	n.kickAck()
	n.kickStates()
}

// dispatch applies the events of one watch response, at revision rev.
func (n *Node) dispatch(rev int64, events []*clientv3.Event) {
	o := n.opts()
	sh := &n.sh
	var gone []string
	var joined, left []Member
	sh.mu.Lock()
	for _, ev := range events {
		dir, name, _, _, _ := o.splitKey(string(ev.Kv.Key))
		switch ev.Type {
		case clientv3.EventTypeDelete:
			if dir == dirGateways {
				if m, ok := sh.members[name]; ok {
					left = append(left, m.Member)
					gone = append(gone, name)
				}
			}
			n.del(o, ev.Kv)
		default:
			if _, had := sh.members[name]; dir == dirGateways && !had {
				if m, ok := decodeMember(o.membersPrefix(), ev.Kv.Key, ev.Kv.Value); ok {
					joined = append(joined, m)
				}
			}
			n.put(o, ev.Kv, true)
		}
	}
	if rev > sh.rev {
		sh.rev = rev
	}
	sh.at = time.Now()
	sh.advance()
	sh.broadcast()
	sh.mu.Unlock()
	n.logMembers(joined, left)
	n.kickAck()
	n.kickStates()
	for _, name := range gone {
		n.releaseSPC2Of(name)
	}
}

// logMembers logs who joined and who left.
func (n *Node) logMembers(joined, left []Member) {
	for _, m := range joined {
		n.log.Info("cluster: a gateway joined", "gateway", m.Gateway, "host", m.Hostname, "pid", m.PID)
	}
	for _, m := range left {
		n.log.Warn("cluster: a gateway left (lease revoked or expired)", "gateway", m.Gateway)
	}
}

// put applies one key's new value; live is false while loading. sh.mu
// must be held.
func (n *Node) put(o Options, kv *mvccpb.KeyValue, live bool) {
	sh := &n.sh
	dir, name, item, gw, ok := o.splitKey(string(kv.Key))
	if !ok {
		return
	}
	switch dir {
	case dirGateways:
		m, ok := decodeMember(o.membersPrefix(), kv.Key, kv.Value)
		if !ok {
			return
		}
		if old, had := sh.members[name]; live && had && old.ConfigHash != m.ConfigHash && name != o.Gateway {
			n.log.Info("cluster: a gateway runs another configuration", "gateway", name, "config_hash", short(m.ConfigHash))
		}
		if old := sh.members[name]; live && old.State != m.State {
			n.log.Info("cluster: gateway state", "gateway", name, "state", m.State)
		}
		sh.members[name] = memberEntry{Member: m, lease: clientv3.LeaseID(kv.Lease)}
		sh.ackDue = sh.ackDue || live
	case dirAcks:
		if r, err := strconv.ParseInt(string(kv.Value), 10, 64); err == nil {
			sh.acks[name] = r
		}
	case dirALUA:
		sh.admin[name] = string(kv.Value)
		sh.ackDue = sh.ackDue || live
		if name == o.Gateway && live {
			go n.drainSelf(kv.ModRevision)
		}
	case dirRevoked:
		if live {
			sh.revoked[name] = time.Now()
		}
	case dirLUs:
		l := n.luLocked(name)
		switch item {
		case "pr":
			st, err := decodePR(kv.Value)
			if err != nil {
				n.unreadable(l, kv, err, live)
				return
			}
			l.mu.Lock()
			l.rev, l.state = kv.ModRevision, st
			bad := l.bad
			l.bad = 0
			l.mu.Unlock()
			if live {
				n.changed(l, kv, st, bad)
			}
		case "held":
			l.mu.Lock()
			l.held = kv.CreateRevision
			l.mu.Unlock()
		case "caw":
			l.tokenSeen(string(kv.Value), kv.CreateRevision)
		case "caw-want":
			l.wanted(gw, true)
		}
	}
}

// changed queues a logical unit's reservation change to st, the key kv
// as the watch saw it; bad is the revision of the unreadable value it
// replaces (unreadable), 0 for none: the device then loads st, and the
// acknowledgement is no longer held below bad. sh.mu must be held.
func (n *Node) changed(l *lu, kv *mvccpb.KeyValue, st *scsi.SharedPRState, bad int64) {
	sh := &n.sh
	rev := kv.ModRevision
	sh.pending[rev]++
	sh.ackDue = true
	if bad == 0 {
		l.enqueue(job{counted: true, rev: rev, state: st, epoch: sh.epoch})
		return
	}
	if sh.pending[bad]--; sh.pending[bad] <= 0 {
		delete(sh.pending, bad)
	}
	l.enqueue(job{load: true, counted: true, rev: rev, state: st, epoch: sh.epoch})
	n.log.Info("cluster: a logical unit's reservation value in etcd can be read again", "key", string(kv.Key), "revision", rev)
}

// unreadable takes a reservation value that does not decode (written
// by another version of scstd, or by hand): the logical unit's state is
// unknown. Its device refuses media access as with a stale state, its
// reservation changes are refused (Commit), and this gateway does not
// acknowledge the value's revision (it counts as pending) until a value
// it can read replaces it. sh.mu must be held.
func (n *Node) unreadable(l *lu, kv *mvccpb.KeyValue, err error, live bool) {
	sh := &n.sh
	l.mu.Lock()
	l.rev, l.state = kv.ModRevision, nil
	first := l.bad == 0
	if first {
		l.bad = kv.ModRevision
	}
	l.mu.Unlock()
	if first {
		sh.pending[kv.ModRevision]++
	}
	n.log.Error("cluster: a logical unit's reservation value in etcd cannot be read; media access to it waits, its reservation changes are refused and this gateway does not acknowledge it until a value it can read replaces it (another scstd version, or an edit by hand?)",
		"key", string(kv.Key), "revision", kv.ModRevision, "err", err)
	if live {
		l.enqueue(job{stale: true, rev: kv.ModRevision, epoch: sh.epoch})
	}
}

// del applies one key's deletion. sh.mu must be held.
func (n *Node) del(o Options, kv *mvccpb.KeyValue) {
	sh := &n.sh
	dir, name, item, gw, ok := o.splitKey(string(kv.Key))
	if !ok {
		return
	}
	switch dir {
	case dirGateways:
		delete(sh.members, name)
		sh.ackDue = true
	case dirAcks:
		delete(sh.acks, name)
	case dirALUA:
		delete(sh.admin, name)
		sh.ackDue = true
		if name == o.Gateway {
			go n.drainSelf(kv.ModRevision)
		}
	case dirRevoked:
		delete(sh.revoked, name)
	case dirLUs:
		l := n.luLocked(name)
		switch item {
		case "pr":
			// Reservations are never deleted by gateways; a deleted key
			// (etcdctl) is the empty state.
			l.mu.Lock()
			l.rev, l.state = kv.ModRevision, &scsi.SharedPRState{}
			bad := l.bad
			l.bad = 0
			l.mu.Unlock()
			n.changed(l, kv, &scsi.SharedPRState{}, bad)
		case "held":
			l.mu.Lock()
			l.held = 0
			l.mu.Unlock()
		case "caw":
			l.tokenSeen("", kv.ModRevision)
		case "caw-want":
			l.wanted(gw, false)
		}
	}
}

// lost says that the node's copy may be stale: the lease is gone, or
// the watch lost its place. Media access to every attached logical unit
// waits for the next load, and this gateway's ports are transitioning.
func (n *Node) lost(why string) {
	sh := &n.sh
	sh.mu.Lock()
	if !sh.synced {
		sh.mu.Unlock()
		return
	}
	sh.synced = false
	sh.epoch++
	sh.self = stateTransitioning
	var devs []*scsi.Device
	for _, l := range sh.lus {
		l.lose()
		if d := l.device(); d != nil {
			devs = append(devs, d)
		}
	}
	sh.broadcast()
	sh.mu.Unlock()
	for _, d := range devs {
		d.StaleSharedPR()
	}
	n.log.Warn("cluster: the shared state may be stale; media access waits until it is read again", "why", why, "logical_units", len(devs))
	n.kickStates()
}

// applied records that a queued change at rev was applied to its
// device (or dropped).
func (n *Node) applied(rev int64, epoch uint64) {
	sh := &n.sh
	sh.mu.Lock()
	if epoch == sh.epoch {
		if sh.pending[rev]--; sh.pending[rev] <= 0 {
			delete(sh.pending, rev)
		}
		sh.advance()
		// Others wait for it: an acknowledgement written while it was
		// pending did not cover it.
		sh.ackDue = true
		sh.broadcast()
	}
	sh.mu.Unlock()
	n.kickAck()
}

// kickAck asks the acknowledgement loop to run.
func (n *Node) kickAck() {
	select {
	case n.ackKick <- struct{}{}:
	default:
	}
}

// ackLoop writes P/acks/<gw> = applied whenever a change that others
// wait for was applied since the last acknowledgement, one write at a
// time (a burst of changes is one write).
func (n *Node) ackLoop() {
	for {
		select {
		case <-n.done:
			return
		case <-n.ackKick:
		}
		sh := &n.sh
		sh.mu.Lock()
		rev, due := sh.applied, sh.ackDue && sh.synced && sh.applied > sh.acked
		sh.mu.Unlock()
		if !due {
			continue
		}
		s := n.current()
		if s == nil || s.client() == nil {
			continue
		}
		o := n.opts()
		ctx, cancel := s.request()
		_, err := s.client().Put(ctx, o.key(dirAcks, o.Gateway), strconv.FormatInt(rev, 10))
		cancel()
		if err != nil {
			// Tried again at the next change or keep-alive.
			continue
		}
		sh.mu.Lock()
		if rev > sh.acked {
			sh.acked = rev
		}
		if sh.applied <= sh.acked {
			sh.ackDue = false
		}
		sh.mu.Unlock()
	}
}

// gatewayStates returns the ALUA states the cluster gives gateways'
// ports: this gateway transitioning while it joins and standby once
// drained; another one unavailable without a member key, transitioning
// while it joins, standby when drained. Gateways not named show their
// configured states.
func (n *Node) gatewayStates() map[string]scsi.ALUAState {
	o := n.opts()
	sh := &n.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := map[string]scsi.ALUAState{}
	for name := range o.IDs {
		if name == o.Gateway {
			switch sh.self {
			case stateTransitioning:
				out[name] = scsi.Transitioning
			case stateStandby:
				out[name] = scsi.Standby
			}
			continue
		}
		m, ok := sh.members[name]
		switch {
		case !ok:
			out[name] = scsi.Unavailable
		case m.State == stateTransitioning:
			out[name] = scsi.Transitioning
		case m.State == stateStandby || sh.admin[name] == stateStandby:
			out[name] = scsi.Standby
		}
	}
	return out
}

// kickStates asks the states loop to run.
func (n *Node) kickStates() {
	select {
	case n.statesKick <- struct{}{}:
	default:
	}
}

// statesLoop hands the gateways' states to the hook (the engine) when
// they change, one call at a time.
func (n *Node) statesLoop() {
	var last map[string]scsi.ALUAState
	for {
		select {
		case <-n.done:
			return
		case <-n.statesKick:
		}
		st := n.gatewayStates()
		if last != nil && maps.Equal(st, last) {
			continue
		}
		if last != nil {
			for _, name := range slices.Sorted(maps.Keys(n.opts().IDs)) {
				if st[name] != last[name] || hasKey(st, name) != hasKey(last, name) {
					n.log.Info("cluster: ALUA state of a gateway's ports", "gateway", name, "state", describeState(st, name))
				}
			}
		}
		last = st
		n.mu.Lock()
		hook := n.onStates
		n.mu.Unlock()
		if hook != nil {
			hook(st)
		}
	}
}

func hasKey(m map[string]scsi.ALUAState, k string) bool {
	_, ok := m[k]
	return ok
}

// describeState names a gateway's state for the log: the one the
// cluster gives it, or "configured".
func describeState(st map[string]scsi.ALUAState, name string) string {
	if s, ok := st[name]; ok {
		return s.String()
	}
	return "configured"
}

// waitUntil waits until cond (called with sh.mu held) holds or timeout
// passes, and reports whether it held.
func (n *Node) waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		n.sh.mu.Lock()
		ok := cond()
		ch := n.sh.changed
		n.sh.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		case <-n.done:
			return false
		}
	}
}

// ackedByAll reports whether every other member has acknowledged rev.
// sh.mu must be held.
func (sh *shared) ackedByAll(self string, rev int64) bool {
	for name := range sh.members {
		if name != self && sh.acks[name] < rev {
			return false
		}
	}
	return true
}

// activate ends a join: once the other members have seen this gateway
// join as transitioning (they acknowledged joinRev, within a lease TTL),
// its ports take their configured state, or standby when drained.
func (n *Node) activate(s *session, joinRev int64) {
	o := n.opts()
	n.waitUntil(o.LeaseTTL, func() bool { return n.sh.synced && n.sh.ackedByAll(o.Gateway, joinRev) })
	sh := &n.sh
	sh.mu.Lock()
	if !sh.synced || n.current() != s {
		sh.mu.Unlock()
		return
	}
	sh.self = stateActive
	if sh.admin[o.Gateway] == stateStandby {
		sh.self = stateStandby
	}
	self := sh.self
	sh.broadcast()
	sh.mu.Unlock()
	n.log.Info("cluster: the gateway's ports take their state", "state", self)
	s.republish()
	n.kickStates()
}

// drainSelf follows a change of this gateway's drain key at rev: a
// drain moves its ports to standby once the other members have
// acknowledged it (they tell their sessions first, so that multipath
// initiators move to their paths), an undrain back to their configured
// states.
func (n *Node) drainSelf(rev int64) {
	o := n.opts()
	n.waitUntil(o.LeaseTTL, func() bool { return n.sh.ackedByAll(o.Gateway, rev) })
	sh := &n.sh
	sh.mu.Lock()
	if sh.self == stateTransitioning {
		sh.mu.Unlock()
		return // activate decides
	}
	next := stateActive
	if sh.admin[o.Gateway] == stateStandby {
		next = stateStandby
	}
	changed := next != sh.self
	sh.self = next
	sh.broadcast()
	sh.mu.Unlock()
	if !changed {
		return
	}
	n.log.Info("cluster: drain", "state", next)
	if s := n.current(); s != nil {
		s.republish()
	}
	n.kickStates()
}

// tpgtOf returns the target portal group tag of a SCSI target port name
// ("iqn...,t,0x0002"), 0 when it has none.
func tpgtOf(port string) uint16 {
	_, tag, ok := strings.Cut(port, ",t,0x")
	if !ok {
		return 0
	}
	v, err := strconv.ParseUint(tag, 16, 16)
	if err != nil {
		return 0
	}
	return uint16(v)
}

// releaseSPC2Of releases the SPC-2 reservations held through the ports
// of a gateway that left: SPC-2 releases a reservation on I_T nexus
// loss. Every gateway tries; the compare-and-swap lets one through.
func (n *Node) releaseSPC2Of(gw string) {
	id := n.opts().IDs[gw]
	if id == 0 {
		return
	}
	for _, d := range n.devices() {
		d.ReleaseSPC2Through(func(port string) bool { return tpgtOf(port) == id })
	}
}

// devices returns the attached devices.
func (n *Node) devices() []*scsi.Device {
	sh := &n.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []*scsi.Device
	for _, l := range sh.lus {
		if d := l.device(); d != nil {
			out = append(out, d)
		}
	}
	return out
}
