package reconcile

import (
	"maps"
	"reflect"
	"slices"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// Names used by the fixtures.
const (
	iqnA = "iqn.2026-11.org.example:a"
	iqnB = "iqn.2026-11.org.example:b"
	iqnC = "iqn.2026-11.org.example:c"
)

// defaultTarget is a target with the configuration defaults.
func defaultTarget() *Target {
	return &Target{
		Enabled:                  true,
		HeaderDigest:             []string{"None"},
		DataDigest:               []string{"None"},
		ImmediateData:            true,
		MaxRecvDataSegmentLength: 262144,
		MaxXmitDataSegmentLength: 262144,
		MaxBurstLength:           1048576,
		FirstBurstLength:         65536,
		MaxOutstandingR2T:        32,
		QueuedCommands:           32,
		NopInInterval:            30,
		NopInTimeout:             30,
		RspTimeout:               90,
		CHAPAlgorithms:           []string{"SHA3-256", "SHA-256", "SHA-1", "MD5"},
	}
}

// baseModel is the running model most golden cases start from.
func baseModel() Model {
	a := defaultTarget()
	a.LUNs = map[scsi.LUN]LUN{0: {Device: "disk1"}, 1: {Device: "null1"}}
	b := defaultTarget()
	b.LUNs = map[scsi.LUN]LUN{0: {Device: "null1"}}
	return Model{
		ISCSI: Global{Enabled: true, Portals: []string{"0.0.0.0:3260"}},
		Devices: map[string]Device{
			"disk1": {Handler: vdisk.FileIO, Filename: "/var/lib/scst/disk1.img", Size: 1 << 30, BlockSize: 512, T10DevID: "disk1", USN: "6d2f1c0e"},
			"null1": {Handler: vdisk.NullIO, Size: 1 << 40, BlockSize: 512, T10DevID: "null1", USN: "1a2b3c4d"},
			"spare": {Handler: vdisk.FileIO, Filename: "/var/lib/scst/spare.img", BlockSize: 4096, T10DevID: "spare", USN: "99aa88bb"},
		},
		Targets: map[string]*Target{iqnA: a, iqnB: b},
	}
}

// cloneModel deep-copies m, so that a test can change the copy.
func cloneModel(m Model) Model {
	c := Model{ISCSI: m.ISCSI, Devices: maps.Clone(m.Devices), Targets: make(map[string]*Target, len(m.Targets))}
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

// normalize turns empty maps into nil maps, so that reflect.DeepEqual
// compares meaning.
func normalize(m Model) Model {
	m = cloneModel(m)
	for _, t := range m.Targets {
		if len(t.LUNs) == 0 {
			t.LUNs = nil
		}
		if len(t.Groups) == 0 {
			t.Groups = nil
		}
		for _, g := range t.Groups {
			if len(g.LUNs) == 0 {
				g.LUNs = nil
			}
		}
	}
	return m
}

func modelsEqual(a, b Model) bool { return reflect.DeepEqual(normalize(a), normalize(b)) }

// applyPlan carries out p on a copy of m at the model level: what the
// engine does to its running state, without the engine.
func applyPlan(m Model, p Plan) Model {
	m = cloneModel(m)
	for _, c := range p.Changes {
		a := c.Addr
		switch c.Op {
		case AddDevice, ReplaceDevice:
			m.Devices[a.Device] = c.After.(Device)
		case RemoveDevice:
			delete(m.Devices, a.Device)
		case ResizeDevice, SetDeviceAttr:
			d := m.Devices[a.Device]
			setAttr(deviceAttrs, &d, c)
			m.Devices[a.Device] = d
		case AddTarget:
			m.Targets[a.Target] = cloneTarget(c.After.(*Target))
		case RemoveTarget:
			delete(m.Targets, a.Target)
		case AddGroup:
			t := m.Targets[a.Target]
			if t.Groups == nil {
				t.Groups = map[string]*Group{}
			}
			g := *c.After.(*Group)
			t.Groups[a.Group] = &g
		case RemoveGroup:
			delete(m.Targets[a.Target].Groups, a.Group)
		case SetGroupInitiators:
			setAttr(groupAttrs, m.Targets[a.Target].Groups[a.Group], c)
		case AddLUN, RemoveLUN, SetLUNAttr:
			// The plan's order guarantees the target (and group) exist:
			// added before their LUNs, removed after them.
			t := m.Targets[a.Target]
			if t == nil {
				panic("applyPlan: " + c.Op.String() + " " + a.String() + " of a missing target")
			}
			luns := &t.LUNs
			if a.Group != "" {
				g := t.Groups[a.Group]
				if g == nil {
					panic("applyPlan: " + c.Op.String() + " " + a.String() + " of a missing group")
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
				setAttr(targetAttrs, m.Targets[a.Target], c)
			}
		case EnableTarget, DisableTarget, SetTargetParam:
			setAttr(targetAttrs, m.Targets[a.Target], c)
		default:
			panic("applyPlan: unknown op " + c.Op.String())
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
	panic("applyPlan: unknown attribute " + c.Attr)
}

// secret is a CHAP secret for fixtures.
func secret(s string) config.Secret { return config.NewSecret(s) }
