package admin

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// recorder is a Handler that records what the API asked of it.
type recorder struct {
	force     bool
	planPath  string
	closed    CloseRequest
	closeErr  error
	reloadOut ReloadReply
}

func (r *recorder) Reload(_ context.Context, force bool) ReloadReply {
	r.force = force
	return r.reloadOut
}
func (r *recorder) LastReload() ReloadReply { return r.reloadOut }
func (r *recorder) Plan(_ context.Context, path string) PlanReply {
	r.planPath = path
	return PlanReply{Changes: 2, Plan: "+ device.d1\n+ target[\"iqn.x\"]\n",
		Daemon: DaemonInfo{PID: 42, Config: "/etc/scst.hcl", Generation: 5, Watch: true, LastReload: ReloadReply{Trigger: "watch"}}}
}
func (r *recorder) Status(context.Context) any { return map[string]int{"targets": 3} }
func (r *recorder) CloseSession(target, initiator string) (int, error) {
	r.closed = CloseRequest{Target: target, Initiator: initiator}
	return 1, r.closeErr
}

func serve(t *testing.T, h Handler) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want 0600", st.Mode().Perm())
	}
	srv := NewServer(h)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return NewClient(sock)
}

func TestClientServerRoundTrip(t *testing.T) {
	rec := &recorder{reloadOut: ReloadReply{OK: true, Generation: 7, Trigger: "admin",
		AlreadyApplied: &ReloadReply{OK: true, Generation: 6, Trigger: "watch", Changes: 1, Plan: "~ device.d1 size 1GiB -> 2GiB"}}}
	c := serve(t, rec)

	r, err := c.Reload(true)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.force || r.Generation != 7 || !r.OK || r.Trigger != "admin" || r.AlreadyApplied == nil ||
		r.AlreadyApplied.Trigger != "watch" || r.AlreadyApplied.Plan != rec.reloadOut.AlreadyApplied.Plan {
		t.Errorf("reload: force=%v reply=%+v", rec.force, r)
	}
	if last, err := c.LastReload(); err != nil || last.Generation != 7 {
		t.Errorf("last reload = %+v, %v", last, err)
	}
	p, err := c.Plan("/etc/scst.hcl")
	if err != nil || p.Changes != 2 || rec.planPath != "/etc/scst.hcl" || p.Daemon.PID != 42 ||
		p.Daemon.Generation != 5 || !p.Daemon.Watch || p.Daemon.LastReload.Trigger != "watch" {
		t.Errorf("plan = %+v, %v (path %q)", p, err, rec.planPath)
	}
	st, err := c.Status()
	if err != nil || string(st) != "{\n  \"targets\": 3\n}" {
		t.Errorf("status = %q, %v", st, err)
	}
	rec.closeErr = errors.New("no such target")
	cr, err := c.CloseSession("iqn.t", "iqn.i")
	if err != nil || cr.Closed != 1 || cr.Error != "no such target" || rec.closed != (CloseRequest{"iqn.t", "iqn.i"}) {
		t.Errorf("close = %+v, %v, recorded %+v", cr, err, rec.closed)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Listen(sock); err == nil {
		t.Fatal("second Listen on a live socket succeeded")
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := Listen(sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}

func TestClientWithoutDaemon(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := c.Reload(false); err == nil {
		t.Fatal("reload without a daemon succeeded")
	}
}
