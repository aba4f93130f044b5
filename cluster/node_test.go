package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/scstd/scstd/internal/etcdtest"
)

// testTTL is the lease TTL of the tests: etcd's minimum with its
// default timing is 1.5 s, rounded up.
const testTTL = 2 * time.Second

func options(srv *etcdtest.Server, gateway string) Options {
	return Options{Endpoints: []string{srv.Endpoint()}, Gateway: gateway, Prefix: "/scstd/test/",
		LeaseTTL: testTTL, DialTimeout: 2 * time.Second}
}

// logBuffer collects a node's log for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func join(t *testing.T, opts Options, hash string) (*Node, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	n := Join(opts, Member{Hostname: "host-" + opts.Gateway, PID: 1, Version: "test", Started: time.Now(), ConfigHash: hash},
		slog.New(slog.NewTextHandler(lb, nil)))
	t.Cleanup(n.Close)
	return n, lb
}

// waitFor polls cond until it holds or timeout passes, and returns how
// long that took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func names(st Status) []string {
	var out []string
	for _, m := range st.Members {
		out = append(out, m.Gateway)
	}
	return out
}

// TestMembersAndDrift: three gateways see each other; the one that runs
// another configuration shows as drift; one that leaves cleanly leaves
// the others' lists at once.
func TestMembersAndDrift(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	n1, _ := join(t, options(srv, "gw1"), "aaaa")
	n2, _ := join(t, options(srv, "gw2"), "aaaa")
	n3, _ := join(t, options(srv, "gw3"), "bbbb")
	all := []string{"gw1", "gw2", "gw3"}
	for _, n := range []*Node{n1, n2, n3} {
		waitFor(t, 10*time.Second, "every gateway sees three members", func() bool {
			return slices.Equal(names(n.Status()), all)
		})
	}
	st := n1.Status()
	if st.State != Connected || st.Lease == "" || st.LeaseTTL != "2s" || !slices.Equal(st.Drift, []string{"gw3"}) {
		t.Errorf("gw1's status: %+v", st)
	}
	for _, m := range st.Members {
		if m.Self != (m.Gateway == "gw1") || m.ConfigMatches != (m.Gateway != "gw3") || m.Hostname != "host-"+m.Gateway {
			t.Errorf("member %+v", m)
		}
	}
	// gw3 applies the common configuration: the drift goes.
	n3.SetConfigHash("aaaa")
	waitFor(t, 5*time.Second, "gw3's new hash reaches gw1", func() bool { return len(n1.Status().Drift) == 0 })

	n2.Close()
	took := waitFor(t, 5*time.Second, "gw2 leaves gw1's list", func() bool {
		return slices.Equal(names(n1.Status()), []string{"gw1", "gw3"})
	})
	if took > time.Second {
		t.Errorf("a clean leave took %v to show; the lease should be revoked at once", took)
	}
}

// TestCrashedGatewayExpires: a gateway that stops without revoking its
// lease (a crash) leaves the others' lists within the lease TTL plus a
// second; its name is free again after that.
func TestCrashedGatewayExpires(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	n1, _ := join(t, options(srv, "gw1"), "h")
	n2, _ := join(t, options(srv, "gw2"), "h")
	waitFor(t, 10*time.Second, "gw1 sees gw2", func() bool { return len(n1.Status().Members) == 2 })

	// A second daemon under gw2's name is refused while gw2 lives.
	dup, dupLog := join(t, options(srv, "gw2"), "h")
	waitFor(t, 10*time.Second, "the duplicate is refused", func() bool { return dup.Status().State == NameInUse })
	if !strings.Contains(dupLog.String(), "cannot join") {
		t.Errorf("the refusal is not logged:\n%s", dupLog)
	}

	crash(n2)
	took := waitFor(t, testTTL+3*time.Second, "the crashed gateway leaves gw1's list", func() bool {
		st := n1.Status()
		return len(st.Members) == 2 && st.Members[1].PID == 1 && st.Members[1].Hostname == "host-gw2" &&
			dup.Status().State == Connected || len(st.Members) == 1
	})
	t.Logf("gw2 left gw1's list (or was replaced by the duplicate) %v after the crash", took)
	if took > testTTL+time.Second {
		t.Errorf("a crashed gateway left after %v; expected within the TTL (%v) and a second", took, testTTL)
	}
	// Its name is free: the duplicate, which retries, joins now.
	waitFor(t, 5*time.Second, "the second gw2 joins once the first one's lease expired", func() bool {
		return dup.Status().State == Connected
	})
}

// crash stops a node's sessions without revoking the lease, as a SIGKILL
// would.
func crash(n *Node) {
	n.mu.Lock()
	n.closed = true
	cur := n.cur
	n.mu.Unlock()
	cur.close(false)
}

// TestEtcdOutage: with etcd stopped the gateway says so (and, past the
// deadline, what phase 2 would do); with etcd back it is connected again
// under the same lease, which a restarted etcd keeps.
func TestEtcdOutage(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	n, lb := join(t, options(srv, "gw1"), "h")
	waitFor(t, 10*time.Second, "joined", func() bool { return n.Status().State == Connected })
	lease := n.Status().Lease

	srv.Stop()
	took := waitFor(t, 5*time.Second, "unreachable", func() bool { return n.Status().State == Unreachable })
	t.Logf("unreachable reported %v after etcd stopped", took)
	// The fence comes at two thirds of the TTL, the local deadline at
	// the TTL.
	waitFor(t, 5*time.Second, "the gateway fences itself", func() bool { return n.Status().Fence != "" })
	waitFor(t, 5*time.Second, "the deadline passes", func() bool { return strings.HasPrefix(n.Status().LeaseDeadline, "-") })
	st := n.Status()
	if st.MembersAsOf == nil || !strings.HasPrefix(st.LeaseDeadline, "-") || st.Error == "" {
		t.Errorf("status while etcd is down: %+v", st)
	}
	if !strings.Contains(lb.String(), "etcd unreachable") {
		t.Errorf("the outage is not logged:\n%s", lb)
	}

	srv.Start()
	took = waitFor(t, 15*time.Second, "connected again", func() bool { return n.Status().State == Connected })
	t.Logf("connected again %v after etcd restarted", took)
	st = n.Status()
	if st.Lease != lease || st.Fence != "" || len(st.Members) != 1 {
		t.Errorf("after the outage: %+v (lease before %s)", st, lease)
	}
	if !strings.Contains(lb.String(), "etcd reachable again") {
		t.Errorf("the return is not logged:\n%s", lb)
	}
}

// TestLeaseLostRejoins: a gateway whose lease is gone (revoked here, as
// etcd does when it expires) joins again under a new lease.
func TestLeaseLostRejoins(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	n, lb := join(t, options(srv, "gw1"), "h")
	waitFor(t, 10*time.Second, "joined", func() bool { return n.Status().State == Connected })
	lease := n.cur.leaseID()
	cli := client(t, srv)
	if _, err := cli.Revoke(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "joined again under a new lease", func() bool {
		st := n.Status()
		return st.State == Connected && st.Lease != leaseText(lease) && len(st.Members) == 1
	})
	if !strings.Contains(lb.String(), "joining again") {
		t.Errorf("the rejoin is not logged:\n%s", lb)
	}
}

// TestReconnectMakeBeforeBreak: new settings move the member key to a new
// lease before the old one is revoked: a watcher never sees the key go.
func TestReconnectMakeBeforeBreak(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	opts := options(srv, "gw1")
	n, _ := join(t, opts, "h")
	waitFor(t, 10*time.Second, "joined", func() bool { return n.Status().State == Connected })
	old := n.Status().Lease
	cli := client(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := cli.Watch(ctx, opts.memberKey())
	time.Sleep(100 * time.Millisecond)

	opts.LeaseTTL = 3 * time.Second
	n.Reconnect(opts)
	waitFor(t, 10*time.Second, "reconnected", func() bool {
		st := n.Status()
		return st.Reconnect == nil && st.Lease != old && st.LeaseTTL == "3s" && st.State == Connected
	})
	time.Sleep(300 * time.Millisecond)
	cancel()
	for wr := range events {
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				t.Errorf("the member key was deleted during the reconnection (revision %d)", ev.Kv.ModRevision)
			}
		}
	}
	rsp, err := cli.Get(context.Background(), opts.memberKey())
	if err != nil || len(rsp.Kvs) != 1 || leaseText(clientv3.LeaseID(rsp.Kvs[0].Lease)) != n.Status().Lease {
		t.Errorf("member key after the reconnection: %v %v", rsp, err)
	}

	// Settings that cannot work leave the running session serving.
	bad := opts
	bad.Endpoints = []string{"http://127.0.0.1:1"}
	n.Reconnect(bad)
	waitFor(t, 10*time.Second, "the failing reconnection shows", func() bool {
		r := n.Status().Reconnect
		return r != nil && r.Error != ""
	})
	if st := n.Status(); st.State != Connected || st.Etcd[0] != srv.Endpoint() {
		t.Errorf("the running session stopped serving: %+v", st)
	}
}

// TestTLSAndAuth: over TLS with a client certificate and etcd's user and
// password authentication (root), against Debian's etcd 3.4: the
// client library's wire compatibility, and the errors a gateway shows
// for a wrong password or an untrusted server.
func TestTLSAndAuth(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{TLS: true})
	tlsCfg, err := srv.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, TLS: tlsCfg, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-password-1"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	admin.Close()

	opts := options(srv, "gw1")
	opts.CAFile, opts.CertFile, opts.KeyFile = srv.CAFile, srv.CertFile, srv.KeyFile
	opts.Username, opts.Password = "root", "root-password-1"
	n, _ := join(t, opts, "h")
	waitFor(t, 15*time.Second, "joined over TLS with a password", func() bool {
		st := n.Status()
		return st.State == Connected && len(st.Members) == 1
	})

	wrong := opts
	wrong.Gateway, wrong.Password = "gw2", "wrong-password"
	nw, _ := join(t, wrong, "h")
	waitFor(t, 15*time.Second, "a wrong password is reported", func() bool {
		return strings.Contains(nw.Status().Error, "authentication failed")
	})

	untrusted := opts
	untrusted.Gateway, untrusted.CAFile = "gw3", ""
	nu, _ := join(t, untrusted, "h")
	waitFor(t, 15*time.Second, "an untrusted server certificate is reported", func() bool {
		st := nu.Status()
		return st.State != Connected && strings.Contains(st.Error, "certificate signed by unknown authority")
	})
	t.Logf("wrong password: %s; untrusted server: %s", nw.Status().Error, nu.Status().Error)
}

func client(t *testing.T, srv *etcdtest.Server) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// String prints a status in failures.
func (s Status) String() string {
	type plain Status
	return fmt.Sprintf("%+v", plain(s))
}
