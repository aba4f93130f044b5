package testtarget

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scstd/scstd/admin"
)

// The tests run the helper against a stand-in daemon: this test binary,
// started with fakeDaemonEnv set, plays scstd. It honours the command-line
// contract (run -config PATH -admin-socket PATH), binds the portal named in
// the file, serves the admin API, reloads on SIGHUP and exits on SIGTERM,
// so the helper's life cycle is tested without the real daemon.
const fakeDaemonEnv = "TESTTARGET_FAKE_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(fakeDaemonEnv) == "1" {
		os.Exit(fakeDaemon(os.Args[1:]))
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv(BinaryEnv, self)
	os.Setenv(fakeDaemonEnv, "1")
	os.Exit(Main(m))
}

const fakeConfig = `iscsi { portals = ["{{.Portal}}"] }
handler "vdisk_fileio" { device "disk0" { filename = "{{.Dir}}/disk0.img" } }
target "iqn.2026-11.org.example:t1" { lun "0" { device = "disk0" } }
`

func TestStartServesPortalAndAdminSocket(t *testing.T) {
	tgt := Start(t, fakeConfig)

	c, err := net.Dial("tcp", tgt.Portal())
	if err != nil {
		t.Fatalf("portal %s: %v", tgt.Portal(), err)
	}
	c.Close()
	if _, err := tgt.Admin().Status(); err != nil {
		t.Fatalf("admin API: %v", err)
	}
	if !strings.HasPrefix(tgt.Portal(), "127.0.0.1:") {
		t.Errorf("Portal() = %q, want loopback", tgt.Portal())
	}
	text, err := os.ReadFile(tgt.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`portals = ["` + tgt.Portal() + `"]`, `filename = "` + tgt.Dir() + `/disk0.img"`} {
		if !strings.Contains(string(text), want) {
			t.Errorf("written config lacks %q:\n%s", want, text)
		}
	}
}

func TestURLs(t *testing.T) {
	tgt := New(t, fakeConfig)
	p := tgt.Params()
	tests := []struct {
		name, got, want string
	}{
		{"URL", tgt.URL(), "iscsi://127.0.0.1:" + fmt.Sprint(p.Port)},
		{"LUNURL", tgt.LUNURL("iqn.2026-11.org.example:t1", 3), fmt.Sprintf("iscsi://127.0.0.1:%d/iqn.2026-11.org.example:t1/3", p.Port)},
		{"Path", tgt.Path("disk0.img"), p.Dir + "/disk0.img"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if tgt.PID() != 0 {
		t.Errorf("PID() = %d before Start, want 0", tgt.PID())
	}
}

func TestReconfigureReloadsTheNewFile(t *testing.T) {
	tgt := Start(t, fakeConfig)
	next := fakeConfig + `# second generation` + "\n"

	r := tgt.Reconfigure(next)

	text, err := os.ReadFile(tgt.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.ConfigHash != hashOf(text) {
		t.Errorf("reload reply %+v, want OK with the hash of the new file %s", r, hashOf(text))
	}
	// Both the SIGHUP's and the watch's reloads ran before Reconfigure
	// returned: nothing reloads behind the test's back afterwards.
	settled := tgt.lastReload()
	time.Sleep(150 * time.Millisecond)
	if late := tgt.lastReload(); !late.Time.Equal(settled.Time) {
		t.Errorf("a %q reload ran after Reconfigure returned", late.Trigger)
	}
	if again := tgt.Reload(); !again.Time.After(r.Time) {
		t.Errorf("Reload() returned %v, not newer than %v", again.Time, r.Time)
	}
}

func TestRestartKeepsPortAndFiles(t *testing.T) {
	tgt := Start(t, fakeConfig)
	pid, portal := tgt.PID(), tgt.Portal()

	tgt.Restart()

	if tgt.PID() == pid || tgt.PID() == 0 {
		t.Errorf("PID after restart = %d, before %d: want a new process", tgt.PID(), pid)
	}
	if tgt.Portal() != portal {
		t.Errorf("portal moved from %s to %s", portal, tgt.Portal())
	}
	if c, err := net.Dial("tcp", portal); err != nil {
		t.Errorf("portal after restart: %v", err)
	} else {
		c.Close()
	}
}

func TestStopEndsTheProcess(t *testing.T) {
	tgt := Start(t, fakeConfig)
	pid := tgt.PID()

	tgt.Stop()

	if tgt.PID() != 0 {
		t.Errorf("PID() = %d after Stop", tgt.PID())
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("pid %d still exists after Stop", pid)
	}
	if !strings.Contains(tgt.Stderr(), "fake scstd: listening on "+tgt.Portal()) {
		t.Errorf("stderr not kept after Stop: %q", tgt.Stderr())
	}
	tgt.Stop() // a second Stop does nothing
}

// recorder is a testing.TB that records failures instead of failing, so that
// the helper's own failure reports can be checked.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errors) > 0
}

func (r *recorder) Logf(string, ...any) {}

// Fatalf records and ends the calling goroutine, as testing.T's does.
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func TestStartFailureShowsTheDaemonsStderr(t *testing.T) {
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(rec, "# no portal here\n")
		t.Error("Start returned for a daemon that exited")
	}()
	<-done

	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "exited before its portal") ||
		!strings.Contains(rec.errors[0], "fake scstd: no portal in") {
		t.Errorf("errors = %q, want one with the exit and the daemon's stderr", rec.errors)
	}
}

func TestDaemonDeathFailsTheTest(t *testing.T) {
	rec := &recorder{TB: t}
	tgt := Start(rec, fakeConfig)
	pid := tgt.PID()
	tgt.Signal(syscall.SIGUSR1) // the fake daemon exits with status 3

	deadline := time.Now().Add(StopTimeout)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the helper's Wait goroutine see it
	tgt.shutdown()

	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "exited during the test") {
		t.Errorf("errors = %q, want one about the daemon exiting", rec.errors)
	}
}

func TestRender(t *testing.T) {
	p := Params{Portal: "127.0.0.1:4000", Host: "127.0.0.1", Port: 4000, Dir: "/tmp/x"}
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "all fields", in: `{{.Portal}} {{.Host}} {{.Port}} {{.Dir}}`, want: "127.0.0.1:4000 127.0.0.1 4000 /tmp/x"},
		{name: "no placeholders", in: `iscsi { enabled = true }`, want: `iscsi { enabled = true }`},
		{name: "unknown field", in: `{{.Prot}}`, wantErr: "can't evaluate field Prot"},
		{name: "syntax", in: `{{.Portal`, wantErr: "configuration template"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.in, p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Render(%q) error = %v, want it to mention %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Render(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := newTailBuffer(8)
	b.Write([]byte("0123"))
	if got := b.String(); got != "0123" {
		t.Fatalf("String() = %q", got)
	}
	b.Write([]byte("456789ab"))
	if got, want := b.String(), "[earlier output dropped]\n456789ab"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fakeDaemon plays `scstd run` for the tests above.
func fakeDaemon(args []string) int {
	var config, socket string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-config":
			config = args[i+1]
		case "-admin-socket":
			socket = args[i+1]
		}
	}
	if len(args) == 0 || args[0] != "run" || config == "" || socket == "" {
		fmt.Fprintf(os.Stderr, "fake scstd: unexpected arguments %q\n", args)
		return 2
	}
	h := &fakeHandler{path: config}
	if r := h.reload("start"); !r.OK {
		fmt.Fprintln(os.Stderr, "fake scstd:", r.Error)
		return 1
	}
	text, _ := os.ReadFile(config)
	m := regexp.MustCompile(`portals = \["([^"]+)"\]`).FindSubmatch(text)
	if m == nil {
		fmt.Fprintln(os.Stderr, "fake scstd: no portal in", config)
		return 1
	}
	ln, err := net.Listen("tcp", string(m[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake scstd:", err)
		return 1
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGUSR1)
	adminLn, err := admin.Listen(socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake scstd:", err)
		return 1
	}
	go admin.NewServer(h).Serve(adminLn)
	go h.watch()
	fmt.Fprintln(os.Stderr, "fake scstd: listening on", ln.Addr())
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			h.reload("sighup")
		case syscall.SIGUSR1:
			return 3
		default:
			os.Remove(socket)
			return 0
		}
	}
	return 0
}

// fakeHandler is the fake daemon's admin API: a reload hashes the file.
type fakeHandler struct {
	path string
	mu   sync.Mutex
	last admin.ReloadReply
}

// Reload is `scstd reload`.
func (h *fakeHandler) Reload(context.Context, bool) admin.ReloadReply { return h.reload("admin") }

// reload reloads the file for trigger, as the daemon's reloader does.
func (h *fakeHandler) reload(trigger string) admin.ReloadReply {
	h.mu.Lock()
	defer h.mu.Unlock()
	text, err := os.ReadFile(h.path)
	if err != nil {
		h.last = admin.ReloadReply{Error: err.Error(), Generation: h.last.Generation, Time: time.Now(), Trigger: trigger}
		return h.last
	}
	h.last = admin.ReloadReply{OK: true, Generation: h.last.Generation + 1, ConfigHash: hashOf(text), Time: time.Now(), Trigger: trigger}
	return h.last
}

// watch reloads the file when its content changes, as the daemon's
// configuration watch does (by polling: the fake has no fsnotify).
func (h *fakeHandler) watch() {
	last := h.LastReload().ConfigHash
	for range time.Tick(20 * time.Millisecond) {
		text, err := os.ReadFile(h.path)
		if err != nil || hashOf(text) == last {
			continue
		}
		last = hashOf(text)
		h.reload("watch")
	}
}

func (h *fakeHandler) LastReload() admin.ReloadReply {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func (h *fakeHandler) Plan(context.Context, string) admin.PlanReply { return admin.PlanReply{} }

func (h *fakeHandler) Status(context.Context) any { return map[string]string{"state": "fake"} }

func (h *fakeHandler) CloseSession(string, string) (int, error) { return 0, nil }
