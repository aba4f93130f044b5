package reconcile

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// FromConfig derives the model of a loaded configuration. It is pure and
// expects a configuration that config.Load accepted (defaults filled in,
// references checked); order-only differences (portals, users, targets,
// LUN blocks) do not show in the model.
func FromConfig(c *config.Config) Model {
	m := Model{
		Devices: make(map[string]Device, len(c.Devices)),
		Targets: make(map[string]*Target, len(c.Targets)),
	}
	if c.ISCSI != nil {
		m.ISCSI = globalFromConfig(c.ISCSI)
	}
	m.ISCSI.LogLevel = string(c.LogLevel)
	m.Cluster = clusterFromConfig(c.Cluster)
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
		LoginTimeout:             seconds(i.LoginTimeout), DiscoveryIdleTimeout: seconds(i.DiscoveryIdleTimeout)}
	for _, p := range i.Portals {
		g.Portals = append(g.Portals, p.Addr)
	}
	g.Portals = sortedUnique(g.Portals)
	for _, s := range i.ISNSServers {
		g.ISNSServers = append(g.ISNSServers, s.Addr)
		if s.AccessControl {
			g.ISNSAccessControl = append(g.ISNSAccessControl, s.Addr)
		}
	}
	g.ISNSServers = sortedUnique(g.ISNSServers)
	g.ISNSAccessControl = sortedUnique(g.ISNSAccessControl)
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
		Path:         d.Path,
		Timeout:      seconds(d.Timeout),
	}
}

func targetFromConfig(t *config.Target) *Target {
	m := &Target{
		Enabled:                  t.Enabled,
		RelTgtID:                 uint16(t.RelTgtID),
		HeaderDigest:             digests(t.HeaderDigest),
		DataDigest:               digests(t.DataDigest),
		ImmediateData:            t.ImmediateData,
		InitialR2T:               t.InitialR2T,
		MaxRecvDataSegmentLength: uint32(t.MaxRecvDataSegmentLength),
		MaxXmitDataSegmentLength: uint32(t.MaxXmitDataSegmentLength),
		MaxBurstLength:           uint32(t.MaxBurstLength),
		FirstBurstLength:         uint32(t.FirstBurstLength),
		MaxOutstandingR2T:        uint32(t.MaxOutstandingR2T),
		QueuedCommands:           uint32(t.QueuedCommands),
		NopInInterval:            seconds(t.NopInInterval),
		NopInTimeout:             seconds(t.NopInTimeout),
		MaxSessions:              uint32(t.MaxSessions),
		RspTimeout:               seconds(t.RspTimeout),
		AllowedPortals:           slices.Clone(t.AllowedPortals),
		PerPortalACL:             t.PerPortalACL,
		IncomingUsers:            users(t.IncomingUsers, t.OutgoingUser, false),
		OutgoingUsers:            users(t.IncomingUsers, t.OutgoingUser, true),
		LUNs:                     lunMap(t.LUNs),
	}
	if t.Redirect != nil {
		m.Redirect = t.Redirect.String()
	}
	for _, a := range t.CHAPAlgorithms {
		m.CHAPAlgorithms = append(m.CHAPAlgorithms, string(a))
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

func digests(ds []config.Digest) []string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = string(d)
	}
	return s
}

func seconds(d time.Duration) uint32 { return uint32(d / time.Second) }

func sortedUnique[T cmp.Ordered](s []T) []T {
	slices.Sort(s)
	return slices.Compact(s)
}

func seconds2d(s uint32) time.Duration { return time.Duration(s) * time.Second }
