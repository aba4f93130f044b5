package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

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

// opened is the outcome of opening one backend during prepare.
type opened struct {
	spec    spec
	backend storage
	err     error
}

// prepared is everything prepare did that commit makes visible.
type prepared struct {
	plan    Plan
	desired Model
	// opened holds new backends by device name: for added and replaced
	// devices, devices whose backend attributes changed, and offline
	// devices retried.
	opened map[string]opened
	// replaced are devices that get a new scsi.Device; swapped are those
	// of them that existed before, whose LUN maps must be rebuilt.
	replaced, swapped map[string]bool
	// touched are the targets the next snapshot rebuilds; access holds
	// their parsed access control, discovery the discovery CHAP policy.
	touched   map[string]bool
	access    map[string]targetAccess
	discovery iscsi.Auth
	// relUsed are the relative target port identifiers taken, built by
	// autoRelID when a new target needs one.
	relUsed map[uint16]bool
}

// Apply takes the running engine to cfg in two phases. Prepare does all
// that can fail: it opens the backends of new devices (a backend that
// cannot be opened only makes its device offline), reopens those whose
// attributes changed, retries offline devices, and binds new portals; an
// error there changes nothing. Commit cannot fail: it swaps devices and
// backends, publishes the next snapshot, sends the session effects, and
// schedules removed backends for release.
//
// A plan that ends sessions is refused when cfg says disruptive_changes =
// "refuse", unless opts.Force (the error is a *DisruptiveError).
func (e *Engine) Apply(ctx context.Context, cfg *config.Config, opts ApplyOptions) (*Result, error) {
	desired := FromConfig(cfg)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.observe(&desired)
	plan := Diff(e.running, desired)
	if d := plan.Disruptive(); len(d) > 0 && cfg.DisruptiveChanges == config.DisruptiveRefuse && !opts.Force {
		return nil, &DisruptiveError{Changes: d}
	}
	p, err := e.prepare(plan, desired)
	if err != nil {
		return nil, err
	}
	res := e.commit(p)
	e.syncISNS()
	return res, nil
}

// prepare does what can fail, in an order that leaves nothing changed
// when it does: first the checks without side effects (CHAP policies,
// patterns, redirects), then binding new portals (SetPortals is itself
// all-or-nothing), and last the opening of backends, which cannot fail the
// reload (a backend that does not open makes its device offline) but may
// create or extend a backing file.
func (e *Engine) prepare(plan Plan, desired Model) (*prepared, error) {
	p := &prepared{
		plan: plan, desired: desired,
		opened:   map[string]opened{},
		replaced: map[string]bool{}, swapped: map[string]bool{},
		touched: map[string]bool{}, access: map[string]targetAccess{},
	}
	portals := !e.started
	for _, c := range plan.Changes {
		switch c.Op {
		case AddDevice:
			p.replaced[c.Addr.Device] = true
		case ReplaceDevice:
			p.replaced[c.Addr.Device] = true
			p.swapped[c.Addr.Device] = true
		case SetPortals:
			portals = true
		}
		if c.Addr.Target != "" {
			p.touched[c.Addr.Target] = true
		}
	}
	if len(p.swapped) > 0 {
		for name, t := range desired.Targets {
			if t.mapsAny(p.swapped) {
				p.touched[name] = true
			}
		}
	}
	if err := p.parseAccess(); err != nil {
		return nil, err
	}
	if portals {
		if err := e.srv.SetPortals(desired.ISCSI.Portals); err != nil {
			return nil, fmt.Errorf("reconcile: portals %q: %w; nothing was changed", desired.ISCSI.Portals, err)
		}
	}

	open := func(name string, m Device) {
		s := specOf(m)
		b, err := openStorage(s)
		p.opened[name] = opened{spec: s, backend: b, err: err}
	}
	for name := range p.replaced {
		open(name, desired.Devices[name])
	}
	// Devices kept: reopen when the backend's spec changed, an earlier
	// reopen failed, or the device is offline.
	for name, d := range e.devices {
		m, ok := desired.Devices[name]
		if !ok || p.replaced[name] {
			continue
		}
		if !d.online() || d.have != specOf(m) {
			open(name, m)
		}
	}
	return p, nil
}

// parseAccess parses and checks the CHAP policies, portal rules,
// redirects and group patterns of the touched targets and of discovery.
func (p *prepared) parseAccess() error {
	var err error
	g := p.desired.ISCSI
	if p.discovery, err = authOf(g.IncomingUsers, g.OutgoingUsers, nil); err != nil {
		return fmt.Errorf("reconcile: discovery CHAP: %w; nothing was changed", err)
	}
	for name := range p.touched {
		t := p.desired.Targets[name]
		if t == nil {
			continue
		}
		a, err := accessOf(t)
		if err != nil {
			return fmt.Errorf("reconcile: target %s: %w; nothing was changed", name, err)
		}
		p.access[name] = a
	}
	return nil
}

// commit makes a prepared plan the running state. It cannot fail.
func (e *Engine) commit(p *prepared) *Result {
	res := &Result{Plan: p.plan}
	var retired []*device // old devices to take offline after publishing

	names := make([]string, 0, len(p.opened))
	for name := range p.opened {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		o := p.opened[name]
		m := p.desired.Devices[name]
		old := e.devices[name]
		if p.replaced[name] {
			if old != nil {
				retired = append(retired, old)
			}
			d := &device{name: name, model: m, dev: scsi.NewDevice(scsiConfig(name, m), nil)}
			e.devices[name] = d
			e.serve(d, o)
			e.noteFileID(d, p.desired.Devices)
			continue
		}
		if o.err != nil && old.online() {
			// The device keeps serving with its old backend and
			// attributes; the new ones are retried.
			old.reason = fmt.Errorf("cannot reopen with the new attributes: %w", o.err)
			res.Warnings = append(res.Warnings, fmt.Sprintf("device %s: %v", name, old.reason))
			e.log.Warn("device keeps its old backend", "device", name, "err", o.err)
			continue
		}
		e.serve(old, o)
		old.model = m
		e.noteFileID(old, p.desired.Devices)
	}
	for _, c := range p.plan.Changes {
		name := c.Addr.Device
		switch c.Op {
		case ResizeDevice, SetDeviceAttr:
			// Attributes that live in the scsi.Device.
			m := p.desired.Devices[name]
			d := e.devices[name]
			d.model = m
			d.dev.SetReadOnly(m.ReadOnly)
			d.dev.SetCache(m.NVCache, m.WriteThrough)
		case RemoveDevice:
			retired = append(retired, e.devices[name])
			delete(e.devices, name)
		}
	}

	// An empty plan changes nothing that sessions read: the snapshot
	// (and its generation) stays.
	old, next := e.snap, e.snap
	if !e.started || !p.plan.Empty() {
		next = e.buildSnapshot(p)
		e.srv.Publish(next) // sets next.Generation
	}
	e.snap, e.started, e.running = next, true, p.desired
	res.Generation = next.Generation

	for _, d := range retired {
		reason := errRemoved
		if _, ok := e.devices[d.name]; ok {
			reason = errReplaced
		}
		d.dev.SetOffline(reason)
		e.release(d.backend)
	}
	e.notify(p, old, next)

	for name, d := range e.devices {
		if !d.online() {
			if d.reason == nil {
				d.reason = d.dev.Offline()
			}
			res.Offline = append(res.Offline, OfflineDevice{Name: name, Reason: d.reason.Error()})
		}
	}
	sort.Slice(res.Offline, func(i, j int) bool { return res.Offline[i].Name < res.Offline[j].Name })
	return res
}

// serve gives d the backend o opened, or takes it offline with o's error.
// A backend d had before is released.
func (e *Engine) serve(d *device, o opened) {
	if o.err != nil {
		d.reason = o.err
		d.dev.SetOffline(o.err)
		e.log.Warn("device offline", "device", d.name, "err", o.err)
		return
	}
	prev := d.backend
	setStorage(d.dev, o.backend)
	if err := d.dev.Offline(); err != nil {
		// The backend could not tell its size: it is useless.
		d.reason, d.backend = err, nil
		e.release(o.backend)
		e.log.Warn("device offline", "device", d.name, "err", err)
	} else {
		if prev == nil && d.reason != nil {
			e.log.Info("device online", "device", d.name)
		}
		d.backend, d.have, d.reason = o.backend, o.spec, nil
	}
	e.release(prev)
}

// buildSnapshot makes the next snapshot, reusing every target (and LUN
// map) that the plan does not touch, so that its sessions see no change.
// It records in p.touched[name] = false the touched targets whose LUN
// maps and groups came out unchanged.
func (e *Engine) buildSnapshot(p *prepared) *iscsi.Snapshot {
	old := e.snap
	next := &iscsi.Snapshot{
		Enabled: p.desired.ISCSI.Enabled,
		Targets: make(map[string]*iscsi.Target, len(p.desired.Targets)),
		Auth:    p.discovery,
	}
	for name, t := range p.desired.Targets {
		var ot *iscsi.Target
		if old != nil {
			ot = old.Targets[name]
		}
		if ot != nil && !p.touched[name] {
			next.Targets[name] = ot
			continue
		}
		next.Targets[name] = e.buildTarget(p, name, t, ot)
	}
	for name := range e.targets {
		if _, ok := p.desired.Targets[name]; !ok {
			delete(e.targets, name)
		}
	}
	return next
}

// mapsAny reports whether the target's LUN maps show any of the devices.
func (t *Target) mapsAny(devices map[string]bool) bool {
	if lunsMapAny(t.LUNs, devices) {
		return true
	}
	for _, g := range t.Groups {
		if lunsMapAny(g.LUNs, devices) {
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

// buildTarget makes the engine's target from its model. LUN maps of the
// running target ot (default and per group) are kept when nothing in them
// changed; p.touched[name] is set to false when every map was kept and the
// groups did not change, so that notify leaves the sessions alone.
func (e *Engine) buildTarget(p *prepared, name string, t *Target, ot *iscsi.Target) *iscsi.Target {
	rt := e.targets[name]
	if rt == nil {
		e.nextTID++
		rt = &runTarget{tid: e.nextTID}
		e.targets[name] = rt
	}
	if rt.relID == 0 {
		rt.relID = e.autoRelID(p)
	}
	relID := t.RelTgtID
	if relID == 0 {
		relID = rt.relID
	}
	acc := p.access[name]
	nt := &iscsi.Target{
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
		NopInInterval:  seconds2d(t.NopInInterval),
		NopInTimeout:   seconds2d(t.NopInTimeout),
		RspTimeout:     seconds2d(t.RspTimeout),
		Auth:           acc.auth,
		Access:         iscsi.Access{Portals: acc.portals, Redirect: acc.redirect},
	}
	have := e.running.Targets[name]
	if ot == nil || have == nil {
		have = nil
	}
	same := have != nil && have.PerPortalACL == t.PerPortalACL && len(have.Groups) == len(t.Groups)

	var haveLUNs map[scsi.LUN]LUN
	var oldLUNs *scsi.LUNMap
	if have != nil {
		haveLUNs, oldLUNs = have.LUNs, ot.LUNs
	}
	var kept bool
	nt.LUNs, kept = e.lunMap(p, haveLUNs, t.LUNs, oldLUNs)
	same = same && kept
	nt.Access.LUNs = nt.LUNs

	for _, g := range acc.groups {
		want := t.Groups[g.Name]
		var hg *Group
		var oldMap *scsi.LUNMap
		if have != nil {
			hg = have.Groups[g.Name]
			oldMap = groupLUNs(ot, g.Name)
		}
		var haveGroupLUNs map[scsi.LUN]LUN
		if hg != nil {
			haveGroupLUNs = hg.LUNs
		}
		g.LUNs, kept = e.lunMap(p, haveGroupLUNs, want.LUNs, oldMap)
		same = same && kept && hg != nil && slices.Equal(hg.Initiators, want.Initiators)
		nt.Access.Groups = append(nt.Access.Groups, g)
	}
	if same {
		p.touched[name] = false
	}
	return nt
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

// lunMap returns old when the LUN map model did not change and shows no
// replaced device (kept), or a new map of the running devices.
func (e *Engine) lunMap(p *prepared, have, want map[scsi.LUN]LUN, old *scsi.LUNMap) (m *scsi.LUNMap, kept bool) {
	if old != nil && lunMapsEqual(have, want) && !lunsMapAny(want, p.swapped) {
		return old, true
	}
	units := make(map[scsi.LUN]*scsi.LogicalUnit, len(want))
	for l, lu := range want {
		if d := e.devices[lu.Device]; d != nil {
			units[l] = &scsi.LogicalUnit{Device: d.dev, ReadOnly: lu.ReadOnly}
		}
	}
	return scsi.NewLUNMap(units), false
}

// autoRelID returns the smallest relative target port identifier that no
// running target and no configured rel_tgt_id uses. The set of used
// identifiers is built once per Apply, on first use.
func (e *Engine) autoRelID(p *prepared) uint16 {
	if p.relUsed == nil {
		p.relUsed = map[uint16]bool{}
		for _, rt := range e.targets {
			p.relUsed[rt.relID] = true
		}
		for _, t := range p.desired.Targets {
			p.relUsed[t.RelTgtID] = true
		}
	}
	for id := uint16(1); id != 0; id++ {
		if !p.relUsed[id] {
			p.relUsed[id] = true
			return id
		}
	}
	return 0
}

// notify sends the session effects of going from snapshot old to next:
// the asynchronous event and unit attention for live targets whose LUN
// maps or groups changed, and a logout request for targets removed or
// disabled.
func (e *Engine) notify(p *prepared, old, next *iscsi.Snapshot) {
	if old == nil {
		return
	}
	for _, name := range sortedKeys(old.Targets) {
		ot := old.Targets[name]
		if !ot.Enabled {
			continue
		}
		nt := next.Targets[name]
		switch {
		case nt == nil || !nt.Enabled:
			e.srv.RequestLogout(name, e.opts.LogoutGrace)
		case p.touched[name]:
			e.srv.NotifyLUNsChanged(name)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
