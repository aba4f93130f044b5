package cluster

import (
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The COMPARE AND WRITE token of a logical unit (docs/scale-out.md):
// COMPARE AND WRITE and ORWRITE run on the gateway that holds the token
// P/lus/<naa>/caw, a key under the holder's lease. The holder keeps it
// while nobody else asks; a gateway that needs it puts
// P/lus/<naa>/caw-want/<gw> (under its lease) and waits for the key to
// go; the holder, seeing the want, lets the commands already waiting for
// the token run, finishes those in flight, and deletes the key. A token
// whose holder dies goes with its lease, after the holder fenced
// itself; a fenced gateway admits no command under its token.
//
// With the token in place a command costs a lock and a counter; a move
// costs two transactions (delete, create) and two watch deliveries.

// cawWait bounds how long a command waits for the token before it
// answers NOT READY (04h/0Ah) for the initiator to retry.
const cawWait = 2 * time.Second

// cawRetry is how often a gateway waiting for the token tries to take
// it even though the watch has not shown it free.
const cawRetry = 250 * time.Millisecond

// token is a logical unit's atomic token as this gateway sees it,
// guarded by lu.mu.
type token struct {
	// held: this gateway holds the token, created at createRev.
	held      bool
	createRev int64
	// inflight counts the commands running under it; waiting the
	// commands waiting for it; admit how many of those waiting when it
	// came may still take it although another gateway asks for it.
	inflight, waiting, admit int
	// acquiring: a goroutine is getting the token.
	acquiring bool
	// holder is the holder the watch last showed ("" none), as of
	// revision seen; wants the other gateways that asked for it.
	holder string
	seen   int64
	wants  map[string]bool
	// changed is closed and replaced at every change.
	changed chan struct{}
}

// broadcast wakes the waiters; lu.mu must be held.
func (t *token) broadcast() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// yielding reports whether the token is to be handed over: another
// gateway asks, and no command that was waiting when it came is left to
// take it.
func (t *token) yielding() bool { return len(t.wants) > 0 && t.admit == 0 }

// Atomic takes the token for one command (scsi.SharedPR): at once when
// this gateway holds it and does not hand it over, else once it comes,
// within cawWait; the returned function releases it.
func (l *lu) Atomic() (func(), error) {
	n := l.n
	deadline := time.Now().Add(cawWait)
	l.mu.Lock()
	t := &l.tok
	t.waiting++
	for {
		if e := n.Fence(); e != nil {
			l.leaveWaiting()
			l.mu.Unlock()
			return nil, e
		}
		if t.held && (t.admit > 0 || !t.yielding()) {
			if t.admit > 0 {
				t.admit--
			}
			// In flight before it stops waiting, so that the token is
			// not handed over under it.
			t.inflight++
			l.leaveWaiting()
			l.mu.Unlock()
			return l.release, nil
		}
		if !t.held && !t.acquiring {
			t.acquiring = true
			go l.acquire()
		}
		ch := t.changed
		l.mu.Unlock()
		left := time.Until(deadline)
		if left > 0 {
			timer := time.NewTimer(left)
			select {
			case <-ch:
			case <-timer.C:
			}
			timer.Stop()
		}
		l.mu.Lock()
		if time.Now().After(deadline) {
			l.leaveWaiting()
			name := l.name
			l.mu.Unlock()
			n.log.Warn("cluster: COMPARE AND WRITE waited too long for the logical unit's token (NOT READY, the initiator retries)",
				"device", name, "naa", l.naa, "holder", t.holder)
			return nil, errUnavailable
		}
	}
}

// leaveWaiting takes a command off the waiters; lu.mu must be held.
func (l *lu) leaveWaiting() {
	t := &l.tok
	t.waiting--
	t.admit = min(t.admit, t.waiting)
	l.maybeHandOver()
}

// releaseToken ends a command under the token.
func (l *lu) releaseToken() {
	l.mu.Lock()
	l.tok.inflight--
	l.maybeHandOver()
	l.mu.Unlock()
}

// maybeHandOver hands the token over when it is asked for and nothing
// runs or is admitted under it; lu.mu must be held.
func (l *lu) maybeHandOver() {
	t := &l.tok
	if t.held && t.inflight == 0 && t.yielding() {
		t.held = false
		go l.handOver(t.createRev)
	}
}

// handOver deletes this gateway's token key (created at rev).
func (l *lu) handOver(rev int64) {
	s := l.n.current()
	if s == nil || s.client() == nil {
		return // the key goes with the lease
	}
	key := l.n.opts().luKey(l.naa, "caw")
	ctx, cancel := s.request()
	defer cancel()
	if _, err := s.client().Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).Commit(); err != nil {
		l.n.log.Warn("cluster: handing over a COMPARE AND WRITE token", "naa", l.naa, "err", err)
	}
}

// acquire gets the token for the commands waiting: it creates the key
// under this gateway's lease when there is none, else asks for it and
// waits for the holder to let it go, while commands still wait.
func (l *lu) acquire() {
	n := l.n
	o := n.opts()
	key, want := o.luKey(l.naa, "caw"), o.wantKey(l.naa, o.Gateway)
	defer func() {
		l.mu.Lock()
		l.tok.acquiring = false
		l.tok.broadcast()
		l.mu.Unlock()
	}()
	asked := false
	for {
		s := n.current()
		if s == nil || s.client() == nil || s.leaseID() == 0 || !n.isSynced() {
			return
		}
		cli, lease := s.client(), s.leaseID()
		ctx, cancel := s.request()
		rsp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, o.Gateway, clientv3.WithLease(lease)), clientv3.OpDelete(want)).
			Else(clientv3.OpGet(key)).Commit()
		cancel()
		if err != nil {
			return
		}
		if rsp.Succeeded {
			l.mu.Lock()
			t := &l.tok
			t.held, t.createRev, t.holder, t.admit = true, rsp.Header.Revision, o.Gateway, t.waiting
			t.broadcast()
			l.mu.Unlock()
			return
		}
		l.mu.Lock()
		// The holder read here, unless the watch showed a later change
		// already (the key deleted since).
		if kvs := rsp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 && kvs[0].ModRevision > l.tok.seen {
			l.tok.holder, l.tok.seen = string(kvs[0].Value), kvs[0].ModRevision
		}
		l.mu.Unlock()
		if !asked {
			ctx, cancel := s.request()
			_, err := cli.Put(ctx, want, "", clientv3.WithLease(lease))
			cancel()
			if err != nil {
				return
			}
			asked = true
		}
		// Wait for the holder to let it go, while commands wait; try
		// again now and then in any case.
		retry := time.After(cawRetry)
	wait:
		for {
			l.mu.Lock()
			free, nobody, ch := l.tok.holder == "", l.tok.waiting == 0, l.tok.changed
			l.mu.Unlock()
			if nobody {
				ctx, cancel := s.request()
				cli.Delete(ctx, want)
				cancel()
				return
			}
			if free {
				break
			}
			select {
			case <-ch:
			case <-retry:
				break wait
			case <-n.done:
				return
			}
		}
	}
}

// tokenSeen records the token's holder as the watch shows it ("": the
// key went, at rev). sh.mu is held.
func (l *lu) tokenSeen(holder string, rev int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := &l.tok
	t.holder = holder
	t.seen = max(t.seen, rev)
	if holder == "" && t.held && rev >= t.createRev {
		// Gone under us: the lease expired.
		t.held = false
	}
	t.broadcast()
}

// wanted records that another gateway asks for the token, or no longer
// does. sh.mu is held.
func (l *lu) wanted(gw string, on bool) {
	if gw == l.n.opts().Gateway {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if on {
		l.tok.wants[gw] = true
	} else {
		delete(l.tok.wants, gw)
	}
	l.maybeHandOver()
	l.tok.broadcast()
}

// tokenLost forgets the token when the lease that held it may be gone.
// sh.mu is held.
func (l *lu) tokenLost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := &l.tok
	t.held, t.holder, t.wants = false, "", map[string]bool{}
	t.broadcast()
}
