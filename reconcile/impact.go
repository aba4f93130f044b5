package reconcile

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// This file is the part of Diff that knows the live sessions: which LUN
// map each one sees before and after the change, what differs for it,
// and which change of the plan causes each difference.

// groupsOf returns the names of t's groups in the order the iSCSI server
// tries them (by name).
func (d *differ) groupsOf(t *Target) []string {
	names, ok := d.groupOrder[t]
	if !ok {
		names = sortedKeys(t.Groups)
		d.groupOrder[t] = names
	}
	return names
}

// view returns the LUN map session s sees in target t: its group's ("" for
// the target's own LUNs) and the map.
func (d *differ) view(t *Target, s *Session) (string, map[scsi.LUN]LUN) {
	key := s.Initiator
	if t.PerPortalACL {
		key += "#" + s.PortalIP
	}
	for _, name := range d.groupsOf(t) {
		if t.Groups[name].Initiators.Match(key) {
			return name, t.Groups[name].LUNs
		}
	}
	return "", t.LUNs
}

// sameDevice reports whether a LUN that reached running device before
// reaches the same device (the same scsi.Device, kept by the engine) when
// it names desired device after: the device is kept, or renamed.
func (d *differ) sameDevice(before, after string) bool {
	if before == after {
		return !d.replaced[before]
	}
	return d.renamed[after] == before
}

// swapImpact classifies a LUN that reached running device before and now
// reaches another device, desired after: IdentityChange when the storage
// is the same (handler, file, block size), DeviceSwap otherwise.
func (d *differ) swapImpact(before, after string) Impact {
	b, a := d.running.Devices[before], d.desired.Devices[after]
	if sameStorage(&b, &a) && !sameIdentity(&b, &a) {
		return IdentityChange
	}
	return DeviceSwap
}

// sameStorage reports whether two devices serve the same data: same
// handler, file (or pass-through disk) and block size (and the same file
// on disk, when both are known).
func sameStorage(b, a *Device) bool {
	return b.Handler == a.Handler && b.Filename == a.Filename && b.Path == a.Path && b.BlockSize == a.BlockSize &&
		(b.FileID == "" || a.FileID == "" || b.FileID == a.FileID)
}

// sameIdentity reports whether two devices show initiators the same
// identity: unit serial number, T10 vendor identification (and the NAA
// designator derived from it), removable medium bit.
func sameIdentity(b, a *Device) bool {
	return b.T10DevID == a.T10DevID && b.USN == a.USN && b.Removable == a.Removable && b.NAA == a.NAA
}

// identityHint says how to give device after the identity of device
// before: the attributes to pin, with their running values.
func (d *differ) identityHint(before, after string) string {
	b, a := d.running.Devices[before], d.desired.Devices[after]
	var set []string
	if b.T10DevID != a.T10DevID {
		set = append(set, "t10_dev_id = "+strconv.Quote(b.T10DevID))
	}
	if b.USN != a.USN {
		set = append(set, "usn = "+strconv.Quote(b.USN))
	}
	if b.Removable != a.Removable {
		set = append(set, "removable = "+strconv.FormatBool(b.Removable))
	}
	if b.NAA != a.NAA && b.NAA != "" && b.T10DevID == a.T10DevID {
		// (With t10_dev_id pinned back, a derived NAA designator comes
		// back by itself.)
		set = append(set, "naa_id = "+strconv.Quote(b.NAA))
	}
	if len(set) == 0 {
		return ""
	}
	return "set " + strings.Join(set, ", ") + " in " + DeviceAddr(after).String()
}

// lunEffects compares the LUN maps a session sees before and after.
func (d *differ) lunEffects(before, after map[scsi.LUN]LUN) []LUNEffect {
	luns := make([]scsi.LUN, 0, len(before)+len(after))
	for l := range before {
		luns = append(luns, l)
	}
	for l := range after {
		if _, ok := before[l]; !ok {
			luns = append(luns, l)
		}
	}
	slices.Sort(luns)
	var out []LUNEffect
	for _, l := range luns {
		b, okb := before[l]
		a, oka := after[l]
		switch {
		case !okb:
			out = append(out, LUNEffect{LUN: l, Kind: LUNAdded, After: a.Device})
		case !oka:
			out = append(out, LUNEffect{LUN: l, Kind: LUNRemoved, Before: b.Device})
		case !d.sameDevice(b.Device, a.Device):
			out = append(out, LUNEffect{LUN: l, Kind: LUNSwapped, Before: b.Device, After: a.Device})
		case b.ReadOnly != a.ReadOnly:
			out = append(out, LUNEffect{LUN: l, Kind: LUNReadOnly, Before: b.Device, After: a.Device})
		}
	}
	return out
}

// impactOf is what LUN effects amount to for a session.
func (d *differ) impactOf(es []LUNEffect) Impact {
	i := Hot
	for _, e := range es {
		if e.Kind == LUNSwapped {
			i = max(i, d.swapImpact(e.Before, e.After))
		} else {
			i = max(i, UnitAttention)
		}
	}
	return i
}

// reach finds, for every live session, what the plan changes for it and
// which changes cause it, and records it in those changes (Sessions,
// Hint). d.changes must be in their final order.
func (d *differ) reach(sessions []Session) {
	if len(sessions) == 0 {
		return
	}
	at := make(map[Addr][]int, len(d.changes))
	for i := range d.changes {
		at[d.changes[i].Addr] = append(at[d.changes[i].Addr], i)
	}
	// changes returns the indexes of the changes at addr that keep says.
	changes := func(addr Addr, keep func(c *Change) bool) []int {
		var out []int
		for _, i := range at[addr] {
			if d.changes[i].scoped && keep(&d.changes[i].Change) {
				out = append(out, i)
			}
		}
		return out
	}
	list := slices.Clone(sessions)
	slices.SortFunc(list, func(a, b Session) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Initiator, b.Initiator), cmp.Compare(a.TSIH, b.TSIH))
	})
	for i := range list {
		s := &list[i]
		rt := d.running.Targets[s.Target]
		if rt == nil || !rt.Enabled {
			continue // a session on its way out: it sees nothing
		}
		dt := d.desired.Targets[s.Target]
		if dt == nil || !dt.Enabled {
			for _, c := range changes(TargetAddr(s.Target), func(c *Change) bool { return c.Op == RemoveTarget || c.Op == DisableTarget }) {
				d.affect(c, s, SessionDrop, nil)
			}
			continue
		}
		gb, before := d.view(rt, s)
		ga, after := d.view(dt, s)
		effects := d.lunEffects(before, after)
		if gb != ga {
			// The session moves to another LUN map: the changes of the
			// groups it leaves and joins (or of per_portal_acl) move it.
			moved := func(c *Change) bool {
				return c.Op == AddGroup || c.Op == RemoveGroup || c.Op == SetGroupInitiators || c.Attr == "per_portal_acl"
			}
			owners := changes(TargetAddr(s.Target), moved)
			for _, g := range []string{gb, ga} {
				if g != "" {
					owners = append(owners, changes(GroupAddr(s.Target, g), moved)...)
				}
			}
			if len(effects) > 0 {
				for _, c := range owners {
					d.affect(c, s, d.impactOf(effects), effects)
				}
			}
		} else {
			for _, e := range effects {
				owners := changes(LUNAddr(s.Target, ga, e.LUN), func(c *Change) bool {
					return c.Op != SetLUNAttr || (c.Attr == "device") == (e.Kind == LUNSwapped)
				})
				if len(owners) == 0 && e.Kind == LUNSwapped {
					owners = changes(DeviceAddr(e.Before), func(c *Change) bool { return c.Op == ReplaceDevice })
				}
				for _, c := range owners {
					d.affect(c, s, d.impactOf([]LUNEffect{e}), []LUNEffect{e})
				}
			}
		}
		d.reachALUA(s, before, after, changes)
		// Devices the session keeps seeing at the same LUN and that
		// change in place (capacity, mode parameters, the disc in a
		// drive, which a session that locked it in must not lose).
		for _, l := range sortedLUNs(after) {
			b, ok := before[l]
			a := after[l]
			if !ok || !d.sameDevice(b.Device, a.Device) {
				continue
			}
			inPlace := func(c *Change) bool { return c.Op == ResizeDevice || c.Op == SetDeviceAttr || c.Op == ChangeMedium }
			for _, c := range changes(DeviceAddr(a.Device), inPlace) {
				impact := UnitAttention
				if d.changes[c].Op == ChangeMedium && slices.Contains(s.Locks, b.Device) {
					impact = MediumLocked
				}
				d.affect(c, s, impact, []LUNEffect{{LUN: l, Kind: LUNDeviceEvent, Before: b.Device, After: a.Device}})
			}
		}
	}
	for i := range d.changes {
		d.changes[i].Hint = d.hint(&d.changes[i].Change)
	}
}

// affect records that change i reaches session s with impact and, at
// the session's LUNs, effects.
func (d *differ) affect(i int, s *Session, impact Impact, effects []LUNEffect) {
	c := &d.changes[i].Change
	if n := len(c.Sessions); n > 0 && c.Sessions[n-1].Session == s.SessionID {
		a := &c.Sessions[n-1]
		a.Impact = max(a.Impact, impact)
		a.LUNs = append(a.LUNs, effects...)
		return
	}
	c.Sessions = append(c.Sessions, Affected{Session: s.SessionID, Impact: impact, LUNs: slices.Clone(effects)})
}

// hint says how to keep the identity of the devices a change would give
// live sessions under another identity, if it does.
func (d *differ) hint(c *Change) string {
	seen := map[string]bool{}
	var hints []string
	for _, a := range c.Sessions {
		for _, e := range a.LUNs {
			if e.Kind != LUNSwapped || d.swapImpact(e.Before, e.After) != IdentityChange {
				continue
			}
			if h := d.identityHint(e.Before, e.After); h != "" && !seen[h] {
				seen[h] = true
				hints = append(hints, h)
			}
		}
	}
	sort.Strings(hints)
	return strings.Join(hints, "; ")
}

func sortedLUNs(m map[scsi.LUN]LUN) []scsi.LUN {
	out := make([]scsi.LUN, 0, len(m))
	for l := range m {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// SessionsOf converts the iSCSI server's session list for Diff.
func SessionsOf(infos []iscsi.SessionInfo) []Session {
	out := make([]Session, len(infos))
	for i := range infos {
		out[i] = Session{SessionID: infos[i].ID(), PortalIP: infos[i].PortalIP}
	}
	return out
}
