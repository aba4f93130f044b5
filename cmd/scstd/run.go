package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/hcl/v2"
	"golang.org/x/sys/unix"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/cluster"
	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/metrics"
	"github.com/scstd/scstd/reconcile"
)

// How long a stopping daemon waits, in order: for admin requests to end,
// for sessions to log out and commands in flight to finish, and for the
// engine to close (iSNS deregistration, storage). A reload that hangs
// holds the engine; the daemon then exits without it, so SIGTERM always
// ends the daemon in adminGrace + engineCloseTimeout when no session is
// left to log out.
const (
	adminGrace         = time.Second
	shutdownGrace      = 10 * time.Second
	engineCloseTimeout = 3 * time.Second
)

func cmdRun(o *options, fs *flag.FlagSet) (int, error) {
	if fs.NArg() != 0 {
		return 2, errUsage
	}
	level := newLogLevel(o.logLevel)
	out := &batchWriter{w: o.stderr}
	log := newLogger(out, o.logFormat, level, noColor(os.Getenv))
	defer startProfiles(log, os.Getenv)()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Take SIGHUP before anything is served: its default action would end
	// the daemon, and a reload request may come as soon as a portal is up.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	srv := iscsi.NewServer(log)
	srv.SetDescriptorLimit(raiseNoFile(log))
	d := &daemonState{
		log: log, logOut: out, changesFormat: changesFormat(out, o.logFormat), level: level, stderr: out, textDiags: o.logFormat == logText,
		path: o.config, watch: o.watch,
		srv: srv, stopping: make(chan struct{}), reloadStats: &metrics.Reloads{},
	}
	d.metrics = metrics.NewEndpoint(metrics.NewRegistry(metrics.NewCollector(metrics.Sources{
		Status: func() reconcile.Status { return d.eng.Status() }, Logins: srv.Logins,
		Reloads: d.reloadStats, Version: version,
	})), log)
	d.eng = reconcile.NewEngine(srv, log, reconcile.Options{Metrics: d.metrics})
	d.reloads = newReloader(d.runBatch)
	d.reloads.after = collectAfterReload
	go d.reloads.loop(ctx)

	// The first configuration is applied by the reload worker too, so
	// that a SIGTERM during a start that hangs still stops the daemon.
	var first admin.ReloadReply
	select {
	case first = <-d.reloads.request(triggerStart, false):
	case <-ctx.Done():
		log.Info("stopped before the configuration was applied")
		d.shutdown(nil)
		return 0, nil
	}
	// From here on the daemon reports through its log, in the format
	// asked for: a start failure is a log record, not a line of text.
	if !first.OK {
		d.shutdown(nil) // the reload logged "start failed"
		return 1, nil
	}

	adminLn, err := admin.Listen(o.adminSocket)
	if err != nil {
		log.Error("start failed", "config", o.config, "admin_socket", o.adminSocket, "err", err)
		d.shutdown(nil)
		return 1, nil
	}
	adminSrv := admin.NewServer(d)
	go func() {
		if err := adminSrv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin socket stopped", "err", err)
		}
	}()
	defer os.Remove(o.adminSocket)
	log.Info("scstd running", "version", version, "config", o.config, "admin_socket", o.adminSocket,
		"generation", first.Generation, "watch", o.watch, "log_level", levelName(level.Level()))
	go d.settle(d.reserve)

	var changes <-chan struct{}
	if o.watch {
		changes, err = watchConfig(ctx, o.config, first.ConfigHash, log)
		if err != nil {
			log.Warn("config file watch unavailable; reload with SIGHUP or `scstd reload`", "err", err)
		}
	} else {
		log.Info("config file watch off (-watch=false); reload with SIGHUP or `scstd reload`")
	}
	daemon.SdNotify(false, daemon.SdNotifyReady)

	for {
		select {
		case <-ctx.Done():
			// A second SIGTERM or SIGINT during the shutdown kills at once.
			stop()
			d.shutdown(adminSrv)
			return 0, nil
		case <-hup:
			d.reloads.request(triggerSIGHUP, false)
		case <-changes:
			d.reloads.request(triggerWatch, false)
		}
	}
}

// daemonState is the running daemon as the admin API sees it. Reloads run
// one at a time on the reloader's goroutine; mu only guards the record of
// their outcomes, so that the admin API answers while a reload runs.
type daemonState struct {
	log *slog.Logger
	// logOut is log's output, which gathers the records of a plan (nil
	// in tests: each record is written at once). When changesFormat is
	// set (logJSON, or logText off a terminal), logChanges writes the
	// records of a plan to it itself, in that format.
	logOut        *batchWriter
	changesFormat string
	stderr        io.Writer // diagnostics of the first load, with -log-format text
	path          string
	watch         bool
	eng           *reconcile.Engine
	srv           *iscsi.Server
	// metrics is the endpoint of the metrics block, which each Apply
	// moves; reloadStats what it says about reloads.
	metrics     *metrics.Endpoint
	reloadStats *metrics.Reloads

	// level is log's level, which each applied log_level sets; with
	// textDiags (-log-format text) the first load's diagnostics go to
	// stderr as text, otherwise they are log records.
	level     *logLevel
	textDiags bool

	reloads  *reloader
	stopping chan struct{} // closed when the daemon starts to stop

	mu   sync.Mutex
	last admin.ReloadReply
	// cluster is the gateway's membership, nil without a cluster block
	// at start; clusterRestart lists the cluster changes that apply at
	// the next start.
	cluster        *cluster.Node
	clusterRestart []string
	// lastApplied is the last reload that changed something (or the
	// start), for "already applied by the file watch at ...".
	lastApplied *admin.ReloadReply
	// unrendered is the plan of the start while the start is the last
	// reload or the last applied one and its Plan and Detail are not
	// rendered yet (see render).
	unrendered *reconcile.Plan
	// packed is the plan of the start, rendered and compressed, once
	// settle has packed it (while the start is shown, as unrendered).
	packed *packedPlan
	// reserve is the memory the start keeps resident for the first
	// reload (reserveFor).
	reserve int
}

// renderLater records p as the plan of the reply just recorded, rendered
// when first asked for.
func (d *daemonState) renderLater(p reconcile.Plan) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unrendered = &p
}

// render fills in the Plan and Detail of the recorded start, if they are
// not yet. Called with d.mu held.
func (d *daemonState) render() {
	var text string
	var detail json.RawMessage
	switch {
	case d.unrendered != nil:
		text, detail = d.unrendered.String(), marshalDetail(*d.unrendered)
	case d.packed != nil:
		var err error
		if text, detail, err = d.packed.unpack(); err != nil {
			text, detail = "(the plan of the start could not be read back: "+err.Error()+")\n", nil
		}
	default:
		return
	}
	d.unrendered, d.packed = nil, nil
	if d.last.Trigger == triggerStart && d.last.Plan == "" {
		d.last.Plan, d.last.Detail = text, detail
	}
	if a := d.lastApplied; a != nil && a.Trigger == triggerStart && a.Plan == "" {
		a.Plan, a.Detail = text, detail
	}
}

// shutdown stops the daemon within bounded time: admin requests get
// adminGrace, sessions shutdownGrace to log out, and the engine
// engineCloseTimeout to close, after which the daemon exits without it (a
// reload hung in an open holds it).
func (d *daemonState) shutdown(adminSrv *http.Server) {
	close(d.stopping)
	daemon.SdNotify(false, daemon.SdNotifyStopping)
	d.log.Info("shutting down")
	if adminSrv != nil {
		actx, cancel := context.WithTimeout(context.Background(), adminGrace)
		if err := adminSrv.Shutdown(actx); err != nil {
			adminSrv.Close()
		}
		cancel()
	}
	d.metrics.Close()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	err := d.srv.Shutdown(sctx)
	cancel()
	if err != nil && !errors.Is(err, iscsi.ErrServerClosed) {
		d.log.Warn("shutdown", "err", err)
	}
	// Leave the cluster once nothing is served: the lease is revoked, so
	// the other gateways see this one go at once.
	d.mu.Lock()
	node := d.cluster
	d.mu.Unlock()
	if node != nil {
		node.Close()
	}
	// Deregisters from the iSNS servers and closes the storage.
	closed := make(chan error, 1)
	go func() { closed <- d.eng.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			d.log.Warn("shutdown", "err", err)
		}
	case <-time.After(engineCloseTimeout):
		d.log.Warn("the engine did not close in time (a reload still holds it); exiting without waiting",
			"waited", engineCloseTimeout)
	}
}

// runBatch is the reloader's work: one reload for the requests of b,
// announced to systemd (RELOADING=1 ... READY=1, as Type=notify-reload
// expects) unless it is the start.
func (d *daemonState) runBatch(ctx context.Context, b *reloadBatch) admin.ReloadReply {
	trigger := b.trigger()
	if trigger == triggerStart {
		return d.reload(ctx, trigger, b.force)
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	daemon.SdNotify(false, fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
	r := d.reload(ctx, trigger, b.force)
	status := fmt.Sprintf("generation %d; last reload (%s) applied", r.Generation, trigger)
	if !r.OK {
		status = fmt.Sprintf("generation %d; last reload (%s) rejected: %s", r.Generation, trigger, r.Error)
	}
	daemon.SdNotify(false, "READY=1\nSTATUS="+strings.ReplaceAll(status, "\n", " "))
	return r
}

// reload reads, checks and applies the configuration once, and records
// the outcome as the last reload. A file of zero bytes is applied only at
// start or when forced: an accidental truncation must not tear down every
// target.
func (d *daemonState) reload(ctx context.Context, trigger string, force bool) (reply admin.ReloadReply) {
	start := time.Now()
	var plan reconcile.Plan
	defer func() { d.reloadStats.Observe(reply.OK, time.Now(), time.Since(start), plan) }()
	d.mu.Lock()
	prev := d.last // not LastReload: the start's plan stays unrendered
	d.mu.Unlock()
	reply = admin.ReloadReply{Time: time.Now().UTC(), Trigger: trigger, Forced: force,
		Generation: prev.Generation, ConfigHash: prev.ConfigHash}
	defer raiseGC()()
	ld := loadConfig(d.path, d.served())
	if trigger == triggerStart && d.textDiags && len(ld.diags) > 0 {
		ld.loader.WriteDiagnostics(d.stderr, ld.diags)
	} else {
		ld.logWarnings(d.log)
	}
	if ld.diags.HasErrors() {
		reply.Error = fmt.Sprintf("%s has errors; the running configuration is unchanged", d.path)
		reply.Diagnostics = ld.diagnosticText()
		d.logFailure(trigger, "errors", ld.lines(hcl.DiagError))
		return d.record(reply, false)
	}
	if empty := ld.emptyFiles(); len(empty) > 0 {
		switch {
		case trigger == triggerStart:
			d.log.Warn("the configuration is empty: serving nothing", "files", empty)
		case !force:
			reply.Error = fmt.Sprintf("%s: empty file ignored; `scstd reload -force` applies it (it would remove every device and target the file declared)",
				strings.Join(empty, ", "))
			d.log.Warn("empty file ignored; `scstd reload -force` applies it", "trigger", trigger, "files", empty)
			return d.record(reply, false)
		}
	}
	if trigger == triggerStart {
		d.joinCluster(ld)
	}
	res, err := d.eng.Apply(ctx, ld.cfg, reconcile.ApplyOptions{Force: force})
	if err != nil {
		reply.Error = err.Error()
		d.logFailure(trigger, "err", err)
		return d.record(reply, false)
	}
	plan = res.Plan
	reply.OK = true
	reply.Generation = res.Generation
	reply.ConfigHash = ld.hash
	reply.Changes = len(res.Plan.Changes)
	if trigger == triggerStart {
		// Nobody waits for the start's reply but the daemon itself: a
		// start of 10,000 LUNs would spend a sixth of its time printing
		// 21,000 changes as text and JSON that may never be asked for.
		// The admin API renders them when it first shows the start.
		defer d.renderLater(res.Plan)
		d.reserve = reserveFor(ld.cfg)
	} else {
		reply.Plan = res.Plan.String()
		reply.Detail = marshalDetail(res.Plan)
	}
	reply.Warnings = append(ld.lines(hcl.DiagWarning), res.Warnings...)
	for _, o := range res.Offline {
		reply.Warnings = append(reply.Warnings, fmt.Sprintf("device %s is offline (it answers NOT READY, and opening it is retried): %s", o.Name, o.Reason))
	}
	applied := reply.Changes > 0 || trigger == triggerStart
	if applied {
		d.log.Info("configuration applied", "trigger", trigger, "forced", force, "generation", reply.Generation,
			"changes", reply.Changes, "config_hash", shortHash(ld.hash))
		d.logChanges(res.Plan, reply.Generation)
	} else {
		d.log.Info("configuration unchanged", "trigger", trigger, "generation", reply.Generation)
	}
	d.applyLogLevel(res.Plan)
	d.applyCluster(ld, res.Plan, trigger == triggerStart)
	return d.record(reply, applied)
}

// logFailure logs a reload that changed nothing because of an error, or,
// at start, a start that started nothing.
func (d *daemonState) logFailure(trigger string, args ...any) {
	if trigger == triggerStart {
		d.log.Error("start failed", append([]any{"config", d.path}, args...)...)
		return
	}
	d.log.Error("reload rejected", append([]any{"trigger", trigger, "config", d.path}, args...)...)
}

// logChanges logs an applied plan, one record a change, each field an
// attribute, for log pipelines; `scstd reload` prints the plan as text.
func (d *daemonState) logChanges(p reconcile.Plan, generation uint64) {
	if d.logOut != nil && d.changesFormat != "" && len(p.Changes) > 1 {
		if d.level.Level() <= slog.LevelInfo {
			writeChanges(d.logOut, d.changesFormat, p, generation)
		}
		return
	}
	if d.logOut != nil && len(p.Changes) > 1 {
		d.logOut.hold()
		defer d.logOut.release()
	}
	for _, c := range p.Changes {
		before, after := c.Values()
		d.log.Info("change applied", "generation", generation, "op", c.Op.String(), "address", c.Addr.String(),
			"attribute", c.Attr, "old", before, "new", after, "impact", c.Impact.String(), "reason", c.Reason)
	}
}

// applyLogLevel carries out an applied plan's change of log_level: the
// daemon's logger, not the engine, runs at that level. A level that hides
// more is announced before it applies, one that shows more after, so that
// the announcement shows under the level that was in force.
func (d *daemonState) applyLogLevel(p reconcile.Plan) {
	for _, c := range p.Changes {
		if c.Op != reconcile.SetGlobal || c.Attr != "log_level" {
			continue
		}
		setting, _ := c.After.(string)
		next, err := d.level.forConfig(setting)
		if err != nil { // config.Load accepts the four names only
			d.log.Error("log_level not applied", "log_level", setting, "err", err)
			continue
		}
		setBy := "log_level"
		if setting == "" {
			setBy = "-log-level"
		}
		announce := func() { d.log.Info("log level", "log_level", levelName(next), "set_by", setBy) }
		if next > d.level.Level() {
			announce()
			d.level.Set(next)
		} else {
			d.level.Set(next)
			announce()
		}
	}
}

// record keeps reply as the last reload (and as the last applied one when
// applied). A reload that changed nothing on a configuration that an
// earlier reload applied as it is now says which one did.
func (d *daemonState) record(reply admin.ReloadReply, applied bool) admin.ReloadReply {
	d.mu.Lock()
	defer d.mu.Unlock()
	if reply.OK && !applied && d.lastApplied != nil && d.lastApplied.ConfigHash == reply.ConfigHash {
		d.render()
		a := *d.lastApplied
		a.Detail, a.AlreadyApplied = nil, nil
		reply.AlreadyApplied = &a
	}
	if applied {
		a := reply
		d.lastApplied = &a
	}
	d.last = reply
	if d.last.Trigger != triggerStart && (d.lastApplied == nil || d.lastApplied.Trigger != triggerStart) {
		d.unrendered, d.packed = nil, nil // the start is no longer shown
	}
	return reply
}

// served lists the devices the engine serves from an open backing file,
// for the storage checks: raising size grows such a file (a resize), while
// any other existing file smaller than size is refused.
func (d *daemonState) served() config.Served { return d.eng.Served() }

// Reload implements admin.Handler: `scstd reload` waits for a reload that
// starts after its request.
func (d *daemonState) Reload(ctx context.Context, force bool) admin.ReloadReply {
	ch := d.reloads.request(triggerAdmin, force)
	notDone := func(why string) admin.ReloadReply {
		r := d.LastReload()
		r.OK, r.Changes, r.Plan, r.Detail, r.AlreadyApplied = false, 0, "", nil, nil
		r.Trigger, r.Forced, r.Diagnostics, r.Error = triggerAdmin, force, "", why
		return r
	}
	select {
	case r := <-ch:
		return r
	case <-d.stopping:
		return notDone("the daemon is stopping; nothing was reloaded")
	case <-ctx.Done():
		return notDone("the request was cancelled before its reload ran (it still runs)")
	}
}

// LastReload implements admin.Handler.
func (d *daemonState) LastReload() admin.ReloadReply {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.render()
	return d.last
}

// Plan implements admin.Handler: what a reload from path (the daemon's own
// configuration when empty) would change, and against which daemon.
func (d *daemonState) Plan(ctx context.Context, path string) admin.PlanReply {
	if path == "" {
		path = d.path
	}
	st := d.eng.Status()
	last := d.LastReload()
	last.Plan, last.Detail, last.Diagnostics, last.AlreadyApplied = "", nil, "", nil
	reply := admin.PlanReply{Daemon: admin.DaemonInfo{PID: os.Getpid(), Config: d.path, Generation: st.Generation,
		Watch: d.watch, LastReload: last}}
	ld := loadConfig(path, d.served())
	reply.EmptyFiles = ld.emptyFiles()
	if ld.diags.HasErrors() {
		reply.Error = path + " has errors"
		reply.Diagnostics = ld.diagnosticText()
		return reply
	}
	p, err := d.eng.Plan(ld.cfg)
	if err != nil {
		reply.Error = err.Error()
		return reply
	}
	reply.Changes, reply.Plan, reply.Detail = len(p.Changes), p.String(), marshalDetail(p)
	return reply
}

// Status implements admin.Handler.
func (d *daemonState) Status(ctx context.Context) any {
	last := d.LastReload()
	last.Detail = nil // the printed plan says it; the JSON detail is for `reload`
	st := map[string]any{
		"config":         d.path,
		"watch":          d.watch,
		"version":        version,
		"log_level":      levelName(d.level.Level()),
		"metrics_listen": d.metrics.Addr(),
		"last_reload":    last,
		"engine":         d.eng.Status(),
	}
	if c := d.clusterStatus(); c != nil {
		st["cluster"] = c
	}
	return st
}

// CloseSession implements admin.Handler.
func (d *daemonState) CloseSession(target, initiator string) (int, error) {
	return d.srv.CloseSession(target, initiator)
}

// A reload decodes the whole configuration: for 10,000 LUNs it allocates
// about as much again as the running daemon holds, all of it garbage once
// applied. At the usual GOGC of 100 that starts a collection in the middle
// of every large reload, marking the whole running state while the reload
// waits for CPU. So a reload runs with the collector's target raised to
// reloadGC percent (unless GOGC asks for more, or for none), and the collection
// comes after it, off the reload's time. After the start, settle runs one
// and gives the start's garbage back to the system but for a reserve the
// size of a reload (settle.go), so that the idle daemon's RSS is what it
// holds and what its next reload needs. After a later reload,
// collectAfterReload runs one but keeps the pages: giving them back after
// each made the next reload fault them in again (340-440 ms of CPU for
// 10,000 LUNs, against 70-170 ms).
const reloadGC = 400

// raiseGC sets the GC percent of a reload and returns what restores the
// one in force before.
func raiseGC() (restore func()) {
	prev := debug.SetGCPercent(reloadGC)
	if prev < 0 || prev > reloadGC {
		debug.SetGCPercent(prev)
	}
	return func() { debug.SetGCPercent(prev) }
}

// collectAfterReload collects the garbage of a reload other than the
// start's once its reply is out, and before the next reload starts,
// without returning it to the system: the next reload then allocates in
// the pages it frees instead of faulting in new ones. Left to the
// collector, a reload's garbage (about 16 MB for 10,000 LUNs) was still
// live-looking when the next reload came, which took fresh pages: 4
// reloads of one LUN left the RSS at 104-106 MB against 76-79 MB so, and
// each after the first took 82-88 ms of CPU against 69-73 ms (a busy VM,
// medians of 6). A reload queued meanwhile waits for the collection
// (10-15 ms for 10,000 LUNs, both cores marking) rather than running
// beside it: started 20 ms after each reload on its own, it ran in the
// middle of the next one when reloads came back to back (an edit saved
// right after the previous one applied; 20 ms is also the watch's wait
// after a rename), and that reload took 20-40 ms longer.
func collectAfterReload(b *reloadBatch) {
	if b.trigger() != triggerStart {
		runtime.GC()
	}
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
