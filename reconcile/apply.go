package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// Reasons a device of an older generation is taken offline.
var (
	errRemoved  = errors.New("reconcile: device removed from the configuration")
	errReplaced = errors.New("reconcile: device replaced by a new configuration")
)

// Default negotiation values the configuration does not carry (RFC 7143
// §13.15 and §13.16).
const (
	defaultTime2Wait   = 2
	defaultTime2Retain = 20
)

// prepared is everything prepare did that commit makes visible.
type prepared struct {
	plan Plan
	// next is the running model after the plan (Model.apply): what
	// commit makes run, computed from the plan alone.
	next Model
	// renamed maps the new name of a renamed device to its running name.
	renamed map[string]string
	// opened holds new backends by device name: for added and replaced
	// devices, devices whose backend attributes changed, and offline
	// devices retried.
	opened map[string]opened
	// pr holds, for added and replaced devices, the persistent
	// reservations saved for them (see loadPR).
	pr map[string]savedPR
	// metrics is the metrics endpoint's new listener (metrics.go).
	metrics metricsMove
}

// discard closes the backends prepare opened, for a reload that stops
// before its commit.
func (p *prepared) discard() {
	p.metrics.discard()
	for _, o := range p.opened {
		if o.backend != nil {
			o.backend.Close()
		}
	}
}

// Apply takes the running engine to cfg. It computes the plan against
// what runs and the live sessions, and refuses a disruptive one (a
// *DisruptiveError) when the running configuration says
// disruptive_changes = "refuse" (at the first Apply: cfg says), unless
// opts.Force. Then two phases. Prepare does all that can fail, outside
// the engine lock: it opens the backends of new devices, reopens those
// whose attributes changed and retries offline devices (each with
// Options.OpenTimeout; one that fails or hangs only makes its device
// offline), and binds new portals; an error there changes nothing. (The
// access rules are values the configuration checked: nothing about them
// can fail here.) Commit cannot fail: it executes the plan on the
// running state (commit), then publishes the next snapshot with the
// effects on live sessions the plan printed, and releases retired
// storage once the commands using it have completed (run).
func (e *Engine) Apply(ctx context.Context, cfg *config.Config, opts ApplyOptions) (*Result, error) {
	desired := FromConfig(cfg)
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	running, started, policy, serving, drives := e.running, e.started, e.policy, e.serving(), e.drives()
	e.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stateWarning, err := e.openState(desired.StateDir, running.StateDir, started)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if !started {
		e.startCluster(desired.Cluster)
	}
	seed := e.idSeed()
	e.mu.Unlock()
	identify(&desired, seed, running.Devices)
	e.observe(&desired, serving)
	if !started {
		// The daemon joins the cluster the start's configuration names.
		running.Cluster = desired.Cluster
	}
	sessions := e.liveSessions(drives)
	plan := Diff(running, desired, sessions)
	if !started {
		policy = cfg.DisruptiveChanges
	}
	if d := plan.Disruptive(); len(d) > 0 && policy == config.DisruptiveRefuse && !opts.Force {
		return nil, &DisruptiveError{Plan: plan, Changes: d}
	}
	p, err := e.prepare(ctx, plan, running, started)
	if err != nil {
		return nil, err
	}
	// The plan does not carry state_dir: the first Apply opened it, and
	// it stays (openState).
	if !started {
		p.next.StateDir = desired.StateDir
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		p.discard()
		return nil, ErrClosed
	}
	if err := e.recheck(p, running, desired, sessions, drives, policy, opts.Force); err != nil {
		p.discard()
		return nil, err
	}
	res := e.run(e.commit(p))
	if stateWarning != "" {
		res.Warnings = append(res.Warnings, stateWarning)
	}
	e.policy = cfg.DisruptiveChanges
	return res, nil
}

// recheck looks at the live sessions again once the engine lock is held
// for the commit: sessions that logged in, out or locked a medium while
// prepare opened storage (up to Options.OpenTimeout) were not in the plan.
// When they changed, the plan is computed again with them, so that the
// policy judges, and the effects reach, the sessions that run now: a
// session that logged in during prepare is not handed another disk
// behind its LUN under disruptive_changes = "refuse". Called with e.mu
// held.
func (e *Engine) recheck(p *prepared, running, desired Model, planned []Session, drives map[string]*scsi.Device, policy config.DisruptivePolicy, force bool) error {
	now := e.liveSessions(drives)
	if slices.EqualFunc(now, planned, func(a, b Session) bool {
		return a.SessionID == b.SessionID && a.PortalIP == b.PortalIP && slices.Equal(a.Locks, b.Locks)
	}) {
		return nil
	}
	plan := Diff(running, desired, now)
	if !slices.EqualFunc(plan.Changes, p.plan.Changes, func(a, b Change) bool {
		return a.Op == b.Op && a.Addr == b.Addr && a.Attr == b.Attr
	}) {
		return errors.New("the live sessions changed the plan while it was prepared; nothing was changed: reload again")
	}
	if d := plan.Disruptive(); len(d) > 0 && policy == config.DisruptiveRefuse && !force {
		return &DisruptiveError{Plan: plan, Changes: d}
	}
	p.plan = plan
	return nil
}

// prepare does what can fail, in an order that leaves nothing changed
// when it does: first the opening of backends, which cannot fail the
// reload (a backend that does not open makes its device offline) but may
// create a backing file (a dev_disk disk is held to its recorded
// identity, but a record is saved only at the commit: recordDisk), then
// the binding of the metrics endpoint's new address (closed again if what
// follows fails), and last the binding of new portals (SetPortals is
// itself all-or-nothing). It runs without e.mu; e.applyMu keeps the
// device table still.
func (e *Engine) prepare(ctx context.Context, plan Plan, running Model, started bool) (*prepared, error) {
	p := &prepared{plan: plan, next: running.apply(plan), renamed: map[string]string{}, pr: map[string]savedPR{}}
	portals := !started
	open := map[string]spec{}
	// An added device's PR file is looked up in one listing of their
	// directory; a replaced device's is always opened, as the device it
	// replaces may still write it.
	listing := &prListing{}
	for _, c := range plan.Changes {
		switch c.Op {
		case AddDevice, ReplaceDevice:
			open[c.Addr.Device] = specOf(p.next.Devices[c.Addr.Device])
			if m := p.next.Devices[c.Addr.Device]; !e.sharesPR(m) {
				l := listing
				if c.Op == ReplaceDevice {
					l = nil
				}
				p.pr[c.Addr.Device] = e.loadPR(c.Addr.Device, m, l)
			}
		case RenameDevice:
			p.renamed[c.Addr.Device] = c.Before.(string)
		case SetPortals:
			portals = true
		}
	}
	// Devices kept: reopen when the backend's spec changed (a serving
	// device may then grow its file), an earlier reopen failed, or the
	// device is offline.
	for name, m := range p.next.Devices {
		d := e.devices[cmp.Or(p.renamed[name], name)]
		if _, ok := open[name]; ok || d == nil {
			continue
		}
		if spec, ok := d.reopen(m); ok {
			open[name] = spec
		}
	}
	p.opened = e.openAll(ctx, open, p.renamed)
	if err := ctx.Err(); err != nil {
		p.discard()
		return nil, err
	}
	m, err := e.prepareMetrics(plan, p.next, started)
	if err != nil {
		p.discard()
		return nil, err
	}
	p.metrics = m
	if portals {
		addrs := addrStrings(p.next.ISCSI.Portals)
		if err := e.srv.SetPortals(addrs); err != nil {
			p.discard()
			return nil, fmt.Errorf("reconcile: portals %q: %w; nothing was changed", addrs, err)
		}
	}
	return p, nil
}

// openAll opens the storage of specs in parallel, each within the time
// limit, and holds dev_disk disks to their recorded identity (renamed
// maps a device's new name to its running name). Storage that names no
// file or disk (a nullio device, an empty drive) has nothing that can
// hang: it is opened here, in turn, without the goroutines and the
// timer a file's open takes (the opens of a start of 10,000 nullio
// devices: 56-63 ms through goroutines, 12-16 ms in turn).
func (e *Engine) openAll(ctx context.Context, specs map[string]spec, renamed map[string]string) map[string]opened {
	out := make(map[string]opened, len(specs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, s := range specs {
		if s.where() == "" {
			o := e.open.Open(ctx, s)
			mu.Lock()
			out[name] = o
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := e.open.Open(ctx, s)
			if s.Handler == devDisk && o.err == nil {
				o = e.checkDisk(name, renamed[name], o)
			}
			mu.Lock()
			out[name] = o
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// step is one Apply's commit: the running state after the plan and what
// the runner does to get there. commit computes it from the running
// state and the prepared plan without touching either; run carries it
// out.
type step struct {
	p       *prepared
	model   Model
	devices map[string]*device
	targets map[string]*runTarget
	nextTID uint32
	relUsed map[uint16]bool
	// snap is the next snapshot; nil keeps the running one (an empty
	// plan changes nothing that sessions read).
	snap    *iscsi.Snapshot
	effects []iscsi.SessionEffect
	// serve are devices to give the backend prepare opened (or the
	// reason it could not); fresh ones are new scsi.Devices.
	serve []string
	// attrs are devices whose scsi.Device attributes change in place.
	attrs []string
	// retire are devices that leave service, and why.
	retire []retired
	// fresh are the devices made new (added or replaced).
	fresh []string
}

type retired struct {
	d      *device
	reason error
}

// commit executes the plan on the running state: device operations on
// the device table, LUN map and target operations on the snapshot (what
// the plan does not name is reused as it is), and the plan's per-session
// impacts become the effects to deliver. It changes nothing itself.
func (e *Engine) commit(p *prepared) *step {
	s := &step{
		p: p, model: p.next,
		devices: e.devices, targets: maps.Clone(e.targets), nextTID: e.nextTID,
		effects: effectsOf(p.plan),
	}
	if changesDevices(p.plan) {
		// A plan that changes no device shares the running table.
		s.devices = maps.Clone(e.devices)
	}
	for _, c := range p.plan.Changes {
		name := c.Addr.Device
		switch c.Op {
		case AddDevice:
			s.devices[name] = newDevice(name, p.next.Devices[name])
			p.pr[name].attach(s.devices[name].dev, e.log)
			s.fresh = append(s.fresh, name)
		case ReplaceDevice:
			s.retire = append(s.retire, retired{s.devices[name], errReplaced})
			s.devices[name] = newDevice(name, p.next.Devices[name])
			p.pr[name].attach(s.devices[name].dev, e.log)
			s.fresh = append(s.fresh, name)
		case RenameDevice:
			old := c.Before.(string)
			d := *s.devices[old]
			d.name = name
			s.devices[name] = &d
			delete(s.devices, old)
		case RemoveDevice:
			s.retire = append(s.retire, retired{s.devices[name], errRemoved})
			delete(s.devices, name)
		case ResizeDevice, SetDeviceAttr:
			s.attrs = append(s.attrs, name)
		}
	}
	s.serve = sortedKeys(p.opened)
	if !e.started || !p.plan.Empty() {
		s.snap = e.nextSnapshot(s)
	}
	return s
}

// reopen says whether a kept device, to run as m, needs its storage
// opened (again) and how: it is offline (a pass-through disk lost
// included), or its storage's attributes differ from m's (a reopen that
// failed is retried so). A device that serves may grow its file
// (Spec.Extend): that is a resize.
func (d *device) reopen(m Device) (spec, bool) {
	want := specOf(m)
	switch {
	case !d.online():
		return want, true
	case d.have != want:
		want.Extend = true
		return want, true
	}
	return want, false
}

// newDevice makes a device that is not serving yet.
func newDevice(name string, m Device) *device {
	return &device{name: name, model: m, dev: scsi.NewDevice(scsiConfig(name, m), nil), reason: scsi.ErrOffline}
}

// run carries out a step: devices get their new backends and attributes,
// the next snapshot is published with the effects on live sessions, and
// retired devices go offline, their storage closed once the commands
// using it have completed. Called with e.mu held.
func (e *Engine) run(s *step) *Result {
	res := &Result{Plan: s.p.plan}
	// s.model is the model Model.apply copied for this step: nothing
	// else holds its maps until it runs, so noteFileID may write them;
	// but for the devices' map, which it shares with the running model
	// when the plan changes no device.
	if len(s.serve) > 0 && !changesDevices(s.p.plan) {
		s.model.Devices = maps.Clone(s.model.Devices)
	}
	for name, d := range s.devices {
		d.model = s.model.Devices[name]
	}
	for _, name := range s.serve {
		d := s.devices[name]
		if w := e.serve(d, s.p.opened[name]); w != "" {
			res.Warnings = append(res.Warnings, w)
		}
		e.noteFileID(d, s.p.opened[name], s.model)
	}
	for _, name := range s.attrs {
		// Attributes that live in the scsi.Device.
		d := s.devices[name]
		d.dev.SetReadOnly(d.model.ReadOnly)
		d.dev.SetCache(d.model.NVCache, d.model.WriteThrough)
	}
	e.attachShared(s)
	// The iSNS registration follows the model that runs; with an empty
	// plan the links, and so the access control, are those running.
	ac := e.syncISNS(s.model)
	if s.snap != nil {
		s.snap.LogoutGrace = e.opts.LogoutGrace
		s.snap.AccessControl = ac
		e.srv.Commit(s.snap, s.effects) // sets s.snap.Generation
		e.snap = s.snap
	}
	e.started = true
	e.running, e.devices, e.targets, e.nextTID = s.model, s.devices, s.targets, s.nextTID
	ports := make(map[string]uint16, len(e.snap.Targets))
	for name, t := range e.snap.Targets {
		ports[name] = t.RelTgtPortID
	}
	e.runALUA(s.p.plan, s.model, e.devices, ports)
	e.serveMetrics(s.p.metrics)
	for _, r := range s.retire {
		if err := e.release(r.d.name, r.d.dev.SetOffline(r.reason)); err != nil {
			e.log.Warn("closing released storage", "device", r.d.name, "err", err)
		}
	}
	e.forgetPR(s.p.plan, s.retire)
	e.forgetDisks(s.p.plan)
	res.Generation = e.snap.Generation
	for name, d := range e.devices {
		if !d.online() {
			res.Offline = append(res.Offline, OfflineDevice{Name: name, Reason: d.offlineReason().Error()})
		}
	}
	slices.SortFunc(res.Offline, func(a, b OfflineDevice) int { return cmp.Compare(a.Name, b.Name) })
	return res
}

// serve gives d the storage o opened, or takes it offline with o's error;
// it saves the identity record of a dev_disk disk o leaves to save
// (recordDisk), or moves aside the corrupt record o's error found
// (moveCorrupt). A device that serves keeps its storage when a reopen
// failed, and the warning says so. Storage d had before (a lost pass-through disk
// included) is released once drained. Called with e.mu held.
func (e *Engine) serve(d *device, o opened) (warning string) {
	if o.err != nil {
		e.moveCorrupt(d.name, o.err)
		if d.online() {
			// It keeps serving with its old storage and attributes; the
			// new ones are retried.
			d.reason = fmt.Errorf("cannot reopen with the new attributes: %w", o.err)
			e.log.Warn("device keeps its old backend", "device", d.name, "err", o.err)
			return fmt.Sprintf("device %s: %v", d.name, d.reason)
		}
		e.goOffline(d, o.err)
		e.log.Warn("device offline", "device", d.name, "err", o.err)
		return ""
	}
	e.recordDisk(d.name, o)
	wasOffline, why := !d.online(), d.offlineReason()
	prev := setStorage(d.dev, o.backend)
	if err := d.dev.Offline(); err != nil {
		// The backend could not tell its size: it is useless.
		d.reason, d.backend, d.empty = err, nil, false
		o.backend.Close()
		e.log.Warn("device offline", "device", d.name, "err", err)
	} else {
		if wasOffline && why != scsi.ErrOffline {
			e.log.Info("device online", "device", d.name)
		}
		have := o.spec
		have.Extend = false
		d.backend, d.have, d.reason, d.empty = o.backend, have, nil, have.noMedium()
		if o.recorded {
			e.dropPR(d)
		}
	}
	if err := e.release(d.name, prev); err != nil {
		e.log.Warn("closing released storage", "device", d.name, "err", err)
	}
	return ""
}

// goOffline takes d offline for reason, releasing the storage it had (a
// lost pass-through disk) once drained. Called with e.mu held.
func (e *Engine) goOffline(d *device, reason error) {
	d.reason, d.backend, d.empty = reason, nil, false
	if err := e.release(d.name, d.dev.SetOffline(reason)); err != nil {
		e.log.Warn("closing released storage", "device", d.name, "err", err)
	}
}

// nextSnapshot makes the snapshot the plan leads to. A target the plan
// does not name, and none of whose LUN maps shows a replaced device, is
// reused as it is, so that its sessions see no change; a target whose
// LUN maps alone change keeps its parameters and access rules; every LUN
// map the plan does not change is reused.
func (e *Engine) nextSnapshot(s *step) *iscsi.Snapshot {
	p, old := s.p, e.snap
	header := map[string]bool{} // targets whose own attributes or groups change
	dirty := map[mapKey]bool{}  // LUN maps that change
	replaced := map[string]bool{}
	for _, c := range p.plan.Changes {
		a := c.Addr
		switch {
		case c.Op == ReplaceDevice:
			replaced[a.Device] = true
		case a.Target == "":
		case a.HasLUN:
			dirty[mapKey{a.Target, a.Group}] = true
		case a.Group != "":
			header[a.Target] = true
			if c.Op == AddGroup {
				dirty[mapKey{a.Target, a.Group}] = true
			}
		default:
			header[a.Target] = true
		}
	}
	next := &iscsi.Snapshot{
		Enabled: p.next.ISCSI.Enabled,
		Targets: make(map[string]*iscsi.Target, len(p.next.Targets)),
		Auth:    authOf(p.next.ISCSI.IncomingUsers, p.next.ISCSI.OutgoingUsers, nil),
		Limits:  limitsOf(p.next.ISCSI),
		TPGT:    e.selfID,
	}
	for _, name := range sortedKeys(p.next.Targets) {
		t := p.next.Targets[name]
		if len(replaced) > 0 {
			if lunsMapAny(t.LUNs, replaced) {
				dirty[mapKey{name, ""}] = true
			}
			for g, tg := range t.Groups {
				if lunsMapAny(tg.LUNs, replaced) {
					dirty[mapKey{name, g}] = true
				}
			}
		}
		var ot *iscsi.Target
		if old != nil {
			ot = old.Targets[name]
		}
		if ot != nil && !header[name] && !t.anyDirty(name, dirty) {
			next.Targets[name] = ot
			continue
		}
		next.Targets[name] = e.buildTarget(s, name, t, ot, header[name], dirty)
	}
	for name := range s.targets {
		if _, ok := p.next.Targets[name]; !ok {
			delete(s.targets, name)
		}
	}
	return next
}

// limitsOf returns the connection caps and login timeouts of g.
func limitsOf(g Global) iscsi.Limits {
	return iscsi.Limits{MaxConnections: int(g.MaxConnections), MaxConnectionsPerAddress: int(g.MaxConnectionsPerAddress),
		LoginTimeout: time.Duration(g.LoginTimeout), DiscoveryIdleTimeout: time.Duration(g.DiscoveryIdleTimeout)}
}

// mapKey names a LUN map: a target's own (group "") or a group's.
type mapKey struct{ target, group string }

// anyDirty reports whether one of t's LUN maps is in dirty.
func (t *Target) anyDirty(name string, dirty map[mapKey]bool) bool {
	if dirty[mapKey{name, ""}] {
		return true
	}
	for g := range t.Groups {
		if dirty[mapKey{name, g}] {
			return true
		}
	}
	return false
}

func lunsMapAny(m map[scsi.LUN]LUN, devices map[string]bool) bool {
	for _, l := range m {
		if devices[l.Device] {
			return true
		}
	}
	return false
}

// buildTarget makes the engine's target: from its model when header (or
// it is new), else as a copy of the running target ot; each LUN map is
// ot's unless dirty.
func (e *Engine) buildTarget(s *step, name string, t *Target, ot *iscsi.Target, header bool, dirty map[mapKey]bool) *iscsi.Target {
	lunMap := func(group string, m map[scsi.LUN]LUN, old *scsi.LUNMap) *scsi.LUNMap {
		if ot != nil && old != nil && !dirty[mapKey{name, group}] {
			return old
		}
		units := make(map[scsi.LUN]*scsi.LogicalUnit, len(m))
		for l, lu := range m {
			if d := s.devices[lu.Device]; d != nil {
				units[l] = &scsi.LogicalUnit{Device: d.dev, ReadOnly: lu.ReadOnly}
				// A LUN that reaches the same device keeps counting.
				if ou := old.Lookup(l); ou != nil && ou.Device == d.dev {
					units[l].Stats = ou.Stats
				}
			}
		}
		return scsi.NewLUNMap(units)
	}
	var nt *iscsi.Target
	if ot == nil || header {
		nt = e.targetHeader(s, name, t)
		nt.Access = accessOf(t, func(group string) *scsi.LUNMap {
			var old *scsi.LUNMap
			if ot != nil {
				old = groupLUNs(ot, group)
			}
			return lunMap(group, t.Groups[group].LUNs, old)
		})
	} else {
		c := *ot
		nt = &c
		nt.Access.Groups = slices.Clone(ot.Access.Groups)
		for i := range nt.Access.Groups {
			g := &nt.Access.Groups[i]
			g.LUNs = lunMap(g.Name, t.Groups[g.Name].LUNs, g.LUNs)
		}
	}
	var old *scsi.LUNMap
	if ot != nil {
		old = ot.LUNs
	}
	nt.LUNs = lunMap("", t.LUNs, old)
	return nt
}

// targetHeader makes a target's parameters and CHAP policy from its
// model.
func (e *Engine) targetHeader(s *step, name string, t *Target) *iscsi.Target {
	rt := s.targets[name]
	if rt == nil {
		s.nextTID++
		rt = &runTarget{tid: s.nextTID}
		s.targets[name] = rt
	}
	if rt.relID == 0 {
		rt = &runTarget{tid: rt.tid, relID: s.autoRelID()}
		s.targets[name] = rt
	}
	relID := t.RelTgtID
	switch {
	case e.selfID != 0:
		relID = relPortID(e.selfID, relID)
	case relID == 0:
		relID = rt.relID
	}
	return &iscsi.Target{
		Name:         name,
		Enabled:      t.Enabled,
		TID:          rt.tid,
		RelTgtPortID: relID,
		Params: iscsi.Params{
			HeaderDigest:             t.HeaderDigest,
			DataDigest:               t.DataDigest,
			ImmediateData:            t.ImmediateData,
			InitialR2T:               t.InitialR2T,
			MaxRecvDataSegmentLength: t.MaxRecvDataSegmentLength,
			MaxXmitDataSegmentLength: t.MaxXmitDataSegmentLength,
			MaxBurstLength:           t.MaxBurstLength,
			FirstBurstLength:         t.FirstBurstLength,
			MaxOutstandingR2T:        t.MaxOutstandingR2T,
			DefaultTime2Wait:         defaultTime2Wait,
			DefaultTime2Retain:       defaultTime2Retain,
		},
		QueuedCommands: t.QueuedCommands,
		NopInInterval:  time.Duration(t.NopInInterval),
		NopInTimeout:   time.Duration(t.NopInTimeout),
		RspTimeout:     time.Duration(t.RspTimeout),
		MaxSessions:    int(t.MaxSessions),
		Auth:           authOf(t.IncomingUsers, t.OutgoingUsers, t.CHAPAlgorithms),
	}
}

// groupLUNs returns the LUN map of group name in target t, or nil.
func groupLUNs(t *iscsi.Target, name string) *scsi.LUNMap {
	for _, g := range t.Access.Groups {
		if g.Name == name {
			return g.LUNs
		}
	}
	return nil
}

// autoRelID returns the smallest relative target port identifier that no
// running target and no configured rel_tgt_id uses. The set of used
// identifiers is built once per commit, on first use.
func (s *step) autoRelID() uint16 {
	if s.relUsed == nil {
		s.relUsed = map[uint16]bool{}
		for _, rt := range s.targets {
			s.relUsed[rt.relID] = true
		}
		for _, t := range s.p.next.Targets {
			s.relUsed[t.RelTgtID] = true
		}
	}
	for id := uint16(1); id != 0; id++ {
		if !s.relUsed[id] {
			s.relUsed[id] = true
			return id
		}
	}
	return 0
}

// effectsOf gathers, per live session, what the plan's changes do to it:
// what the plan printed, and all that the sessions are told.
func effectsOf(p Plan) []iscsi.SessionEffect {
	var out []iscsi.SessionEffect
	at := map[iscsi.SessionID]int{}
	for _, c := range p.Changes {
		for _, a := range c.Sessions {
			i, ok := at[a.Session]
			if !ok {
				i = len(out)
				at[a.Session] = i
				out = append(out, iscsi.SessionEffect{Session: a.Session})
			}
			ef := &out[i]
			if a.Impact == SessionDrop {
				ef.Logout = true
				continue
			}
			for _, l := range a.LUNs {
				switch l.Kind {
				case LUNAdded:
					ef.Added = append(ef.Added, l.LUN)
				case LUNRemoved:
					ef.Removed = append(ef.Removed, l.LUN)
				case LUNSwapped:
					ef.Swapped = append(ef.Swapped, l.LUN)
				case LUNReadOnly:
					ef.LUNsChanged = true
				}
			}
		}
	}
	kept := out[:0]
	for _, ef := range out {
		if ef.Logout {
			ef.Added, ef.Removed, ef.Swapped, ef.LUNsChanged = nil, nil, nil, false
		} else {
			ef.Added, ef.Removed, ef.Swapped = sortedUnique(ef.Added), sortedUnique(ef.Removed), sortedUnique(ef.Swapped)
			ef.LUNsChanged = ef.LUNsChanged || len(ef.Added)+len(ef.Removed)+len(ef.Swapped) > 0
		}
		if ef.Logout || ef.LUNsChanged {
			kept = append(kept, ef)
		}
	}
	slices.SortFunc(kept, func(a, b iscsi.SessionEffect) int {
		return cmp.Or(cmp.Compare(a.Session.Target, b.Session.Target),
			cmp.Compare(a.Session.Initiator, b.Session.Initiator), cmp.Compare(a.Session.TSIH, b.Session.TSIH))
	})
	return kept
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
