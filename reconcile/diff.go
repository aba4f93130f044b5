package reconcile

import (
	"slices"
	"sort"

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
	reasonCapacityIfGrown = "capacity changed if the file is smaller"
)

// attr is one attribute of a model object of type T: how to read, write
// and compare it, and what changing it does.
type attr[T any] struct {
	name string
	get  func(*T) any
	set  func(*T, any)
	eq   func(a, b *T) bool
	// replace: for devices, a change replaces the device.
	replace bool
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
func listField[T any, E comparable](name string, f func(*T) *[]E, change func(b, a *T) (Op, Impact, string)) attr[T] {
	return attr[T]{
		name:   name,
		get:    func(t *T) any { return *f(t) },
		set:    func(t *T, v any) { *f(t) = v.([]E) },
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

var globalAttrs = []attr[Global]{
	field("enabled", func(g *Global) *bool { return &g.Enabled }, fixed[Global](SetGlobal, NextLogin, "")),
	listField("portals", func(g *Global) *[]string { return &g.Portals }, fixed[Global](SetPortals, NextLogin, "")),
	listField("isns_server", func(g *Global) *[]string { return &g.ISNSServers }, fixed[Global](SetGlobal, Hot, "")),
	listField("isns_access_control", func(g *Global) *[]string { return &g.ISNSAccessControl }, fixed[Global](SetGlobal, NextLogin, "")),
	usersField("incoming_user", func(g *Global) *[]User { return &g.IncomingUsers }),
	usersField("outgoing_user", func(g *Global) *[]User { return &g.OutgoingUsers }),
}

var deviceAttrs = []attr[Device]{
	replacing(field("handler", func(d *Device) *vdisk.Handler { return &d.Handler }, nil)),
	replacing(field("filename", func(d *Device) *string { return &d.Filename }, nil)),
	replacing(field("blocksize", func(d *Device) *uint32 { return &d.BlockSize }, nil)),
	replacing(field("removable", func(d *Device) *bool { return &d.Removable }, nil)),
	replacing(field("t10_dev_id", func(d *Device) *string { return &d.T10DevID }, nil)),
	replacing(field("usn", func(d *Device) *string { return &d.USN }, nil)),
	replacing(field("file_id", func(d *Device) *string { return &d.FileID }, nil)),
	replacing(field("path", func(d *Device) *string { return &d.Path }, nil)),
	field("size", func(d *Device) *int64 { return &d.Size }, resizeImpact),
	field("read_only", func(d *Device) *bool { return &d.ReadOnly }, fixed[Device](SetDeviceAttr, UnitAttention, reasonModeParams)),
	field("nv_cache", func(d *Device) *bool { return &d.NVCache }, fixed[Device](SetDeviceAttr, UnitAttention, reasonModeParams)),
	field("write_through", func(d *Device) *bool { return &d.WriteThrough }, fixed[Device](SetDeviceAttr, UnitAttention, reasonModeParams)),
	field("o_direct", func(d *Device) *bool { return &d.ODirect }, fixed[Device](SetDeviceAttr, Hot, reasonReopened)),
	field("timeout", func(d *Device) *uint32 { return &d.Timeout }, fixed[Device](SetDeviceAttr, Hot, reasonReopened)),
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
	listField("header_digest", func(t *Target) *[]string { return &t.HeaderDigest }, nextLogin),
	listField("data_digest", func(t *Target) *[]string { return &t.DataDigest }, nextLogin),
	field("immediate_data", func(t *Target) *bool { return &t.ImmediateData }, nextLogin),
	field("initial_r2t", func(t *Target) *bool { return &t.InitialR2T }, nextLogin),
	field("max_recv_data_segment_length", func(t *Target) *uint32 { return &t.MaxRecvDataSegmentLength }, nextLogin),
	field("max_xmit_data_segment_length", func(t *Target) *uint32 { return &t.MaxXmitDataSegmentLength }, nextLogin),
	field("max_burst_length", func(t *Target) *uint32 { return &t.MaxBurstLength }, nextLogin),
	field("first_burst_length", func(t *Target) *uint32 { return &t.FirstBurstLength }, nextLogin),
	field("max_outstanding_r2t", func(t *Target) *uint32 { return &t.MaxOutstandingR2T }, nextLogin),
	field("queued_commands", func(t *Target) *uint32 { return &t.QueuedCommands }, fixed[Target](SetTargetParam, Hot, reasonMaxCmdSN)),
	field("nop_in_interval", func(t *Target) *uint32 { return &t.NopInInterval }, nextLogin),
	field("nop_in_timeout", func(t *Target) *uint32 { return &t.NopInTimeout }, nextLogin),
	field("rsp_timeout", func(t *Target) *uint32 { return &t.RspTimeout }, nextLogin),
	listField("allowed_portals", func(t *Target) *[]string { return &t.AllowedPortals }, nextLogin),
	field("per_portal_acl", func(t *Target) *bool { return &t.PerPortalACL }, nextLogin),
	field("redirect", func(t *Target) *string { return &t.Redirect }, nextLogin),
	usersField("incoming_user", func(t *Target) *[]User { return &t.IncomingUsers }),
	usersField("outgoing_user", func(t *Target) *[]User { return &t.OutgoingUsers }),
	listField("chap_algorithms", func(t *Target) *[]string { return &t.CHAPAlgorithms }, nextLogin),
}

func nextLogin(*Target, *Target) (Op, Impact, string) { return SetTargetParam, NextLogin, "" }

var lunAttrs = []attr[LUN]{
	field("device", func(l *LUN) *string { return &l.Device }, fixed[LUN](SetLUNAttr, UnitAttention, reasonLUNsChanged)),
	// A LUN's own read_only changes its LUN map, and sessions are told
	// as for any LUN map change.
	field("read_only", func(l *LUN) *bool { return &l.ReadOnly }, fixed[LUN](SetLUNAttr, UnitAttention, reasonLUNsChanged)),
}

var groupAttrs = []attr[Group]{
	listField("initiators", func(g *Group) *[]string { return &g.Initiators }, fixed[Group](SetGroupInitiators, UnitAttention, reasonLUNsChanged)),
}

// Diff returns the plan that takes running to desired. It is pure: no I/O,
// no clock, no goroutines; Diff(m, m) is empty. Its cost is linear in the
// size of the models and the plan is sorted in tiers (add devices, add
// targets/groups/LUNs, change, remove LUNs/groups/targets, remove devices),
// by address within a tier.
func Diff(running, desired Model) Plan {
	d := differ{running: &running, desired: &desired}
	diffAttrs(&d.plan.Changes, GlobalAddr, globalAttrs, &running.ISCSI, &desired.ISCSI, true)
	d.devices()
	d.targets()
	sort.SliceStable(d.plan.Changes, func(i, j int) bool {
		a, b := d.plan.Changes[i], d.plan.Changes[j]
		ta, tb := a.Op.tier(), b.Op.tier()
		if ta != tb {
			return ta < tb
		}
		return compareAddr(a.Addr, b.Addr, ta == RemoveLUN.tier()) < 0
	})
	return d.plan
}

type differ struct {
	running, desired *Model
	plan             Plan
	// mapped holds the devices a live session may see (mapped by an
	// enabled running target), built on first use.
	mapped map[string]bool
}

// diffAttrs appends a change for every attribute of table that differs
// between b and a. On an object no live session sees (!live), unit
// attentions have no one to go to and the change is hot.
func diffAttrs[T any](p *[]Change, addr Addr, table []attr[T], b, a *T, live bool) {
	for _, at := range table {
		if at.eq(b, a) {
			continue
		}
		op, impact, reason := at.change(b, a)
		if !live && impact == UnitAttention {
			impact, reason = Hot, ""
		}
		*p = append(*p, Change{Op: op, Addr: addr, Attr: at.name, Before: at.get(b), After: at.get(a), Impact: impact, Reason: reason})
	}
}

func (d *differ) devices() {
	for name, want := range d.desired.Devices {
		have, ok := d.running.Devices[name]
		switch {
		case !ok:
			d.plan.Changes = append(d.plan.Changes, Change{Op: AddDevice, Addr: DeviceAddr(name), After: want, Impact: Hot})
		case have == want:
		default:
			d.changedDevice(name, have, want)
		}
	}
	for name, have := range d.running.Devices {
		if _, ok := d.desired.Devices[name]; !ok {
			d.plan.Changes = append(d.plan.Changes, Change{Op: RemoveDevice, Addr: DeviceAddr(name), Before: have, Impact: Hot})
		}
	}
}

// changedDevice appends the changes of a device that differs. (Its own
// function so that only changed devices are copied to the heap.)
func (d *differ) changedDevice(name string, have, want Device) {
	if needsReplace(&have, &want) {
		impact, reason := Hot, ""
		if d.isMapped(name) {
			impact, reason = UnitAttention, reasonLUNsChanged
		}
		d.plan.Changes = append(d.plan.Changes, Change{Op: ReplaceDevice, Addr: DeviceAddr(name), Before: have, After: want, Impact: impact, Reason: reason})
		return
	}
	diffAttrs(&d.plan.Changes, DeviceAddr(name), deviceAttrs, &have, &want, d.isMapped(name))
}

// needsReplace reports whether an identity attribute differs.
func needsReplace(b, a *Device) bool {
	for _, at := range deviceAttrs {
		if at.replace && !at.eq(b, a) {
			return true
		}
	}
	return false
}

// isMapped reports whether a live session may see device name.
func (d *differ) isMapped(name string) bool {
	if d.mapped == nil {
		d.mapped = map[string]bool{}
		for _, t := range d.running.Targets {
			if !t.Enabled {
				continue
			}
			for _, l := range t.LUNs {
				d.mapped[l.Device] = true
			}
			for _, g := range t.Groups {
				for _, l := range g.LUNs {
					d.mapped[l.Device] = true
				}
			}
		}
	}
	return d.mapped[name]
}

func (d *differ) targets() {
	for name, want := range d.desired.Targets {
		have, ok := d.running.Targets[name]
		if !ok {
			d.plan.Changes = append(d.plan.Changes, Change{Op: AddTarget, Addr: TargetAddr(name), After: want.header(), Impact: Hot})
			d.luns(name, "", nil, want.LUNs, false)
			for g, wg := range want.Groups {
				d.plan.Changes = append(d.plan.Changes, Change{Op: AddGroup, Addr: GroupAddr(name, g), After: wg.header(), Impact: Hot})
				d.luns(name, g, nil, wg.LUNs, false)
			}
			continue
		}
		if have == want {
			continue
		}
		live := have.Enabled && want.Enabled
		diffAttrs(&d.plan.Changes, TargetAddr(name), targetAttrs, have, want, live)
		d.luns(name, "", have.LUNs, want.LUNs, live)
		d.groups(name, have.Groups, want.Groups, live)
	}
	for name, have := range d.running.Targets {
		if _, ok := d.desired.Targets[name]; ok {
			continue
		}
		impact, reason := Hot, ""
		if have.Enabled {
			impact, reason = SessionDrop, reasonLoggedOut
		}
		d.plan.Changes = append(d.plan.Changes, Change{Op: RemoveTarget, Addr: TargetAddr(name), Before: have.header(), Impact: impact, Reason: reason})
		d.luns(name, "", have.LUNs, nil, false)
		for g, hg := range have.Groups {
			d.plan.Changes = append(d.plan.Changes, Change{Op: RemoveGroup, Addr: GroupAddr(name, g), Before: hg.header(), Impact: Hot})
			d.luns(name, g, hg.LUNs, nil, false)
		}
	}
}

func (d *differ) groups(target string, have, want map[string]*Group, live bool) {
	impact, reason := Hot, ""
	if live {
		impact, reason = UnitAttention, reasonLUNsChanged
	}
	for name, wg := range want {
		hg, ok := have[name]
		if !ok {
			d.plan.Changes = append(d.plan.Changes, Change{Op: AddGroup, Addr: GroupAddr(target, name), After: wg.header(), Impact: impact, Reason: reason})
			d.luns(target, name, nil, wg.LUNs, false)
			continue
		}
		diffAttrs(&d.plan.Changes, GroupAddr(target, name), groupAttrs, hg, wg, live)
		d.luns(target, name, hg.LUNs, wg.LUNs, live)
	}
	for name, hg := range have {
		if _, ok := want[name]; !ok {
			d.plan.Changes = append(d.plan.Changes, Change{Op: RemoveGroup, Addr: GroupAddr(target, name), Before: hg.header(), Impact: impact, Reason: reason})
			d.luns(target, name, hg.LUNs, nil, false)
		}
	}
}

// luns diffs two LUN maps of one target (group "" is the default map).
func (d *differ) luns(target, group string, have, want map[scsi.LUN]LUN, live bool) {
	impact, reason := Hot, ""
	if live {
		impact, reason = UnitAttention, reasonLUNsChanged
	}
	for l, wl := range want {
		hl, ok := have[l]
		switch {
		case !ok:
			d.plan.Changes = append(d.plan.Changes, Change{Op: AddLUN, Addr: LUNAddr(target, group, l), After: wl, Impact: impact, Reason: reason})
		case hl != wl:
			changedLUN(&d.plan.Changes, LUNAddr(target, group, l), hl, wl, live)
		}
	}
	for l, hl := range have {
		if _, ok := want[l]; !ok {
			d.plan.Changes = append(d.plan.Changes, Change{Op: RemoveLUN, Addr: LUNAddr(target, group, l), Before: hl, Impact: impact, Reason: reason})
		}
	}
}

// changedLUN appends the changes of a LUN entry that differs.
func changedLUN(p *[]Change, addr Addr, have, want LUN, live bool) {
	diffAttrs(p, addr, lunAttrs, &have, &want, live)
}
