package reconcile

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// Op is the kind of one plan operation.
type Op uint8

// The operations a plan is made of.
const (
	AddDevice Op = iota + 1
	RemoveDevice
	// ReplaceDevice is a remove and an add under the same name: an
	// attribute that fixes the device's identity (handler, filename,
	// blocksize, removable, t10_dev_id, usn) changed.
	ReplaceDevice
	// RenameDevice gives a device a new name and keeps everything else:
	// its storage, its identity (t10_dev_id, usn, as the new name's
	// configuration pins them) and its SCSI state (reservations, unit
	// attentions). INQUIRY's product identification keeps showing the
	// name the device was created with until the daemon restarts.
	RenameDevice
	ResizeDevice
	SetDeviceAttr
	// ChangeMedium puts another disc in a vcdrom drive (its filename
	// changed, or its image was replaced on disk), or takes it out
	// (filename = ""): the device and its identity stay; its sessions
	// get NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
	ChangeMedium
	AddTarget
	RemoveTarget
	EnableTarget
	DisableTarget
	SetTargetParam
	AddLUN
	RemoveLUN
	SetLUNAttr
	AddGroup
	RemoveGroup
	SetGroupInitiators
	SetChapUsers
	SetPortals
	SetGlobal
	// SetCluster changes the cluster block; its Reason says whether the
	// daemon reconnects to etcd or keeps the change for its next start.
	SetCluster
	// AddDeviceGroup, RemoveDeviceGroup and SetDeviceGroupAttr (devices,
	// explicit) change ALUA device groups; AddTargetGroup,
	// RemoveTargetGroup, SetTargetGroupAttr (group_id, targets) and
	// SetALUAState (state, preferred) their target port groups.
	AddDeviceGroup
	RemoveDeviceGroup
	SetDeviceGroupAttr
	AddTargetGroup
	RemoveTargetGroup
	SetTargetGroupAttr
	SetALUAState
)

var opNames = [...]string{
	AddDevice:          "AddDevice",
	RemoveDevice:       "RemoveDevice",
	ReplaceDevice:      "ReplaceDevice",
	RenameDevice:       "RenameDevice",
	ResizeDevice:       "ResizeDevice",
	SetDeviceAttr:      "SetDeviceAttr",
	ChangeMedium:       "ChangeMedium",
	AddTarget:          "AddTarget",
	RemoveTarget:       "RemoveTarget",
	EnableTarget:       "EnableTarget",
	DisableTarget:      "DisableTarget",
	SetTargetParam:     "SetTargetParam",
	AddLUN:             "AddLUN",
	RemoveLUN:          "RemoveLUN",
	SetLUNAttr:         "SetLUNAttr",
	AddGroup:           "AddGroup",
	RemoveGroup:        "RemoveGroup",
	SetGroupInitiators: "SetGroupInitiators",
	SetChapUsers:       "SetChapUsers",
	SetPortals:         "SetPortals",
	SetGlobal:          "SetGlobal",
	SetCluster:         "SetCluster",
	AddDeviceGroup:     "AddDeviceGroup",
	RemoveDeviceGroup:  "RemoveDeviceGroup",
	SetDeviceGroupAttr: "SetDeviceGroupAttr",
	AddTargetGroup:     "AddTargetGroup",
	RemoveTargetGroup:  "RemoveTargetGroup",
	SetTargetGroupAttr: "SetTargetGroupAttr",
	SetALUAState:       "SetALUAState",
}

// String returns the operation's name, e.g. "AddDevice".
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// MarshalText makes an Op a JSON string.
func (o Op) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Symbol returns the plan marker of the operation: "+" for additions, "-"
// for removals, "-/+" for replacements and "~" for in-place changes.
func (o Op) Symbol() string {
	switch o {
	case AddDevice, AddTarget, AddLUN, AddGroup, AddDeviceGroup, AddTargetGroup:
		return "+"
	case RemoveDevice, RemoveTarget, RemoveLUN, RemoveGroup, RemoveDeviceGroup, RemoveTargetGroup:
		return "-"
	case ReplaceDevice:
		return "-/+"
	}
	return "~"
}

// tier orders operations so that nothing refers to what is not there yet
// or no longer: add devices, add targets/groups/LUNs, change, remove
// LUNs/groups/targets, remove devices.
func (o Op) tier() int {
	switch o {
	case AddDevice, RenameDevice:
		return 0
	case AddTarget, AddGroup, AddLUN, AddDeviceGroup, AddTargetGroup:
		return 1
	case RemoveLUN, RemoveGroup, RemoveTarget, RemoveDeviceGroup, RemoveTargetGroup:
		return 3
	case RemoveDevice:
		return 4
	}
	return 2
}

// Impact is what an operation does to live sessions, from none to most.
type Impact uint8

// Impact classes, in increasing order of disruption. The last three are
// disruptive: a reload with one of them is refused unless forced or the
// running configuration says disruptive_changes = "allow".
const (
	// Hot takes effect at once and no live session notices.
	Hot Impact = iota
	// NextLogin takes effect for sessions that log in from now on; live
	// sessions keep what they negotiated.
	NextLogin
	// UnitAttention takes effect at once and the live sessions it reaches
	// get a unit attention (and, for LUN maps, an asynchronous event).
	UnitAttention
	// MediumLocked: a live session holds the medium of a vcdrom in with
	// PREVENT ALLOW MEDIUM REMOVAL and the change takes it out (another
	// disc, or none): the guest reads another disc than the one it
	// locked. Forced, the session gets NOT READY TO READY CHANGE, MEDIUM
	// MAY HAVE CHANGED.
	MediumLocked
	// IdentityChange: a LUN a live session uses reaches a device with
	// the same storage under another identity (USN, t10_dev_id and the
	// designators derived from them, removable): multipath and
	// /dev/disk/by-id see a new disk. Forced, the session gets INQUIRY
	// DATA HAS CHANGED and REPORTED LUNS DATA HAS CHANGED.
	IdentityChange
	// DeviceSwap: a LUN number a live session uses stays but reaches
	// another device (other storage): the session would read another
	// disk. Forced, it gets INQUIRY DATA HAS CHANGED and REPORTED LUNS
	// DATA HAS CHANGED.
	DeviceSwap
	// SessionDrop ends sessions: they are asked to log out, then closed.
	SessionDrop
)

var impactNames = [...]string{
	Hot: "hot", NextLogin: "next-login", UnitAttention: "unit-attention", MediumLocked: "medium-locked",
	IdentityChange: "identity-change", DeviceSwap: "device-swap", SessionDrop: "session-drop",
}

// String returns the impact class: "hot", "next-login",
// "unit-attention", "medium-locked", "identity-change", "device-swap" or
// "session-drop".
func (i Impact) String() string {
	if int(i) < len(impactNames) {
		return impactNames[i]
	}
	return "Impact(" + strconv.Itoa(int(i)) + ")"
}

// MarshalText makes an Impact a JSON string.
func (i Impact) MarshalText() ([]byte, error) { return []byte(i.String()), nil }

// Disruptive reports whether the impact ends a live session or changes
// what one reads.
func (i Impact) Disruptive() bool { return i >= MediumLocked }

// Addr names the object a change applies to, the way Terraform names
// resources: "iscsi", "device.disk1", `target["iqn...:a"]`,
// `target["iqn...:a"].lun[3]`, `target["iqn...:a"].group["g"].lun[0]`.
type Addr struct {
	// Device is set for device addresses.
	Device string `json:"device,omitempty"`
	// Target is set for target, group and LUN addresses.
	Target string `json:"target,omitempty"`
	// Group is set for a group or a group's LUN.
	Group string `json:"group,omitempty"`
	// LUN is meaningful when HasLUN.
	LUN    scsi.LUN `json:"lun,omitempty"`
	HasLUN bool     `json:"has_lun,omitempty"`
	// Cluster is set for the cluster block.
	Cluster bool `json:"cluster,omitempty"`
	// DeviceGroup is set for a device group and its target groups,
	// TargetGroup for a target group.
	DeviceGroup string `json:"device_group,omitempty"`
	TargetGroup string `json:"target_group,omitempty"`
}

// GlobalAddr is the address of the iscsi block.
var GlobalAddr = Addr{}

// DeviceAddr returns the address of device name.
func DeviceAddr(name string) Addr { return Addr{Device: name} }

// TargetAddr returns the address of target name.
func TargetAddr(name string) Addr { return Addr{Target: name} }

// GroupAddr returns the address of group g of target t.
func GroupAddr(t, g string) Addr { return Addr{Target: t, Group: g} }

// LUNAddr returns the address of LUN l of target t, in group g when g is
// not empty.
func LUNAddr(t, g string, l scsi.LUN) Addr { return Addr{Target: t, Group: g, LUN: l, HasLUN: true} }

// DeviceGroupAddr returns the address of device group g.
func DeviceGroupAddr(g string) Addr { return Addr{DeviceGroup: g} }

// TargetGroupAddr returns the address of target group tg of device group g.
func TargetGroupAddr(g, tg string) Addr { return Addr{DeviceGroup: g, TargetGroup: tg} }

// String returns the address as it prints in a plan.
func (a Addr) String() string {
	if a.DeviceGroup != "" {
		s := "device_group" + nameSuffix(a.DeviceGroup)
		if a.TargetGroup != "" {
			s += ".target_group" + nameSuffix(a.TargetGroup)
		}
		return s
	}
	if a.Device != "" {
		if isIdent(a.Device) {
			return "device." + a.Device
		}
		return "device[" + strconv.Quote(a.Device) + "]"
	}
	if a.Cluster {
		return "cluster"
	}
	if a.Target == "" {
		return "iscsi"
	}
	s := "target[" + strconv.Quote(a.Target) + "]"
	if a.Group != "" {
		s += ".group[" + strconv.Quote(a.Group) + "]"
	}
	if a.HasLUN {
		s += ".lun[" + strconv.Itoa(int(a.LUN)) + "]"
	}
	return s
}

// MarshalText makes an Addr a JSON string.
func (a Addr) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// nameSuffix is ".name", or `["name"]` when name is not an identifier.
func nameSuffix(name string) string {
	if isIdent(name) {
		return "." + name
	}
	return "[" + strconv.Quote(name) + "]"
}

// isIdent reports whether s can follow "device." unquoted.
func isIdent(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && (r == '-' || r >= '0' && r <= '9'):
		default:
			return false
		}
	}
	return s != ""
}

// compareAddr orders addresses: the cluster block, iscsi, devices by
// name, targets by name with each target's own address, LUNs, then groups
// (each followed by its LUNs), then device groups with their target
// groups. With deepFirst, a target's or group's children come before it, as
// removals need.
func compareAddr(a, b Addr, deepFirst bool) int {
	rank := func(x Addr) int {
		switch {
		case x.Device != "":
			return 1
		case x.Target != "":
			return 2
		case x.Cluster:
			return -1
		case x.DeviceGroup != "":
			return 3
		}
		return 0
	}
	if c := rank(a) - rank(b); c != 0 {
		return c
	}
	if a.DeviceGroup != "" {
		if c := strings.Compare(a.DeviceGroup, b.DeviceGroup); c != 0 {
			return c
		}
		switch {
		case a.TargetGroup == b.TargetGroup:
			return 0
		case a.TargetGroup == "":
			return flip(-1, deepFirst)
		case b.TargetGroup == "":
			return flip(1, deepFirst)
		}
		return strings.Compare(a.TargetGroup, b.TargetGroup)
	}
	if c := strings.Compare(a.Device, b.Device); c != 0 {
		return c
	}
	if c := strings.Compare(a.Target, b.Target); c != 0 {
		return c
	}
	if a.Group != b.Group {
		// A target-level address comes before (after, deepFirst) every
		// group address.
		switch {
		case a.Group == "" && !a.HasLUN:
			return flip(-1, deepFirst)
		case b.Group == "" && !b.HasLUN:
			return flip(1, deepFirst)
		case a.Group == "":
			return -1
		case b.Group == "":
			return 1
		}
		return strings.Compare(a.Group, b.Group)
	}
	if a.HasLUN != b.HasLUN {
		if !a.HasLUN {
			return flip(-1, deepFirst)
		}
		return flip(1, deepFirst)
	}
	return int(a.LUN) - int(b.LUN)
}

func flip(c int, deepFirst bool) int {
	if deepFirst {
		return -c
	}
	return c
}

// Change is one operation of a plan.
type Change struct {
	Op   Op   `json:"op"`
	Addr Addr `json:"address"`
	// Attr names the attribute an in-place change sets, as spelled in the
	// configuration ("size", "read_only", "portals", ...); empty for
	// additions, removals and replacements.
	Attr string `json:"attribute,omitempty"`
	// Before and After are the attribute's old and new values, or for
	// additions, removals and replacements the whole object (a Device,
	// the *Target without its LUNs and groups, a LUN, the *Group without
	// its LUNs). Nil where there is nothing.
	Before any `json:"before,omitempty"`
	After  any `json:"after,omitempty"`
	// Impact is what the change does to live sessions; Reason says which
	// unit attention, or why.
	Impact Impact `json:"impact"`
	Reason string `json:"reason,omitempty"`
	// Sessions are the live sessions the change reaches and what each
	// one sees; Impact is the most any of them gets. Changes that act
	// on live sessions are Hot when they reach none.
	Sessions []Affected `json:"sessions,omitempty"`
	// Hint says how to avoid a disruptive impact, when there is a way.
	Hint string `json:"hint,omitempty"`
}

// Session is a live session as Diff sees it: its identity, the IP of the
// portal it logged in on (per-portal ACLs match it), and the devices
// (running names) whose medium it holds in with PREVENT ALLOW MEDIUM
// REMOVAL.
type Session struct {
	iscsi.SessionID
	PortalIP string   `json:"portal_ip,omitempty"`
	Locks    []string `json:"locks_medium,omitempty"`
}

// Affected is a live session that a change reaches.
type Affected struct {
	Session iscsi.SessionID `json:"session"`
	// Impact is what the session gets: SessionDrop (asked to log out),
	// DeviceSwap or IdentityChange (a LUN reaches another device),
	// UnitAttention.
	Impact Impact `json:"impact"`
	// LUNs are the session's LUNs the change reaches.
	LUNs []LUNEffect `json:"luns,omitempty"`
}

// LUNEffect is what a change does to one LUN of a live session.
type LUNEffect struct {
	LUN  scsi.LUN      `json:"lun"`
	Kind LUNEffectKind `json:"kind"`
	// Before and After are the devices the LUN reached and reaches
	// ("" for none).
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// LUNEffectKind says what happens at one LUN of a live session.
type LUNEffectKind uint8

// What a change does at a LUN of a live session.
const (
	// LUNAdded: the session gains the LUN.
	LUNAdded LUNEffectKind = iota + 1
	// LUNRemoved: the session loses the LUN.
	LUNRemoved
	// LUNSwapped: the LUN reaches another device (DeviceSwap or
	// IdentityChange).
	LUNSwapped
	// LUNReadOnly: the LUN reaches the same device, with read_only changed.
	LUNReadOnly
	// LUNDeviceEvent: the device at the LUN changes in place (capacity,
	// mode parameters): a unit attention the device itself raises.
	LUNDeviceEvent
)

var lunEffectNames = [...]string{LUNAdded: "added", LUNRemoved: "removed", LUNSwapped: "swapped",
	LUNReadOnly: "read-only", LUNDeviceEvent: "device-event"}

// String returns the kind: "added", "removed", "swapped", "read-only",
// "device-event".
func (k LUNEffectKind) String() string {
	if int(k) < len(lunEffectNames) && lunEffectNames[k] != "" {
		return lunEffectNames[k]
	}
	return "LUNEffectKind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText makes a LUNEffectKind a JSON string.
func (k LUNEffectKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Plan is the ordered list of operations that takes the running engine to
// the desired configuration. A plan with no changes means there is
// nothing to do.
type Plan struct {
	Changes []Change `json:"changes"`
}

// Empty reports whether the plan has no changes.
func (p Plan) Empty() bool { return len(p.Changes) == 0 }

// Impact returns the most disruptive impact in the plan (Hot when empty).
func (p Plan) Impact() Impact {
	m := Hot
	for _, c := range p.Changes {
		m = max(m, c.Impact)
	}
	return m
}

// Disruptive returns the changes that end a live session or change what
// one reads (SessionDrop, DeviceSwap, IdentityChange, MediumLocked).
func (p Plan) Disruptive() []Change {
	var d []Change
	for _, c := range p.Changes {
		if c.Impact.Disruptive() {
			d = append(d, c)
		}
	}
	return d
}

// Summary counts the plan's operations: "2 to add, 1 to change, 0 to
// replace, 1 to remove".
func (p Plan) Summary() string {
	var add, change, replace, remove int
	for _, c := range p.Changes {
		switch c.Op.Symbol() {
		case "+":
			add++
		case "-":
			remove++
		case "-/+":
			replace++
		default:
			change++
		}
	}
	return fmt.Sprintf("%d to add, %d to change, %d to replace, %d to remove", add, change, replace, remove)
}

// Column widths are capped so that one long name does not push every
// other line to the right.
const (
	maxAddrWidth   = 56
	maxDetailWidth = 44
)

// maxAffectsLines caps the "affects" lines printed under one change; the
// JSON form lists every session.
const maxAffectsLines = 16

// Print writes the plan one change a line, Terraform style, each followed
// by the live sessions it reaches and, for a disruptive change that can
// be avoided, how:
//
//	~ device.disk1   size 1GiB -> 2GiB   (unit attention: capacity changed)
//	    affects iqn.1994-05.com.redhat:host1 (tsih 3) lun 0: disk1
//
// An empty plan prints nothing.
func (p Plan) Print(w io.Writer) error {
	type line struct{ sym, addr, detail, impact string }
	lines := make([]line, len(p.Changes))
	sw, aw, dw := 0, 0, 0
	for i, c := range p.Changes {
		l := line{sym: c.Op.Symbol(), addr: c.Addr.String(), detail: c.detail(), impact: c.impactText()}
		sw = max(sw, len(l.sym))
		if len(l.addr) <= maxAddrWidth {
			aw = max(aw, len(l.addr))
		}
		if len(l.detail) <= maxDetailWidth {
			dw = max(dw, len(l.detail))
		}
		lines[i] = l
	}
	var b bytes.Buffer
	for i, l := range lines {
		b.Reset()
		fmt.Fprintf(&b, "%-*s %-*s  %-*s  (%s)\n", sw, l.sym, aw, l.addr, dw, l.detail, l.impact)
		p.Changes[i].printSessions(&b)
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// printSessions writes the "affects" lines of a change, and its hint.
func (c *Change) printSessions(b *bytes.Buffer) {
	var lines []string
	for _, a := range c.Sessions {
		who := "    affects " + a.Session.String()
		if a.Impact == SessionDrop {
			lines = append(lines, who+": asked to log out")
			continue
		}
		for _, l := range a.LUNs {
			line := who + " lun " + strconv.Itoa(int(l.LUN)) + ": " + l.text()
			if a.Impact == MediumLocked {
				line += " (its disc locked in by this session)"
			}
			lines = append(lines, line)
		}
	}
	for i, l := range lines {
		if i == maxAffectsLines-1 && len(lines) > maxAffectsLines {
			fmt.Fprintf(b, "    ... and %d more\n", len(lines)-i)
			break
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if c.Hint != "" {
		b.WriteString("    to keep it: " + c.Hint + "\n")
	}
}

// text says what happens at the LUN: "d0 -> d1", "(none) -> d2",
// "d1 -> (none)", "d1 replaced", "d1 read_only changed", "d1".
func (l LUNEffect) text() string {
	name := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	switch {
	case l.Kind == LUNReadOnly:
		return l.After + " read_only changed"
	case l.Kind == LUNDeviceEvent:
		return l.After
	case l.Kind == LUNSwapped && l.Before == l.After:
		return l.After + " replaced"
	}
	return name(l.Before) + " -> " + name(l.After)
}

// String returns the plan as Print writes it.
func (p Plan) String() string {
	var b strings.Builder
	_ = p.Print(&b)
	return b.String()
}

// impactText is the parenthesised impact of a printed change:
// "hot", "next login", "unit attention: capacity changed".
func (c Change) impactText() string {
	s := strings.ReplaceAll(c.Impact.String(), "-", " ")
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

// detail is what a printed change says after its address.
func (c Change) detail() string {
	switch c.Op.Symbol() {
	case "+":
		return summarize(c.After)
	case "-":
		return summarize(c.Before)
	case "-/+":
		b, _ := c.Before.(Device)
		a, _ := c.After.(Device)
		var parts []string
		for _, at := range deviceAttrs {
			switch {
			case !at.replace || at.eq(&b, &a):
			case at.name == "file_id":
				if b.Filename == a.Filename {
					parts = append(parts, "backing file replaced on disk")
				}
			default:
				parts = append(parts, at.name+" "+formatValue(at.name, at.get(&b))+" -> "+formatValue(at.name, at.get(&a)))
			}
		}
		return strings.Join(parts, ", ")
	}
	if c.Op == ChangeMedium {
		return c.Before.(Medium).changeText(c.After.(Medium))
	}
	if sameValue(c.Before, c.After) {
		return c.Attr
	}
	change := formatValue(c.Attr, c.Before) + " -> " + formatValue(c.Attr, c.After)
	if c.Attr == "" { // a whole block (cluster)
		return change
	}
	return c.Attr + " " + change
}

// sameValue reports whether two printed values read the same (CHAP user
// lists whose secrets alone changed).
func sameValue(a, b any) bool { return formatValue("", a) == formatValue("", b) }

// summarize prints the identifying attributes of an added or removed
// object.
func summarize(v any) string {
	switch o := v.(type) {
	case Device:
		s := "handler = " + strconv.Quote(string(o.Handler))
		if o.Filename != "" {
			s += ", filename = " + strconv.Quote(o.Filename)
		}
		if o.Size != 0 {
			s += ", size = " + formatSize(o.Size)
		}
		return s
	case LUN:
		s := "device = " + strconv.Quote(o.Device)
		if o.ReadOnly {
			s += ", read_only = true"
		}
		return s
	case *Group:
		return "initiators = " + formatValue("", o.Initiators)
	case *DeviceGroup:
		s := "devices = " + formatValue("", o.Devices)
		if o.Explicit {
			s += ", explicit = true"
		}
		return s
	case *TargetGroup:
		s := "group_id = " + strconv.Itoa(int(o.GroupID)) + ", state = " + strconv.Quote(o.State.String())
		if o.Preferred {
			s += ", preferred = true"
		}
		return s + ", targets = " + formatValue("", o.Targets)
	case *Target:
		if !o.Enabled {
			return "enabled = false"
		}
	}
	return ""
}

// formatValue prints an attribute value as the configuration would write
// it; sizes in binary units, CHAP users by name only.
func formatValue(attr string, v any) string {
	switch x := v.(type) {
	case nil:
		return "(none)"
	case bool:
		return strconv.FormatBool(x)
	case string:
		if x == "" && attr == "log_level" {
			return "(unset)" // the daemon's -log-level flag decides
		}
		if x == "" && attr == metricsListen {
			return "(none)"
		}
		return strconv.Quote(x)
	case vdisk.Handler:
		return strconv.Quote(string(x))
	case scsi.ALUAState:
		return strconv.Quote(x.String())
	case Medium:
		if x.Filename == "" {
			return "(no disc)"
		}
		return strconv.Quote(x.Filename)
	case int64:
		if attr == "size" {
			return formatSize(x)
		}
		return strconv.FormatInt(x, 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case uint16:
		return strconv.FormatUint(uint64(x), 10)
	case time.Duration:
		return strconv.Quote(x.String())
	case *Cluster:
		if x == nil {
			return "(none)"
		}
		return x.String()
	case Duration:
		return strconv.FormatInt(int64(time.Duration(x)/time.Second), 10)
	case access.Redirect:
		return strconv.Quote(x.String())
	case []string:
		return quoteList(x, func(s string) string { return s })
	case []access.HostPort:
		return quoteList(x, access.HostPort.String)
	case access.Patterns:
		return quoteList(x, access.Pattern.String)
	case []access.Digest:
		return quoteList(x, access.Digest.String)
	case []access.CHAPAlgorithm:
		return quoteList(x, access.CHAPAlgorithm.String)
	case []ClusterMember:
		return quoteList(x, func(m ClusterMember) string { return m.Name + "=" + strconv.Itoa(int(m.ID)) })
	case []User:
		return quoteList(x, func(u User) string { return u.Name })
	}
	return fmt.Sprint(v)
}

// quoteList prints a list as the configuration writes it: ["a", "b"].
func quoteList[E any](list []E, text func(E) string) string {
	q := make([]string, len(list))
	for i, e := range list {
		q[i] = strconv.Quote(text(e))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// formatSize prints a byte count in the largest binary unit that divides
// it ("10GiB"), or as bytes; 0 is "(file size)", size taken from the file.
func formatSize(n int64) string {
	if n == 0 {
		return "(file size)"
	}
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"PiB", 50}, {"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n&(1<<u.shift-1) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
