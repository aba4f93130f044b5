package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/internal/isns"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// Status is the live tree the admin API shows: what runs, and what is
// offline and why.
type Status struct {
	// Generation is the snapshot generation running (0 before the first
	// Apply).
	Generation uint64 `json:"generation"`
	// DisruptiveChanges is the running configuration's policy, the one
	// the next reload is held to ("refuse" or "allow").
	DisruptiveChanges string         `json:"disruptive_changes"`
	Enabled           bool           `json:"enabled"`
	Portals           []string       `json:"portals"`
	Devices           []DeviceStatus `json:"devices"`
	Targets           []TargetStatus `json:"targets"`
	// ISNS are the iSNS servers and what each one holds.
	ISNS []isns.State `json:"isns,omitempty"`
	// DeviceGroups are the ALUA device groups with their target port
	// groups' states.
	DeviceGroups []DeviceGroupStatus `json:"device_groups,omitempty"`
	// StateDir is the state directory in use.
	StateDir string `json:"state_dir,omitempty"`
	// Sessions are the live sessions.
	Sessions []iscsi.SessionInfo `json:"sessions"`
}

// DeviceStatus is one device with its live attributes.
type DeviceStatus struct {
	Name     string `json:"name"`
	Handler  string `json:"handler"`
	Filename string `json:"filename,omitempty"`
	// Path is a dev_disk device's disk (device node or H:C:T:L).
	Path string `json:"path,omitempty"`
	// Size is the capacity served now, in bytes (0 while offline);
	// ConfiguredSize is the size attribute (0: the file's size).
	Size           int64 `json:"size"`
	ConfiguredSize int64 `json:"configured_size"`
	// SizeDrift says, when the size served is not the configured one,
	// both and why (see sizeDrift).
	SizeDrift string `json:"size_drift,omitempty"`
	BlockSize uint32 `json:"blocksize"`
	// ReadOnly, NVCache and WriteThrough are the live values.
	ReadOnly     bool   `json:"read_only"`
	NVCache      bool   `json:"nv_cache"`
	WriteThrough bool   `json:"write_through"`
	ODirect      bool   `json:"o_direct"`
	Removable    bool   `json:"removable"`
	T10DevID     string `json:"t10_dev_id"`
	USN          string `json:"usn"`
	// NAA is the NAA designator in force, in hex (naa_id, or derived).
	NAA string `json:"naa_id,omitempty"`
	// LegacyNAA is the NAA 3h designator the device had before scstd
	// derived NAA 6h ones: naa_id = LegacyNAA keeps that identity.
	LegacyNAA string `json:"legacy_naa_id,omitempty"`
	// PersistentReservations are the device's registrations and
	// reservation, whether they are kept through power loss, and why
	// saved ones could not be restored or saved.
	PersistentReservations *scsi.PRStatus `json:"persistent_reservations,omitempty"`
	Online                 bool           `json:"online"`
	// Reason says why the device is offline, or why new attributes could
	// not be applied to its backend.
	Reason string `json:"reason,omitempty"`
	// Medium is, for a removable device online, "loaded", "ejected" (by
	// the initiator: START STOP UNIT) or "none" (a vcdrom whose filename
	// is ""); MediumLocked says that a session holds it in with PREVENT
	// ALLOW MEDIUM REMOVAL, which a reload changing it must be forced
	// past.
	Medium       string `json:"medium,omitempty"`
	MediumLocked bool   `json:"medium_locked,omitempty"`
}

// TargetStatus is one target as the engine runs it.
type TargetStatus struct {
	Name         string        `json:"name"`
	Enabled      bool          `json:"enabled"`
	TID          uint32        `json:"tid"`
	RelTgtPortID uint16        `json:"rel_tgt_id"`
	LUNs         []LUNStatus   `json:"luns"`
	Groups       []GroupStatus `json:"groups,omitempty"`
}

// LUNStatus is one LUN map entry.
type LUNStatus struct {
	LUN      scsi.LUN `json:"lun"`
	Device   string   `json:"device"`
	ReadOnly bool     `json:"read_only,omitempty"`
	// IO counts the commands completed on the LUN, by every session
	// that sees it, since it reaches its device (nil when the LUN's
	// device is not running).
	IO *scsi.IOCounters `json:"io,omitempty"`
}

// GroupStatus is one initiator group.
type GroupStatus struct {
	Name       string      `json:"name"`
	Initiators []string    `json:"initiators"`
	LUNs       []LUNStatus `json:"luns"`
}

// Status returns the engine's live state.
func (e *Engine) Status() Status {
	e.mu.Lock()
	st := Status{Enabled: e.running.ISCSI.Enabled, Portals: addrStrings(e.running.ISCSI.Portals), DisruptiveChanges: string(e.policy)}
	if e.snap != nil {
		st.Generation = e.snap.Generation
	}
	for _, name := range sortedKeys(e.devices) {
		d := e.devices[name]
		m, cfg := d.model, d.dev.Config()
		ds := DeviceStatus{
			Name: name, Handler: string(m.Handler), Filename: m.Filename,
			ConfiguredSize: m.Size, BlockSize: m.BlockSize,
			ReadOnly: cfg.ReadOnly, NVCache: cfg.NVCache, WriteThrough: cfg.WriteThrough,
			ODirect: m.ODirect, Removable: m.Removable, T10DevID: m.T10DevID, USN: m.USN,
			Path:   m.Path,
			Online: d.online(),
			NAA:    m.NAA,
		}
		if m.Handler != devDisk {
			ds.LegacyNAA = fmt.Sprintf("%016x", scsi.LegacyNAA(m.T10DevID))
		}
		if pr := d.dev.PRStatus(); pr.Persistent || len(pr.Registrations) > 0 || pr.Error != "" {
			ds.PersistentReservations = &pr
		}
		if ds.Online {
			ds.Size = d.dev.Size()
			ds.SizeDrift = sizeDrift(m.Handler, m.Size, ds.Size)
		}
		if ds.Online && m.Removable {
			switch {
			case d.empty:
				ds.Medium = "none"
			case d.dev.HasMedium():
				ds.Medium = "loaded"
			default:
				ds.Medium = "ejected"
			}
			ds.MediumLocked = d.dev.RemovalPrevented()
		}
		if d.reason != nil {
			ds.Reason = d.reason.Error()
		} else if err := d.dev.Offline(); err != nil && d.backend != nil {
			ds.Reason = err.Error()
		}
		st.Devices = append(st.Devices, ds)
	}
	for _, name := range sortedKeys(e.running.Targets) {
		t := e.running.Targets[name]
		var it *iscsi.Target
		if e.snap != nil {
			it = e.snap.Targets[name]
		}
		ts := TargetStatus{Name: name, Enabled: t.Enabled}
		if it != nil {
			ts.TID, ts.RelTgtPortID = it.TID, it.RelTgtPortID
			ts.LUNs = lunStatus(t.LUNs, it.LUNs)
		} else {
			ts.LUNs = lunStatus(t.LUNs, nil)
		}
		for _, g := range sortedKeys(t.Groups) {
			var live *scsi.LUNMap
			if it != nil {
				live = groupLUNs(it, g)
			}
			ts.Groups = append(ts.Groups, GroupStatus{Name: g, Initiators: t.Groups[g].Initiators.Strings(), LUNs: lunStatus(t.Groups[g].LUNs, live)})
		}
		st.Targets = append(st.Targets, ts)
	}
	st.DeviceGroups = e.deviceGroupStatus()
	if e.state != nil {
		st.StateDir = e.state.Path()
	}
	links := make([]*isnsLink, 0, len(e.isns))
	for _, server := range slices.SortedFunc(maps.Keys(e.isns), access.HostPort.Compare) {
		links = append(links, e.isns[server])
	}
	e.mu.Unlock()
	// A client's state waits for an exchange in progress: not under e.mu.
	for _, l := range links {
		st.ISNS = append(st.ISNS, l.client.State())
	}
	st.Sessions = e.srv.Sessions()
	return st
}

// lunStatus lists the LUNs of m with the counters of the same LUNs in
// live, the LUN map that runs.
func lunStatus(m map[scsi.LUN]LUN, live *scsi.LUNMap) []LUNStatus {
	out := make([]LUNStatus, 0, len(m))
	for l, lu := range m {
		ls := LUNStatus{LUN: l, Device: lu.Device, ReadOnly: lu.ReadOnly}
		if u := live.Lookup(l); u != nil && u.Stats != nil {
			c := u.Stats.Counters()
			ls.IO = &c
		}
		out = append(out, ls)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LUN < out[j].LUN })
	return out
}

// sizeDrift says why a device serves another size than its size
// attribute, or "" when it does not (or has none). A file is served
// whole: size only creates or grows it, so a file larger than size is
// served at its own size, and one that shrank since it was opened at
// that. A block device serves size bytes of itself, or all of it when it
// shrank below size.
func sizeDrift(h vdisk.Handler, configured, served int64) string {
	if configured <= 0 || served == configured {
		return ""
	}
	switch h {
	case vdisk.FileIO:
		why := "a file is served whole; size never shrinks it"
		if served < configured {
			why = "the file shrank after it was opened"
		}
		return fmt.Sprintf("size is %s, the file holds %s: serving %s (%s)",
			formatSize(configured), formatSize(served), formatSize(served), why)
	case vdisk.BlockIO:
		if served < configured {
			return fmt.Sprintf("size is %s, the device holds %s: serving %s (the device shrank)",
				formatSize(configured), formatSize(served), formatSize(served))
		}
	}
	return ""
}

// Served returns, by device name, the backing file of every device that
// serves from one now (online, with a filename): the storage checks let
// such a file grow when its size is raised (a resize). It reads the
// running state only and never waits for storage or iSNS.
func (e *Engine) Served() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.devices))
	for name, d := range e.devices {
		if d.backend != nil && d.model.Filename != "" {
			out[name] = d.model.Filename
		}
	}
	return out
}

// addrStrings returns addresses as text.
func addrStrings(as []access.HostPort) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
