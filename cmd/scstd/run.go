package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/reconcile"
)

// shutdownGrace bounds how long a stopping daemon waits for sessions to log
// out and commands in flight to finish.
const shutdownGrace = 10 * time.Second

func cmdRun(o *options, fs *flag.FlagSet) (int, error) {
	if fs.NArg() != 0 {
		return 2, errUsage
	}
	log := newLogger(os.Stderr)
	// Missing storage is not a config error at run time: that device
	// starts offline and is retried, and the rest serves.
	ld, ok := loadAndReport(o.config, o.stderr, false)
	if !ok {
		return 1, fmt.Errorf("%s: the configuration has errors; nothing was started", o.config)
	}

	srv := iscsi.NewServer(log)
	srv.SetDescriptorLimit(raiseNoFile(log))
	eng := reconcile.NewEngine(srv, log, reconcile.Options{})
	defer eng.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Take SIGHUP before anything is served: its default action would end
	// the daemon, and a reload request may come as soon as a portal is up.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	d := &daemonState{log: log, path: o.config, eng: eng, srv: srv}
	first := d.apply(ctx, ld, false, "start")
	if !first.OK {
		fmt.Fprint(o.stderr, first.Diagnostics)
		return 1, fmt.Errorf("cannot start: %s", first.Error)
	}

	adminLn, err := admin.Listen(o.adminSocket)
	if err != nil {
		srv.Shutdown(context.Background())
		return 1, err
	}
	adminSrv := admin.NewServer(d)
	go func() {
		if err := adminSrv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin socket stopped", "err", err)
		}
	}()
	defer os.Remove(o.adminSocket)
	log.Info("scstd running", "version", version, "config", o.config, "admin_socket", o.adminSocket,
		"generation", first.Generation)

	changes, err := watchConfig(ctx, o.config, log)
	if err != nil {
		log.Warn("config file watch unavailable; reload with SIGHUP or `scstd reload`", "err", err)
	}
	daemon.SdNotify(false, daemon.SdNotifyReady)

	for {
		select {
		case <-ctx.Done():
			daemon.SdNotify(false, daemon.SdNotifyStopping)
			log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			adminSrv.Shutdown(sctx)
			err := srv.Shutdown(sctx)
			cancel()
			if err != nil && !errors.Is(err, iscsi.ErrServerClosed) {
				log.Warn("shutdown", "err", err)
			}
			// Deregisters from the iSNS servers and closes the storage.
			if err := eng.Close(); err != nil {
				log.Warn("shutdown", "err", err)
			}
			return 0, nil
		case <-hup:
			d.Reload(ctx, false)
		case <-changes:
			d.reloadFrom(ctx, false, "file watch")
		}
	}
}

// daemonState is the running daemon as the admin API sees it. Reloads are
// serialized by mu; the engine itself is safe for concurrent readers.
type daemonState struct {
	log  *slog.Logger
	path string
	eng  *reconcile.Engine
	srv  *iscsi.Server

	mu   sync.Mutex
	last admin.ReloadReply
}

// Reload implements admin.Handler; SIGHUP uses it too.
func (d *daemonState) Reload(ctx context.Context, force bool) admin.ReloadReply {
	return d.reloadFrom(ctx, force, "reload")
}

func (d *daemonState) reloadFrom(ctx context.Context, force bool, trigger string) admin.ReloadReply {
	return d.apply(ctx, loadConfig(d.path), force, trigger)
}

// apply applies a loaded configuration (or records why it cannot) and
// returns the outcome that the admin API reports as the last reload.
func (d *daemonState) apply(ctx context.Context, ld *loaded, force bool, trigger string) admin.ReloadReply {
	d.mu.Lock()
	defer d.mu.Unlock()
	reply := admin.ReloadReply{Time: time.Now().UTC(), Generation: d.last.Generation, ConfigHash: d.last.ConfigHash}
	if ld.diags.HasErrors() {
		reply.Error = fmt.Sprintf("%s has errors; the running configuration is unchanged", d.path)
		reply.Diagnostics = ld.diagnosticText()
		d.log.Error("reload rejected", "trigger", trigger, "config", d.path, "errors", ld.diagnosticSummary())
		d.last = reply
		return reply
	}
	res, err := d.eng.Apply(ctx, ld.cfg, reconcile.ApplyOptions{Force: force})
	if err != nil {
		reply.Error = err.Error()
		d.log.Error("reload rejected", "trigger", trigger, "config", d.path, "err", err)
		d.last = reply
		return reply
	}
	reply.OK = true
	reply.Generation = res.Generation
	reply.ConfigHash = ld.hash
	reply.Changes = len(res.Plan.Changes)
	reply.Plan = res.Plan.String()
	reply.Detail = marshalDetail(res.Plan)
	if reply.Changes > 0 || trigger == "start" {
		d.log.Info("configuration applied", "trigger", trigger, "generation", reply.Generation,
			"changes", reply.Changes, "config_hash", shortHash(ld.hash))
		for _, line := range splitLines(reply.Plan) {
			d.log.Info("plan", "op", line)
		}
	} else {
		d.log.Info("configuration unchanged", "trigger", trigger, "generation", reply.Generation)
	}
	d.last = reply
	return reply
}

// LastReload implements admin.Handler.
func (d *daemonState) LastReload() admin.ReloadReply {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// Plan implements admin.Handler: what a reload from path would change.
func (d *daemonState) Plan(ctx context.Context, path string) admin.PlanReply {
	ld := loadConfig(path)
	if ld.diags.HasErrors() {
		return admin.PlanReply{Error: path + " has errors", Diagnostics: ld.diagnosticText()}
	}
	p, err := d.eng.Plan(ld.cfg)
	if err != nil {
		return admin.PlanReply{Error: err.Error()}
	}
	return admin.PlanReply{Changes: len(p.Changes), Plan: p.String(), Detail: marshalDetail(p)}
}

// Status implements admin.Handler.
func (d *daemonState) Status(ctx context.Context) any {
	d.mu.Lock()
	last := d.last
	d.mu.Unlock()
	last.Detail = nil // the printed plan says it; the JSON detail is for `reload`
	return map[string]any{
		"config":      d.path,
		"version":     version,
		"last_reload": last,
		"engine":      d.eng.Status(),
	}
}

// CloseSession implements admin.Handler.
func (d *daemonState) CloseSession(target, initiator string) (int, error) {
	return d.srv.CloseSession(target, initiator)
}
