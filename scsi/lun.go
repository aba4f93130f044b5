package scsi

import "sort"

// MaxLUN is the largest LUN scstd addresses (flat space addressing, 14 bits).
const MaxLUN LUN = 0x3fff

// Encode returns the eight-byte LUN field (SAM-5 §4.7): peripheral device
// addressing (byte 0 = 0, byte 1 = LUN) for 0..255, flat space addressing
// (byte 0 = 40h | LUN bits 13..8, byte 1 = LUN bits 7..0) above. Bytes 2..7
// are zero (single level).
func (l LUN) Encode() [8]byte {
	var b [8]byte
	if l < 256 {
		b[1] = byte(l)
		return b
	}
	b[0] = 0x40 | byte(l>>8)&0x3f
	b[1] = byte(l)
	return b
}

// DecodeLUN reads an eight-byte LUN field. It accepts single-level
// peripheral device addressing with bus 0 and flat space addressing; any
// other address method, a non-zero bus, or a second level is not a LUN
// scstd serves (false).
func DecodeLUN(b [8]byte) (LUN, bool) {
	for _, x := range b[2:] {
		if x != 0 {
			return 0, false
		}
	}
	switch b[0] >> 6 {
	case 0: // peripheral device addressing; bus identifier must be 0
		if b[0] != 0 {
			return 0, false
		}
		return LUN(b[1]), true
	case 1: // flat space addressing
		return LUN(b[0]&0x3f)<<8 | LUN(b[1]), true
	}
	return 0, false
}

// LUNMap is an immutable map from LUN to logical unit, shared by every
// nexus that sees it. Its identity changes when the map changes.
type LUNMap struct {
	units map[LUN]*LogicalUnit
	luns  []LUN // sorted
}

// NewLUNMap builds a LUN map; the caller must not modify m afterwards.
// Entries with a nil unit or a LUN above MaxLUN are left out; units
// without Stats get new ones.
func NewLUNMap(m map[LUN]*LogicalUnit) *LUNMap {
	lm := &LUNMap{units: make(map[LUN]*LogicalUnit, len(m))}
	for l, u := range m {
		if u == nil || u.Device == nil || l > MaxLUN {
			continue
		}
		if u.Stats == nil {
			u.Stats = new(IOStats)
		}
		lm.units[l] = u
		lm.luns = append(lm.luns, l)
	}
	sort.Slice(lm.luns, func(i, j int) bool { return lm.luns[i] < lm.luns[j] })
	return lm
}

// Lookup returns the logical unit at l, or nil. A nil map has no units.
func (m *LUNMap) Lookup(l LUN) *LogicalUnit {
	if m == nil {
		return nil
	}
	return m.units[l]
}

// LUNs returns the map's LUNs in ascending order. The slice is shared:
// do not modify it.
func (m *LUNMap) LUNs() []LUN {
	if m == nil {
		return nil
	}
	return m.luns
}

// Len returns the number of logical units in the map.
func (m *LUNMap) Len() int {
	if m == nil {
		return 0
	}
	return len(m.luns)
}

// DiffLUNMaps returns what going from map from to map to changes for a
// nexus: the LUNs added, removed, and swapped (reaching another Device),
// in ascending order; changed is false when the maps hold the same
// logical units (the same devices, read-only alike) at the same LUNs.
func DiffLUNMaps(from, to *LUNMap) (c LUNChange, changed bool) {
	c.From = from
	if from == to {
		return c, false
	}
	for _, l := range from.LUNs() {
		a, b := from.Lookup(l), to.Lookup(l)
		switch {
		case b == nil:
			c.Removed = append(c.Removed, l)
		case a.Device != b.Device:
			c.Swapped = append(c.Swapped, l)
		case a.ReadOnly != b.ReadOnly:
			changed = true
		}
	}
	for _, l := range to.LUNs() {
		if from.Lookup(l) == nil {
			c.Added = append(c.Added, l)
		}
	}
	return c, changed || len(c.Added)+len(c.Removed)+len(c.Swapped) > 0
}
