package reconcile

import (
	"cmp"
	"slices"
	"sort"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// Reasons printed with impacts.
const (
	reasonLUNsChanged     = "reported luns changed"
	reasonCapacity        = "capacity changed"
	reasonModeParams      = "mode parameters changed"
	reasonLoggedOut       = "sessions logged out"
	reasonMaxCmdSN        = "applied through MaxCmdSN"
	reasonSecretChanged   = "secret changed"
	reasonNeverShrunk     = "a file is never shrunk"
	reasonReopened        = "backing file reopened"
	reasonDiskReopened    = "disk reopened"
	reasonCapacityIfGrown = "capacity changed if the file is smaller"
	reasonSwap            = "inquiry data changed, reported luns changed"
	reasonMediumChanged   = "medium changed"
	reasonMediumLocked    = "medium removal prevented"
)

// attr is one attribute of a model object of type T: how to read, write
// and compare it, and what changing it does.
type attr[T any] struct {
	name string
	get  func(*T) any
	set  func(*T, any)
	eq   func(a, b *T) bool
	// replace: for devices, a change replaces the device. medium: except
	// on a vcdrom, where it changes the disc (ChangeMedium).
	replace, medium bool
	// change says which operation sets the attribute from b to a and its
	// impact on live sessions.
	change func(b, a *T) (Op, Impact, string)
}

// field makes an attribute of a comparable field.
func field[T any, V comparable](name string, f func(*T) *V, change func(b, a *T) (Op, Impact, string)) attr[T] {
	return attr[T]{
		name:   name,
		get:    func(t *T) any { return *f(t) },
		set:    func(t *T, v any) { *f(t) = v.(V) },
		eq:     func(a, b *T) bool { return *f(a) == *f(b) },
		change: change,
	}
}

// listField makes an attribute of a slice field; order matters.
func listField[T any, S ~[]E, E comparable](name string, f func(*T) *S, change func(b, a *T) (Op, Impact, string)) attr[T] {
	return attr[T]{
		name:   name,
		get:    func(t *T) any { return *f(t) },
		set:    func(t *T, v any) { *f(t) = v.(S) },
		eq:     func(a, b *T) bool { return slices.Equal(*f(a), *f(b)) },
		change: change,
	}
}

// usersField makes an attribute of a CHAP user list. A change of secrets
// alone says so in its reason.
func usersField[T any](name string, f func(*T) *[]User) attr[T] {
	return attr[T]{
		name: name,
		get:  func(t *T) any { return *f(t) },
		set:  func(t *T, v any) { *f(t) = v.([]User) },
		eq:   func(a, b *T) bool { return usersEqual(*f(a), *f(b)) },
		change: func(b, a *T) (Op, Impact, string) {
			if slices.EqualFunc(*f(b), *f(a), func(x, y User) bool { return x.Name == y.Name }) {
				return SetChapUsers, NextLogin, reasonSecretChanged
			}
			return SetChapUsers, NextLogin, ""
		},
	}
}

// fixed is a change function with one operation and impact.
func fixed[T any](op Op, impact Impact, reason string) func(b, a *T) (Op, Impact, string) {
	return func(*T, *T) (Op, Impact, string) { return op, impact, reason }
}

func replacing[T any](a attr[T]) attr[T] {
	a.replace = true
	return a
}

// disc marks a device attribute that replaces a device but is the disc of
// a vcdrom drive.
func disc(a attr[Device]) attr[Device] {
	a.medium = true
	return a
}

var globalAttrs = []attr[Global]{
	field("log_level", func(g *Global) *string { return &g.LogLevel }, fixed[Global](SetGlobal, Hot, "")),
	field(metricsListen, func(g *Global) *string { return &g.MetricsListen }, fixed[Global](SetGlobal, Hot, "")),
	field("enabled", func(g *Global) *bool { return &g.Enabled }, fixed[Global](SetGlobal, NextLogin, "")),
	listField("portals", func(g *Global) *[]access.HostPort { return &g.Portals }, fixed[Global](SetPortals, NextLogin, "")),
	listField("isns_server", func(g *Global) *[]access.HostPort { return &g.ISNSServers }, fixed[Global](SetGlobal, Hot, "")),
	listField("isns_access_control", func(g *Global) *[]access.HostPort { return &g.ISNSAccessControl }, fixed[Global](SetGlobal, NextLogin, "")),
	usersField("incoming_user", func(g *Global) *[]User { return &g.IncomingUsers }),
	usersField("outgoing_user", func(g *Global) *[]User { return &g.OutgoingUsers }),
	field("max_connections", func(g *Global) *uint32 { return &g.MaxConnections }, fixed[Global](SetGlobal, NextLogin, "")),
	field("max_connections_per_address", func(g *Global) *uint32 { return &g.MaxConnectionsPerAddress }, fixed[Global](SetGlobal, NextLogin, "")),
	field("login_timeout", func(g *Global) *Duration { return &g.LoginTimeout }, fixed[Global](SetGlobal, NextLogin, "")),
	field("discovery_idle_timeout", func(g *Global) *Duration { return &g.DiscoveryIdleTimeout }, fixed[Global](SetGlobal, NextLogin, "")),
}

var deviceAttrs = []attr[Device]{
	replacing(field("handler", func(d *Device) *vdisk.Handler { return &d.Handler }, nil)),
	disc(replacing(field("filename", func(d *Device) *string { return &d.Filename }, nil))),
	replacing(field("blocksize", func(d *Device) *uint32 { return &d.BlockSize }, nil)),
	replacing(field("removable", func(d *Device) *bool { return &d.Removable }, nil)),
	replacing(field("t10_dev_id", func(d *Device) *string { return &d.T10DevID }, nil)),
	replacing(field("usn", func(d *Device) *string { return &d.USN }, nil)),
	replacing(field("naa_id", func(d *Device) *string { return &d.NAA }, nil)),
	disc(replacing(field("file_id", func(d *Device) *string { return &d.FileID }, nil))),
	replacing(field("path", func(d *Device) *string { return &d.Path }, nil)),
	field("size", func(d *Device) *int64 { return &d.Size }, resizeImpact),
	field("read_only", func(d *Device) *bool { return &d.ReadOnly }, fixed[Device](SetDeviceAttr, UnitAttention, reasonModeParams)),
	field("nv_cache", func(d *Device) *bool { return &d.NVCache }, fixed[Device](SetDeviceAttr, UnitAttention, reasonModeParams)),
	field("write_through", func(d *Device) *bool { return &d.WriteThrough }, fixed[Device](SetDeviceAttr, UnitAttention, reasonModeParams)),
	field("o_direct", func(d *Device) *bool { return &d.ODirect }, fixed[Device](SetDeviceAttr, Hot, reasonReopened)),
	field("timeout", func(d *Device) *Duration { return &d.Timeout }, fixed[Device](SetDeviceAttr, Hot, reasonDiskReopened)),
}

// resizeImpact: nullio takes any size and a block device exports the size
// asked for (the whole device for 0); a file grows to a larger size and is
// never shrunk.
func resizeImpact(b, a *Device) (Op, Impact, string) {
	switch {
	case a.Handler == vdisk.NullIO || a.Handler == vdisk.BlockIO:
		return ResizeDevice, UnitAttention, reasonCapacity
	case a.Size == 0 || a.Size < b.Size:
		return ResizeDevice, Hot, reasonNeverShrunk
	case b.Size == 0:
		return ResizeDevice, UnitAttention, reasonCapacityIfGrown
	}
	return ResizeDevice, UnitAttention, reasonCapacity
}

var targetAttrs = []attr[Target]{
	field("enabled", func(t *Target) *bool { return &t.Enabled }, func(_, a *Target) (Op, Impact, string) {
		if a.Enabled {
			return EnableTarget, Hot, ""
		}
		return DisableTarget, SessionDrop, reasonLoggedOut
	}),
	field("rel_tgt_id", func(t *Target) *uint16 { return &t.RelTgtID }, nextLogin),
	listField("header_digest", func(t *Target) *[]access.Digest { return &t.HeaderDigest }, nextLogin),
	listField("data_digest", func(t *Target) *[]access.Digest { return &t.DataDigest }, nextLogin),
	field("immediate_data", func(t *Target) *bool { return &t.ImmediateData }, nextLogin),
	field("initial_r2t", func(t *Target) *bool { return &t.InitialR2T }, nextLogin),
	field("max_recv_data_segment_length", func(t *Target) *uint32 { return &t.MaxRecvDataSegmentLength }, nextLogin),
	field("max_xmit_data_segment_length", func(t *Target) *uint32 { return &t.MaxXmitDataSegmentLength }, nextLogin),
	field("max_burst_length", func(t *Target) *uint32 { return &t.MaxBurstLength }, nextLogin),
	field("first_burst_length", func(t *Target) *uint32 { return &t.FirstBurstLength }, nextLogin),
	field("max_outstanding_r2t", func(t *Target) *uint32 { return &t.MaxOutstandingR2T }, nextLogin),
	field("queued_commands", func(t *Target) *uint32 { return &t.QueuedCommands }, fixed[Target](SetTargetParam, Hot, reasonMaxCmdSN)),
	field("nop_in_interval", func(t *Target) *Duration { return &t.NopInInterval }, nextLogin),
	field("nop_in_timeout", func(t *Target) *Duration { return &t.NopInTimeout }, nextLogin),
	field("rsp_timeout", func(t *Target) *Duration { return &t.RspTimeout }, nextLogin),
	field("max_sessions", func(t *Target) *uint32 { return &t.MaxSessions }, nextLogin),
	listField("allowed_portals", func(t *Target) *access.Patterns { return &t.AllowedPortals }, nextLogin),
	// Groups match "initiator#portal_ip" instead of the initiator: live
	// sessions may move to another LUN map.
	field("per_portal_acl", func(t *Target) *bool { return &t.PerPortalACL }, fixed[Target](SetTargetParam, UnitAttention, reasonLUNsChanged)),
	field("redirect", func(t *Target) *access.Redirect { return &t.Redirect }, nextLogin),
	usersField("incoming_user", func(t *Target) *[]User { return &t.IncomingUsers }),
	usersField("outgoing_user", func(t *Target) *[]User { return &t.OutgoingUsers }),
	listField("chap_algorithms", func(t *Target) *[]access.CHAPAlgorithm { return &t.CHAPAlgorithms }, nextLogin),
}

func nextLogin(*Target, *Target) (Op, Impact, string) { return SetTargetParam, NextLogin, "" }

var lunAttrs = []attr[LUN]{
	field("device", func(l *LUN) *string { return &l.Device }, fixed[LUN](SetLUNAttr, UnitAttention, reasonLUNsChanged)),
	// A LUN's own read_only changes its LUN map, and sessions are told
	// as for any LUN map change.
	field("read_only", func(l *LUN) *bool { return &l.ReadOnly }, fixed[LUN](SetLUNAttr, UnitAttention, reasonLUNsChanged)),
}

var groupAttrs = []attr[Group]{
	listField("initiators", func(g *Group) *access.Patterns { return &g.Initiators }, fixed[Group](SetGroupInitiators, UnitAttention, reasonLUNsChanged)),
}

// Diff returns the plan that takes running to desired, with the impact
// of each change on the live sessions (none: nil). It is pure: no I/O,
// no clock, no goroutines; Diff(m, m, s) is empty. The plan is sorted in
// tiers (add and rename devices, add targets/groups/LUNs, change, remove
// LUNs/groups/targets, remove devices), by address within a tier.
//
// A change that acts on live sessions (a LUN map, a group's members, a
// device's capacity, mode parameters or identity, a target's removal)
// lists the sessions it reaches and what each sees; it is Hot (for a
// target attribute: NextLogin) when it reaches none. Which LUN map a
// session sees follows the iSCSI server's rule: the first group, in name
// order, whose initiators match the initiator name (with per_portal_acl,
// "name#portal_ip"), else the target's own LUNs.
func Diff(running, desired Model, sessions []Session) Plan {
	d := differ{
		running: &running, desired: &desired,
		renamed: map[string]string{}, renamedTo: map[string]string{}, replaced: map[string]bool{},
		groupOrder: map[*Target][]string{},
	}
	if len(running.Devices) == 0 && len(running.Targets) == 0 {
		// A start adds everything: size the list once (it grew to
		// 21,000 changes of 240 bytes for 10,000 LUNs).
		d.changes = make([]pending, 0, addedCount(&desired))
	}
	d.findRenames()
	diffAttrs(&d, GlobalAddr, globalAttrs, &running.ISCSI, &desired.ISCSI, Hot)
	d.cluster()
	d.devices()
	d.targets()
	d.deviceGroups()
	d.sort()
	d.reach(sessions)
	plan := Plan{Changes: make([]Change, len(d.changes))}
	for i := range d.changes {
		plan.Changes[i] = d.changes[i].settle()
	}
	return plan
}

// addedCount is how many changes a start that adds m makes, but for the
// global settings, the cluster and ALUA (a few more).
func addedCount(m *Model) int {
	n := len(m.Devices) + len(m.Targets) + 16
	for _, t := range m.Targets {
		n += len(t.LUNs) + len(t.Groups)
		for _, g := range t.Groups {
			n += len(g.LUNs)
		}
	}
	return n
}

// sort puts the changes in tiers, by address within a tier, and in the
// order they were added at the same address (a stable sort). It sorts
// their indexes, then moves each change once: sorting the 240-byte
// changes themselves was half the plan of a start of 10,000 LUNs.
func (d *differ) sort() {
	order := make([]int, len(d.changes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &d.changes[i].Change, &d.changes[j].Change
		ta, tb := a.Op.tier(), b.Op.tier()
		return cmp.Or(cmp.Compare(ta, tb), compareAddr(a.Addr, b.Addr, ta == RemoveLUN.tier()), cmp.Compare(i, j))
	})
	// Position k takes the change at order[k]: follow each cycle of the
	// permutation, marking the positions done.
	for first := range order {
		if order[first] < 0 || order[first] == first {
			continue
		}
		held := d.changes[first]
		k := first
		for {
			from := order[k]
			order[k] = -1
			if from == first {
				d.changes[k] = held
				break
			}
			d.changes[k] = d.changes[from]
			k = from
		}
	}
}

type differ struct {
	running, desired *Model
	changes          []pending
	// renamed maps a device's new name to its running name, for devices
	// renamed (RenameDevice); renamedTo is the reverse.
	renamed, renamedTo map[string]string
	// replaced are devices that get a new scsi.Device (ReplaceDevice).
	replaced map[string]bool
	// groupOrder caches the names of each target's groups, in order.
	groupOrder map[*Target][]string
}

// pending is a change before the sessions it reaches are known.
type pending struct {
	Change
	// scoped changes act on live sessions: their impact comes from the
	// sessions they reach (Affected), else it is fallback.
	scoped   bool
	fallback Impact
	// reason is the Reason of a scoped change that reaches a session and
	// gives it a unit attention.
	reason string
}

// settle fixes a change's impact from the sessions it reaches.
func (p *pending) settle() Change {
	c := p.Change
	if !p.scoped {
		return c
	}
	if len(c.Sessions) == 0 {
		c.Impact, c.Reason = p.fallback, ""
		return c
	}
	c.Impact = Hot
	for _, a := range c.Sessions {
		c.Impact = max(c.Impact, a.Impact)
	}
	switch c.Impact {
	case DeviceSwap, IdentityChange:
		c.Reason = reasonSwap
	case MediumLocked:
		c.Reason = reasonMediumLocked
	case SessionDrop:
		c.Reason = reasonLoggedOut
	default:
		c.Reason = p.reason
	}
	return c
}

// add appends a change. One whose impact is UnitAttention or more acts
// on live sessions and is settled by the sessions it reaches.
func (d *differ) add(c Change, fallback Impact) {
	p := pending{Change: c}
	if c.Impact >= UnitAttention {
		p.scoped, p.fallback, p.reason = true, fallback, c.Reason
	}
	d.changes = append(d.changes, p)
}

// diffAttrs adds a change for every attribute of table that differs
// between b and a; fallback is the impact of one that acts on live
// sessions and reaches none.
func diffAttrs[T any](d *differ, addr Addr, table []attr[T], b, a *T, fallback Impact) {
	for _, at := range table {
		if at.eq(b, a) {
			continue
		}
		op, impact, reason := at.change(b, a)
		d.add(Change{Op: op, Addr: addr, Attr: at.name, Before: at.get(b), After: at.get(a), Impact: impact, Reason: reason}, fallback)
	}
}

// findRenames pairs devices that leave the configuration with devices
// that join it under another name with the same storage and identity
// (every attribute that would otherwise replace a device): those are
// renamed, not removed and added.
func (d *differ) findRenames() {
	var gone []string
	for name := range d.running.Devices {
		if _, ok := d.desired.Devices[name]; !ok {
			gone = append(gone, name)
		}
	}
	if len(gone) == 0 {
		return
	}
	sort.Strings(gone)
	for _, name := range sortedKeys(d.desired.Devices) {
		if _, ok := d.running.Devices[name]; ok {
			continue
		}
		want := d.desired.Devices[name]
		for _, old := range gone {
			have := d.running.Devices[old]
			if d.renamedTo[old] == "" && !needsReplace(&have, &want) && !mediumChanged(&have, &want) {
				d.renamed[name], d.renamedTo[old] = old, name
				break
			}
		}
	}
}

func (d *differ) devices() {
	for name, want := range d.desired.Devices {
		have, ok := d.running.Devices[name]
		switch {
		case ok && have == want:
		case ok:
			d.changedDevice(name, have, want)
		case d.renamed[name] != "":
			d.renamedDevice(name, want)
		default:
			d.add(Change{Op: AddDevice, Addr: DeviceAddr(name), After: want, Impact: Hot}, Hot)
		}
	}
	for name, have := range d.running.Devices {
		if _, ok := d.desired.Devices[name]; !ok && d.renamedTo[name] == "" {
			d.add(Change{Op: RemoveDevice, Addr: DeviceAddr(name), Before: have, Impact: Hot}, Hot)
		}
	}
}

// renamedDevice adds the rename of a device and the changes of its
// attributes. (Its own function, as changedDevice is, so that the loop's
// copy of each device does not escape: 1.4 MB a reload of 10,000.)
func (d *differ) renamedDevice(name string, want Device) {
	old := d.renamed[name]
	d.add(Change{Op: RenameDevice, Addr: DeviceAddr(name), Attr: "name", Before: old, After: name, Impact: Hot}, Hot)
	have := d.running.Devices[old]
	diffAttrs(d, DeviceAddr(name), deviceAttrs, &have, &want, Hot)
}

// changedDevice adds the changes of a device that differs. (Its own
// function so that only changed devices are copied to the heap.) A
// vcdrom whose disc changes keeps its device: ChangeMedium.
func (d *differ) changedDevice(name string, have, want Device) {
	if needsReplace(&have, &want) {
		d.replaced[name] = true
		d.add(Change{Op: ReplaceDevice, Addr: DeviceAddr(name), Before: have, After: want, Impact: DeviceSwap}, Hot)
		return
	}
	if mediumChanged(&have, &want) {
		d.add(Change{Op: ChangeMedium, Addr: DeviceAddr(name), Attr: "filename", Before: mediumOf(&have), After: mediumOf(&want),
			Impact: UnitAttention, Reason: reasonMediumChanged}, Hot)
		have.Filename, have.FileID = want.Filename, want.FileID
	}
	diffAttrs(d, DeviceAddr(name), deviceAttrs, &have, &want, Hot)
}

// needsReplace reports whether an identity attribute differs. The disc
// of a vcdrom (its filename and the file's identity) is not one.
func needsReplace(b, a *Device) bool {
	cd := isDrive(b, a)
	for _, at := range deviceAttrs {
		if at.replace && !(at.medium && cd) && !at.eq(b, a) {
			return true
		}
	}
	return false
}

// mediumChanged reports whether b and a are a vcdrom drive with another
// disc in it.
func mediumChanged(b, a *Device) bool {
	return isDrive(b, a) && mediumOf(b) != mediumOf(a)
}

// isDrive reports whether b and a are both vcdrom drives.
func isDrive(b, a *Device) bool { return b.Handler == vdisk.CDROM && a.Handler == vdisk.CDROM }

func (d *differ) targets() {
	for name, want := range d.desired.Targets {
		have, ok := d.running.Targets[name]
		if !ok {
			d.add(Change{Op: AddTarget, Addr: TargetAddr(name), After: want.header(), Impact: Hot}, Hot)
			d.luns(name, "", nil, want.LUNs)
			for g, wg := range want.Groups {
				d.add(Change{Op: AddGroup, Addr: GroupAddr(name, g), After: wg.header(), Impact: Hot}, Hot)
				d.luns(name, g, nil, wg.LUNs)
			}
			continue
		}
		if have == want {
			continue
		}
		diffAttrs(d, TargetAddr(name), targetAttrs, have, want, NextLogin)
		d.luns(name, "", have.LUNs, want.LUNs)
		d.groups(name, have.Groups, want.Groups)
	}
	for name, have := range d.running.Targets {
		if _, ok := d.desired.Targets[name]; ok {
			continue
		}
		d.add(Change{Op: RemoveTarget, Addr: TargetAddr(name), Before: have.header(), Impact: SessionDrop, Reason: reasonLoggedOut}, Hot)
		d.luns(name, "", have.LUNs, nil)
		for g, hg := range have.Groups {
			d.add(Change{Op: RemoveGroup, Addr: GroupAddr(name, g), Before: hg.header(), Impact: UnitAttention, Reason: reasonLUNsChanged}, Hot)
			d.luns(name, g, hg.LUNs, nil)
		}
	}
}

func (d *differ) groups(target string, have, want map[string]*Group) {
	for name, wg := range want {
		hg, ok := have[name]
		if !ok {
			d.add(Change{Op: AddGroup, Addr: GroupAddr(target, name), After: wg.header(), Impact: UnitAttention, Reason: reasonLUNsChanged}, Hot)
			d.luns(target, name, nil, wg.LUNs)
			continue
		}
		diffAttrs(d, GroupAddr(target, name), groupAttrs, hg, wg, Hot)
		d.luns(target, name, hg.LUNs, wg.LUNs)
	}
	for name, hg := range have {
		if _, ok := want[name]; !ok {
			d.add(Change{Op: RemoveGroup, Addr: GroupAddr(target, name), Before: hg.header(), Impact: UnitAttention, Reason: reasonLUNsChanged}, Hot)
			d.luns(target, name, hg.LUNs, nil)
		}
	}
}

// luns diffs two LUN maps of one target (group "" is the default map).
func (d *differ) luns(target, group string, have, want map[scsi.LUN]LUN) {
	for l, wl := range want {
		hl, ok := have[l]
		switch {
		case !ok:
			d.add(Change{Op: AddLUN, Addr: LUNAddr(target, group, l), After: wl, Impact: UnitAttention, Reason: reasonLUNsChanged}, Hot)
		case hl != wl:
			changedLUN(d, LUNAddr(target, group, l), hl, wl)
		}
	}
	for l, hl := range have {
		if _, ok := want[l]; !ok {
			d.add(Change{Op: RemoveLUN, Addr: LUNAddr(target, group, l), Before: hl, Impact: UnitAttention, Reason: reasonLUNsChanged}, Hot)
		}
	}
}

// changedLUN adds the changes of a LUN entry that differs.
func changedLUN(d *differ, addr Addr, have, want LUN) {
	diffAttrs(d, addr, lunAttrs, &have, &want, Hot)
}
