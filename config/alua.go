package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// This file holds the configuration of multipath access: the state
// directory (state_dir), a device's pinned NAA designator (naa_id) and
// ALUA device groups, as SCST's scst.conf declares them:
//
//	DEVICE_GROUP dg1 {                   device_group "dg1" {
//	    DEVICE disk1                       devices  = ["disk1"]
//	    TARGET_GROUP local {               target_group "local" {
//	        group_id 1                       group_id  = 1
//	        state active                     state     = "active/optimized"
//	        TARGET iqn...:a                  targets   = ["iqn...:a"]
//	    }                                  }
//	}                                    }

// DefaultStateDir is the default state directory.
const DefaultStateDir = "/var/lib/scstd"

// DeviceGroup is one device_group block: devices that share target port
// groups and their asymmetric access states (ALUA, SPC-4 §5.15).
type DeviceGroup struct {
	// Name is the device group's name, unique.
	Name string
	// Devices are the names of its devices, in file order.
	Devices []string
	// Explicit lets initiators change states with SET TARGET PORT
	// GROUPS (TPGS 11b); by default states change by reload only (TPGS
	// 01b, implicit).
	Explicit bool
	// TargetGroups are its target groups, in file order.
	TargetGroups []*TargetGroup

	// DeclRange is the range of the block header, NameRange of its label.
	DeclRange hcl.Range
	NameRange hcl.Range
	// DeviceRanges are the ranges of the elements of devices.
	DeviceRanges []hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs map[string]hcl.Range
}

// Range returns the range of attribute name when it was set, and DeclRange
// otherwise.
func (g *DeviceGroup) Range(name string) hcl.Range { return rangeOr(g.Attrs, name, g.DeclRange) }

// TargetGroup is one target_group block of a device group: a target port
// group, the targets whose ports belong to it, and its state.
type TargetGroup struct {
	// Name is the group's name, unique within its device group.
	Name string
	// GroupID is the TARGET PORT GROUP identifier, 0..65535, unique
	// within the device group.
	GroupID int
	// State is the asymmetric access state (default active/optimized).
	State ALUAState
	// Preferred sets PREF in REPORT TARGET PORT GROUPS (default false).
	Preferred bool
	// Targets are the names of its targets, in file order.
	Targets []string
	// Gateway, in a cluster, names the gateway whose ports of Targets
	// are in the group (a member of the cluster block); "" otherwise.
	Gateway string

	// DeclRange is the range of the block header, NameRange of its label.
	DeclRange hcl.Range
	NameRange hcl.Range
	// TargetRanges are the ranges of the elements of targets.
	TargetRanges []hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs map[string]hcl.Range
}

// Range returns the range of attribute name when it was set, and DeclRange
// otherwise.
func (g *TargetGroup) Range(name string) hcl.Range { return rangeOr(g.Attrs, name, g.DeclRange) }

// ALUAState is the value of a target group's state.
type ALUAState string

// The asymmetric access states (SPC-4 §5.15.2.4).
const (
	StateActiveOptimized    ALUAState = "active/optimized"
	StateActiveNonOptimized ALUAState = "active/non-optimized"
	StateStandby            ALUAState = "standby"
	StateUnavailable        ALUAState = "unavailable"
	StateOffline            ALUAState = "offline"
	StateTransitioning      ALUAState = "transitioning"
)

// ALUAStateNames lists the states.
var ALUAStateNames = []ALUAState{StateActiveOptimized, StateActiveNonOptimized, StateStandby,
	StateUnavailable, StateOffline, StateTransitioning}

// scstStates maps SCST's spellings of the states to scstd's, for hints
// (scstd import converts them).
var scstStates = map[string]ALUAState{
	"active": StateActiveOptimized, "nonoptimized": StateActiveNonOptimized,
}

var deviceGroupSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "devices"}, {Name: "explicit"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "target_group", LabelNames: []string{"name"}}},
}

var targetGroupSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "group_id", Required: true}, {Name: "state"},
		{Name: "preferred"}, {Name: "targets"}, {Name: "gateway"}},
}

// stateDir decodes the top-level state_dir.
func (d *decoder) stateDir(a *hcl.Attribute) {
	if prev, dup := d.cfg.Attrs[a.Name]; dup {
		d.duplicate(a.NameRange, "Duplicate attribute", fmt.Sprintf("state_dir is also set at %s.", at(prev)))
		return
	}
	s, ok := d.str(a)
	if !ok {
		return
	}
	if s == "" {
		d.errorf(a.Expr.Range(), "Empty state_dir", "Expected the directory where scstd keeps its state (default %q); remove the attribute for the default.", DefaultStateDir)
		return
	}
	if !filepath.IsAbs(s) {
		s = absPath(d.dir, s)
	}
	d.cfg.StateDir = filepath.Clean(s)
	d.cfg.Attrs[a.Name] = a.Range
}

// naaID decodes a device's naa_id: the NAA designator in hex, 32 digits
// of NAA 6h (IEEE Registered Extended) or 16 of NAA 2h, 3h or 5h, with an
// optional "naa." or "0x" prefix (as the Linux kernel's wwid or sg_vpd
// print it). It returns the designator as lower-case hex digits.
func (d *decoder) naaID(a *hcl.Attribute) (string, bool) {
	s, ok := d.str(a)
	if !ok {
		return "", false
	}
	id, err := ParseNAA(s)
	if err != nil {
		d.errorf(a.Expr.Range(), "Invalid naa_id", "%v. Expected 32 hex digits starting with 6 (NAA IEEE Registered Extended, such as \"naa.6001405abcdef0123456789abcdef012\"), or 16 hex digits starting with 2, 3 or 5.", err)
		return "", false
	}
	return id, true
}

// ParseNAA reads an NAA designator written in hex: 32 digits of NAA 6h
// or 16 of NAA 2h, 3h or 5h, optionally prefixed by "naa." or "0x". It
// returns the lower-case digits.
func ParseNAA(s string) (string, error) {
	h := strings.ToLower(s)
	h = strings.TrimPrefix(strings.TrimPrefix(h, "naa."), "0x")
	if h == "" || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q is not hex digits", s)
	}
	switch {
	case h[0] == '6' && len(h) == 32, (h[0] == '2' || h[0] == '3' || h[0] == '5') && len(h) == 16:
		return h, nil
	case h[0] == '6':
		return "", fmt.Errorf("%q has %d hex digits; NAA 6h takes 32", s, len(h))
	case h[0] == '2' || h[0] == '3' || h[0] == '5':
		return "", fmt.Errorf("%q has %d hex digits; NAA %ch takes 16", s, len(h), h[0])
	}
	return "", fmt.Errorf("%q is NAA %ch, which scstd does not take", s, h[0])
}

// deviceGroup decodes one device_group block.
func (d *decoder) deviceGroup(b *hcl.Block) {
	g := &DeviceGroup{Name: b.Labels[0], DeclRange: b.DefRange, NameRange: b.LabelRanges[0], Attrs: map[string]hcl.Range{}}
	c := d.content(b.Body, deviceGroupSchema)
	if a, ok := c.Attributes["devices"]; ok {
		g.Attrs[a.Name] = a.Range
		g.Devices, g.DeviceRanges, _ = d.strList(a)
	}
	if a, ok := c.Attributes["explicit"]; ok {
		g.Attrs[a.Name] = a.Range
		g.Explicit, _ = d.boolean(a)
	}
	for _, tb := range c.Blocks {
		if tg := d.targetGroup(tb); tg != nil {
			g.TargetGroups = append(g.TargetGroups, tg)
		}
	}
	d.cfg.DeviceGroups = append(d.cfg.DeviceGroups, g)
}

// targetGroup decodes one target_group block.
func (d *decoder) targetGroup(b *hcl.Block) *TargetGroup {
	g := &TargetGroup{Name: b.Labels[0], State: StateActiveOptimized, DeclRange: b.DefRange,
		NameRange: b.LabelRanges[0], Attrs: map[string]hcl.Range{}}
	c := d.content(b.Body, targetGroupSchema)
	for _, a := range sortedAttrs(c.Attributes) {
		g.Attrs[a.Name] = a.Range
		switch a.Name {
		case "group_id":
			if n, ok := d.intIn(a, 0, 65535); ok {
				g.GroupID = int(n)
			}
		case "state":
			s, ok := d.str(a)
			if !ok {
				continue
			}
			if !slices.Contains(ALUAStateNames, ALUAState(s)) {
				hint := ""
				if v, ok := scstStates[strings.ToLower(s)]; ok {
					hint = fmt.Sprintf(" SCST's %q is %q here.", s, v)
				}
				d.errorf(a.Expr.Range(), "Invalid state", "Expected one of %s, got %q.%s", quotedList(ALUAStateNames), s, hint)
				continue
			}
			g.State = ALUAState(s)
		case "preferred":
			g.Preferred, _ = d.boolean(a)
		case "targets":
			g.Targets, g.TargetRanges, _ = d.strList(a)
		case "gateway":
			g.Gateway, _ = d.str(a)
		}
	}
	if _, ok := g.Attrs["group_id"]; !ok {
		return nil // the schema reported it
	}
	return g
}

// deviceGroups checks the device groups against the devices and targets:
// unique names, known devices in at most one group each (dev_disk ones
// excluded: a pass-through disk answers REPORT TARGET PORT GROUPS
// itself), unique group identifiers and targets within a group, known
// targets, and every target that maps a device of a group in one of its
// target groups (a path whose state would be undefined otherwise). In a
// cluster a target group holds one gateway's ports: each names its
// gateway, and every gateway has each target in one group.
func (v *validator) deviceGroups(c *Config, devices map[string]*Device, targets map[string]*Target) {
	names := map[string]*DeviceGroup{}
	member := map[string]*DeviceGroup{}
	for _, g := range c.DeviceGroups {
		if prev, dup := names[g.Name]; dup {
			v.errorf(g.NameRange, "Duplicate device group", "The device group %q is also declared at %s.", g.Name, at(prev.NameRange))
			continue
		}
		names[g.Name] = g
		if len(g.Devices) == 0 {
			v.errorf(g.Range("devices"), "No devices", "The device group %q needs devices = [the names of its devices].", g.Name)
		}
		for i, name := range g.Devices {
			dev, ok := devices[name]
			switch {
			case !ok:
				v.errorf(g.DeviceRanges[i], "Unknown device", "The device group %q names the device %q, which no handler block declares.%s", g.Name, name, suggest(name, devices))
			case dev.Handler == HandlerDevDisk:
				v.errorf(g.DeviceRanges[i], "Pass-through device in a device group", "%q is a dev_disk device: scstd does not serve ALUA for a pass-through disk.", name)
			case member[name] != nil:
				v.errorf(g.DeviceRanges[i], "Device in two device groups", "The device %q is also in the device group %q at %s; a device is in one device group.", name, member[name].Name, at(member[name].NameRange))
			default:
				member[name] = g
			}
		}
		if len(g.TargetGroups) == 0 {
			v.errorf(g.DeclRange, "No target groups", "The device group %q needs target_group blocks, one per set of target ports that share a state.", g.Name)
		}
		if g.Explicit && c.Cluster != nil {
			v.errorf(g.Range("explicit"), "Explicit ALUA in a cluster", "In a cluster the gateways' states follow their membership and `scstd cluster drain`; SET TARGET PORT GROUPS is not offered. Remove explicit from the device group %q.", g.Name)
		}
		tgNames := map[string]*TargetGroup{}
		ids := map[int]*TargetGroup{}
		in := map[portKey]*TargetGroup{}
		for _, tg := range g.TargetGroups {
			v.targetGroupGateway(c, tg)
			if prev, dup := tgNames[tg.Name]; dup {
				v.errorf(tg.NameRange, "Duplicate target group", "The target group %q is also declared at %s.", tg.Name, at(prev.NameRange))
				continue
			}
			tgNames[tg.Name] = tg
			if prev, dup := ids[tg.GroupID]; dup {
				v.errorf(tg.Range("group_id"), "Duplicate group_id", "group_id %d is also the identifier of the target group %q at %s.", tg.GroupID, prev.Name, at(prev.Range("group_id")))
			} else {
				ids[tg.GroupID] = tg
			}
			for i, name := range tg.Targets {
				k := portKey{tg.Gateway, name}
				switch {
				case targets[name] == nil:
					v.errorf(tg.TargetRanges[i], "Unknown target", "The target group %q names the target %q, which no target block declares.", tg.Name, name)
				case in[k] != nil:
					v.errorf(tg.TargetRanges[i], "Target in two target groups", "The target %q is also in the target group %q at %s; a target's port is in one target port group.", name, in[k].Name, at(in[k].NameRange))
				default:
					in[k] = tg
				}
			}
		}
		gateways := []string{""}
		if c.Cluster != nil {
			gateways = gateways[:0]
			for _, m := range c.Cluster.Members {
				gateways = append(gateways, m.Name)
			}
		}
		for _, t := range c.Targets {
			for _, gw := range gateways {
				if in[portKey{gw, t.Name}] != nil {
					continue
				}
				dev := mapsAny(t, member, g)
				switch {
				case dev == "":
				case gw == "":
					v.errorf(t.NameRange, "Target in no target group", "The target %q maps the device %q of the device group %q but is in none of its target groups; add it to the targets of one (at %s).", t.Name, dev, g.Name, at(g.NameRange))
				default:
					v.errorf(g.NameRange, "Gateway without a target group", "The target %q maps the device %q of the device group %q, but no target group of the gateway %q lists it; add a target_group with gateway = %q and the target.", t.Name, dev, g.Name, gw, gw)
				}
			}
		}
	}
}

// portKey names a target port: a gateway's (in a cluster) port of a
// target.
type portKey struct{ gateway, target string }

// targetGroupGateway checks a target group's gateway: in a cluster one of
// its members, and set; without one, not set.
func (v *validator) targetGroupGateway(c *Config, tg *TargetGroup) {
	_, set := tg.Attrs["gateway"]
	switch {
	case c.Cluster == nil && set:
		v.errorf(tg.Range("gateway"), "Gateway without a cluster", "gateway names a gateway of a cluster; this configuration has no cluster block. Remove it.")
	case c.Cluster == nil:
	case !set:
		v.errorf(tg.DeclRange, "Target group without a gateway", "In a cluster each target group holds one gateway's ports of its targets: set gateway = one of the cluster's members.")
	case c.Cluster.Member(tg.Gateway) == nil:
		v.errorf(tg.Range("gateway"), "Unknown gateway", "The target group %q names the gateway %q, which has no member block in the cluster block.", tg.Name, tg.Gateway)
	}
}

// mapsAny returns a device of device group g that target t maps (in its
// LUNs or a group's), or "".
func mapsAny(t *Target, member map[string]*DeviceGroup, g *DeviceGroup) string {
	check := func(ls []*LUN) string {
		for _, l := range ls {
			if member[l.Device] == g {
				return l.Device
			}
		}
		return ""
	}
	if d := check(t.LUNs); d != "" {
		return d
	}
	for _, ig := range t.Groups {
		if d := check(ig.LUNs); d != "" {
			return d
		}
	}
	return ""
}

// identities checks that no two devices show initiators one identity:
// t10_dev_id (from which the NAA designator derives) and naa_id are
// unique.
// devices are the devices by name (the first of a duplicated name).
func (v *validator) identities(devs []*Device, devices map[string]*Device) {
	t10 := make(map[string]*Device, len(devs))
	naa := map[string]*Device{}
	for _, d := range devs {
		if devices[d.Name] != d {
			continue // a duplicate name, reported as such
		}
		if d.T10DevID != "" {
			if prev, dup := t10[d.T10DevID]; dup {
				v.errorf(d.Range("t10_dev_id"), "Duplicate t10_dev_id", "The device %q has the t10_dev_id %q of the device %q (%s): initiators would take the two for one disk.", d.Name, d.T10DevID, prev.Name, describeDeviceAttr(prev, "t10_dev_id"))
			} else {
				t10[d.T10DevID] = d
			}
		}
		if d.NAAID != "" {
			if prev, dup := naa[d.NAAID]; dup {
				v.errorf(d.Range("naa_id"), "Duplicate naa_id", "The device %q has the naa_id of the device %q at %s: initiators would take the two for one disk.", d.Name, prev.Name, at(prev.Range("naa_id")))
			} else {
				naa[d.NAAID] = d
			}
		}
	}
}

// describeDeviceAttr says where a device's attribute comes from.
func describeDeviceAttr(d *Device, attr string) string {
	if r, ok := d.Attrs.Get(attr); ok {
		return "set at " + at(r)
	}
	return "its name, the default, at " + at(d.NameRange)
}
