package cluster

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/etcdtest"
	"github.com/scstd/scstd/scsi"
)

// twoGateways joins gw1 and gw2 (ids 1 and 2) and waits until both
// have their ports active and see each other active.
func twoGateways(t *testing.T) (*Node, *Node) {
	t.Helper()
	srv := etcdtest.Start(t, etcdtest.Options{})
	var nodes [2]*Node
	for i, gw := range []string{"gw1", "gw2"} {
		o := options(srv, gw)
		o.IDs = map[string]uint16{"gw1": 1, "gw2": 2}
		nodes[i], _ = join(t, o, "h")
	}
	for _, n := range nodes {
		waitFor(t, 15*time.Second, n.opts().Gateway+" active beside the other", func() bool {
			st := n.Status()
			if st.PortState != stateActive || len(st.Members) != 2 {
				return false
			}
			for _, m := range st.Members {
				if m.State != stateActive {
					return false
				}
			}
			return true
		})
	}
	return nodes[0], nodes[1]
}

// TestSharedReservations: a reservation state committed through one
// gateway is settled once the other has it; a commit on a stale
// revision is refused with the current state; each gateway knows its own
// ports; an absent gateway's states follow its membership.
func TestSharedReservations(t *testing.T) {
	n1, n2 := twoGateways(t)
	l1, l2 := n1.luFor("60a1"), n2.luFor("60a1")
	st := &scsi.SharedPRState{PRState: scsi.PRState{Generation: 1, Registrations: []scsi.PRRegistration{
		{InitiatorPort: "iqn.a,i,0x01", TargetPort: "iqn.t,t,0x0001", Key: 0xfedcba9876543210, RelTgtPortID: 0x101}}}}
	rev, err := l1.Commit(0, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := l1.Settle(rev); err != nil {
		t.Fatal(err)
	}
	// Settled: gw2 has it.
	l2.mu.Lock()
	got, gotRev, held := l2.state, l2.rev, l2.held
	l2.mu.Unlock()
	if gotRev != rev || got == nil || len(got.Registrations) != 1 || got.Registrations[0].Key != 0xfedcba9876543210 || held != rev {
		t.Fatalf("gw2 after the settle: revision %d (want %d), held since %d, state %+v", gotRev, rev, held, got)
	}
	// A commit on the revision before is stale, with the current state.
	_, err = l2.Commit(0, &scsi.SharedPRState{})
	var stale *scsi.StaleError
	if !errors.As(err, &stale) || stale.Rev != rev || len(stale.State.Registrations) != 1 {
		t.Fatalf("commit on a stale revision: %v", err)
	}
	// The registration removed through gw2: the unit has no state.
	rev2, err := l2.Commit(rev, &scsi.SharedPRState{PRState: scsi.PRState{Generation: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Settle(rev2); err != nil {
		t.Fatal(err)
	}
	l1.mu.Lock()
	held = l1.held
	l1.mu.Unlock()
	if held != 0 {
		t.Errorf("gw1 still sees reservation state since %d", held)
	}
	// Changes through either gateway in turn each settle at once: every
	// gateway acknowledges every change it applied.
	cur := rev2
	for i := range 20 {
		l := []*lu{l1, l2}[i%2]
		start := time.Now()
		r, err := l.Commit(cur, &scsi.SharedPRState{PRState: scsi.PRState{Generation: uint32(3 + i)}})
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if err := l.Settle(r); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if took := time.Since(start); took > testTTL/2 {
			t.Errorf("change %d took %v to settle", i, took)
		}
		cur = r
	}
	if !l1.Local("iqn.t,t,0x0001") || l1.Local("iqn.t,t,0x0002") || !l2.Local("iqn.t,t,0x0002") {
		t.Error("Local does not tell the gateways' ports apart")
	}
	if l1.Fence() != nil || l2.Fence() != nil {
		t.Error("a connected gateway is fenced")
	}
	// gw2 leaves: gw1 reports its ports unavailable.
	n2.Close()
	waitFor(t, 5*time.Second, "gw1 reports gw2 unavailable", func() bool {
		return n1.gatewayStates()["gw2"] == scsi.Unavailable
	})
}

// TestSharedAtomicToken: COMPARE AND WRITE commands through two gateways
// never run at the same time: the token moves between them on request.
// (Within a gateway the logical unit's own lock orders them: scsi.)
func TestSharedAtomicToken(t *testing.T) {
	n1, n2 := twoGateways(t)
	var inside [2]atomic.Int32
	var overlaps, done atomic.Int32
	var wg sync.WaitGroup
	for i, n := range []*Node{n1, n2, n1, n2} {
		self, other := &inside[i%2], &inside[1-i%2]
		l := n.luFor("60b2")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 15 {
				release, err := l.Atomic()
				if err != nil {
					t.Errorf("%s: %v", n.opts().Gateway, err)
					return
				}
				self.Add(1)
				if other.Load() != 0 {
					overlaps.Add(1)
				}
				time.Sleep(time.Millisecond)
				if other.Load() != 0 {
					overlaps.Add(1)
				}
				self.Add(-1)
				done.Add(1)
				release()
			}
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 || done.Load() != 60 {
		t.Errorf("%d overlaps with the other gateway's commands in %d commands", overlaps.Load(), done.Load())
	}
}
