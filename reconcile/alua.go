package reconcile

import (
	"cmp"
	"maps"
	"slices"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/scsi"
)

// This file is ALUA in the engine: device groups in the model, their
// changes in the plan and what each live session sees of them, and the
// scsi.DeviceGroups the engine runs.
//
// A device group change acts on the sessions that reach one of its
// devices, at a LUN that keeps the device, through a target whose port's
// view of it changes: the target port group (its name, identifier, state
// or preference) or whether the group takes SET TARGET PORT GROUPS. Each
// such session gets ASYMMETRIC ACCESS STATE CHANGED (2Ah/06h) at that
// LUN, and the plan lists it; a session through a port whose view does
// not change sees nothing, so a planned failover (one target group's
// state down, another's up) reaches exactly the paths it flips.

// DeviceGroup is an ALUA device group: its devices and target port
// groups.
type DeviceGroup struct {
	// Devices are the names of its devices, sorted.
	Devices  []string `json:"devices"`
	Explicit bool     `json:"explicit"`
	// TargetGroups by name.
	TargetGroups map[string]*TargetGroup `json:"target_groups"`
}

// TargetGroup is a target port group of a device group.
type TargetGroup struct {
	GroupID   uint16         `json:"group_id"`
	State     scsi.ALUAState `json:"state"`
	Preferred bool           `json:"preferred"`
	// Targets are the names of the targets whose ports are in the group,
	// sorted.
	Targets []string `json:"targets"`
	// Gateway, in a cluster, is the gateway whose ports of Targets are
	// in the group.
	Gateway string `json:"gateway,omitempty"`
}

// header returns g without its target groups: what an AddDeviceGroup or
// RemoveDeviceGroup change describes.
func (g *DeviceGroup) header() *DeviceGroup {
	h := *g
	h.TargetGroups = nil
	return &h
}

func cloneDeviceGroup(g *DeviceGroup) *DeviceGroup {
	c := &DeviceGroup{Devices: slices.Clone(g.Devices), Explicit: g.Explicit}
	if g.TargetGroups != nil {
		c.TargetGroups = make(map[string]*TargetGroup, len(g.TargetGroups))
		for name, tg := range g.TargetGroups {
			t := *tg
			t.Targets = slices.Clone(tg.Targets)
			c.TargetGroups[name] = &t
		}
	}
	return c
}

func deviceGroupsFromConfig(gs []*config.DeviceGroup) map[string]*DeviceGroup {
	if len(gs) == 0 {
		return nil
	}
	out := make(map[string]*DeviceGroup, len(gs))
	for _, g := range gs {
		m := &DeviceGroup{Devices: sortedUnique(slices.Clone(g.Devices)), Explicit: g.Explicit,
			TargetGroups: make(map[string]*TargetGroup, len(g.TargetGroups))}
		for _, tg := range g.TargetGroups {
			m.TargetGroups[tg.Name] = &TargetGroup{GroupID: uint16(tg.GroupID), State: scsi.ALUAStates[string(tg.State)],
				Preferred: tg.Preferred, Targets: sortedUnique(slices.Clone(tg.Targets)), Gateway: tg.Gateway}
		}
		out[g.Name] = m
	}
	return out
}

var deviceGroupAttrs = []attr[DeviceGroup]{
	listField("devices", func(g *DeviceGroup) *[]string { return &g.Devices }, fixed[DeviceGroup](SetDeviceGroupAttr, UnitAttention, reasonALUA)),
	field("explicit", func(g *DeviceGroup) *bool { return &g.Explicit }, fixed[DeviceGroup](SetDeviceGroupAttr, UnitAttention, reasonALUA)),
}

var targetGroupAttrs = []attr[TargetGroup]{
	field("state", func(g *TargetGroup) *scsi.ALUAState { return &g.State }, fixed[TargetGroup](SetALUAState, UnitAttention, reasonALUA)),
	field("preferred", func(g *TargetGroup) *bool { return &g.Preferred }, fixed[TargetGroup](SetALUAState, UnitAttention, reasonALUA)),
	field("group_id", func(g *TargetGroup) *uint16 { return &g.GroupID }, fixed[TargetGroup](SetTargetGroupAttr, UnitAttention, reasonALUA)),
	listField("targets", func(g *TargetGroup) *[]string { return &g.Targets }, fixed[TargetGroup](SetTargetGroupAttr, UnitAttention, reasonALUA)),
	field("gateway", func(g *TargetGroup) *string { return &g.Gateway }, fixed[TargetGroup](SetTargetGroupAttr, UnitAttention, reasonALUA)),
}

// reasonALUA is the unit attention of ALUA changes.
const reasonALUA = "asymmetric access state changed"

// deviceGroups adds the changes of the device groups.
func (d *differ) deviceGroups() {
	for name, want := range d.desired.DeviceGroups {
		have, ok := d.running.DeviceGroups[name]
		if !ok {
			d.add(Change{Op: AddDeviceGroup, Addr: DeviceGroupAddr(name), After: want.header(), Impact: UnitAttention, Reason: reasonALUA}, Hot)
			for tg, wt := range want.TargetGroups {
				d.add(Change{Op: AddTargetGroup, Addr: TargetGroupAddr(name, tg), After: wt, Impact: UnitAttention, Reason: reasonALUA}, Hot)
			}
			continue
		}
		diffAttrs(d, DeviceGroupAddr(name), deviceGroupAttrs, have, want, Hot)
		for tg, wt := range want.TargetGroups {
			ht, ok := have.TargetGroups[tg]
			if !ok {
				d.add(Change{Op: AddTargetGroup, Addr: TargetGroupAddr(name, tg), After: wt, Impact: UnitAttention, Reason: reasonALUA}, Hot)
				continue
			}
			diffAttrs(d, TargetGroupAddr(name, tg), targetGroupAttrs, ht, wt, Hot)
		}
		for tg, ht := range have.TargetGroups {
			if _, ok := want.TargetGroups[tg]; !ok {
				d.add(Change{Op: RemoveTargetGroup, Addr: TargetGroupAddr(name, tg), Before: ht, Impact: UnitAttention, Reason: reasonALUA}, Hot)
			}
		}
	}
	for name, have := range d.running.DeviceGroups {
		if _, ok := d.desired.DeviceGroups[name]; ok {
			continue
		}
		d.add(Change{Op: RemoveDeviceGroup, Addr: DeviceGroupAddr(name), Before: have.header(), Impact: UnitAttention, Reason: reasonALUA}, Hot)
		for tg, ht := range have.TargetGroups {
			d.add(Change{Op: RemoveTargetGroup, Addr: TargetGroupAddr(name, tg), Before: ht, Impact: UnitAttention, Reason: reasonALUA}, Hot)
		}
	}
}

// aluaView is what a target's port shows of a device's ALUA: its device
// group and target port group with identifier, state and preference;
// in a cluster also the other gateways' groups (clusterView). The zero
// value: no ALUA.
type aluaView struct {
	dg, tg    string
	id        uint16
	state     scsi.ALUAState
	preferred bool
	explicit  bool
	others    string
}

// aluaViewOf returns what target shows of device in model m, on this
// gateway (m.Cluster.Gateway) in a cluster.
func aluaViewOf(m *Model, device, target string) aluaView {
	self := ""
	if m.Cluster != nil {
		self = m.Cluster.Gateway
	}
	for dgName, g := range m.DeviceGroups {
		if !slices.Contains(g.Devices, device) {
			continue
		}
		for tgName, tg := range g.TargetGroups {
			if tg.Gateway == self && slices.Contains(tg.Targets, target) {
				v := aluaView{dg: dgName, tg: tgName, id: tg.GroupID, state: tg.State, preferred: tg.Preferred, explicit: g.Explicit}
				if self != "" {
					v.others = clusterView(g, tgName)
				}
				return v
			}
		}
		return aluaView{dg: dgName}
	}
	return aluaView{}
}

// isALUA reports whether op changes device groups.
func (o Op) isALUA() bool {
	switch o {
	case AddDeviceGroup, RemoveDeviceGroup, SetDeviceGroupAttr, AddTargetGroup, RemoveTargetGroup, SetALUAState, SetTargetGroupAttr:
		return true
	}
	return false
}

// reachALUA records, for session s and the LUNs it keeps at the same
// device (before and after, running and desired names), the ALUA changes
// whose view it sees change. changes returns the indexes of the changes
// at an address that keep says.
func (d *differ) reachALUA(s *Session, before, after map[scsi.LUN]LUN, changes func(Addr, func(*Change) bool) []int) {
	if len(d.running.DeviceGroups) == 0 && len(d.desired.DeviceGroups) == 0 {
		return
	}
	alua := func(c *Change) bool { return c.Op.isALUA() }
	for _, l := range sortedLUNs(after) {
		b, ok := before[l]
		a := after[l]
		if !ok || !d.sameDevice(b.Device, a.Device) {
			continue
		}
		vb, va := aluaViewOf(d.running, b.Device, s.Target), aluaViewOf(d.desired, a.Device, s.Target)
		if vb == va {
			continue
		}
		var owners []int
		for i, v := range []aluaView{vb, va} {
			if v.dg == "" {
				continue
			}
			owners = append(owners, changes(DeviceGroupAddr(v.dg), alua)...)
			if v.tg != "" {
				owners = append(owners, changes(TargetGroupAddr(v.dg, v.tg), alua)...)
			}
			if v.others == "" {
				continue
			}
			// In a cluster the session sees every gateway's group.
			m := d.running
			if i == 1 {
				m = d.desired
			}
			for tg := range m.DeviceGroups[v.dg].TargetGroups {
				if tg != v.tg {
					owners = append(owners, changes(TargetGroupAddr(v.dg, tg), alua)...)
				}
			}
		}
		slices.Sort(owners)
		for _, c := range slices.Compact(owners) {
			d.affect(c, s, UnitAttention, []LUNEffect{{LUN: l, Kind: LUNDeviceEvent, Before: b.Device, After: a.Device}})
		}
	}
}

// aluaStore is the engine's scsi.ALUAStore: the states of an explicit SET
// TARGET PORT GROUPS apply at once, and the log says who set what.
type aluaStore struct{ e *Engine }

// Transition logs the states and lets them apply.
func (s aluaStore) Transition(group, initiator string, states []scsi.PortGroupState) error {
	for _, st := range states {
		s.e.log.Info("SET TARGET PORT GROUPS", "device_group", group, "group_id", st.ID, "state", st.State.String(), "initiator", initiator)
	}
	return nil
}

// tpgKey names a running target port group: its device group, name and
// identifier (a group whose identifier changes is another group).
type tpgKey struct {
	dg, tg string
	id     uint16
}

// runALUA makes the device groups of model m run: it carries out the
// plan's state changes on the target port groups it keeps, makes the
// groups that are new (in their configured state), builds each device
// group with the targets' relative port identifiers of snap, and puts
// every device in its group (or none). Called with e.mu held, after the
// snapshot is published.
func (e *Engine) runALUA(p Plan, m Model, devices map[string]*device, snap map[string]uint16) {
	if len(m.DeviceGroups) == 0 && len(e.tpgs) == 0 {
		return
	}
	next := map[tpgKey]*scsi.TargetPortGroup{}
	explicitChanged := map[string]bool{}
	stateChanged := map[tpgKey]bool{}
	for _, c := range p.Changes {
		switch {
		case c.Op == SetDeviceGroupAttr && c.Attr == "explicit":
			explicitChanged[c.Addr.DeviceGroup] = true
		case c.Op == SetALUAState:
			tg := m.DeviceGroups[c.Addr.DeviceGroup].TargetGroups[c.Addr.TargetGroup]
			stateChanged[tpgKey{c.Addr.DeviceGroup, c.Addr.TargetGroup, tg.GroupID}] = true
		}
	}
	member := map[string]*scsi.DeviceGroup{}
	remoteChanged := map[string]bool{}
	done := map[tpgKey]bool{}
	for _, dgName := range sortedKeys(m.DeviceGroups) {
		g := m.DeviceGroups[dgName]
		var members []scsi.PortGroupMember
		for _, tgName := range sortedKeys(g.TargetGroups) {
			tg := g.TargetGroups[tgName]
			k := tpgKey{dgName, tgName, tg.GroupID}
			tpg := e.tpgs[k]
			state := e.effectiveState(tg)
			switch {
			case tpg == nil:
				tpg = scsi.NewTargetPortGroup(tgName, tg.GroupID, state, tg.Preferred)
				remoteChanged[dgName] = remoteChanged[dgName] || tg.Gateway != e.self
			case stateChanged[k]:
				tpg.SetState(state, tg.Preferred)
				done[k] = true
				remoteChanged[dgName] = remoteChanged[dgName] || tg.Gateway != e.self
			case explicitChanged[dgName]:
				tpg.Changed()
			}
			next[k] = tpg
			if e.self != "" {
				members = append(members, e.clusterMember(m, tpg, tg))
				continue
			}
			ports := make([]uint16, 0, len(tg.Targets))
			for _, t := range tg.Targets {
				if id, ok := snap[t]; ok {
					ports = append(ports, id)
				}
			}
			slices.Sort(ports)
			members = append(members, scsi.PortGroupMember{Group: tpg, Targets: tg.Targets, Ports: ports})
		}
		dg := scsi.NewDeviceGroup(dgName, g.Explicit, members, aluaStore{e})
		for _, dev := range g.Devices {
			member[dev] = dg
		}
	}
	for name, d := range devices {
		if dg := member[name]; dg != nil || d.dev.DeviceGroup() != nil {
			d.dev.SetDeviceGroup(dg)
		}
	}
	e.tpgs = next
	if e.self != "" {
		// In a cluster, a change of another gateway's group reaches this
		// gateway's sessions too: their REPORT TARGET PORT GROUPS changes.
		e.announceALUA(remoteChanged, done)
	}
}

// DeviceGroupStatus is one device group as the engine runs it.
type DeviceGroupStatus struct {
	Name         string              `json:"name"`
	Explicit     bool                `json:"explicit"`
	Devices      []string            `json:"devices"`
	TargetGroups []TargetGroupStatus `json:"target_groups"`
}

// TargetGroupStatus is one target port group: its configured state and
// the state it is in (which SET TARGET PORT GROUPS may have changed).
type TargetGroupStatus struct {
	Name      string         `json:"name"`
	GroupID   uint16         `json:"group_id"`
	State     scsi.ALUAState `json:"state"`
	Preferred bool           `json:"preferred"`
	// Configured is the state the configuration gives the group.
	Configured scsi.ALUAState `json:"configured_state"`
	Targets    []string       `json:"targets"`
	// Ports are the targets' relative target port identifiers.
	Ports []uint16 `json:"ports"`
	// Gateway, in a cluster, is the gateway whose ports these are.
	Gateway string `json:"gateway,omitempty"`
}

// deviceGroupStatus returns the running device groups. Called with e.mu
// held.
func (e *Engine) deviceGroupStatus() []DeviceGroupStatus {
	var out []DeviceGroupStatus
	for _, dgName := range sortedKeys(e.running.DeviceGroups) {
		g := e.running.DeviceGroups[dgName]
		st := DeviceGroupStatus{Name: dgName, Explicit: g.Explicit, Devices: g.Devices}
		for _, tgName := range sortedKeys(g.TargetGroups) {
			tg := g.TargetGroups[tgName]
			ts := TargetGroupStatus{Name: tgName, GroupID: tg.GroupID, State: tg.State, Preferred: tg.Preferred,
				Configured: tg.State, Targets: tg.Targets, Gateway: tg.Gateway}
			tpg := e.tpgs[tpgKey{dgName, tgName, tg.GroupID}]
			if tpg != nil {
				ts.State, ts.Preferred = tpg.State()
			}
			if e.self != "" && tpg != nil {
				ts.Ports = e.clusterMember(e.running, tpg, tg).Ports
				st.TargetGroups = append(st.TargetGroups, ts)
				continue
			}
			for _, t := range tg.Targets {
				if e.snap == nil {
					break
				}
				if it := e.snap.Targets[t]; it != nil {
					ts.Ports = append(ts.Ports, it.RelTgtPortID)
				}
			}
			slices.Sort(ts.Ports)
			st.TargetGroups = append(st.TargetGroups, ts)
		}
		slices.SortFunc(st.TargetGroups, func(a, b TargetGroupStatus) int { return cmp.Compare(a.GroupID, b.GroupID) })
		out = append(out, st)
	}
	return out
}

// cloneDeviceGroups deep-copies the device groups of a model.
func cloneDeviceGroups(m map[string]*DeviceGroup) map[string]*DeviceGroup {
	if m == nil {
		return nil
	}
	out := make(map[string]*DeviceGroup, len(m))
	for name, g := range maps.All(m) {
		out[name] = cloneDeviceGroup(g)
	}
	return out
}
