package reconcile

import (
	"cmp"
	"slices"
	"strings"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// FromConfig derives the model of a loaded configuration. It is pure and
// expects a configuration that config.Load accepted (defaults filled in,
// references checked); order-only differences (portals, users, targets,
// LUN blocks) do not show in the model.
func FromConfig(c *config.Config) Model {
	m := Model{
		Devices:      make(map[string]Device, len(c.Devices)),
		Targets:      make(map[string]*Target, len(c.Targets)),
		DeviceGroups: deviceGroupsFromConfig(c.DeviceGroups),
		StateDir:     c.StateDir,
	}
	if c.ISCSI != nil {
		m.ISCSI = globalFromConfig(c.ISCSI)
	}
	m.ISCSI.LogLevel = string(c.LogLevel)
	m.Cluster = clusterFromConfig(c.Cluster)
	if c.Metrics != nil && !c.Metrics.Listen.IsZero() {
		m.ISCSI.MetricsListen = c.Metrics.Listen.String()
	}
	for _, d := range c.Devices {
		m.Devices[d.Name] = deviceFromConfig(d)
	}
	for _, t := range c.Targets {
		m.Targets[t.Name] = targetFromConfig(t)
	}
	return m
}

func globalFromConfig(i *config.ISCSI) Global {
	g := Global{Enabled: i.Enabled, MaxConnections: uint32(i.MaxConnections),
		MaxConnectionsPerAddress: uint32(i.MaxConnectionsPerAddress),
		LoginTimeout:             Duration(i.LoginTimeout), DiscoveryIdleTimeout: Duration(i.DiscoveryIdleTimeout)}
	for _, p := range i.Portals {
		g.Portals = append(g.Portals, p.Addr)
	}
	g.Portals = sortedAddrs(g.Portals)
	for _, s := range i.ISNSServers {
		g.ISNSServers = append(g.ISNSServers, s.Addr)
		if s.AccessControl {
			g.ISNSAccessControl = append(g.ISNSAccessControl, s.Addr)
		}
	}
	g.ISNSServers = sortedAddrs(g.ISNSServers)
	g.ISNSAccessControl = sortedAddrs(g.ISNSAccessControl)
	g.IncomingUsers = users(i.IncomingUsers, i.OutgoingUser, false)
	g.OutgoingUsers = users(i.IncomingUsers, i.OutgoingUser, true)
	return g
}

func deviceFromConfig(d *config.Device) Device {
	return Device{
		Handler:      vdisk.Handler(d.Handler),
		Filename:     d.Filename,
		Size:         d.Size.Bytes,
		BlockSize:    uint32(d.BlockSize),
		ReadOnly:     d.ReadOnly,
		NVCache:      d.NVCache,
		WriteThrough: d.WriteThrough,
		ODirect:      d.ODirect,
		Removable:    d.Removable,
		T10DevID:     d.T10DevID,
		USN:          d.USN,
		NAA:          d.NAAID,
		Path:         d.Path,
		Timeout:      Duration(d.Timeout),
	}
}

func targetFromConfig(t *config.Target) *Target {
	m := &Target{
		Enabled:                  t.Enabled,
		RelTgtID:                 uint16(t.RelTgtID),
		HeaderDigest:             slices.Clone(t.HeaderDigest),
		DataDigest:               slices.Clone(t.DataDigest),
		ImmediateData:            t.ImmediateData,
		InitialR2T:               t.InitialR2T,
		MaxRecvDataSegmentLength: uint32(t.MaxRecvDataSegmentLength),
		MaxXmitDataSegmentLength: uint32(t.MaxXmitDataSegmentLength),
		MaxBurstLength:           uint32(t.MaxBurstLength),
		FirstBurstLength:         uint32(t.FirstBurstLength),
		MaxOutstandingR2T:        uint32(t.MaxOutstandingR2T),
		QueuedCommands:           uint32(t.QueuedCommands),
		NopInInterval:            Duration(t.NopInInterval),
		NopInTimeout:             Duration(t.NopInTimeout),
		MaxSessions:              uint32(t.MaxSessions),
		RspTimeout:               Duration(t.RspTimeout),
		AllowedPortals:           slices.Clone(t.AllowedPortals),
		PerPortalACL:             t.PerPortalACL,
		Redirect:                 t.Redirect,
		IncomingUsers:            users(t.IncomingUsers, t.OutgoingUser, false),
		OutgoingUsers:            users(t.IncomingUsers, t.OutgoingUser, true),
		CHAPAlgorithms:           slices.Clone(t.CHAPAlgorithms),
		LUNs:                     lunMap(t.LUNs),
	}
	if len(t.Groups) > 0 {
		m.Groups = make(map[string]*Group, len(t.Groups))
		for _, g := range t.Groups {
			m.Groups[g.Name] = &Group{Initiators: slices.Clone(g.Initiators), LUNs: lunMap(g.LUNs)}
		}
	}
	return m
}

func lunMap(ls []*config.LUN) map[scsi.LUN]LUN {
	if len(ls) == 0 {
		return nil
	}
	m := make(map[scsi.LUN]LUN, len(ls))
	for _, l := range ls {
		m[scsi.LUN(l.Number)] = LUN{Device: l.Device, ReadOnly: l.ReadOnly}
	}
	return m
}

// users returns the incoming users sorted by name, or (outgoing) the
// outgoing user as a list of at most one.
func users(in []*config.User, out *config.User, outgoing bool) []User {
	if outgoing {
		if out == nil {
			return nil
		}
		return []User{{Name: out.Name, Secret: out.Secret}}
	}
	var us []User
	for _, u := range in {
		us = append(us, User{Name: u.Name, Secret: u.Secret})
	}
	slices.SortFunc(us, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return us
}

// sortedAddrs sorts addresses by their text and drops duplicates.
func sortedAddrs(as []access.HostPort) []access.HostPort {
	slices.SortFunc(as, access.HostPort.Compare)
	return slices.Compact(as)
}

func sortedUnique[T cmp.Ordered](s []T) []T {
	slices.Sort(s)
	return slices.Compact(s)
}
