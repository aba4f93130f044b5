package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/internal/testtarget"
)

// The daemon half of "a reload you can trust": reloads never block the
// daemon, a truncated file is never applied by accident, and the watch,
// `scstd reload` and `scstd plan` say what they do.

// stopWithin is how fast SIGTERM must end the daemon, even while a reload
// hangs.
const stopWithin = 5 * time.Second

// rssLimitKiB bounds the daemon's memory in the scenarios that feed it an
// endless file: far above what it needs (about 30 MiB), far below what
// reading /dev/zero for a second takes.
const rssLimitKiB = 256 << 10

// oneDiskTwoLUNs is oneDisk with a nullio device as LUN 1.
const oneDiskTwoLUNs = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
}
handler "vdisk_nullio" {
  device "null1" {
    size = "16MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
  lun "1" { device = "null1" }
}
`

// waitReload polls the admin API until it reports a reload newer than
// after, and returns it; it fails the test after within.
func waitReload(t *testing.T, tgt *testtarget.Target, after time.Time, within time.Duration, what string) admin.ReloadReply {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := tgt.Admin().LastReload()
		if err != nil {
			t.Fatalf("%s: admin API: %v", what, err)
		}
		if r.Time.After(after) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no reload reported within %v (last: %s at %v)", what, within, r.Trigger, r.Time)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastReload returns the daemon's last reload outcome.
func lastReload(t *testing.T, tgt *testtarget.Target) admin.ReloadReply {
	t.Helper()
	r, err := tgt.Admin().LastReload()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// memoryKiB returns the resident set size and its peak (VmRSS, VmHWM) of
// process pid, in KiB.
func memoryKiB(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			peak = n
		}
	}
	return rss, peak, nil
}

// runBounded runs scstd with args for at most timeout, killing it as soon
// as its resident memory passes rssLimitKiB. It returns the combined
// output, the exit code (-1 when killed), and the peak memory in KiB.
func runBounded(t *testing.T, timeout time.Duration, args ...string) (out string, code int, peakKiB int64) {
	t.Helper()
	var buf lockedBuffer
	cmd := exec.Command(testtarget.Binary(t), args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var why string
	for why == "" {
		select {
		case err := <-done:
			var ee *exec.ExitError
			code = 0
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > peakKiB {
				peakKiB = ru.Maxrss
			}
			return buf.String(), code, peakKiB
		case <-deadline:
			why = fmt.Sprintf("still running after %v", timeout)
		case <-tick.C:
			if _, peak, err := memoryKiB(cmd.Process.Pid); err == nil {
				peakKiB = max(peakKiB, peak)
				if peak > rssLimitKiB {
					why = fmt.Sprintf("resident memory passed %d MiB", peak>>10)
				}
			}
		}
	}
	cmd.Process.Kill()
	<-done
	t.Errorf("scstd %s: %s; killed\n%s", strings.Join(args, " "), why, buf.String())
	return buf.String(), -1, peakKiB
}

// lockedBuffer collects what a process writes on its two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReloadConfigFIFOThenSIGTERM: the configuration replaced by a FIFO,
// then SIGHUP. The reload is rejected at once with a diagnostic naming the
// FIFO (nothing opens it for reading and waits for a writer), the admin
// API keeps answering, and SIGTERM then stops the daemon within 5 s.
func TestReloadConfigFIFOThenSIGTERM(t *testing.T) {
	tgt := testtarget.Start(t, oneDisk)
	cfg := tgt.ConfigPath()
	start := lastReload(t, tgt)
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	tgt.Signal(syscall.SIGHUP)

	got := make(chan admin.ReloadReply, 1)
	go func() {
		for deadline := time.Now().Add(stopWithin); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if r, err := tgt.Admin().LastReload(); err == nil && r.Time.After(start.Time) && r.Trigger == "sighup" {
				got <- r
				return
			}
		}
		close(got)
	}()
	if r, ok := <-got; !ok {
		t.Errorf("no reload reported within %v of SIGHUP on a FIFO: the reload blocks on it", stopWithin)
	} else if r.OK || !strings.Contains(r.Diagnostics, cfg+" is a named pipe") {
		t.Errorf("reload of a FIFO: ok=%v error=%q diagnostics=%q; want it rejected, naming the FIFO", r.OK, r.Error, r.Diagnostics)
	}
	if out, code := testtarget.Run(t, "status", "-admin-socket", tgt.AdminSocket()); code != 0 {
		t.Errorf("scstd status after SIGHUP on a FIFO: exit %d\n%s", code, out)
	}

	begin := time.Now()
	tgt.Stop()
	took := time.Since(begin)
	if took > stopWithin {
		t.Errorf("SIGTERM took %v to stop the daemon after a reload of a FIFO, want at most %v", took.Round(time.Millisecond), stopWithin)
	}
	t.Logf("SIGTERM stopped the daemon in %v", took.Round(time.Millisecond))
	if log := tgt.Stderr(); !strings.Contains(log, "trigger=sighup") || !strings.Contains(log, "named pipe") {
		t.Errorf("the daemon's log does not show the rejected SIGHUP reload (trigger=sighup, named pipe):\n%s", log)
	}
}

// TestConfigDevZero: a configuration path that never ends (/dev/zero) is
// refused before it is read, by `run`, `validate`, `plan`, and the admin
// API's plan, with a diagnostic naming it; memory stays bounded.
func TestConfigDevZero(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "a.sock")
	for _, args := range [][]string{
		{"run", "-config", "/dev/zero", "-admin-socket", sock},
		{"validate", "/dev/zero"},
		{"plan", "-config", "/dev/zero", "-admin-socket", sock},
	} {
		t.Run(args[0], func(t *testing.T) {
			out, code, peak := runBounded(t, 20*time.Second, args...)
			if code != 1 || !strings.Contains(out, "/dev/zero is a character device") {
				t.Errorf("scstd %s: exit %d, want 1 with a diagnostic naming /dev/zero:\n%s", strings.Join(args, " "), code, out)
			}
			t.Logf("scstd %s: peak resident memory %d MiB", args[0], peak>>10)
		})
	}

	t.Run("admin plan", func(t *testing.T) {
		tgt := testtarget.Start(t, oneDisk)
		pid := tgt.PID()
		fifo := filepath.Join(tgt.Dir(), "fifo.hcl")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/dev/zero", fifo} {
			replies := make(chan admin.PlanReply, 1)
			errs := make(chan error, 1)
			go func() {
				r, err := tgt.Admin().Plan(path)
				if err != nil {
					errs <- err
					return
				}
				replies <- r
			}()
			deadline := time.After(stopWithin)
			var peak int64
		wait:
			for {
				select {
				case r := <-replies:
					if r.Error == "" || !strings.Contains(r.Diagnostics, path+" is a ") {
						t.Errorf("POST /v1/plan {\"path\":%q}: %+v; want an error naming the path", path, r)
					}
					break wait
				case err := <-errs:
					t.Fatalf("POST /v1/plan {\"path\":%q}: %v", path, err)
				case <-deadline:
					t.Fatalf("POST /v1/plan {\"path\":%q}: no answer within %v (peak memory %d MiB)", path, stopWithin, peak>>10)
				case <-time.After(10 * time.Millisecond):
					_, p, err := memoryKiB(pid)
					if err != nil {
						t.Fatal(err)
					}
					peak = p
					if p > rssLimitKiB {
						tgt.Stop()
						t.Fatalf("POST /v1/plan {\"path\":%q}: the daemon's resident memory passed %d MiB", path, p>>10)
					}
				}
			}
		}
		_, peak, err := memoryKiB(pid)
		if err != nil {
			t.Fatal(err)
		}
		if peak > rssLimitKiB {
			t.Errorf("the daemon's peak resident memory is %d MiB", peak>>10)
		}
		t.Logf("daemon peak resident memory after the plans: %d MiB", peak>>10)
	})
}

// TestReloadEmptyFileUnderLiveQemuIO: the configuration truncated to zero
// bytes under a live qemu-io session. Neither the file watch nor SIGHUP
// nor `scstd reload` applies it: each logs "empty file ignored; `scstd
// reload -force` applies it", nothing changes, and the session keeps
// doing verified I/O. `scstd validate` calls the file invalid;
// `scstd reload -force` applies it.
func TestReloadEmptyFileUnderLiveQemuIO(t *testing.T) {
	tgt := testtarget.Start(t, oneDisk)
	q := startQemuSession(t, tgt.LUNURL(iqnT1, 0))
	for i := range 4 {
		q.cycle(byte(0x10+i), i<<20)
	}
	before := lastReload(t, tgt)
	statusBefore := daemonStatusOf(t, tgt)

	if err := os.Truncate(tgt.ConfigPath(), 0); err != nil {
		t.Fatal(err)
	}
	const ignored = "empty file ignored; `scstd reload -force` applies it"
	r := waitReload(t, tgt, before.Time, 10*time.Second, "the file watch after truncation")
	if r.OK || r.Trigger != "watch" || !strings.Contains(r.Error, ignored) {
		t.Errorf("the file watch's reload of an empty file: ok=%v trigger=%q error=%q; want it ignored with %q", r.OK, r.Trigger, r.Error, ignored)
	}
	for i := range 4 {
		q.cycle(byte(0x20+i), i<<20)
	}
	tgt.Signal(syscall.SIGHUP)
	r = waitReload(t, tgt, r.Time, 10*time.Second, "SIGHUP after truncation")
	if r.OK || r.Trigger != "sighup" || !strings.Contains(r.Error, ignored) {
		t.Errorf("SIGHUP's reload of an empty file: ok=%v trigger=%q error=%q; want it ignored", r.OK, r.Trigger, r.Error)
	}
	out, code := testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
	if code != 1 || !strings.Contains(out, ignored) {
		t.Errorf("scstd reload of an empty file: exit %d, want 1 with %q:\n%s", code, ignored, out)
	}
	for i := range 4 {
		q.cycle(byte(0x30+i), i<<20)
	}
	statusAfter := daemonStatusOf(t, tgt)
	if statusAfter.Engine.Generation != statusBefore.Engine.Generation || len(statusAfter.Engine.Targets) != 1 {
		t.Errorf("after the empty file: generation %d -> %d, %d target(s); want nothing changed",
			statusBefore.Engine.Generation, statusAfter.Engine.Generation, len(statusAfter.Engine.Targets))
	}
	if len(statusAfter.Engine.Sessions) != 1 || len(statusBefore.Engine.Sessions) != 1 ||
		statusAfter.Engine.Sessions[0].TSIH != statusBefore.Engine.Sessions[0].TSIH {
		t.Errorf("qemu-io's session: before %+v, after %+v; want the same one", statusBefore.Engine.Sessions, statusAfter.Engine.Sessions)
	}
	if q.ok != 24 || len(q.errs) > 0 {
		t.Errorf("qemu-io: %d of 24 commands verified; failures: %q", q.ok, q.errs)
	}
	if n := strings.Count(tgt.Stderr(), ignored); n < 3 {
		t.Errorf("the log shows %q %d times, want once per trigger (watch, sighup, admin)", ignored, n)
	}
	out, code = testtarget.Run(t, "validate", tgt.ConfigPath())
	if code != 1 || !strings.Contains(out, "warning: Empty configuration file") {
		t.Errorf("scstd validate of an empty file: exit %d, want 1 with a warning:\n%s", code, out)
	}

	// Only now, with qemu-io gone, force it.
	q.do("quit")
	out, code = testtarget.Run(t, "reload", "-force", "-admin-socket", tgt.AdminSocket())
	if code != 0 || !strings.Contains(out, "(forced)") || !strings.Contains(out, "- target[") {
		t.Errorf("scstd reload -force of an empty file: exit %d, want 0 and the plan removing the target:\n%s", code, out)
	}
	if st := daemonStatusOf(t, tgt); len(st.Engine.Targets) != 0 {
		t.Errorf("after reload -force of an empty file: %d target(s), want none", len(st.Engine.Targets))
	}
}

// TestReloadWatchSymlinkedConfigInAnotherDirectory: the daemon's -config is
// a symlink to a file in another directory; an in-place edit of that file
// is applied by the watch (trigger "watch"). `scstd reload` then says that
// the watch already applied it, with its plan, and `scstd plan` names the
// daemon it compared with.
func TestReloadWatchSymlinkedConfigInAnotherDirectory(t *testing.T) {
	tgt := testtarget.New(t, oneDisk)
	real := filepath.Join(t.TempDir(), "scst.hcl")
	text, err := testtarget.Render(oneDisk, tgt.Params())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, real, text)
	if err := os.Remove(tgt.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, tgt.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	tgt.Start()
	before := lastReload(t, tgt)

	// Edit the link's target in place (open, truncate, write), in its
	// own directory.
	text, err = testtarget.Render(oneDiskTwoLUNs, tgt.Params())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(real, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := waitReload(t, tgt, before.Time, 10*time.Second, "the file watch after an edit of the symlink's target")
	if !r.OK || r.Trigger != "watch" || r.Changes == 0 {
		t.Fatalf("the watch's reload: ok=%v trigger=%q changes=%d error=%q; want LUN 1 added by the watch", r.OK, r.Trigger, r.Changes, r.Error)
	}
	if !strings.Contains(tgt.Stderr(), "trigger=watch") {
		t.Error("the daemon's log does not name the trigger (trigger=watch)")
	}

	out, code := testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
	when := r.Time.Local().Format(time.TimeOnly)
	want := fmt.Sprintf("already applied by the file watch at %s, generation %d:", when, r.Generation)
	if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, `+ target["iqn.2026-11.org.example:t1"].lun[1]`) {
		t.Errorf("scstd reload after the watch applied the edit: exit %d, want 0 with %q and the watch's plan:\n%s", code, want, out)
	}

	out, code = testtarget.Run(t, "plan", "-config", tgt.ConfigPath(), "-admin-socket", tgt.AdminSocket())
	head := regexp.MustCompile(fmt.Sprintf(`Compared with the daemon at %s \(pid %d\): config %s, generation %d, last reload applied by `+"`scstd reload`",
		regexp.QuoteMeta(tgt.AdminSocket()), tgt.PID(), regexp.QuoteMeta(tgt.ConfigPath()), r.Generation))
	if code != 0 || !head.MatchString(out) || !strings.Contains(out, "No changes") {
		t.Errorf("scstd plan: exit %d, want 0, naming the daemon (%s), and no changes:\n%s", code, head, out)
	}
}

// TestReloadWatchOff: with `run -watch=false` an edit is applied only when
// asked. `scstd plan` then shows it (exit 2) and which daemon it compared
// with; `scstd reload` applies it and prints its plan (trigger "admin");
// SIGHUP is logged as trigger=sighup.
func TestReloadWatchOff(t *testing.T) {
	tgt := testtarget.New(t, oneDisk)
	tgt.SetRunFlags("-watch=false")
	tgt.Start()
	start := lastReload(t, tgt)
	if start.Trigger != "start" {
		t.Errorf("first reload's trigger %q, want start", start.Trigger)
	}

	text, err := testtarget.Render(oneDiskTwoLUNs, tgt.Params())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, tgt.ConfigPath(), text)
	time.Sleep(10 * watchDebounce)
	if r := lastReload(t, tgt); r.Time != start.Time {
		t.Fatalf("with -watch=false an edit was reloaded (trigger %q)", r.Trigger)
	}

	out, code := testtarget.Run(t, "plan", "-config", tgt.ConfigPath(), "-admin-socket", tgt.AdminSocket())
	head := fmt.Sprintf("Compared with the daemon at %s (pid %d): config %s, generation %d, last reload applied at start at",
		tgt.AdminSocket(), tgt.PID(), tgt.ConfigPath(), start.Generation)
	if code != 2 || !strings.Contains(out, head) || !strings.Contains(out, `+ target["iqn.2026-11.org.example:t1"].lun[1]`) {
		t.Errorf("scstd plan: exit %d, want 2 with %q and LUN 1 added:\n%s", code, head, out)
	}
	if strings.Contains(out, "applies edits on its own") {
		t.Errorf("scstd plan says the daemon watches the file, but it runs with -watch=false:\n%s", out)
	}

	out, code = testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
	r := lastReload(t, tgt)
	want := fmt.Sprintf("applied by `scstd reload` at %s, generation %d:", r.Time.Local().Format(time.TimeOnly), r.Generation)
	if code != 0 || r.Trigger != "admin" || !strings.Contains(out, want) || !strings.Contains(out, `+ target["iqn.2026-11.org.example:t1"].lun[1]`) {
		t.Errorf("scstd reload: exit %d (trigger %q), want 0 with %q and the plan:\n%s", code, r.Trigger, want, out)
	}

	tgt.Signal(syscall.SIGHUP)
	h := waitReload(t, tgt, r.Time, 10*time.Second, "SIGHUP")
	if !h.OK || h.Trigger != "sighup" || h.Changes != 0 || h.AlreadyApplied == nil || h.AlreadyApplied.Trigger != "admin" {
		t.Errorf("SIGHUP after `scstd reload`: %+v; want trigger sighup, no changes, already applied by admin", h)
	}
	log := tgt.Stderr()
	for _, trig := range []string{"trigger=start", "trigger=admin", "trigger=sighup"} {
		if !strings.Contains(log, trig) {
			t.Errorf("the daemon's log lacks %s", trig)
		}
	}
	if strings.Contains(log, "trigger=watch") || strings.Contains(log, "trigger=reload") {
		t.Errorf("the daemon's log names a watch or an unnamed reload:\n%s", log)
	}
}

// daemonStatusOf returns the daemon's status.
func daemonStatusOf(t *testing.T, tgt *testtarget.Target) daemonStatus {
	t.Helper()
	raw, err := tgt.Admin().Status()
	if err != nil {
		t.Fatal(err)
	}
	var st daemonStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestReloadPrintsItsWarnings: what an applied reload did not do as the
// file says reaches the administrator who ran `scstd reload`, not only the
// log: the configuration's warnings at file:line and a device left offline
// with why. The daemon logs the configuration's warnings on every reload.
func TestReloadPrintsItsWarnings(t *testing.T) {
	tgt := testtarget.New(t, oneDisk)
	tgt.SetRunFlags("-watch=false")
	tgt.Start()

	text, err := testtarget.Render(strings.Replace(oneDisk, `handler "vdisk_fileio" {`, `handler "vdisk_fileio" {
  device "gone" {
    filename = "{{.Dir}}/missing/gone.img"
  }`, 1)+`
target "iqn.2026-11.org.example:t2" {
  lun "1" { device = "gone" }
}
`, tgt.Params())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, tgt.ConfigPath(), text+fmt.Sprintf("state_dir = %q\n", tgt.StateDir()))
	out, code := testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
	for _, want := range []string{
		"warning: " + tgt.ConfigPath() + ":",
		"No LUN 0: The target \"iqn.2026-11.org.example:t2\" has LUNs but no LUN 0",
		"warning: device gone is offline (it answers NOT READY, and opening it is retried):",
		"missing/gone.img",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("scstd reload: exit %d, want 0 and %q:\n%s", code, want, out)
		}
	}
	if r := lastReload(t, tgt); len(r.Warnings) != 2 {
		t.Errorf("the last reload's warnings: %q, want the missing LUN 0 and the offline device", r.Warnings)
	}
	if log := tgt.Stderr(); !strings.Contains(log, `msg="configuration warning"`) || !strings.Contains(log, "No LUN 0") {
		t.Errorf("the daemon did not log the configuration's warning:\n%s", log)
	}
}
