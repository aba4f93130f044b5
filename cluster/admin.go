package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Administrative changes, made through any gateway (scstd cluster
// drain, undrain, evict):
//
//	drain gw     P/alua/gw = "standby": every gateway reports gw's ports
//	             standby and tells its sessions (2Ah/06h); gw, once they
//	             acknowledged, moves its ports to standby, so that
//	             multipath initiators have moved to the other paths
//	undrain gw   deletes it: gw's ports take their configured states
//	evict gw     for a gateway that is gone for good: deletes its
//	             acknowledgement, so that reservation changes no longer
//	             wait for it; refused while it is a member

// ErrNotConnected refuses an administrative change while this gateway
// does not follow the shared state.
var ErrNotConnected = errors.New("this gateway is not connected to etcd")

// Drain asks gateway gw to move its ports to standby, and returns once
// gw reports standby (or within timeout, with an error saying where it
// stands).
func (n *Node) Drain(ctx context.Context, gw string, timeout time.Duration) error {
	return n.setAdmin(ctx, gw, true, timeout)
}

// Undrain lets gateway gw's ports take their configured states again,
// and returns once gw reports active.
func (n *Node) Undrain(ctx context.Context, gw string, timeout time.Duration) error {
	return n.setAdmin(ctx, gw, false, timeout)
}

func (n *Node) setAdmin(ctx context.Context, gw string, drain bool, timeout time.Duration) error {
	o := n.opts()
	if _, ok := o.IDs[gw]; !ok {
		return fmt.Errorf("gateway %q: %w", gw, errNotMember)
	}
	s := n.current()
	if s == nil || s.client() == nil || !n.isSynced() {
		return ErrNotConnected
	}
	key := o.key(dirALUA, gw)
	var err error
	if drain {
		_, err = s.client().Put(ctx, key, stateStandby)
	} else {
		_, err = s.client().Delete(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	want := stateActive
	if drain {
		want = stateStandby
	}
	var have string
	present := false
	if n.waitUntil(timeout, func() bool {
		var m memberEntry
		m, present = n.sh.members[gw]
		have = m.State
		return present && m.State == want
	}) {
		return nil
	}
	if !present {
		return fmt.Errorf("gateway %q is not running: it takes the new state when it joins", gw)
	}
	return fmt.Errorf("gateway %q reports %q, not %q, after %v", gw, have, want, timeout)
}

// Evict forgets gateway gw, which must not be a member: reservation
// changes stop waiting for it. Run it only for a gateway that is down
// for good (or whose storage access is cut): one that comes back joins
// and loads the state anew.
func (n *Node) Evict(ctx context.Context, gw string) error {
	o := n.opts()
	s := n.current()
	if s == nil || s.client() == nil {
		return ErrNotConnected
	}
	rsp, err := s.client().Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(o.key(dirGateways, gw)), "=", 0)).
		Then(clientv3.OpDelete(o.key(dirAcks, gw)), clientv3.OpDelete(o.key(dirRevoked, gw))).Commit()
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	if !rsp.Succeeded {
		return fmt.Errorf("gateway %q is a member (it runs): stop it first", gw)
	}
	n.log.Warn("cluster: gateway evicted: reservation changes no longer wait for it", "gateway", gw)
	return nil
}
