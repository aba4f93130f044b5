package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// clockRate bounds the rate difference between this gateway's clock and
// the etcd leader's: the local lease deadline is this much of the TTL
// shorter than etcd's expiry.
const clockRate = 1e-3

// revokeTimeout bounds the revocation of the lease when a session ends.
const revokeTimeout = time.Second

// State is where a session stands.
type State string

// The states of a session.
const (
	// Connecting: no lease yet (the first connection, or after the lease
	// expired).
	Connecting State = "connecting"
	// Connected: the member key is in etcd and the last keep-alive was
	// answered.
	Connected State = "connected"
	// Unreachable: etcd did not answer the last keep-alive; the lease
	// may still be alive in etcd.
	Unreachable State = "unreachable"
	// NameInUse: another live gateway holds the member key of this
	// gateway's name.
	NameInUse State = "name in use"
)

// session is one connection to etcd with one lease: it joins (puts the
// member key), keeps the lease alive, and, when it holds the member key,
// reads and follows the shared state (watch.go).
type session struct {
	node     *Node
	opts     Options
	replaces *session // whose member key this session takes over, or nil

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	joined chan struct{} // closed at the first join
	dirty  chan struct{} // the member value changed: put it again
	closer sync.Once

	mu         sync.Mutex
	cli        *clientv3.Client
	state      State
	since      time.Time
	err        string
	lease      clientv3.LeaseID
	ttl        time.Duration // as etcd granted it
	in         bool          // the member key is ours under lease
	sent       time.Time     // send time of the last answered keep-alive
	fence      time.Time     // local lease deadline: sent + ttl·(1 - clockRate)
	joinedOnce bool
	// joinRev is the revision of the last put of the member key; synced
	// says the node's shared state follows this session's watch, which
	// stopWatch ends; fenced that the fence time passed (logged once).
	joinRev   int64
	synced    bool
	stopWatch context.CancelFunc
	fenced    bool
}

func newSession(n *Node, opts Options, replaces *session) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{node: n, opts: opts, replaces: replaces, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), joined: make(chan struct{}), dirty: make(chan struct{}, 1),
		state: Connecting, since: time.Now()}
}

// keepAlivesPerTTL is how many keep-alives a lease TTL holds: the fence
// comes at two thirds of the TTL, so that a gateway fences only after
// about three keep-alives in a row failed.
const keepAlivesPerTTL = 6

// run connects, then joins, reads and follows the shared state, and keeps
// the lease alive until the session is closed, retrying whatever fails.
func (s *session) run() {
	defer close(s.done)
	cli := s.connect()
	if cli == nil {
		return
	}
	interval := s.opts.LeaseTTL / keepAlivesPerTTL
	for {
		var err error
		renewing := false
		switch {
		case s.leaseID() == 0:
			err = s.grant(cli)
		case s.renewalDue(2 * interval):
			// After a failure the lease comes first: the fence waits
			// for it.
			err, renewing = s.keepAlive(cli), true
		case !s.holdsKey():
			err = s.join(cli)
		case !s.isSynced() && s.node.current() == s:
			err = s.sync(cli)
		default:
			err, renewing = s.keepAlive(cli), true
		}
		s.checkFence()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.leaseGone()
			err = nil
		}
		wait := interval
		switch {
		case err != nil:
			s.fail(err)
			wait = min(interval, time.Second)
		case !renewing:
			wait = 0 // the next step of joining at once
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.dirty:
			s.mu.Lock()
			s.in = false // put the member value again
			s.mu.Unlock()
		case <-time.After(wait):
		}
	}
}

// connect makes the etcd client, retrying until it can or the session
// ends.
func (s *session) connect() *clientv3.Client {
	cfg := clientv3.Config{
		Endpoints:   s.opts.Endpoints,
		DialTimeout: s.opts.DialTimeout,
		Username:    s.opts.Username,
		Password:    s.opts.Password,
		Logger:      zap.NewNop(),
	}
	for {
		var err error
		if strings.HasPrefix(s.opts.Endpoints[0], "https://") {
			cfg.TLS, err = s.opts.tlsConfig()
		}
		var cli *clientv3.Client
		if err == nil {
			cli, err = clientv3.New(cfg)
		}
		if err == nil {
			s.mu.Lock()
			s.cli = cli
			s.mu.Unlock()
			return cli
		}
		s.fail(s.explain(cfg, err))
		select {
		case <-s.ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// explain makes a failed connection's error say why when it can: the
// client reports a TLS handshake that failed as a timeout, so the first
// endpoint is dialled once more with the same TLS settings to find the
// handshake's own error (an untrusted certificate, a missing client
// certificate).
func (s *session) explain(cfg clientv3.Config, err error) error {
	err = fmt.Errorf("connecting to %s: %w", strings.Join(cfg.Endpoints, ", "), err)
	if cfg.TLS == nil {
		return err
	}
	host := strings.TrimPrefix(cfg.Endpoints[0], "https://")
	d := &net.Dialer{Timeout: min(s.opts.DialTimeout, 2*time.Second)}
	c, terr := tls.DialWithDialer(d, "tcp", host, cfg.TLS)
	if terr != nil {
		return fmt.Errorf("%w (TLS with %s: %v)", err, host, terr)
	}
	c.Close()
	return err
}

// request returns a context for one request to etcd.
func (s *session) request() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.opts.DialTimeout)
}

// grant grants the session's lease.
func (s *session) grant(cli *clientv3.Client) error {
	ctx, cancel := s.request()
	defer cancel()
	sent := time.Now()
	rsp, err := cli.Grant(ctx, int64(s.opts.LeaseTTL/time.Second))
	if err != nil {
		return fmt.Errorf("granting a lease: %w", err)
	}
	s.mu.Lock()
	s.lease, s.ttl, s.in = rsp.ID, time.Duration(rsp.TTL)*time.Second, false
	s.renewed(sent)
	s.mu.Unlock()
	return nil
}

// renewed records a renewal of the lease requested at sent: the local
// deadline, and the fence time two thirds of the TTL after sent, which
// the session that holds the member key publishes to the node (Fence).
// s.mu is held.
func (s *session) renewed(sent time.Time) {
	s.sent = sent
	s.fence = sent.Add(time.Duration(float64(s.ttl) * (1 - clockRate)))
	if s.node.current() == s {
		s.node.fenceAt.Store(int64(sent.Add(2 * s.ttl / 3).Sub(s.node.base)))
	}
}

// checkFence logs when the fence time passes and when the gateway may
// act again.
func (s *session) checkFence() {
	if s.node.current() != s {
		return
	}
	fenced := s.node.Fence() != nil
	s.mu.Lock()
	changed := fenced != s.fenced && s.lease != 0 || fenced && !s.fenced
	s.fenced = fenced
	s.mu.Unlock()
	switch {
	case !changed:
	case fenced:
		s.node.log.Error("cluster: fenced: etcd has not renewed the lease for two thirds of its TTL; media access to logical units with reservations is refused (NOT READY, TARGET PORT IN UNAVAILABLE STATE) until it does",
			"lease_ttl", s.opts.LeaseTTL)
	default:
		s.node.log.Info("cluster: the lease is renewed again; media access resumes")
	}
}

// isSynced reports whether the node follows this session's watch.
func (s *session) isSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// client returns the session's etcd client, nil before it connected.
func (s *session) client() *clientv3.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cli
}

// leave deletes this gateway's acknowledgement, as a clean stop does: a
// gateway that serves nothing is none that the others must wait for.
func (s *session) leave() {
	cli := s.client()
	if cli == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), revokeTimeout)
	defer cancel()
	cli.Delete(ctx, s.opts.key(dirAcks, s.opts.Gateway))
}

// errNameInUse refuses a member key that another live gateway holds.
var errNameInUse = errors.New("gateway name in use")

// join puts the member key under the session's lease: it creates the key,
// or replaces it when it is held by this session's lease or by the lease
// of the session it replaces; a key under any other lease belongs to
// another gateway (or to this one before a crash, until its lease expires).
func (s *session) join(cli *clientv3.Client) error {
	key := s.opts.memberKey()
	val, err := json.Marshal(s.node.member())
	if err != nil {
		return err
	}
	lease := s.leaseID()
	// Joining clears a revocation marker another gateway left: this
	// gateway knows its lease went.
	unrevoke := clientv3.OpDelete(s.opts.key(dirRevoked, s.opts.Gateway))
	ctx, cancel := s.request()
	defer cancel()
	rsp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease)), unrevoke).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("joining: %w", err)
	}
	if !rsp.Succeeded {
		kvs := rsp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return errors.New("joining: the member key vanished; trying again")
		}
		holder := clientv3.LeaseID(kvs[0].Lease)
		if holder != lease && (s.replaces == nil || holder != s.replaces.leaseID()) {
			var m Member
			_ = json.Unmarshal(kvs[0].Value, &m)
			return fmt.Errorf("%w: %s is held by pid %d on %s under lease %s; joining when that lease ends",
				errNameInUse, key, m.PID, m.Hostname, leaseText(holder))
		}
		rsp, err = cli.Txn(ctx).
			If(clientv3.Compare(clientv3.LeaseValue(key), "=", holder)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease)), unrevoke).Commit()
		if err != nil {
			return fmt.Errorf("joining: %w", err)
		}
		if !rsp.Succeeded {
			return errors.New("joining: the member key changed meanwhile; trying again")
		}
	}
	s.mu.Lock()
	s.in = true
	s.joinRev = rsp.Header.Revision
	first := !s.joinedOnce
	s.joinedOnce = true
	s.mu.Unlock()
	s.ok()
	if first {
		close(s.joined)
		s.node.log.Info("cluster: joined", "gateway", s.opts.Gateway, "etcd", s.opts.Endpoints, "lease", leaseText(lease), "lease_ttl", s.opts.LeaseTTL)
	}
	return nil
}

// keepAlive renews the lease once.
func (s *session) keepAlive(cli *clientv3.Client) error {
	ctx, cancel := context.WithTimeout(s.ctx, min(s.opts.LeaseTTL/3, s.opts.DialTimeout))
	defer cancel()
	sent := time.Now()
	rsp, err := cli.KeepAliveOnce(ctx, s.leaseID())
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return err
	case err != nil:
		return fmt.Errorf("keep-alive: %w", err)
	}
	s.mu.Lock()
	s.ttl = time.Duration(rsp.TTL) * time.Second
	s.renewed(sent)
	s.mu.Unlock()
	s.ok()
	return nil
}

// renewalDue reports whether the lease's last renewal is older than
// interval.
func (s *session) renewalDue(interval time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.sent.IsZero() && time.Since(s.sent) > interval
}

// leaseGone handles a lease etcd no longer has (it expired, or another
// gateway revoked it): the session grants another and joins again, and
// the node's copy of the shared state may be stale until it is read
// again.
func (s *session) leaseGone() {
	s.mu.Lock()
	old := s.lease
	s.lease, s.in = 0, false
	s.mu.Unlock()
	s.node.log.Warn("cluster: the lease expired in etcd; joining again with a new one", "lease", leaseText(old))
	if s.node.current() == s {
		s.unsync("the lease expired")
	}
}

// ok records that etcd answered.
func (s *session) ok() {
	s.mu.Lock()
	prev := s.state
	if prev != Connected {
		s.state, s.since, s.err = Connected, time.Now(), ""
	}
	s.mu.Unlock()
	if prev == Unreachable {
		s.node.log.Info("cluster: etcd reachable again", "gateway", s.opts.Gateway, "etcd", s.opts.Endpoints)
	}
}

// fail records an error, logging it when the state or the error changes.
func (s *session) fail(err error) {
	s.mu.Lock()
	next := Unreachable
	switch {
	case errors.Is(err, errNameInUse):
		next = NameInUse
	case s.lease == 0:
		next = Connecting
	}
	changed := next != s.state || err.Error() != s.err
	if next != s.state {
		s.state, s.since = next, time.Now()
	}
	s.err = err.Error()
	fence := s.fence
	s.mu.Unlock()
	if !changed || s.ctx.Err() != nil {
		return
	}
	switch next {
	case NameInUse:
		s.node.log.Error("cluster: cannot join", "err", err)
	default:
		args := []any{"state", string(next), "etcd", s.opts.Endpoints, "err", err}
		if !fence.IsZero() {
			args = append(args, "lease_deadline_in", time.Until(fence).Round(time.Millisecond).String())
		}
		s.node.log.Warn("cluster: etcd unreachable; persistent reservation changes are refused, logical units with reservations are fenced at two thirds of the lease TTL, the others serve on", args...)
	}
}

// republish asks run to put the member value again.
func (s *session) republish() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

func (s *session) leaseID() clientv3.LeaseID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease
}

func (s *session) holdsKey() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.in
}

// close ends the session; with revoke it revokes the lease first, so that
// the keys under it go at once.
func (s *session) close(revoke bool) {
	s.closer.Do(func() {
		s.cancel()
		<-s.done
		s.mu.Lock()
		if s.stopWatch != nil {
			s.stopWatch()
		}
		s.mu.Unlock()
		s.mu.Lock()
		cli, lease := s.cli, s.lease
		s.mu.Unlock()
		if cli == nil {
			return
		}
		if revoke && lease != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), revokeTimeout)
			if _, err := cli.Revoke(ctx, lease); err != nil {
				s.node.log.Warn("cluster: revoking the lease", "lease", leaseText(lease), "err", err)
			}
			cancel()
		}
		cli.Close()
	})
}

// leaseText prints a lease ID as etcdctl does.
func leaseText(id clientv3.LeaseID) string { return fmt.Sprintf("%016x", int64(id)) }
