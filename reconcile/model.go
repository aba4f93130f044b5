package reconcile

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// Model is the normalized description of what the engine runs: every
// object keyed by its name, every default filled in, nothing that depends
// on file order or source positions. Two configurations that mean the same
// thing have equal models, so Diff of them is empty.
//
// A Model is built from a configuration by FromConfig (pure: no I/O) and is
// never modified afterwards; the engine keeps the last applied one as the
// running model.
type Model struct {
	// ISCSI holds the global iSCSI settings.
	ISCSI Global `json:"iscsi"`
	// Devices by name.
	Devices map[string]Device `json:"devices"`
	// Targets by iSCSI name.
	Targets map[string]*Target `json:"targets"`
	// Cluster is the cluster block, nil for none.
	Cluster *Cluster `json:"cluster,omitempty"`
	// DeviceGroups are the ALUA device groups by name.
	DeviceGroups map[string]*DeviceGroup `json:"device_groups,omitempty"`
	// StateDir is the state directory (state_dir). The engine opens it
	// at its first Apply and keeps it: a reload may not change it.
	StateDir string `json:"state_dir"`
}

// Global is the iscsi block, the top-level log_level and the metrics
// block.
type Global struct {
	// LogLevel is the daemon's log level ("debug", "info", "warn",
	// "error"), or "" when the file leaves it to the -log-level flag.
	// The engine only carries it: the daemon sets its logger's level from
	// the applied plan's change of it.
	LogLevel string `json:"log_level,omitempty"`
	// MetricsListen is the metrics endpoint's address ("host:port"), or
	// "" for none. Apply binds it and hands it to Options.Metrics.
	MetricsListen string `json:"metrics_listen,omitempty"`
	Enabled       bool   `json:"enabled"`
	// Portals are the listen addresses, sorted and unique.
	Portals []access.HostPort `json:"portals"`
	// ISNSServers are the iSNS servers, sorted.
	ISNSServers []access.HostPort `json:"isns_servers,omitempty"`
	// ISNSAccessControl are those of ISNSServers that have
	// access_control = true, sorted.
	ISNSAccessControl []access.HostPort `json:"isns_access_control,omitempty"`
	// IncomingUsers and OutgoingUsers are the discovery CHAP users, sorted
	// by name (at most one outgoing user).
	IncomingUsers []User `json:"incoming_users,omitempty"`
	OutgoingUsers []User `json:"outgoing_users,omitempty"`
	// Connection caps and login timeouts.
	MaxConnections           uint32   `json:"max_connections"`
	MaxConnectionsPerAddress uint32   `json:"max_connections_per_address"`
	LoginTimeout             Duration `json:"login_timeout"`
	DiscoveryIdleTimeout     Duration `json:"discovery_idle_timeout"`
}

// User is a CHAP user. Its secret prints as "(redacted)" everywhere.
type User struct {
	Name   string        `json:"name"`
	Secret config.Secret `json:"secret"`
}

// Duration is a timeout or interval of the configuration. It is a
// time.Duration; the file gives it in whole seconds, and plans, as text
// and as JSON, show it so.
type Duration time.Duration

// MarshalJSON writes d in whole seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(time.Duration(d)/time.Second), 10), nil
}

// Device is one device: its handler, backing storage and attributes.
// Device is comparable with ==.
type Device struct {
	Handler  vdisk.Handler `json:"handler"`
	Filename string        `json:"filename,omitempty"`
	// Size in bytes; 0 means "the size of the file or device".
	Size         int64  `json:"size,omitempty"`
	BlockSize    uint32 `json:"blocksize"`
	ReadOnly     bool   `json:"read_only"`
	NVCache      bool   `json:"nv_cache"`
	WriteThrough bool   `json:"write_through"`
	ODirect      bool   `json:"o_direct"`
	Removable    bool   `json:"removable"`
	T10DevID     string `json:"t10_dev_id"`
	USN          string `json:"usn"`
	// NAA is the logical unit's NAA designator in hex: naa_id, or, when
	// the configuration leaves it unset, the NAA 6h designator the engine
	// derives from its seed and T10DevID (FromConfig leaves it empty; see
	// Engine.identify). Empty for dev_disk devices, whose identity is
	// the disk's.
	NAA string `json:"naa_id,omitempty"`
	// Path is a dev_disk device's disk: a device node or H:C:T:L.
	Path string `json:"path,omitempty"`
	// Timeout bounds each command of a dev_disk device.
	Timeout Duration `json:"timeout,omitempty"`
	// FileID identifies the backing file or block device the engine
	// serves ("dev:inode", or "rdev:number" for a device node), so that a file replaced
	// under the same name is a replaced device. FromConfig leaves it
	// empty; the engine fills it in from the file system (see
	// Engine.observe), keeping the running value when it cannot tell.
	FileID string `json:"file_id,omitempty"`
}

// Medium is the disc in a vcdrom drive, as a ChangeMedium change carries
// it: the image file ("" for none) and its identity on disk (see
// Device.FileID).
type Medium struct {
	Filename string `json:"filename"`
	FileID   string `json:"file_id,omitempty"`
}

// mediumOf returns the disc of d.
func mediumOf(d *Device) Medium { return Medium{Filename: d.Filename, FileID: d.FileID} }

// changeText prints a change from disc m to disc n: `filename "a.iso" ->
// "b.iso"`, `filename "a.iso" -> (no disc)`, or `filename "a.iso"
// (replaced on disk)`.
func (m Medium) changeText(n Medium) string {
	name := func(f string) string {
		if f == "" {
			return "(no disc)"
		}
		return strconv.Quote(f)
	}
	if m.Filename == n.Filename {
		return "filename " + name(n.Filename) + " (replaced on disk)"
	}
	return "filename " + name(m.Filename) + " -> " + name(n.Filename)
}

// Target is one target with its parameters, LUN map and groups.
type Target struct {
	Enabled  bool   `json:"enabled"`
	RelTgtID uint16 `json:"rel_tgt_id,omitempty"`

	HeaderDigest             []access.Digest `json:"header_digest"`
	DataDigest               []access.Digest `json:"data_digest"`
	ImmediateData            bool            `json:"immediate_data"`
	InitialR2T               bool            `json:"initial_r2t"`
	MaxRecvDataSegmentLength uint32          `json:"max_recv_data_segment_length"`
	MaxXmitDataSegmentLength uint32          `json:"max_xmit_data_segment_length"`
	MaxBurstLength           uint32          `json:"max_burst_length"`
	FirstBurstLength         uint32          `json:"first_burst_length"`
	MaxOutstandingR2T        uint32          `json:"max_outstanding_r2t"`
	QueuedCommands           uint32          `json:"queued_commands"`
	NopInInterval            Duration        `json:"nop_in_interval"`
	NopInTimeout             Duration        `json:"nop_in_timeout"`
	RspTimeout               Duration        `json:"rsp_timeout"`
	// MaxSessions caps the target's sessions (0: no cap).
	MaxSessions uint32 `json:"max_sessions,omitempty"`

	AllowedPortals access.Patterns `json:"allowed_portals,omitempty"`
	PerPortalACL   bool            `json:"per_portal_acl,omitempty"`
	// Redirect is the redirect, zero for none.
	Redirect access.Redirect `json:"redirect,omitzero"`

	IncomingUsers  []User                 `json:"incoming_users,omitempty"`
	OutgoingUsers  []User                 `json:"outgoing_users,omitempty"`
	CHAPAlgorithms []access.CHAPAlgorithm `json:"chap_algorithms"`

	// LUNs is the default LUN map.
	LUNs map[scsi.LUN]LUN `json:"luns,omitempty"`
	// Groups are the initiator groups by name.
	Groups map[string]*Group `json:"groups,omitempty"`
}

// LUN is one LUN map entry.
type LUN struct {
	Device   string `json:"device"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Group is an initiator group: who is in it and what it sees.
type Group struct {
	// Initiators are the name patterns in file order.
	Initiators access.Patterns  `json:"initiators"`
	LUNs       map[scsi.LUN]LUN `json:"luns,omitempty"`
}

// header returns t without its LUN map and groups: what an AddTarget or
// RemoveTarget change describes (the LUNs and groups are changes of their
// own).
func (t *Target) header() *Target {
	h := *t
	h.LUNs, h.Groups = nil, nil
	return &h
}

// header returns g without its LUN map.
func (g *Group) header() *Group {
	h := *g
	h.LUNs = nil
	return &h
}

// usersEqual compares CHAP user lists, secrets in constant time.
func usersEqual(a, b []User) bool {
	return slices.EqualFunc(a, b, func(x, y User) bool { return x.Name == y.Name && x.Secret.Equal(y.Secret) })
}

// lunMapsEqual reports whether two LUN maps are the same.
func lunMapsEqual(a, b map[scsi.LUN]LUN) bool {
	if len(a) != len(b) {
		return false
	}
	for l, x := range a {
		if y, ok := b[l]; !ok || x != y {
			return false
		}
	}
	return true
}

// cloneModel deep-copies m, so that a test can change the copy.
func cloneModel(m Model) Model {
	c := Model{ISCSI: m.ISCSI, Devices: maps.Clone(m.Devices), Targets: make(map[string]*Target, len(m.Targets)),
		Cluster: m.Cluster.clone(), DeviceGroups: cloneDeviceGroups(m.DeviceGroups), StateDir: m.StateDir}
	c.ISCSI.Portals = slices.Clone(m.ISCSI.Portals)
	c.ISCSI.ISNSServers = slices.Clone(m.ISCSI.ISNSServers)
	c.ISCSI.ISNSAccessControl = slices.Clone(m.ISCSI.ISNSAccessControl)
	c.ISCSI.IncomingUsers = slices.Clone(m.ISCSI.IncomingUsers)
	c.ISCSI.OutgoingUsers = slices.Clone(m.ISCSI.OutgoingUsers)
	if c.Devices == nil {
		c.Devices = map[string]Device{}
	}
	for name, t := range m.Targets {
		c.Targets[name] = cloneTarget(t)
	}
	return c
}

// shallowClone copies m for apply to carry out p on: the global
// settings, the cluster and the device groups deep, the devices' map only
// when p changes a device, the targets' map but not the targets.
func (m Model) shallowClone(p Plan) Model {
	c := m
	c.ISCSI.Portals = slices.Clone(m.ISCSI.Portals)
	c.ISCSI.ISNSServers = slices.Clone(m.ISCSI.ISNSServers)
	c.ISCSI.ISNSAccessControl = slices.Clone(m.ISCSI.ISNSAccessControl)
	c.ISCSI.IncomingUsers = slices.Clone(m.ISCSI.IncomingUsers)
	c.ISCSI.OutgoingUsers = slices.Clone(m.ISCSI.OutgoingUsers)
	c.Cluster, c.DeviceGroups = m.Cluster.clone(), cloneDeviceGroups(m.DeviceGroups)
	c.Targets = maps.Clone(m.Targets)
	if c.Targets == nil {
		c.Targets = map[string]*Target{}
	}
	if changesDevices(p) || m.Devices == nil {
		c.Devices = maps.Clone(m.Devices)
		if c.Devices == nil {
			c.Devices = map[string]Device{}
		}
	}
	return c
}

// changesDevices reports whether p changes a device (and so whether
// Model.apply copies the devices' map).
func changesDevices(p Plan) bool {
	return slices.ContainsFunc(p.Changes, func(c Change) bool { return c.Addr.Device != "" })
}

func cloneTarget(t *Target) *Target {
	n := *t
	n.HeaderDigest = slices.Clone(t.HeaderDigest)
	n.DataDigest = slices.Clone(t.DataDigest)
	n.AllowedPortals = slices.Clone(t.AllowedPortals)
	n.IncomingUsers = slices.Clone(t.IncomingUsers)
	n.OutgoingUsers = slices.Clone(t.OutgoingUsers)
	n.CHAPAlgorithms = slices.Clone(t.CHAPAlgorithms)
	n.LUNs = maps.Clone(t.LUNs)
	if t.Groups != nil {
		n.Groups = make(map[string]*Group, len(t.Groups))
		for name, g := range t.Groups {
			n.Groups[name] = &Group{Initiators: slices.Clone(g.Initiators), LUNs: maps.Clone(g.LUNs)}
		}
	}
	return &n
}

// apply carries out p on a copy of m: the running model after the plan.
// It is how commit computes the next running model, from the plan and not
// from the configuration the plan was made from. A plan that does not fit
// m (Diff made it from another model) panics.
//
// m is left as it was. The copy shares with m what p does not change (a
// model is never modified once built): the devices' map when p changes
// no device, and each target p does not name. A reload of one LUN among
// 10,000 so copies one target, not the whole model (2.7 MB).
func (m Model) apply(p Plan) Model {
	m = m.shallowClone(p)
	// target returns the copy's target name, copied from m's first.
	owned := map[string]bool{}
	target := func(name string) *Target {
		t := m.Targets[name]
		if t != nil && !owned[name] {
			t = cloneTarget(t)
			m.Targets[name], owned[name] = t, true
		}
		return t
	}
	for _, c := range p.Changes {
		a := c.Addr
		switch c.Op {
		case AddDevice, ReplaceDevice:
			m.Devices[a.Device] = c.After.(Device)
		case RenameDevice:
			old := c.Before.(string)
			m.Devices[a.Device] = m.Devices[old]
			delete(m.Devices, old)
		case RemoveDevice:
			delete(m.Devices, a.Device)
		case ResizeDevice, SetDeviceAttr:
			d := m.Devices[a.Device]
			setAttr(deviceAttrs, &d, c)
			m.Devices[a.Device] = d
		case ChangeMedium:
			d := m.Devices[a.Device]
			md := c.After.(Medium)
			d.Filename, d.FileID = md.Filename, md.FileID
			m.Devices[a.Device] = d
		case AddTarget:
			m.Targets[a.Target], owned[a.Target] = cloneTarget(c.After.(*Target)), true
		case RemoveTarget:
			delete(m.Targets, a.Target)
		case AddGroup:
			t := target(a.Target)
			if t.Groups == nil {
				t.Groups = map[string]*Group{}
			}
			g := *c.After.(*Group)
			t.Groups[a.Group] = &g
		case RemoveGroup:
			delete(target(a.Target).Groups, a.Group)
		case SetGroupInitiators:
			setAttr(groupAttrs, target(a.Target).Groups[a.Group], c)
		case AddLUN, RemoveLUN, SetLUNAttr:
			// The plan's order guarantees the target (and group) exist:
			// added before their LUNs, removed after them.
			t := target(a.Target)
			if t == nil {
				panic("reconcile: apply: " + c.Op.String() + " " + a.String() + " of a missing target")
			}
			luns := &t.LUNs
			if a.Group != "" {
				g := t.Groups[a.Group]
				if g == nil {
					panic("reconcile: apply: " + c.Op.String() + " " + a.String() + " of a missing group")
				}
				luns = &g.LUNs
			}
			switch c.Op {
			case AddLUN:
				if *luns == nil {
					*luns = map[scsi.LUN]LUN{}
				}
				(*luns)[a.LUN] = c.After.(LUN)
			case RemoveLUN:
				delete(*luns, a.LUN)
			default:
				l := (*luns)[a.LUN]
				setAttr(lunAttrs, &l, c)
				(*luns)[a.LUN] = l
			}
		case SetPortals, SetGlobal:
			setAttr(globalAttrs, &m.ISCSI, c)
		case SetChapUsers:
			if a.Target == "" {
				setAttr(globalAttrs, &m.ISCSI, c)
			} else {
				setAttr(targetAttrs, target(a.Target), c)
			}
		case EnableTarget, DisableTarget, SetTargetParam:
			setAttr(targetAttrs, target(a.Target), c)
		case SetCluster:
			m.applyCluster(c)
		case AddDeviceGroup:
			if m.DeviceGroups == nil {
				m.DeviceGroups = map[string]*DeviceGroup{}
			}
			g := cloneDeviceGroup(c.After.(*DeviceGroup))
			g.TargetGroups = map[string]*TargetGroup{}
			m.DeviceGroups[a.DeviceGroup] = g
		case RemoveDeviceGroup:
			delete(m.DeviceGroups, a.DeviceGroup)
		case SetDeviceGroupAttr:
			setAttr(deviceGroupAttrs, m.DeviceGroups[a.DeviceGroup], c)
		case AddTargetGroup:
			tg := *c.After.(*TargetGroup)
			tg.Targets = slices.Clone(tg.Targets)
			m.DeviceGroups[a.DeviceGroup].TargetGroups[a.TargetGroup] = &tg
		case RemoveTargetGroup:
			// A group removed with its device group is gone already.
			if g := m.DeviceGroups[a.DeviceGroup]; g != nil {
				delete(g.TargetGroups, a.TargetGroup)
			}
		case SetTargetGroupAttr, SetALUAState:
			setAttr(targetGroupAttrs, m.DeviceGroups[a.DeviceGroup].TargetGroups[a.TargetGroup], c)
		default:
			panic("reconcile: apply: unknown op " + c.Op.String())
		}
	}
	return m
}

func setAttr[T any](table []attr[T], obj *T, c Change) {
	for _, at := range table {
		if at.name == c.Attr {
			at.set(obj, c.After)
			return
		}
	}
	panic("reconcile: apply: unknown attribute " + c.Attr)
}
