package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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

// TestUnreadableReservationValue: a reservation value that does not
// decode (here a reservation type of a newer scstd) leaves the logical
// unit's state unknown: its device refuses media access as with a stale
// state, reservation changes are refused, and the gateway does not
// acknowledge the value's revision, whether it comes by the watch or in
// the load at a join; a readable value brings the state back and the
// acknowledgement on.
func TestUnreadableReservationValue(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	o1 := options(srv, "gw1")
	o1.IDs = map[string]uint16{"gw1": 1, "gw2": 2}
	n1, log1 := join(t, o1, "h")
	waitFor(t, 15*time.Second, "gw1 active", func() bool { return n1.Status().PortState == stateActive })

	naaA, naaB := []byte{0x60, 0xa1}, []byte{0x60, 0xb2}
	keyA, keyB := o1.luKey(hex.EncodeToString(naaA), "pr"), o1.luKey(hex.EncodeToString(naaB), "pr")
	devA := scsi.NewDevice(scsi.DeviceConfig{Name: "a"}, nil)
	devB := scsi.NewDevice(scsi.DeviceConfig{Name: "b"}, nil)
	n1.Attach(naaA, "a", devA)
	n1.Attach(naaB, "b", devB)
	synced := func(d *scsi.Device) bool { _, ok := d.SharedPRRevision(); return ok }
	waitFor(t, 5*time.Second, "both devices load their state", func() bool { return synced(devA) && synced(devB) })

	put := func(key, val string) int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rsp, err := cli.Put(ctx, key, val)
		if err != nil {
			t.Fatal(err)
		}
		return rsp.Header.Revision
	}
	ack := func(gw string) int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rsp, err := cli.Get(ctx, o1.key(dirAcks, gw))
		if err != nil {
			t.Fatal(err)
		}
		if len(rsp.Kvs) == 0 {
			return 0
		}
		r, _ := strconv.ParseInt(string(rsp.Kvs[0].Value), 10, 64)
		return r
	}
	// noAck asserts for a second that gw does not acknowledge rev.
	noAck := func(gw string, rev int64) {
		t.Helper()
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if a := ack(gw); a >= rev {
				t.Fatalf("%s acknowledged %d, past the unreadable value at %d", gw, a, rev)
			}
		}
	}
	valid := func(gen uint32) string {
		b, err := json.Marshal(prValue{Writer: "gw9", Seq: uint64(gen), State: &scsi.SharedPRState{PRState: scsi.PRState{Generation: gen}}})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	const bad = `{"writer":"gw9","seq":1,"state":{"generation":3,"registrations":[],` +
		`"reservation":{"type":"write-exclusive-some-future-type","initiator_port":"iqn.i,i,0x1","target_port":"iqn.t,t,0x0001"}}}`
	if _, err := decodePR([]byte(bad)); err == nil {
		t.Fatal("the test's unreadable value decodes")
	}

	// Live: the watch brings the unreadable value.
	badRev := put(keyA, bad)
	waitFor(t, 5*time.Second, "gw1 fences the unit with the unreadable value", func() bool { return !synced(devA) })
	_, err = n1.luFor(hex.EncodeToString(naaA)).Commit(badRev, &scsi.SharedPRState{PRState: scsi.PRState{Generation: 4}})
	if err != errUnavailable {
		t.Fatalf("a reservation change on the unreadable value: %v, want NOT READY", err)
	}
	if s := log1.String(); !strings.Contains(s, keyA) || !strings.Contains(s, "cannot be read") {
		t.Errorf("the log does not name the unreadable key %s:\n%s", keyA, s)
	}
	// A later change of another unit applies, and still nothing at or
	// past the unreadable value is acknowledged.
	revB := put(keyB, valid(1))
	waitFor(t, 5*time.Second, "gw1 applies the other unit's change", func() bool {
		r, ok := devB.SharedPRRevision()
		return ok && r == revB
	})
	noAck("gw1", badRev)
	if synced(devA) {
		t.Fatal("the unit with the unreadable value is no longer fenced")
	}
	// A readable value recovers.
	goodRev := put(keyA, valid(5))
	waitFor(t, 5*time.Second, "gw1 loads the readable value and acknowledges it", func() bool {
		r, ok := devA.SharedPRRevision()
		return ok && r == goodRev && ack("gw1") >= goodRev
	})

	// Load: gw2 joins while the value is unreadable.
	badRev = put(keyA, bad)
	waitFor(t, 5*time.Second, "gw1 fences the unit again", func() bool { return !synced(devA) })
	o2 := options(srv, "gw2")
	o2.IDs = o1.IDs
	n2, _ := join(t, o2, "h")
	devA2 := scsi.NewDevice(scsi.DeviceConfig{Name: "a"}, nil)
	n2.Attach(naaA, "a", devA2)
	l2 := n2.luFor(hex.EncodeToString(naaA))
	waitFor(t, 15*time.Second, "gw2 loads the shared state", func() bool {
		l2.mu.Lock()
		defer l2.mu.Unlock()
		return n2.isSynced() && l2.rev == badRev
	})
	noAck("gw2", badRev)
	if synced(devA2) {
		t.Fatal("gw2 serves the unit with the unreadable value")
	}
	goodRev = put(keyA, valid(6))
	for _, g := range []struct {
		gw  string
		dev *scsi.Device
	}{{"gw1", devA}, {"gw2", devA2}} {
		waitFor(t, 5*time.Second, g.gw+" loads the readable value and acknowledges it", func() bool {
			r, ok := g.dev.SharedPRRevision()
			return ok && r == goodRev && ack(g.gw) >= goodRev
		})
	}
}
