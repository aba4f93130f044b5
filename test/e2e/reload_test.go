package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
)

// trigger is how an edit reaches the daemon.
type trigger int

const (
	// triggerSIGHUP writes the file by rename-over and sends SIGHUP.
	triggerSIGHUP trigger = iota
	// triggerRename writes the file by rename-over and leaves the reload
	// to the daemon's file watch.
	triggerRename
	// triggerSymlink swaps a ..data symlink the way a Kubernetes
	// ConfigMap volume does and leaves the reload to the file watch.
	triggerSymlink
	// triggerCLI writes the file by rename-over and runs `scstd reload`.
	triggerCLI
	// triggerNone is no reload at all: the engine's own retry acts.
	triggerNone
)

// triggerCycle is the order in which valid edits, and separately invalid
// ones, use the triggers. The second symlink swap in a row only re-points
// ..data, as a ConfigMap update does; the first also turns the
// configuration path (a plain file after a rename-over) into the symlink.
var triggerCycle = []trigger{triggerSIGHUP, triggerRename, triggerSymlink, triggerSymlink, triggerCLI}

func (tr trigger) String() string {
	switch tr {
	case triggerSIGHUP:
		return "rename+SIGHUP"
	case triggerRename:
		return "rename-over+watch"
	case triggerSymlink:
		return "symlink-swap+watch"
	case triggerCLI:
		return "rename+`scstd reload`"
	case triggerNone:
		return "no reload"
	}
	return fmt.Sprintf("trigger(%d)", int(tr))
}

// stepKind says what kind of edit a step is.
type stepKind int

const (
	// stepValid is an edit that must be applied.
	stepValid stepKind = iota
	// stepInvalid is a file with a configuration error: rejected whole.
	stepInvalid
	// stepRestore puts flaky's backing file back and reloads with the
	// configuration unchanged: the offline device comes back online.
	stepRestore
	// stepRestoreByRetry puts flaky's backing file back and triggers
	// nothing: the engine's retry of offline devices brings it back.
	stepRestoreByRetry
)

// step is one edit of the scenario.
type step struct {
	name string
	kind stepKind
	// edit changes the state (stepValid), or gives the visible change an
	// invalid file would make on top of its defect (stepInvalid).
	edit func(*reloadState)
	bad  defect
	// removeFlaky renames flaky's backing file away once the edit is
	// applied (the device is no longer declared then).
	removeFlaky bool
}

func valid(name string, edit func(*reloadState)) step {
	return step{name: name, kind: stepValid, edit: edit}
}

func addALUN(l int, dev string) step {
	return valid(fmt.Sprintf("A: add LUN %d (%s)", l, dev), func(s *reloadState) { s.aLUNs[l] = dev })
}

func removeALUN(l int) step {
	return valid(fmt.Sprintf("A: remove LUN %d", l), func(s *reloadState) { delete(s.aLUNs, l) })
}

func setB(on bool) step {
	name := map[bool]string{true: "add target B", false: "remove target B"}[on]
	return valid(name, func(s *reloadState) { s.b = on })
}

func setC(on bool) step {
	name := map[bool]string{true: "add target C", false: "remove target C"}[on]
	return valid(name, func(s *reloadState) { s.c = on })
}

func paramsB(recv, burst int) step {
	return valid(fmt.Sprintf("B: max_recv_data_segment_length=%d max_burst_length=%d", recv, burst),
		func(s *reloadState) { s.bMaxRecvDSL, s.bMaxBurst = recv, burst })
}

func growDisk0(sizeMiB int64) step {
	return valid(fmt.Sprintf("grow disk0 (A LUN 0, under load) to %d MiB", sizeMiB),
		func(s *reloadState) { s.disk0MiB = sizeMiB })
}

func paramsA(queued, burst int) step {
	return valid(fmt.Sprintf("A: queued_commands=%d max_burst_length=%d", queued, burst),
		func(s *reloadState) { s.aQueued, s.aMaxBurst = queued, burst })
}

func toggleReadOnly() step {
	return valid("toggle read_only of rodev (B LUN 0)", func(s *reloadState) { s.roOn = !s.roOn })
}

// flakyGone removes B's LUN 1 and device flaky, then its backing file.
func flakyGone() step {
	return step{name: "B: remove LUN 1 and device flaky; its backing file is then removed", kind: stepValid,
		edit: func(s *reloadState) { s.flaky = false }, removeFlaky: true}
}

// flakyMissing declares flaky again while its file is missing: the edit
// applies, flaky alone is offline.
func flakyMissing() step {
	return step{name: "B: declare flaky again as LUN 1 while its backing file is missing (offline)", kind: stepValid,
		edit: func(s *reloadState) { s.flaky = true }}
}

func invalid(d defect) step {
	// Were the file applied in spite of its error, target C would appear
	// or vanish.
	return step{name: "invalid: " + d.name, kind: stepInvalid, bad: d, edit: func(s *reloadState) { s.c = !s.c }}
}

// reloadScript is the scenario: 61 edits, of which 14 are invalid files,
// and two restores of a removed backing file (by reload, by the retry).
func reloadScript() []step {
	return []step{
		addALUN(1, "x1"),
		setB(true),
		invalid(defectSyntax),
		setC(true),
		addALUN(2, "x2"),
		paramsB(65536, 65536),
		paramsA(16, 65536),
		invalid(defectUnknownDevice),
		growDisk0(96),
		toggleReadOnly(),
		setC(false),
		invalid(defectDuplicateLUN),
		addALUN(3, "x3"),
		removeALUN(1),
		paramsB(8192, 16384),
		invalid(defectBadIQN),
		setC(true),
		toggleReadOnly(),
		growDisk0(128),
		invalid(defectBadSize),
		removeALUN(2),
		flakyGone(),
		invalid(defectUnknownAttr),
		flakyMissing(),
		addALUN(1, "x1"),
		{name: "restore flaky's backing file and `scstd reload` (back online)", kind: stepRestore},
		setB(false),
		invalid(defectSyntax),
		setB(true),
		paramsB(262144, 131072),
		invalid(defectDuplicateDevice),
		setC(false),
		addALUN(4, "x4"),
		toggleReadOnly(),
		invalid(defectBlockSize),
		setC(true),
		removeALUN(3),
		growDisk0(160),
		invalid(defectUnknownDevice),
		paramsB(32768, 262144),
		paramsA(64, 131072),
		removeALUN(4),
		setB(false),
		invalid(defectSyntax),
		setB(true),
		setC(false),
		addALUN(2, "x2"),
		invalid(defectBadIQN),
		toggleReadOnly(),
		setC(true),
		removeALUN(1),
		invalid(defectDuplicateLUN),
		paramsB(16384, 32768),
		flakyGone(),
		flakyMissing(),
		{name: "restore flaky's backing file, no reload (the retry brings it back online)", kind: stepRestoreByRetry},
		removeALUN(2),
		growDisk0(192),
		paramsA(8, 262144),
		invalid(defectBadSize),
		toggleReadOnly(),
		setC(false),
		addALUN(3, "x3"),
	}
}

// flakyRetryWithin bounds how long an offline device whose backing file
// is back may stay offline without a reload: reconcile.Options'
// RetryInterval defaults to 10 s, and scstd run has no flag to change it.
const flakyRetryWithin = 15 * time.Second

// reloadRun is the scenario's running state.
type reloadRun struct {
	t    *testing.T
	tgt  *testtarget.Target
	live *liveSession
	qemu *qemuLoad
	// liveErrs and qemuErrs are how many I/O errors have been reported.
	liveErrs, qemuErrs int
	// state is what the daemon must run; flakyOnline whether flaky's
	// backing file is in place.
	state       reloadState
	flakyOnline bool
	// eventIdx is how far the live session's events have been checked.
	eventIdx int
	// symlinks counts symlink swaps, naming their ..vN directories.
	symlinks int
	planDir  string
	// lastWrite is when the configuration was last written.
	lastWrite time.Time

	applied, rejected, restored int
	uas, asyncs                 map[string]int
}

// TestReloadUnderLoad is issue #3's end-to-end test: 61 edits (14 of them
// invalid) reach the daemon by SIGHUP, rename-over, symlink swap and
// `scstd reload` in turn, while qemu-io and a Go initiator session keep
// I/O running on LUN 0 of target A. Every valid edit must be visible to a
// fresh initiator, every invalid one rejected with diagnostics and no
// change; the live session must see the unit attentions of A's changes and
// nothing else, with no I/O error and no re-login.
func TestReloadUnderLoad(t *testing.T) {
	requireTools(t, "qemu-io", "iscsi-ls")
	start := time.Now()
	initial := initialReloadState()
	tgt := testtarget.New(t, initial.hcl(defect{}))
	// The backing files live beside the configuration, in the directory
	// the daemon watches, and are written all along.
	if err := os.WriteFile(tgt.Path("flaky.img"), bytesOf(0x6b, flakySize), 0o644); err != nil {
		t.Fatal(err)
	}
	tgt.Start()
	r := &reloadRun{t: t, tgt: tgt, state: initial, flakyOnline: true, planDir: tgt.Path("plan"),
		uas: map[string]int{}, asyncs: map[string]int{}}
	if err := os.Mkdir(r.planDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if p := verifyView(tgt.URL(), tgt.Portal(), r.state, true); len(p) > 0 {
		t.Fatalf("initial configuration:\n  %s", strings.Join(p, "\n  "))
	}

	live, err := startLiveSession(tgt.Portal(), iqnA)
	if err != nil {
		t.Fatalf("live session: %v", err)
	}
	r.live = live
	qemu := startQemuLoad(tgt.LUNURL(iqnA, 0))
	r.qemu = qemu
	defer qemu.finish()
	if err := live.sync(20 * time.Second); err != nil {
		t.Fatalf("live session: %v", err)
	}
	r.eventIdx = r.checkEvents("start of the load", nil, false)

	var validN, invalidN int
	for i, st := range reloadScript() {
		var tr trigger
		switch st.kind {
		case stepValid:
			tr = triggerCycle[validN%len(triggerCycle)]
			validN++
		case stepInvalid:
			tr = triggerCycle[invalidN%len(triggerCycle)]
			invalidN++
		case stepRestore:
			tr = triggerCLI
		case stepRestoreByRetry:
			tr = triggerNone
		}
		label := fmt.Sprintf("edit %d (%s) %s", i+1, tr, st.name)
		t.Log(label)
		switch st.kind {
		case stepValid:
			r.applyValid(label, st, tr)
		case stepInvalid:
			r.applyInvalid(label, st, tr)
		case stepRestore, stepRestoreByRetry:
			r.restoreFlaky(label, st.kind == stepRestore)
		}
		if t.Failed() && os.Getenv("SCSTD_RELOAD_KEEP_GOING") == "" {
			// Later edits build on this one: stop at the first failure
			// so that the report names the edit that broke.
			break
		}
	}

	qemu.finish()
	liveOps, liveCycles := live.ops.Load(), live.cycles.Load()
	st := r.status()
	if err := live.finish(); err != nil {
		t.Errorf("the live session did not survive the scenario: %v", err)
	}
	r.checkSameSession(st)

	r.checkIOErrors("end of the scenario")
	ioErrs := append(live.ioErrors(), qemu.ioErrors()...)
	if qemu.ops.Load() == 0 || liveCycles == 0 {
		t.Errorf("the load did not run: %d qemu-io commands, %d live cycles", qemu.ops.Load(), liveCycles)
	}
	summary := fmt.Sprintf("reload scenario in %v: edits applied %d, edits rejected %d, backing-file restores %d; "+
		"I/O operations completed: qemu-io %d (in %d runs), live session %d SCSI commands (%d write/read-back cycles); "+
		"I/O errors %d; unit attentions seen by the live session %v; Async Messages %v",
		time.Since(start).Round(time.Second), r.applied, r.rejected, r.restored, qemu.ops.Load(), qemu.runs.Load(),
		liveOps, liveCycles, len(ioErrs), r.uas, r.asyncs)
	fmt.Println(summary)
	t.Log(summary)
	for line, n := range qemu.messages() {
		t.Logf("qemu-io also printed (%d times): %s", n, line)
	}
}

// applyValid applies an edit that must be accepted and checks everything
// it must change, and nothing else.
func (r *reloadRun) applyValid(label string, st step, tr trigger) {
	t := r.t
	t.Helper()
	next := r.state.clone()
	st.edit(&next)
	text := r.render(next.hcl(defect{}))

	if out, code := r.plan(text); code != 2 {
		t.Errorf("%s: `scstd plan` before the edit exited %d, want 2 (changes)\n%s", label, code, out)
	}
	before := r.lastReload()
	first := r.write(label, text, "", tr, before)
	if t.Failed() {
		return
	}
	if (tr == triggerCLI || tr == triggerSIGHUP) && first.OK && first.Changes == 0 && first.Generation == before.Generation+1 {
		// The file watch (20 ms after a rename) applied the edit before
		// the `scstd reload` process or the SIGHUP got to ask: the same
		// edit, applied once.
		t.Logf("%s: the file watch applied the edit before %s ran", label, tr)
	} else if !first.OK || first.Changes == 0 || first.Generation != before.Generation+1 {
		t.Errorf("%s: reload outcome ok=%t changes=%d generation %d (before %d), want one applied change: %s\n%s",
			label, first.OK, first.Changes, first.Generation, before.Generation, first.Error, first.Diagnostics)
		return
	}
	final := r.settle(true)
	if !final.OK || final.Generation != first.Generation || final.ConfigHash != first.ConfigHash {
		t.Errorf("%s: a later reload of the same file changed the outcome: ok=%t generation %d (applied %d) error %q",
			label, final.OK, final.Generation, first.Generation, final.Error)
	}
	if out, code := r.plan(text); code != 0 {
		t.Errorf("%s: `scstd plan` after the edit exited %d, want 0 (no changes)\n%s", label, code, out)
	}

	prev := r.state
	r.state = next
	r.applied++
	if st.removeFlaky {
		if err := os.Rename(r.tgt.Path("flaky.img"), r.tgt.Path("flaky.img.away")); err != nil {
			t.Fatal(err)
		}
		r.flakyOnline = false
	}

	var want []sense
	lunsChanged := !maps.Equal(prev.aLUNs, next.aLUNs)
	if lunsChanged {
		want = append(want, sense{senseKeyUnitAttention, ascLUNsChanged, ascqLUNsChanged})
	}
	if next.disk0MiB > prev.disk0MiB {
		want = append(want, sense{senseKeyUnitAttention, ascCapacityChanged, ascqCapacityChanged})
	}
	r.eventIdx = r.checkEvents(label, want, lunsChanged)
	// MaxCmdSN = ExpCmdSN + queued_commands - 1 - commands executing: the
	// live session has at most one command executing.
	if w := r.live.window.Load(); w != int64(next.aQueued) && w != int64(next.aQueued-1) {
		t.Errorf("%s: the live session's command window is %d, want queued_commands = %d (less the command executing)",
			label, w, next.aQueued)
	}

	if p := verifyView(r.tgt.URL(), r.tgt.Portal(), r.state, r.flakyOnline); len(p) > 0 {
		t.Errorf("%s: a fresh initiator sees:\n  %s", label, strings.Join(p, "\n  "))
	}
	if next.flaky && !r.flakyOnline {
		r.checkFlaky(label, false)
	}
	if next.roOn != prev.roOn {
		if d, ok := r.status().device("rodev"); !ok || d.ReadOnly != next.roOn {
			t.Errorf("%s: status shows rodev %+v, want read_only=%t", label, d, next.roOn)
		}
	}
	if next.disk0MiB != prev.disk0MiB {
		fi, err := os.Stat(r.tgt.Path("disk0.img"))
		if err != nil || fi.Size() != next.disk0MiB*mib {
			t.Errorf("%s: disk0.img: %v, size %d, want %d", label, err, fi.Size(), next.disk0MiB*mib)
		}
	}
}

// applyInvalid writes a file with a configuration error: the reload must
// be rejected with diagnostics, and nothing may change.
func (r *reloadRun) applyInvalid(label string, st step, tr trigger) {
	t := r.t
	t.Helper()
	bad := r.state.clone()
	st.edit(&bad)
	text := r.render(bad.hcl(st.bad))

	if out, code := r.plan(text); code != 1 || !strings.Contains(out, st.bad.mention) {
		t.Errorf("%s: `scstd plan` exited %d, want 1 with diagnostics naming %q\n%s", label, code, st.bad.mention, out)
	}
	stBefore := r.status()
	before := stBefore.LastReload
	first := r.write(label, text, st.bad.mention, tr, before)
	if t.Failed() {
		return
	}
	if first.OK {
		t.Errorf("%s: the invalid file was applied (generation %d):\n%s", label, first.Generation, first.Plan)
		return
	}
	r.settle(true)
	after := r.status()
	lr := after.LastReload
	if lr.OK || lr.Error == "" || !strings.Contains(lr.Diagnostics, st.bad.mention) ||
		!strings.Contains(lr.Diagnostics, "scstd.hcl:") {
		t.Errorf("%s: status last_reload ok=%t error=%q, want a rejection whose diagnostics name scstd.hcl:LINE and %q:\n%s",
			label, lr.OK, lr.Error, st.bad.mention, lr.Diagnostics)
	}
	if lr.Generation != before.Generation || after.Engine.Generation != stBefore.Engine.Generation {
		t.Errorf("%s: generation went from %d to %d (engine %d to %d) on a rejected file",
			label, before.Generation, lr.Generation, stBefore.Engine.Generation, after.Engine.Generation)
	}
	if a, b := after.engineTree(), stBefore.engineTree(); a != b {
		t.Errorf("%s: the running engine changed on a rejected file:\nbefore %s\nafter  %s", label, b, a)
	}
	r.rejected++
	r.eventIdx = r.checkEvents(label, nil, false)
	if p := verifyView(r.tgt.URL(), r.tgt.Portal(), r.state, r.flakyOnline); len(p) > 0 {
		t.Errorf("%s: after the rejected file a fresh initiator sees:\n  %s", label, strings.Join(p, "\n  "))
	}
}

// restoreFlaky puts flaky's backing file back and, with reload, reloads
// the unchanged configuration (else it waits for the engine's retry of
// offline devices): the device must come back online, the rest untouched.
func (r *reloadRun) restoreFlaky(label string, reload bool) {
	t := r.t
	t.Helper()
	before := r.lastReload()
	if err := os.Rename(r.tgt.Path("flaky.img.away"), r.tgt.Path("flaky.img")); err != nil {
		t.Fatal(err)
	}
	if reload {
		out, code := testtarget.Run(t, "reload", "-admin-socket", r.tgt.AdminSocket())
		if code != 0 {
			t.Errorf("%s: `scstd reload` exited %d\n%s", label, code, out)
		}
		r.settle(false)
	} else {
		restored := time.Now()
		for {
			if d, ok := r.status().device("flaky"); ok && d.Online {
				t.Logf("%s: online %v after the file was restored", label, time.Since(restored).Round(100*time.Millisecond))
				break
			}
			if time.Since(restored) > flakyRetryWithin {
				t.Errorf("%s: flaky still offline %v after its backing file was restored (the engine retries every 10s)",
					label, flakyRetryWithin)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if now := r.lastReload(); !now.Time.Equal(before.Time) {
			t.Errorf("%s: a reload happened (%+v) though nothing triggered one", label, now)
		}
	}
	r.flakyOnline = true
	r.checkFlaky(label, true)
	if got, err := readBlock(r.tgt.Portal(), iqnB, 1, 0); err != nil {
		t.Errorf("%s: reading B LUN 1: %v", label, err)
	} else if !bytes.Equal(got, bytesOf(0x6b, blockSize)) {
		t.Errorf("%s: B LUN 1 block 0 reads % x..., want the restored file's 6b bytes", label, got[:16])
	}
	r.restored++
	r.eventIdx = r.checkEvents(label, nil, false)
	if p := verifyView(r.tgt.URL(), r.tgt.Portal(), r.state, true); len(p) > 0 {
		t.Errorf("%s: a fresh initiator sees:\n  %s", label, strings.Join(p, "\n  "))
	}
}

// checkFlaky checks flaky's status: offline with a reason naming its
// file, or online with its size.
func (r *reloadRun) checkFlaky(label string, online bool) {
	t := r.t
	t.Helper()
	d, ok := r.status().device("flaky")
	switch {
	case !ok:
		t.Errorf("%s: status lists no device flaky", label)
	case online && (!d.Online || d.Size != flakySize):
		t.Errorf("%s: status shows flaky %+v, want online with %d bytes", label, d, flakySize)
	case !online && (d.Online || !strings.Contains(d.Reason, "flaky.img")):
		t.Errorf("%s: status shows flaky %+v, want offline with a reason naming flaky.img", label, d)
	}
}

// checkEvents waits until the live session has run two load cycles after
// the edit and checks the unit attentions and Async Messages it received
// since the last check: exactly the unit attentions in want, and a SCSI
// Async Message when (and only when) A's LUN map changed.
func (r *reloadRun) checkEvents(label string, want []sense, wantAsync bool) int {
	t := r.t
	t.Helper()
	if err := r.live.sync(20 * time.Second); err != nil {
		t.Fatalf("%s: the live session broke: %v", label, err)
	}
	r.checkIOErrors(label)
	events, next := r.live.eventsSince(r.eventIdx)
	got := map[sense]int{}
	asyncSCSI := 0
	for _, e := range events {
		if e.ua {
			got[e.sense]++
			r.uas[e.sense.String()]++
			continue
		}
		r.asyncs[e.async.String()]++
		if e.async == iscsi.AsyncSCSIEvent {
			asyncSCSI++
		} else {
			t.Errorf("%s: the live session received %v", label, e)
		}
	}
	wantSet := map[sense]bool{}
	for _, s := range want {
		wantSet[s] = true
		if got[s] == 0 {
			t.Errorf("%s: the live session saw no UNIT ATTENTION %v (got %v)", label, s, events)
		}
	}
	for s := range got {
		if !wantSet[s] {
			t.Errorf("%s: the live session saw UNIT ATTENTION %v, which this edit must not raise (all: %v)", label, s, events)
		}
	}
	switch {
	case wantAsync && asyncSCSI == 0:
		t.Errorf("%s: the live session received no SCSI Async Message for A's changed LUN map", label)
	case !wantAsync && asyncSCSI > 0:
		t.Errorf("%s: the live session received %d SCSI Async Message(s) for an edit that does not change A's LUNs", label, asyncSCSI)
	}
	return next
}

// checkIOErrors reports the I/O errors of either load that happened since
// the last check, naming the edit during which they were seen.
func (r *reloadRun) checkIOErrors(label string) {
	t := r.t
	t.Helper()
	live := r.live.ioErrors()
	for _, e := range live[r.liveErrs:] {
		t.Errorf("%s: I/O error of the live session: %s", label, e)
	}
	r.liveErrs = len(live)
	if r.qemu == nil {
		return
	}
	qemu := r.qemu.ioErrors()
	for _, e := range qemu[r.qemuErrs:] {
		t.Errorf("%s: I/O error of qemu-io: %s", label, e)
	}
	r.qemuErrs = len(qemu)
}

// checkSameSession checks that the live session is the one that logged in
// at the start, on the same TCP connection, and the only one of its
// initiator.
func (r *reloadRun) checkSameSession(st daemonStatus) {
	t := r.t
	t.Helper()
	var found int
	for _, s := range st.Engine.Sessions {
		if s.Initiator != liveInitiator {
			continue
		}
		found++
		if s.TSIH != r.live.tsih || s.Target != iqnA || len(s.Connections) != 1 || s.Connections[0].Remote != r.live.local {
			t.Errorf("live session in status: %+v, want TSIH %d on %s with the one connection from %s",
				s, r.live.tsih, iqnA, r.live.local)
		}
	}
	if found != 1 {
		t.Errorf("status lists %d sessions of %s, want 1 (the one that logged in at the start)", found, liveInitiator)
	}
}

// write puts text in place as tr does and triggers the reload; it returns
// the first reload outcome reported after before. mention is what the diagnostics of a rejected file must name.
func (r *reloadRun) write(label, text, mention string, tr trigger, before admin.ReloadReply) admin.ReloadReply {
	t := r.t
	t.Helper()
	cfg := r.tgt.ConfigPath()
	r.lastWrite = time.Now()
	if tr == triggerSymlink {
		r.swapSymlink(text)
	} else {
		tmp := cfg + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg); err != nil {
			t.Fatal(err)
		}
	}
	switch tr {
	case triggerSIGHUP:
		r.tgt.Signal(syscall.SIGHUP)
	case triggerCLI:
		out, code := testtarget.Run(t, "reload", "-admin-socket", r.tgt.AdminSocket())
		rep := r.lastReload()
		switch {
		case rep.OK && (code != 0 || !strings.Contains(out, "applied: generation")):
			t.Errorf("%s: `scstd reload` exited %d for an applied file, want 0 and the plan\n%s", label, code, out)
		case !rep.OK && (code != 1 || !strings.Contains(out, "reload rejected") || !strings.Contains(out, "scstd.hcl:") ||
			!strings.Contains(out, mention)):
			t.Errorf("%s: `scstd reload` exited %d for a rejected file, want 1 and file:line diagnostics naming %q\n%s",
				label, code, mention, out)
		}
		return rep
	}
	deadline := time.Now().Add(testtarget.ReloadTimeout)
	for {
		rep := r.lastReload()
		if rep.Time.After(before.Time) {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no reload within %v", label, testtarget.ReloadTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// swapSymlink publishes text the way a ConfigMap volume does: a new
// ..vN directory, ..data re-pointed to it by rename, and the configuration
// path a symlink to ..data/scstd.hcl.
func (r *reloadRun) swapSymlink(text string) {
	t := r.t
	t.Helper()
	r.symlinks++
	dir := r.tgt.Dir()
	vdir := fmt.Sprintf("..v%d", r.symlinks)
	if err := os.Mkdir(filepath.Join(dir, vdir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, vdir, "scstd.hcl"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(vdir, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	cfg := r.tgt.ConfigPath()
	const link = "..data/scstd.hcl"
	if dst, err := os.Readlink(cfg); err != nil || dst != link {
		if err := os.Symlink(link, cfg+".lnk"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(cfg+".lnk", cfg); err != nil {
			t.Fatal(err)
		}
	}
	// The kubelet then removes the previous version.
	if r.symlinks > 1 {
		if err := os.RemoveAll(filepath.Join(dir, fmt.Sprintf("..v%d", r.symlinks-1))); err != nil {
			t.Fatal(err)
		}
	}
}

// The file watch's debounces in cmd/scstd: its reload of a file renamed
// into place (as reloadRun writes, and a symlink swap) starts at least
// watchRenameDebounce after the rename; of a file written in place, at
// least watchDebounce after the last write.
const (
	watchDebounce       = 300 * time.Millisecond
	watchRenameDebounce = 20 * time.Millisecond
)

// settle waits until the reloads an edit causes are over and returns the
// last one's outcome. Every write of a new content is reloaded by the file
// watch, besides any SIGHUP or `scstd reload`, so after a write
// (afterWrite) it first waits for a reload that started a debounce after
// the write; then for 200 ms without another reload.
func (r *reloadRun) settle(afterWrite bool) admin.ReloadReply {
	t := r.t
	t.Helper()
	deadline := time.Now().Add(testtarget.ReloadTimeout)
	last := r.lastReload()
	if afterWrite {
		for last.Time.Before(r.lastWrite.Add(watchRenameDebounce)) {
			if time.Now().After(deadline) {
				t.Fatalf("the file watch did not reload within %v of a write of %s (last reload: %+v)",
					testtarget.ReloadTimeout, r.tgt.ConfigPath(), last)
			}
			time.Sleep(20 * time.Millisecond)
			last = r.lastReload()
		}
	}
	for {
		time.Sleep(200 * time.Millisecond)
		now := r.lastReload()
		if now.Time.Equal(last.Time) {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon kept reloading for %v after an edit (last: %+v)", testtarget.ReloadTimeout, now)
		}
		last = now
	}
}

func (r *reloadRun) render(tpl string) string {
	text, err := testtarget.Render(tpl, r.tgt.Params())
	if err != nil {
		r.t.Fatal(err)
	}
	return text
}

// plan runs `scstd plan` on text written to a file of its own.
func (r *reloadRun) plan(text string) (string, int) {
	path := filepath.Join(r.planDir, "scstd.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return testtarget.Run(r.t, "plan", "-config", path, "-admin-socket", r.tgt.AdminSocket())
}

func (r *reloadRun) lastReload() admin.ReloadReply {
	rep, err := r.tgt.Admin().LastReload()
	if err != nil {
		r.t.Fatalf("admin API: %v", err)
	}
	return rep
}

// status runs `scstd status -json`.
func (r *reloadRun) status() daemonStatus {
	out, code := testtarget.Run(r.t, "status", "-json", "-admin-socket", r.tgt.AdminSocket())
	var st daemonStatus
	if code != 0 {
		r.t.Fatalf("scstd status -json exited %d\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		r.t.Fatalf("scstd status -json: %v\n%s", err, out)
	}
	return st
}

func bytesOf(b byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = b
	}
	return p
}
