package testtarget

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/scstd/scstd/admin"
)

// Timeouts of the daemon's life cycle. They are generous: the machine that
// runs the tests may be busy.
const (
	// StartTimeout bounds the wait for the portal to accept connections.
	StartTimeout = 30 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 15 * time.Second
	// ReloadTimeout bounds the wait for a reload's outcome.
	ReloadTimeout = 30 * time.Second

	// startAttempts is how often Start picks a new port when the one it
	// picked was taken by someone else in the meantime.
	startAttempts = 3
	// logTail is how much of the daemon's stderr a failed test logs.
	logTail = 64 << 10
)

// Params are the values a configuration template sees.
type Params struct {
	// Portal is the loopback listen address, "127.0.0.1:PORT".
	Portal string
	// Host is the portal's IP address, "127.0.0.1".
	Host string
	// Port is the portal's TCP port.
	Port int
	// Dir is the target's scratch directory; backing files go there.
	Dir string
}

// Target is one scstd daemon run by a test.
type Target struct {
	t        testing.TB
	bin      string
	dir      string
	config   string // file the daemon reads
	socket   string // admin socket
	template string // configuration source, rendered with params
	params   Params
	runFlags []string // extra flags of `scstd run`
	host     string   // loopback address of the portal ("": 127.0.0.1)
	env      []string // extra environment of the daemon, "NAME=value"

	mu         sync.Mutex
	proc       *process
	lastStderr string // of the last process, once it has exited
}

// process is one run of the daemon binary.
type process struct {
	cmd    *exec.Cmd
	stderr *tailBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // the exit status; read after exited is closed
}

// Start renders config (a text/template over Params), writes it, starts the
// daemon and waits until its portal accepts TCP connections. The daemon is
// stopped when the test ends. Start fails the test when the daemon cannot
// be started.
func Start(t testing.TB, config string) *Target {
	t.Helper()
	tgt := New(t, config)
	tgt.Start()
	return tgt
}

// New prepares a target without starting it: the scratch directory exists
// and the configuration is rendered and written, so a test may add files
// (for example a pre-filled backing file) before it calls Start.
func New(t testing.TB, config string) *Target {
	t.Helper()
	bin := Binary(t)
	// A short directory of its own: the admin socket's path must fit in
	// sockaddr_un (108 bytes), which t.TempDir's long names may not.
	dir, err := os.MkdirTemp("", "scstd-e2e-")
	if err != nil {
		t.Fatalf("testtarget: %v", err)
	}
	tgt := &Target{
		t:        t,
		bin:      bin,
		dir:      dir,
		config:   filepath.Join(dir, "scstd.hcl"),
		socket:   filepath.Join(dir, "admin.sock"),
		template: config,
	}
	t.Cleanup(func() {
		tgt.shutdown()
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("testtarget: removing %s: %v", dir, err)
		}
	})
	tgt.pickPort()
	tgt.writeConfig()
	return tgt
}

// SetHost moves the portal to another loopback address (127.0.0.2, ...)
// before Start, as gateways of one cluster on one machine need: it picks
// a port there and rewrites the configuration.
func (tgt *Target) SetHost(host string) {
	tgt.t.Helper()
	tgt.host = host
	tgt.pickPort()
	tgt.writeConfig()
}

// Kill sends SIGKILL to the daemon by its PID and waits for it to exit,
// as a crash would end it; the test goes on with the daemon stopped.
func (tgt *Target) Kill() {
	tgt.t.Helper()
	p := tgt.take()
	if p == nil {
		return
	}
	defer tgt.keepStderr(p)
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// take returns the running process, which the target no longer counts as
// running, or nil.
func (tgt *Target) take() *process {
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	p := tgt.proc
	tgt.proc = nil
	return p
}

// keepStderr keeps what an exited process wrote, for Stderr.
func (tgt *Target) keepStderr(p *process) {
	tgt.mu.Lock()
	tgt.lastStderr = p.stderr.String()
	tgt.mu.Unlock()
}

// SetEnv adds variables ("NAME=value") to the daemon's environment, for
// the starts that follow: values a configuration reads with env().
func (tgt *Target) SetEnv(kv ...string) { tgt.env = kv }

// SetRunFlags adds flags to the daemon's command line (`scstd run -config
// FILE -admin-socket SOCK FLAGS...`), for the starts that follow.
func (tgt *Target) SetRunFlags(flags ...string) { tgt.runFlags = flags }

// Start starts the daemon on the written configuration and waits until the
// portal accepts connections. When the port turned out to be taken, it
// picks another one, rewrites the configuration and tries again.
func (tgt *Target) Start() {
	tgt.t.Helper()
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		err = tgt.start()
		if err == nil {
			return
		}
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			break
		}
		tgt.t.Logf("testtarget: port %d taken, picking another", tgt.params.Port)
		tgt.pickPort()
		tgt.writeConfig()
	}
	tgt.t.Fatalf("testtarget: scstd did not start: %v\n--- scstd stderr ---\n%s", err, tgt.Stderr())
}

var errPortTaken = errors.New("portal address already in use")

func (tgt *Target) start() error {
	tgt.mu.Lock()
	if tgt.proc != nil {
		tgt.mu.Unlock()
		return errors.New("already running")
	}
	args := append([]string{"run", "-config", tgt.config, "-admin-socket", tgt.socket}, tgt.runFlags...)
	cmd := exec.Command(tgt.bin, args...)
	cmd.Dir = tgt.dir
	if len(tgt.env) > 0 {
		cmd.Env = append(os.Environ(), tgt.env...)
	}
	p := &process{cmd: cmd, stderr: newTailBuffer(4 << 20), exited: make(chan struct{})}
	cmd.Stdout = p.stderr
	cmd.Stderr = p.stderr
	// Kill the daemon if the test binary dies (a test timeout, Ctrl-C), so
	// that no orphan keeps the port or the backing files.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tgt.mu.Unlock()
		return err
	}
	tgt.proc = p
	tgt.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	deadline := time.Now().Add(StartTimeout)
	for {
		if tgt.accepts() {
			return nil
		}
		select {
		case <-p.exited:
			tgt.mu.Lock()
			tgt.proc = nil
			tgt.lastStderr = p.stderr.String()
			tgt.mu.Unlock()
			if strings.Contains(p.stderr.String(), "address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("scstd exited before its portal %s accepted connections: %v", tgt.params.Portal, p.err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tgt.Stop()
			return fmt.Errorf("portal %s and admin socket %s did not accept connections within %v",
				tgt.params.Portal, tgt.socket, StartTimeout)
		}
	}
}

// accepts reports whether both the portal and the admin socket accept
// connections: the daemon is then fully up.
func (tgt *Target) accepts() bool {
	c, err := net.DialTimeout("tcp", tgt.params.Portal, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	c, err = net.DialTimeout("unix", tgt.socket, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stop sends SIGTERM to the daemon and waits for it to exit; after
// StopTimeout it sends SIGKILL and fails the test, since a daemon that
// does not shut down on SIGTERM is a bug. Stop on a stopped target does
// nothing.
func (tgt *Target) Stop() {
	tgt.t.Helper()
	p := tgt.take()
	if p == nil {
		return
	}
	defer tgt.keepStderr(p)
	select {
	case <-p.exited:
		tgt.t.Errorf("testtarget: scstd had already exited: %v\n--- scstd stderr ---\n%s", p.err, tail(p.stderr.String()))
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tgt.t.Logf("testtarget: SIGTERM pid %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			tgt.t.Logf("testtarget: scstd exited after SIGTERM: %v", p.err)
		}
	case <-time.After(StopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		tgt.t.Errorf("testtarget: scstd (pid %d) ignored SIGTERM for %v and was killed\n--- scstd stderr ---\n%s",
			p.cmd.Process.Pid, StopTimeout, tail(p.stderr.String()))
	}
}

// Restart stops the daemon and starts it again on the same configuration
// file, backing files and port.
func (tgt *Target) Restart() {
	tgt.t.Helper()
	tgt.Stop()
	if err := tgt.start(); err != nil {
		tgt.t.Fatalf("testtarget: scstd did not restart: %v\n--- scstd stderr ---\n%s", err, tgt.Stderr())
	}
}

// Reconfigure renders config with the target's Params, replaces the
// configuration file and reloads the daemon through SIGHUP, returning the
// outcome of the reload that applied it (the SIGHUP's, or the file
// watch's when it came first) as the admin API reports it. A rejected reload is
// returned, not failed: tests of rejection inspect it.
//
// When the file changed and the daemon watches it, Reconfigure returns only
// once the watch's reload has run too: a test that changes the world after
// a rejected reload (frees the address it was refused for) must not have
// the watch's late reload of the same file apply it behind its back, nor
// take that reload's outcome for the next Reconfigure's.
func (tgt *Target) Reconfigure(config string) admin.ReloadReply {
	tgt.t.Helper()
	tgt.template = config
	before := tgt.lastReload()
	changed := tgt.writeConfig()
	return tgt.reloadAfter(before, changed && tgt.watching())
}

// Reload sends SIGHUP and waits until the daemon reports a reload newer than
// the one it reported before the signal; it returns that reload's outcome.
func (tgt *Target) Reload() admin.ReloadReply {
	tgt.t.Helper()
	return tgt.reloadAfter(tgt.lastReload(), false)
}

// watchMiss bounds Reconfigure's wait for the watch's reload once the
// SIGHUP's is reported: the admin API reports only the last reload, and a
// watch reload that ran between two polls, before the SIGHUP's, is not
// seen.
const watchMiss = 3 * time.Second

// hasTrigger reports whether r was (also) started by trigger.
func hasTrigger(r admin.ReloadReply, trigger string) bool {
	return slices.Contains(strings.Split(r.Trigger, "+"), trigger)
}

// watching reports whether the daemon runs with its configuration watch.
func (tgt *Target) watching() bool { return !slices.Contains(tgt.runFlags, "-watch=false") }

func (tgt *Target) reloadAfter(before admin.ReloadReply, waitWatch bool) admin.ReloadReply {
	tgt.t.Helper()
	tgt.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(ReloadTimeout)
	var (
		outcome       admin.ReloadReply
		seen          = before.Time
		sighup, watch bool
		answered      time.Time // when the first reload after before was seen
	)
	for {
		now := tgt.lastReload()
		if now.Time.After(seen) {
			seen = now.Time
			sighup = sighup || hasTrigger(now, "sighup")
			watch = watch || hasTrigger(now, "watch")
			// A reload that found the file already applied names the
			// one that applied it, which the polls may have missed.
			if a := now.AlreadyApplied; a != nil && a.Time.After(before.Time) {
				sighup = sighup || hasTrigger(*a, "sighup")
				watch = watch || hasTrigger(*a, "watch")
			}
			// The config file watch may reload too; either way the
			// newest outcome is the one for the file as now written.
			// When the watch (20 ms after the rename) applied the file
			// before the SIGHUP's reload ran, that reload changed
			// nothing and names the one that applied it: that one is
			// the outcome.
			outcome = now
			if a := now.AlreadyApplied; now.OK && now.Changes == 0 && a != nil && a.Time.After(before.Time) {
				outcome = *a
			}
			if answered.IsZero() {
				answered = time.Now()
			}
		}
		if !answered.IsZero() && (sighup && (watch || !waitWatch) || time.Since(answered) > watchMiss) {
			return outcome
		}
		if time.Now().After(deadline) {
			tgt.t.Fatalf("testtarget: no reload reported within %v after SIGHUP (last: %+v)", ReloadTimeout, now)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastReload asks the admin API for the last reload's outcome; a daemon that
// has not reloaded yet reports the zero value.
func (tgt *Target) lastReload() admin.ReloadReply {
	tgt.t.Helper()
	r, err := tgt.Admin().LastReload()
	if err != nil {
		tgt.t.Fatalf("testtarget: admin API: %v", err)
	}
	return r
}

// Admin returns a client for the daemon's admin socket.
func (tgt *Target) Admin() *admin.Client { return admin.NewClient(tgt.socket) }

// Signal sends sig to the running daemon.
func (tgt *Target) Signal(sig os.Signal) {
	tgt.t.Helper()
	tgt.mu.Lock()
	p := tgt.proc
	tgt.mu.Unlock()
	if p == nil {
		tgt.t.Fatalf("testtarget: signal %v: scstd is not running", sig)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		tgt.t.Fatalf("testtarget: signal %v to pid %d: %v", sig, p.cmd.Process.Pid, err)
	}
}

// PID returns the running daemon's process id, or 0 when it is stopped.
func (tgt *Target) PID() int {
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	if tgt.proc == nil {
		return 0
	}
	return tgt.proc.cmd.Process.Pid
}

// Portal returns the daemon's listen address, "127.0.0.1:PORT".
func (tgt *Target) Portal() string { return tgt.params.Portal }

// URL returns the libiscsi URL of the portal, "iscsi://127.0.0.1:PORT",
// as iscsi-ls takes it.
func (tgt *Target) URL() string { return "iscsi://" + tgt.params.Portal }

// LUNURL returns the libiscsi URL of one LUN,
// "iscsi://127.0.0.1:PORT/IQN/LUN", as iscsi-inq, qemu-io and
// iscsi-test-cu take it.
func (tgt *Target) LUNURL(target string, lun int) string {
	return fmt.Sprintf("iscsi://%s/%s/%d", tgt.params.Portal, target, lun)
}

// Dir returns the target's scratch directory.
func (tgt *Target) Dir() string { return tgt.dir }

// StateDir returns the daemon's state directory: "state" in the scratch
// directory, unless the configuration sets state_dir.
func (tgt *Target) StateDir() string { return filepath.Join(tgt.dir, "state") }

// Path returns name inside the scratch directory.
func (tgt *Target) Path(name string) string { return filepath.Join(tgt.dir, name) }

// ConfigPath returns the configuration file the daemon reads.
func (tgt *Target) ConfigPath() string { return tgt.config }

// AdminSocket returns the path of the daemon's admin socket.
func (tgt *Target) AdminSocket() string { return tgt.socket }

// Params returns the values the configuration templates see.
func (tgt *Target) Params() Params { return tgt.params }

// Stderr returns what the daemon wrote to stderr (the most recent 4 MiB),
// of the running process or else of the last one.
func (tgt *Target) Stderr() string {
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	if tgt.proc != nil {
		return tgt.proc.stderr.String()
	}
	return tgt.lastStderr
}

// shutdown stops the daemon at the end of the test: it fails the test when
// the daemon died on its own, and logs the daemon's stderr when the test
// failed.
func (tgt *Target) shutdown() {
	tgt.mu.Lock()
	p := tgt.proc
	tgt.mu.Unlock()
	if p != nil {
		select {
		case <-p.exited:
			tgt.mu.Lock()
			tgt.proc = nil
			tgt.lastStderr = p.stderr.String()
			tgt.mu.Unlock()
			tgt.t.Errorf("testtarget: scstd exited during the test: %v", p.err)
		default:
			tgt.Stop()
		}
	}
	if tgt.t.Failed() {
		tgt.t.Logf("--- scstd stderr (last %d KiB) ---\n%s", logTail>>10, tail(tgt.Stderr()))
	}
}

// pickPort asks the kernel for a free loopback port. Another process may take
// it before the daemon binds it; Start then picks again.
func (tgt *Target) pickPort() {
	tgt.t.Helper()
	port, err := FreePort()
	if err != nil {
		tgt.t.Fatalf("testtarget: %v", err)
	}
	host := tgt.host
	if host == "" {
		host = "127.0.0.1"
	}
	tgt.params = Params{
		Portal: net.JoinHostPort(host, strconv.Itoa(port)),
		Host:   host,
		Port:   port,
		Dir:    tgt.dir,
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("picking a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeConfig renders the template and replaces the configuration file
// atomically (write a temporary file, rename over), as an editor would; the
// temporary name does not end in .hcl so a directory watch never loads it.
// A template that sets no state_dir gets the scratch directory's "state"
// (StateDir), so that no test writes to /var/lib/scstd. It reports whether
// the file's content changed.
func (tgt *Target) writeConfig() (changed bool) {
	tgt.t.Helper()
	text, err := Render(tgt.template, tgt.params)
	if err != nil {
		tgt.t.Fatalf("testtarget: %v", err)
	}
	if !strings.Contains(text, "state_dir") {
		text += fmt.Sprintf("\nstate_dir = %q\n", tgt.StateDir())
	}
	old, err := os.ReadFile(tgt.config)
	changed = err != nil || string(old) != text
	tmp := tgt.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		tgt.t.Fatalf("testtarget: %v", err)
	}
	if err := os.Rename(tmp, tgt.config); err != nil {
		tgt.t.Fatalf("testtarget: %v", err)
	}
	return changed
}

// Render executes the configuration template config with p. Missing keys
// are errors, so a typo in a template does not become an empty string.
func Render(config string, p Params) (string, error) {
	tpl, err := template.New("config").Option("missingkey=error").Parse(config)
	if err != nil {
		return "", fmt.Errorf("configuration template: %w", err)
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, p); err != nil {
		return "", fmt.Errorf("configuration template: %w", err)
	}
	return b.String(), nil
}

// Run runs the scstd binary with args (for example "validate", path) and
// returns its combined output and exit code. It fails the test only when the
// binary cannot be run at all or does not finish within a minute.
func Run(t testing.TB, args ...string) (output string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, Binary(t), args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case ctx.Err() != nil:
		t.Fatalf("testtarget: scstd %s: timed out\n%s", strings.Join(args, " "), out)
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("testtarget: scstd %s: %v", strings.Join(args, " "), err)
	}
	return "", -1
}

// tail returns the last logTail bytes of s.
func tail(s string) string {
	if len(s) <= logTail {
		return s
	}
	return "...\n" + s[len(s)-logTail:]
}
