package scsi

import (
	"encoding/binary"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// Asymmetric logical unit access (SPC-4 §5.15): the target ports through
// which a logical unit is reached are gathered in target port groups, and
// each group has an asymmetric access state that says what the logical
// unit does with commands arriving through its ports.
//
// scstd follows SCST's device groups: a DeviceGroup is a set of devices
// that share their target port groups and states. Each target is one
// SCSI target port (its relative target port identifier, rel_tgt_id):
// every portal of a target serves the same port, as in iSCSI-SCST, where
// all portals are one portal group (TPGT 1). Multipath initiators see
// one path per session; paths through targets in different target port
// groups are told apart by state.
//
// A DeviceGroup is immutable but for the states and preferences of its
// TargetPortGroups, which are atomics read on every command: a reload
// that changes a state changes it in place (TargetPortGroup.SetState),
// one that changes the structure (groups, identifiers, members) makes a
// new DeviceGroup around the same TargetPortGroup values. Each
// TargetPortGroup counts its changes; a nexus remembers, per LUN, the
// group it reached the logical unit through and the count it saw, and
// reports ASYMMETRIC ACCESS STATE CHANGED (2Ah/06h) when either moved, so
// that only the nexuses through the changed groups' ports are told.

// ALUAState is a target port group's asymmetric access state (SPC-4
// table 48, the ASYMMETRIC ACCESS STATE field of REPORT TARGET PORT
// GROUPS).
type ALUAState uint8

// Asymmetric access states.
const (
	ActiveOptimized    ALUAState = 0x0
	ActiveNonOptimized ALUAState = 0x1
	Standby            ALUAState = 0x2
	Unavailable        ALUAState = 0x3
	OfflineState       ALUAState = 0xe
	Transitioning      ALUAState = 0xf
)

// ALUAStates lists the states by their configuration names.
var ALUAStates = map[string]ALUAState{
	"active/optimized":     ActiveOptimized,
	"active/non-optimized": ActiveNonOptimized,
	"standby":              Standby,
	"unavailable":          Unavailable,
	"offline":              OfflineState,
	"transitioning":        Transitioning,
}

// String returns the state's configuration name ("active/optimized").
func (s ALUAState) String() string {
	for name, v := range ALUAStates {
		if v == s {
			return name
		}
	}
	return "alua_state_" + strconv.Itoa(int(s))
}

// MarshalText makes an ALUAState a JSON string.
func (s ALUAState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// active reports whether media access is allowed in the state.
func (s ALUAState) active() bool { return s == ActiveOptimized || s == ActiveNonOptimized }

// Sense data of commands refused by a target port's state (SPC-4
// §5.15.2.4): NOT READY, LOGICAL UNIT NOT ACCESSIBLE, ...
var (
	// ErrALUATransition is ... ASYMMETRIC ACCESS STATE TRANSITION (04h/0Ah).
	ErrALUATransition = &SenseError{Key: NotReady, ASC: 0x04, ASCQ: 0x0a}
	// ErrALUAStandby is ... TARGET PORT IN STANDBY STATE (04h/0Bh).
	ErrALUAStandby = &SenseError{Key: NotReady, ASC: 0x04, ASCQ: 0x0b}
	// ErrALUAUnavailable is ... TARGET PORT IN UNAVAILABLE STATE (04h/0Ch).
	ErrALUAUnavailable = &SenseError{Key: NotReady, ASC: 0x04, ASCQ: 0x0c}
	// ErrALUAOffline is LOGICAL UNIT NOT READY, OFFLINE (04h/12h).
	ErrALUAOffline = &SenseError{Key: NotReady, ASC: 0x04, ASCQ: 0x12}
	// ErrSTPGFailed is HARDWARE ERROR, SET TARGET PORT GROUPS COMMAND
	// FAILED (67h/0Ah): the new states could not be stored.
	ErrSTPGFailed = &SenseError{Key: HardwareError, ASC: 0x67, ASCQ: 0x0a}

	uaALUAChanged = &SenseError{Key: UnitAttention, ASC: 0x2a, ASCQ: 0x06}
)

// STATUS CODE values of a target port group descriptor (SPC-4 §6.27).
const (
	tpgStatusNone     = 0x00
	tpgStatusExplicit = 0x01 // altered by SET TARGET PORT GROUPS
	tpgStatusImplicit = 0x02 // altered by the device server (a reload)
)

// TargetPortGroup is one target port group: its identifier and name,
// fixed, and its state and preference, which change while commands read
// them.
type TargetPortGroup struct {
	// ID is the TARGET PORT GROUP identifier.
	ID uint16
	// Name is the group's name in the configuration.
	Name string
	// word holds the state (bits 3..0), PREF (bit 8) and the STATUS CODE
	// of the last change (bits 23..16).
	word atomic.Uint32
	// epoch counts the changes that nexuses through the group's ports
	// are told of.
	epoch atomic.Uint64
}

// NewTargetPortGroup returns a target port group in state s.
func NewTargetPortGroup(name string, id uint16, s ALUAState, preferred bool) *TargetPortGroup {
	g := &TargetPortGroup{ID: id, Name: name}
	g.word.Store(tpgWord(s, preferred, tpgStatusNone))
	return g
}

func tpgWord(s ALUAState, preferred bool, status uint8) uint32 {
	w := uint32(s&0x0f) | uint32(status)<<16
	if preferred {
		w |= 1 << 8
	}
	return w
}

// State returns the group's state and preference.
func (g *TargetPortGroup) State() (ALUAState, bool) {
	w := g.word.Load()
	return ALUAState(w & 0x0f), w&(1<<8) != 0
}

func (g *TargetPortGroup) state() ALUAState { return ALUAState(g.word.Load() & 0x0f) }

// SetState changes the group's state and preference as the device server
// does on its own (a reload): every nexus that reaches a logical unit
// through one of the group's ports gets ASYMMETRIC ACCESS STATE CHANGED
// on its next command to it, even when the values are those it had.
func (g *TargetPortGroup) SetState(s ALUAState, preferred bool) {
	g.word.Store(tpgWord(s, preferred, tpgStatusImplicit))
	g.epoch.Add(1)
}

// Changed tells the nexuses through the group's ports that what REPORT
// TARGET PORT GROUPS or INQUIRY say about it changed (the device group
// started or stopped taking SET TARGET PORT GROUPS).
func (g *TargetPortGroup) Changed() { g.epoch.Add(1) }

// PortGroupMember places a target port group in a device group: the
// targets whose ports belong to it and their relative target port
// identifiers (what REPORT TARGET PORT GROUPS lists).
type PortGroupMember struct {
	Group   *TargetPortGroup
	Targets []string
	Ports   []uint16
}

// PortGroupState is a target port group's identifier and a state for it.
type PortGroupState struct {
	ID    uint16
	State ALUAState
}

// ALUAStore carries the states that an explicit SET TARGET PORT GROUPS
// asks for beyond the device group in memory: it records them (a log
// line, or for a cluster of gateways a shared store) and returns once
// they may apply. Transition runs while the groups it names report
// transitioning; the new states take effect when it returns nil. An
// error fails the command (SET TARGET PORT GROUPS COMMAND FAILED) and
// the states from before are restored.
type ALUAStore interface {
	Transition(group string, initiator string, states []PortGroupState) error
}

// DeviceGroup is the ALUA configuration of a set of devices (SCST's
// device group): its target port groups, in identifier order, and the
// group each target's port belongs to. It is immutable, but for the
// groups' states.
type DeviceGroup struct {
	// Name is the device group's name in the configuration.
	Name string
	// Explicit makes the logical units take SET TARGET PORT GROUPS
	// (TPGS 11b); otherwise their states change only implicitly, by
	// reload (TPGS 01b).
	Explicit bool

	members  []PortGroupMember
	byTarget map[string]*TargetPortGroup
	store    ALUAStore
	// stpg serializes SET TARGET PORT GROUPS within the group.
	stpg sync.Mutex
}

// NewDeviceGroup returns a device group with the given target port
// groups. Each target should be in one group; a command through a
// target in none is served as through an active/optimized port, and
// INQUIRY lists no target port group for it. store may be nil.
func NewDeviceGroup(name string, explicit bool, members []PortGroupMember, store ALUAStore) *DeviceGroup {
	g := &DeviceGroup{Name: name, Explicit: explicit, store: store, byTarget: map[string]*TargetPortGroup{}}
	g.members = slices.Clone(members)
	slices.SortFunc(g.members, func(a, b PortGroupMember) int { return int(a.Group.ID) - int(b.Group.ID) })
	for _, m := range g.members {
		for _, t := range m.Targets {
			g.byTarget[t] = m.Group
		}
	}
	return g
}

// Members returns the device group's target port groups in identifier
// order. The slice is shared: do not modify it.
func (g *DeviceGroup) Members() []PortGroupMember { return g.members }

// group returns the target port group with identifier id, or nil.
func (g *DeviceGroup) group(id uint16) *TargetPortGroup {
	for _, m := range g.members {
		if m.Group.ID == id {
			return m.Group
		}
	}
	return nil
}

// SetDeviceGroup makes d a member of g (nil: of none, no ALUA). Nexuses
// that reach d through a port whose group changes by it get ASYMMETRIC
// ACCESS STATE CHANGED.
func (d *Device) SetDeviceGroup(g *DeviceGroup) { d.alua.Store(g) }

// DeviceGroup returns the device group d is a member of, or nil.
func (d *Device) DeviceGroup() *DeviceGroup { return d.alua.Load() }

// portGroup returns the target port group through which target reaches
// d, or nil when d is in no device group or target in none of its groups.
func (d *Device) portGroup(target string) *TargetPortGroup {
	g := d.alua.Load()
	if g == nil {
		return nil
	}
	return g.byTarget[target]
}

// tpgs is the TPGS field of standard INQUIRY data (byte 5 bits 5..4):
// 00b without a device group, 01b implicit only, 11b implicit and
// explicit.
func (d *Device) tpgs() byte {
	g := d.alua.Load()
	switch {
	case g == nil:
		return 0
	case g.Explicit:
		return 0x30
	}
	return 0x10
}

// aluaCheck refuses a command that the asymmetric access state of the
// target port it came through does not allow (SPC-4 §5.15.2.4). It costs
// one atomic load for a device in no device group.
func (t *task) aluaCheck() *SenseError {
	if t.cmd.Nexus == nil {
		return nil
	}
	g := t.dev.portGroup(t.cmd.Nexus.TargetName)
	if g == nil {
		return nil
	}
	s := g.state()
	if s.active() || aluaAllowed(s, t.cmd.CDB) {
		return nil
	}
	return aluaSense(s)
}

// portStateSense is the sense data that media access through the
// command's target port gets in its group's state, nil when it is
// allowed (REQUEST SENSE reports it).
func (t *task) portStateSense() *SenseError {
	if t.cmd.Nexus == nil {
		return nil
	}
	if g := t.dev.portGroup(t.cmd.Nexus.TargetName); g != nil {
		return aluaSense(g.state())
	}
	return nil
}

// aluaSense is the sense data of a media access command refused in state
// s, nil in an active state.
func aluaSense(s ALUAState) *SenseError {
	switch s {
	case Standby:
		return ErrALUAStandby
	case Unavailable:
		return ErrALUAUnavailable
	case Transitioning:
		return ErrALUATransition
	case OfflineState:
		return ErrALUAOffline
	}
	return nil
}

// aluaAllowed reports whether a command runs through a port in state s,
// one that is not active (SPC-4 §5.15.2.4.4 to §5.15.2.4.7):
//
//	standby        INQUIRY, REPORT LUNS, REQUEST SENSE, REPORT/SET TARGET PORT GROUPS,
//	               the other MAINTENANCE IN reports, MODE SENSE/SELECT, LOG SENSE/SELECT,
//	               RECEIVE/SEND DIAGNOSTIC, PERSISTENT RESERVE IN/OUT,
//	               READ/WRITE BUFFER in echo buffer mode
//	unavailable    INQUIRY, REPORT LUNS, REQUEST SENSE, REPORT/SET TARGET PORT GROUPS,
//	               the other MAINTENANCE IN reports, READ/WRITE BUFFER in echo buffer mode
//	transitioning  INQUIRY, REPORT LUNS, REQUEST SENSE, REPORT TARGET PORT GROUPS,
//	and offline    READ/WRITE BUFFER in echo buffer mode
//
// Everything else (TEST UNIT READY included, so that a path checker sees
// the state) is refused with the state's sense data.
func aluaAllowed(s ALUAState, cdb []byte) bool {
	const echoBuffer = 0x0a
	switch op := Opcode(cdb[0]); op {
	case Inquiry, ReportLUNs, RequestSense:
		return true
	case ReadBuffer, WriteBuffer:
		return len(cdb) > 1 && cdb[1]&0x1f == echoBuffer
	case MaintenanceIn:
		if len(cdb) > 1 && cdb[1]&0x1f == SAReportTargetPortGroups {
			return true
		}
		return s == Standby || s == Unavailable
	case MaintenanceOut:
		return (s == Standby || s == Unavailable) && len(cdb) > 1 && cdb[1]&0x1f == SASetTargetPortGroups
	case ModeSense6, ModeSense10, ModeSelect6, ModeSelect10, LogSense, LogSelect,
		ReceiveDiagnostic, SendDiagnostic, PersistentReserveIn, PersistentReserveOut:
		return s == Standby
	}
	return false
}

// offersALUA reports whether the device serves a command that exists only
// with ALUA (flagALUA: REPORT TARGET PORT GROUPS, for a device in a
// device group; flagExplicitALUA: SET TARGET PORT GROUPS, for one whose
// group takes it).
func (d *Device) offersALUA(f cmdFlags) bool {
	if f&(flagALUA|flagExplicitALUA) == 0 {
		return true
	}
	g := d.alua.Load()
	return g != nil && (f&flagExplicitALUA == 0 || g.Explicit)
}

// Supported-state bits of a target port group descriptor (byte 1):
// T_SUP, O_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP; LBD_SUP is not.
const tpgSupported = 0x80 | 0x40 | 0x08 | 0x04 | 0x02 | 0x01

// reportTargetPortGroups handles REPORT TARGET PORT GROUPS (SPC-4 §6.27),
// MAINTENANCE IN service action 0Ah: a descriptor per target port group
// of the device's device group, in identifier order, each with its
// state, preference, supported states, the status of its last change and
// its relative target port identifiers.
//
//	byte 1    bits 7-5 PARAMETER DATA FORMAT: 000b length only, 001b extended header
//	byte 6-9  ALLOCATION LENGTH
//
// Parameter data:
//
//	0-3  RETURN DATA LENGTH (n-3)
//	4    FORMAT TYPE 001b (bits 6-4)                    } extended header only
//	5    IMPLICIT TRANSITION TIME (0: no time needed)   }
//	     then per group: PREF|state, supported, group (2), 0, STATUS CODE,
//	     0, TARGET PORT COUNT, and 4 bytes a port (relative port in 2-3)
func reportTargetPortGroups(t *task) ([]byte, error) {
	cdb := t.cdb()
	format := cdb[1] >> 5
	alloc := be32(cdb[6:10])
	if format > 1 {
		return nil, invalidField(1, 7)
	}
	g := t.dev.alua.Load() // not nil: the dispatcher checked offersALUA
	hdr := 4
	if format == 1 {
		hdr = 8
	}
	n := hdr
	for _, m := range g.members {
		n += 8 + 4*len(m.Ports)
	}
	b := t.dataIn(n)
	binary.BigEndian.PutUint32(b[0:4], uint32(n-4))
	if format == 1 {
		b[4] = 0x10
	}
	off := hdr
	var own *TargetPortGroup
	if t.cmd.Nexus != nil && t.dev.fencedHere() {
		// A device server fenced from the shared state reports its own
		// ports unavailable, as it answers media access.
		own = t.dev.portGroup(t.cmd.Nexus.TargetName)
	}
	for _, m := range g.members {
		w := m.Group.word.Load()
		if m.Group == own {
			w = w&^0x0f | uint32(Unavailable)
		}
		d := b[off : off+8]
		d[0] = byte(w & 0x0f)
		if w&(1<<8) != 0 {
			d[0] |= 0x80
		}
		d[1] = tpgSupported
		binary.BigEndian.PutUint16(d[2:4], m.Group.ID)
		d[5] = byte(w >> 16)
		d[7] = byte(len(m.Ports))
		off += 8
		for _, p := range m.Ports {
			binary.BigEndian.PutUint16(b[off+2:off+4], p)
			off += 4
		}
	}
	return allocLen(b, alloc), nil
}

// setTargetPortGroups handles SET TARGET PORT GROUPS (SPC-4 §6.46),
// MAINTENANCE OUT service action 0Ah, for a device whose device group is
// explicit. Each descriptor asks a target port group of the device group
// for a state: active/optimized, active/non-optimized, standby,
// unavailable or offline. The groups whose state changes report
// transitioning while the device group's store records the new states,
// then take them; every nexus through their ports but this one gets
// ASYMMETRIC ACCESS STATE CHANGED.
//
//	byte 6-9  PARAMETER LIST LENGTH
//
// Parameter list: 4 reserved bytes, then per group: ASYMMETRIC ACCESS
// STATE (byte 0 bits 3-0), reserved, TARGET PORT GROUP (2-3).
func setTargetPortGroups(t *task) ([]byte, error) {
	cdb := t.cdb()
	plen := be32(cdb[6:10])
	if plen == 0 {
		return nil, nil
	}
	if plen < 4 || plen%4 != 0 || plen > 4+4*0x10000 {
		t.outLen = uint64(plen)
		return nil, ErrParamListLength
	}
	p, err := t.dataOut(uint64(plen), true)
	if err != nil {
		return nil, err
	}
	g := t.dev.alua.Load()
	var want []PortGroupState
	var groups []*TargetPortGroup
	for off := 4; off < len(p); off += 4 {
		s := ALUAState(p[off] & 0x0f)
		switch s {
		case ActiveOptimized, ActiveNonOptimized, Standby, Unavailable, OfflineState:
		default:
			return nil, invalidParam(off, 3)
		}
		id := be16(p[off+2 : off+4])
		tpg := g.group(id)
		if tpg == nil || slices.Contains(groups, tpg) {
			return nil, invalidParam(off+2, -1)
		}
		want = append(want, PortGroupState{ID: id, State: s})
		groups = append(groups, tpg)
	}
	g.stpg.Lock()
	defer g.stpg.Unlock()
	before := make([]uint32, len(groups))
	for i, tpg := range groups {
		before[i] = tpg.word.Load()
		if tpg.state() != want[i].State {
			_, pref := tpg.State()
			tpg.word.Store(tpgWord(Transitioning, pref, tpgStatusExplicit))
		}
	}
	if g.store != nil {
		initiator := ""
		if t.cmd.Nexus != nil {
			initiator = t.cmd.Nexus.InitiatorPort
		}
		if err := g.store.Transition(g.Name, initiator, want); err != nil {
			for i, tpg := range groups {
				tpg.word.Store(before[i])
			}
			return nil, ErrSTPGFailed
		}
	}
	for i, tpg := range groups {
		_, pref := tpg.State()
		tpg.word.Store(tpgWord(want[i].State, pref, tpgStatusExplicit))
		e := tpg.epoch.Add(1)
		if n := t.cmd.Nexus; n != nil {
			n.aluaChangedHere(t.cmd.LUN, tpg, e)
		}
	}
	return nil, nil
}

// aluaCommands are REPORT TARGET PORT GROUPS and SET TARGET PORT GROUPS,
// offered by devices in a device group (the latter when it is explicit).
var aluaCommands = []commandDesc{
	{op: MaintenanceIn, sa: SAReportTargetPortGroups, hasSA: true, name: "REPORT_TARGET_PORT_GROUPS",
		cdbLen: 12, types: typesAll, flags: flagOffline | flagNoMedium | flagALUA,
		usage:   []byte{0xa3, 0xea, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x07},
		handler: reportTargetPortGroups},
	{op: MaintenanceOut, sa: SASetTargetPortGroups, hasSA: true, name: "SET_TARGET_PORT_GROUPS",
		cdbLen: 12, types: typesAll, flags: flagDataOut | flagOffline | flagNoMedium | flagExplicitALUA,
		usage:   []byte{0xa4, 0x0a, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x07},
		handler: setTargetPortGroups},
}
