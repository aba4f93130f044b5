package cluster

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scstd/scstd/scsi"
)

// This file is a logical unit's reservations kept in etcd: the
// scsi.SharedPR of its device on this gateway (docs/scale-out.md, "PR
// OUT is one compare-and-swap" and "The acknowledgement rule").
//
//	Commit(rev, next)   refused while an absent gateway may serve the LU
//	                    without the current state; then
//	                    Txn(If mod_revision(P/lus/N/pr) == rev
//	                        Then Put(pr, next) [Put/Delete(held)]
//	                        Else Get(pr))
//	                    a timeout is resolved by reading the key back
//	Settle(rev)         waits until every other gateway acknowledged rev,
//	                    or left in a way that fences it from the LU;
//	                    one that does not acknowledge within a lease TTL
//	                    has its lease revoked
//	Fence()             unavailable once the lease deadline passed
//	Atomic()            the COMPARE AND WRITE token (caw.go)

// errUnavailable answers what the shared state cannot take now: NOT
// READY, ASYMMETRIC ACCESS STATE TRANSITION, which initiators retry.
var errUnavailable = scsi.ErrALUATransition

// lu is a logical unit as this gateway shares it.
type lu struct {
	n   *Node
	naa string

	mu sync.Mutex
	// dev is the attached device (nil: none on this gateway) and name
	// its name in the configuration.
	dev  *scsi.Device
	name string
	// rev and state are the reservation key's last revision and value
	// as the watch saw them (0, nil: no key); held is the create
	// revision of the held marker, 0 while the LU has no reservation
	// state.
	rev   int64
	state *scsi.SharedPRState
	held  int64
	// bad is the revision of a reservation value that could not be read
	// and that no readable one has replaced since (0: none); state is
	// then nil and the acknowledgement is held below bad (unreadable).
	bad int64
	// queue is the applier's work; running says its goroutine runs.
	queue   []job
	running bool
	// refused is when a change was last refused for an absent gateway,
	// to log it once a minute.
	refused time.Time

	tok     token
	release func()
}

// luLocked returns the logical unit naa, made on first use. sh.mu must
// be held.
func (n *Node) luLocked(naa string) *lu {
	l := n.sh.lus[naa]
	if l == nil {
		l = &lu{n: n, naa: naa}
		l.release = l.releaseToken
		l.tok.changed = make(chan struct{})
		l.tok.wants = map[string]bool{}
		n.sh.lus[naa] = l
	}
	return l
}

// Attach makes d, the device of the logical unit with NAA designator
// naa, share its reservations through etcd (reconcile.SharedState). It
// loads the state the node holds, in order with the changes queued for
// the logical unit.
func (n *Node) Attach(naa []byte, name string, d *scsi.Device) {
	key := hex.EncodeToString(naa)
	d.SetSharedPR(n.luFor(key))
	sh := &n.sh
	sh.mu.Lock()
	l := n.luLocked(key)
	l.mu.Lock()
	l.dev, l.name = d, name
	l.mu.Unlock()
	if sh.synced {
		l.enqueue(l.loadJob(sh.epoch))
	}
	sh.mu.Unlock()
}

// loadJob returns the job that loads the logical unit's state as the
// node holds it into its device: the state, or stale when it could not
// be read.
func (l *lu) loadJob(epoch uint64) job {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bad != 0 {
		return job{stale: true, rev: l.rev, epoch: epoch}
	}
	return job{load: true, rev: l.rev, state: l.state, epoch: epoch}
}

// luFor returns the logical unit naa.
func (n *Node) luFor(naa string) *lu {
	n.sh.mu.Lock()
	defer n.sh.mu.Unlock()
	return n.luLocked(naa)
}

// Detach stops sharing for d (reconcile.SharedState).
func (n *Node) Detach(naa []byte, d *scsi.Device) {
	l := n.luFor(hex.EncodeToString(naa))
	l.mu.Lock()
	if l.dev == d {
		l.dev = nil
	}
	l.mu.Unlock()
}

// device returns the attached device, nil for none.
func (l *lu) device() *scsi.Device {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dev
}

// reset forgets the cached keys before a load. sh.mu is held.
func (l *lu) reset() {
	l.mu.Lock()
	l.rev, l.state, l.held, l.bad = 0, nil, 0, 0
	l.mu.Unlock()
	l.tokenLost()
}

// lose drops what the lease held (the atomic token) when the node's
// copy may be stale. sh.mu is held.
func (l *lu) lose() { l.tokenLost() }

// enqueue queues work for the applier, starting it when idle. sh.mu is
// held.
func (l *lu) enqueue(j job) {
	l.mu.Lock()
	l.queue = append(l.queue, j)
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start {
		go l.apply()
	}
}

// apply runs the queued work in order, outside the node's locks: loads
// and changes go to the attached device (a load or change queued before
// the node's copy was lost or loaded again is dropped), and each change
// counts as applied.
func (l *lu) apply() {
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		j := l.queue[0]
		l.queue = l.queue[1:]
		d := l.dev
		l.mu.Unlock()
		current := l.n.epochIs(j.epoch)
		var err error
		switch {
		case d == nil || !current:
		case j.stale:
			d.StaleSharedPR()
		case j.load:
			err = d.LoadSharedPR(j.rev, j.state)
		default:
			err = d.ApplySharedPR(j.rev, j.state)
		}
		if err != nil {
			l.n.log.Error("cluster: a logical unit's reservation state does not hold together; media access to it waits",
				"device", l.name, "naa", l.naa, "revision", j.rev, "err", err)
		}
		if j.counted {
			l.n.applied(j.rev, j.epoch)
		}
	}
}

// epochIs reports whether work of epoch e is still current.
func (n *Node) epochIs(e uint64) bool {
	n.sh.mu.Lock()
	defer n.sh.mu.Unlock()
	return n.sh.epoch == e && n.sh.synced
}

// Commit replaces the reservation state read at rev with next, as one
// compare-and-swap (scsi.SharedPR).
func (l *lu) Commit(rev int64, next *scsi.SharedPRState) (int64, error) {
	n := l.n
	s := n.current()
	var cli *clientv3.Client
	if s != nil {
		cli = s.client()
	}
	switch {
	case cli == nil || !n.isSynced():
		n.refuse(l, "the shared state is not loaded (etcd unreachable or the gateway joining)")
		return 0, errUnavailable
	case n.Fence() != nil:
		n.refuse(l, "etcd unreachable: the gateway's lease deadline passed")
		return 0, errUnavailable
	}
	if key := l.unreadableKey(); key != "" {
		n.refuse(l, "its reservation value in etcd ("+key+") cannot be read: write a value this scstd version reads, or delete the key to clear the reservations")
		return 0, errUnavailable
	}
	if gw := n.absentUnsafe(l, rev); gw != "" {
		n.refuse(l, "the gateway "+gw+" left without the logical unit's current state and may still serve it; start it again, or run `scstd cluster evict "+gw+"` if it is down for good")
		return 0, errUnavailable
	}
	o := n.opts()
	val, err := json.Marshal(prValue{Writer: o.Gateway, Seq: n.seq.Add(1), State: next})
	if err != nil {
		return 0, err
	}
	prKey, heldKey := o.luKey(l.naa, "pr"), o.luKey(l.naa, "held")
	l.mu.Lock()
	had := l.held != 0 && l.rev == rev
	l.mu.Unlock()
	has := next.HasState()
	ops := []clientv3.Op{clientv3.OpPut(prKey, string(val))}
	switch {
	case has && !had:
		ops = append(ops, clientv3.OpPut(heldKey, ""))
	case !has:
		ops = append(ops, clientv3.OpDelete(heldKey))
	}
	ctx, cancel := s.request()
	defer cancel()
	rsp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(prKey), "=", rev)).
		Then(ops...).Else(clientv3.OpGet(prKey)).Commit()
	if err != nil {
		return l.uncertain(s, cli, prKey, val, err)
	}
	if !rsp.Succeeded {
		return 0, l.stale(rsp.Responses[0].GetResponseRange().Kvs)
	}
	r := rsp.Header.Revision
	l.mu.Lock()
	if r > l.rev {
		l.rev, l.state = r, next
		switch {
		case !has:
			l.held = 0
		case !had:
			l.held = r
		}
	}
	l.mu.Unlock()
	return r, nil
}

// stale makes the StaleError of a compare-and-swap that found kvs (the
// reservation key, or none).
func (l *lu) stale(kvs []*mvccpb.KeyValue) error {
	if len(kvs) == 0 {
		return &scsi.StaleError{Rev: 0, State: &scsi.SharedPRState{}}
	}
	st, err := decodePR(kvs[0].Value)
	if err != nil {
		l.n.log.Error("cluster: persistent reservation refused (NOT READY, the initiator retries): the logical unit's reservation value in etcd cannot be read",
			"key", string(kvs[0].Key), "revision", kvs[0].ModRevision, "err", err)
		return errUnavailable
	}
	return &scsi.StaleError{Rev: kvs[0].ModRevision, State: st}
}

// unreadableKey returns the reservation key when its value could not
// be read (unreadable), "" otherwise.
func (l *lu) unreadableKey() string {
	l.mu.Lock()
	bad := l.bad
	l.mu.Unlock()
	if bad == 0 {
		return ""
	}
	return l.n.opts().luKey(l.naa, "pr")
}

// uncertain resolves a transaction that failed without an answer (a
// timeout: etcd may or may not have applied it) by reading the key: our
// value there means it was applied.
func (l *lu) uncertain(s *session, cli *clientv3.Client, key string, val []byte, txnErr error) (int64, error) {
	ctx, cancel := s.request()
	defer cancel()
	rsp, err := cli.Get(ctx, key)
	if err != nil {
		l.n.refuse(l, "etcd unreachable: "+txnErr.Error())
		return 0, errUnavailable
	}
	if len(rsp.Kvs) == 1 && bytes.Equal(rsp.Kvs[0].Value, val) {
		return rsp.Kvs[0].ModRevision, nil
	}
	return 0, l.stale(rsp.Kvs)
}

// refuse logs a refused reservation change, once a minute per logical
// unit.
func (n *Node) refuse(l *lu, why string) {
	l.mu.Lock()
	logIt := time.Since(l.refused) > time.Minute
	if logIt {
		l.refused = time.Now()
	}
	name := l.name
	l.mu.Unlock()
	if logIt {
		n.log.Error("cluster: persistent reservation refused (NOT READY, the initiator retries)", "device", name, "naa", l.naa, "why", why)
	}
}

// isSynced reports whether the node follows the shared state.
func (n *Node) isSynced() bool {
	n.sh.mu.Lock()
	defer n.sh.mu.Unlock()
	return n.sh.synced
}

// absentUnsafe returns a gateway that left (it has acknowledged
// something, and has no member key) and may still serve the logical unit
// without its state at rev: it had not applied rev, nor did it know the
// unit had reservation state (and so fences it). "" when there is none.
func (n *Node) absentUnsafe(l *lu, rev int64) string {
	self := n.opts().Gateway
	sh := &n.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l.mu.Lock()
	held := l.held
	l.mu.Unlock()
	for _, gw := range slices.Sorted(maps.Keys(sh.acks)) {
		if _, present := sh.members[gw]; present || gw == self {
			continue
		}
		if a := sh.acks[gw]; a < rev && (held == 0 || a < held) {
			return gw
		}
	}
	return ""
}

// Settle returns once no gateway can act on a state of the logical unit
// older than rev (scsi.SharedPR): this one has applied it, and every
// other gateway acknowledged it, or left knowing the unit has
// reservation state (so it fences it), a lease TTL after another gateway
// revoked its lease. A member that does not acknowledge within a lease
// TTL has its lease revoked.
func (l *lu) Settle(rev int64) error {
	n := l.n
	o := n.opts()
	start := time.Now()
	revoked := map[string]bool{}
	for {
		n.sh.mu.Lock()
		wait := n.settleWait(l, rev, o.Gateway)
		ch := n.sh.changed
		n.sh.mu.Unlock()
		if len(wait) == 0 {
			return nil
		}
		waited := time.Since(start)
		for _, w := range wait {
			if w.present && waited > o.LeaseTTL && !revoked[w.gateway] {
				revoked[w.gateway] = true
				n.revoke(w.gateway, w.lease, rev)
			}
		}
		if waited > settleLimit(o.LeaseTTL) {
			names := make([]string, len(wait))
			for i, w := range wait {
				names[i] = w.gateway
			}
			n.log.Error("cluster: a persistent reservation change is committed but not acknowledged; the command fails (NOT READY) and the initiator retries",
				"naa", l.naa, "revision", rev, "waiting_for", strings.Join(names, ", "), "waited", waited.Round(time.Millisecond).String())
			return errUnavailable
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-n.done:
			return errUnavailable
		}
	}
}

// settleLimit bounds Settle: a member revoked after one TTL is fenced
// after another, with time for etcd and the watch.
func settleLimit(ttl time.Duration) time.Duration { return 3*ttl + 2*time.Second }

// waiting is a gateway that Settle waits for.
type waiting struct {
	gateway string
	present bool
	lease   clientv3.LeaseID
}

// settleWait returns the gateways that keep rev from being settled.
// sh.mu must be held.
func (n *Node) settleWait(l *lu, rev int64, self string) []waiting {
	sh := &n.sh
	var out []waiting
	if sh.applied < rev {
		out = append(out, waiting{gateway: self})
	}
	l.mu.Lock()
	held := l.held
	l.mu.Unlock()
	ttl := n.opts().LeaseTTL
	for _, gw := range slices.Sorted(maps.Keys(sh.members)) {
		if gw != self && sh.acks[gw] < rev {
			out = append(out, waiting{gateway: gw, present: true, lease: sh.members[gw].lease})
		}
	}
	for _, gw := range slices.Sorted(maps.Keys(sh.acks)) {
		if _, present := sh.members[gw]; present || gw == self {
			continue
		}
		a := sh.acks[gw]
		switch {
		case a >= rev:
		case held != 0 && a >= held:
			// It fences the logical unit: at once when its lease
			// expired, a TTL after another gateway revoked it.
			if at, ok := sh.revoked[gw]; ok && time.Since(at) < ttl {
				out = append(out, waiting{gateway: gw})
			}
		default:
			out = append(out, waiting{gateway: gw})
		}
	}
	return out
}

// revoke revokes the lease of a member that does not acknowledge a
// change: the marker P/revoked/<gw> first, so that every gateway knows
// the member may serve for one more TTL (until it notices), then the
// lease. The member's keep-alive then finds its lease gone and it
// fences itself.
func (n *Node) revoke(gw string, lease clientv3.LeaseID, rev int64) {
	s := n.current()
	if s == nil || s.client() == nil || lease == 0 {
		return
	}
	n.log.Warn("cluster: a gateway did not acknowledge a reservation change within the lease TTL; revoking its lease", "gateway", gw, "revision", rev, "lease", leaseText(lease))
	ctx, cancel := s.request()
	defer cancel()
	cli := s.client()
	if _, err := cli.Put(ctx, n.opts().key(dirRevoked, gw), leaseText(lease)); err != nil {
		return
	}
	if _, err := cli.Revoke(ctx, lease); err != nil {
		n.log.Warn("cluster: revoking a gateway's lease", "gateway", gw, "err", err)
	}
}

// Done is closed when the node has shut down (Close): the device stops
// retrying the commit of an SPC-2 release (scsi), which the other
// gateways make once this one has left.
func (l *lu) Done() <-chan struct{} { return l.n.done }

// Local reports whether targetPort is one of this gateway's ports: its
// target portal group tag is this gateway's id (scsi.SharedPR).
func (l *lu) Local(targetPort string) bool {
	o := l.n.opts()
	id := o.IDs[o.Gateway]
	return id == 0 || tpgtOf(targetPort) == id
}

// Fence returns TARGET PORT IN UNAVAILABLE STATE once the lease deadline
// passed (scsi.SharedPR).
func (l *lu) Fence() *scsi.SenseError { return l.n.Fence() }

// errFenced is the sense of media access while fenced.
var errFenced = scsi.ErrALUAUnavailable

// Fence returns the sense data of media access to logical units with
// reservation state once this gateway's fence time has passed: two
// thirds of the lease TTL after the send time of the last keep-alive
// etcd answered. nil while the gateway may act.
func (n *Node) Fence() *scsi.SenseError {
	if time.Since(n.base) >= time.Duration(n.fenceAt.Load()) {
		return errFenced
	}
	return nil
}

var _ scsi.SharedPR = (*lu)(nil)

// errNotMember refuses an administrative change for a gateway the
// configuration does not declare.
var errNotMember = errors.New("not a member of the cluster (no member block)")
