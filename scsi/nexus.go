package scsi

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Nexus is the SCSI state of one I_T nexus (an iSCSI session): its pending
// unit attentions per LUN and its identity for reservations.
//
// Unit attentions need no registry of nexuses: device-wide events
// (capacity changed, mode parameters changed, logical unit reset) are
// counters in the Device, and a nexus compares them, per LUN, with the
// values it last reported on its next command to that LUN.
type Nexus struct {
	// InitiatorPort is the SCSI initiator port name, "iqn...,i,0x<isid>".
	InitiatorPort string
	// TargetName is the iSCSI target name, TargetPort the SCSI target
	// port name "iqn...,t,0x<tpgt>".
	TargetName string
	TargetPort string
	// TPGT is the target portal group tag.
	TPGT uint16
	// RelTgtPortID is the relative target port identifier (VPD 83h).
	RelTgtPortID uint16

	mu  sync.Mutex
	lus map[LUN]*nexusLU
	// lunsEpoch counts LUN map changes posted; lunsAck is its value at
	// the last REPORT LUNS, which clears the condition on every LUN.
	lunsEpoch, lunsAck uint64
	// pending are the LUN map changes posted and not yet reached by a
	// command, oldest first; npending is len(pending), read without the
	// lock on every command.
	pending  []LUNChange
	npending atomic.Int32
	// prevents are the devices on which this nexus has a PREVENT ALLOW
	// MEDIUM REMOVAL in force, dropped by Close.
	prevents map[*Device]struct{}
}

// nexusLU is what a nexus knows about one LUN: the device it last saw
// there (nil: not seen yet, the counters are taken at the first command)
// and the device event counters it has reported.
type nexusLU struct {
	dev                          *Device
	powerOn                      bool
	inquiryChanged               bool
	capSeen, modeSeen, resetSeen uint64
	lunsSeen                     uint64
	// tpg is the target port group the nexus reaches dev through (nil
	// without ALUA) and tpgSeen the count of its changes reported.
	tpg     *TargetPortGroup
	tpgSeen uint64
	// mediumSeen counts the media loaded (NOT READY TO READY CHANGE)
	// that the nexus was told of; eventSeen is the sequence number of
	// the last media event GET EVENT STATUS NOTIFICATION reported.
	mediumSeen, eventSeen uint64
}

// LUNChange is what a new LUN map changes for one nexus: the LUNs it
// gains, loses, and those that now reach another device. A reload posts
// it (PostLUNChange) before it publishes the map, so that no command can
// reach the new map without it.
type LUNChange struct {
	// From is the LUN map the nexus sees before the change. The change
	// takes effect on the first command that arrives through any other
	// map; commands still on From see nothing of it.
	From *LUNMap
	// Added are LUNs new to the nexus: their first command reports no
	// POWER ON (the nexus is not new), only REPORTED LUNS DATA HAS
	// CHANGED.
	Added []LUN
	// Removed are LUNs the nexus no longer has.
	Removed []LUN
	// Swapped are LUNs that stay but reach another device: each reports
	// INQUIRY DATA HAS CHANGED (3Fh/03h), and what the nexus knew of the
	// old device there is dropped.
	Swapped []LUN
}

// NewNexus makes the SCSI state of a new I_T nexus. Every LUN it addresses
// reports POWER ON, RESET, OR BUS DEVICE RESET OCCURRED once.
func NewNexus(initiatorPort, targetName string, tpgt, relTgtPortID uint16) *Nexus {
	return &Nexus{
		InitiatorPort: initiatorPort,
		TargetName:    targetName,
		TargetPort:    targetName + ",t,0x" + strconv.FormatUint(uint64(tpgt)|0x10000, 16)[1:],
		TPGT:          tpgt,
		RelTgtPortID:  relTgtPortID,
		lus:           make(map[LUN]*nexusLU),
	}
}

// ReportedLUNsChanged posts REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh) to
// every LUN of this nexus at once; REPORT LUNS clears it everywhere.
func (n *Nexus) ReportedLUNsChanged() {
	n.mu.Lock()
	n.lunsEpoch++
	n.mu.Unlock()
}

// PostLUNChange posts the unit attentions of a LUN map change, effective
// at the first command that arrives through a map other than c.From:
// REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh) on every LUN, and INQUIRY DATA
// HAS CHANGED (3Fh/03h) on each of c.Swapped that the nexus has
// addressed (one it never addressed still has its POWER ON pending,
// which supersedes). c.Added LUNs report no POWER ON. Changes apply in
// the order posted.
func (n *Nexus) PostLUNChange(c LUNChange) {
	n.mu.Lock()
	n.pending = append(n.pending, c)
	n.npending.Store(int32(len(n.pending)))
	n.mu.Unlock()
}

// sync applies the posted LUN map changes that a command arriving
// through map m has reached. It costs one atomic load when none is
// pending.
func (n *Nexus) sync(m *LUNMap) {
	if n.npending.Load() == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	i := 0
	for ; i < len(n.pending) && n.pending[i].From != m; i++ {
		n.applyChange(&n.pending[i])
	}
	n.pending = n.pending[i:]
	if len(n.pending) == 0 {
		n.pending = nil
	}
	n.npending.Store(int32(len(n.pending)))
}

// applyChange makes one LUN map change pending as unit attentions. n.mu
// must be held.
func (n *Nexus) applyChange(c *LUNChange) {
	n.lunsEpoch++
	for _, l := range c.Removed {
		delete(n.lus, l)
	}
	for _, l := range c.Added {
		// Not seen yet, no power-on, and REPORTED LUNS DATA HAS
		// CHANGED pending like on every other LUN.
		n.lus[l] = &nexusLU{lunsSeen: n.lunsEpoch - 1}
	}
	for _, l := range c.Swapped {
		if s := n.lus[l]; s != nil {
			s.dev = nil
			s.inquiryChanged = true
		}
	}
}

// reportedLUNs clears REPORTED LUNS DATA HAS CHANGED on every LUN (SPC-4
// §6.33: REPORT LUNS does so).
func (n *Nexus) reportedLUNs() {
	n.mu.Lock()
	n.lunsAck = n.lunsEpoch
	n.mu.Unlock()
}

// lu returns the nexus's state for lun, which now reaches d: fresh, with
// POWER ON pending, when the nexus never addressed the LUN; the device's
// counters taken when the LUN was announced (added or swapped) and this
// is its first command. A LUN that reaches another device than the one
// the nexus last saw there without a change announcing it reports INQUIRY
// DATA HAS CHANGED. n.mu must be held.
func (n *Nexus) lu(lun LUN, d *Device) *nexusLU {
	s := n.lus[lun]
	switch {
	case s == nil:
		s = &nexusLU{powerOn: true, lunsSeen: n.lunsEpoch}
		n.lus[lun] = s
	case s.dev == d:
		return s
	case s.dev != nil:
		s.inquiryChanged = true
	}
	s.dev = d
	s.capSeen = d.capacityEpoch.Load()
	s.modeSeen = d.modeEpoch.Load()
	s.resetSeen = d.resetEpoch.Load()
	n.seePortGroup(s, d)
	s.mediumSeen = d.mediumEpoch.Load()
	s.eventSeen = d.mediaEvent.Load() >> mediaEventSeqShift
	return s
}

// seePortGroup takes the target port group s reaches d through, and its
// count of changes, as reported.
func (n *Nexus) seePortGroup(s *nexusLU, d *Device) {
	s.tpg = d.portGroup(n.TargetName)
	s.tpgSeen = 0
	if s.tpg != nil {
		s.tpgSeen = s.tpg.epoch.Load()
	}
}

// takeUA returns the highest-priority unit attention pending for lun
// (mapped to d) and clears it, or nil: power-on, logical unit reset,
// inquiry data changed, medium may have changed, capacity changed, mode parameters changed, reported LUNs changed, then
// those the reservation code queued for this nexus.
func (n *Nexus) takeUA(lun LUN, d *Device) *SenseError {
	ua, _ := n.tryTakeUA(lun, d, false)
	return ua
}

// tryTakeUA is takeUA that, when try is set, does not wait for the
// device's reservation lock (held across the save of persistent
// reservations): it returns false, having taken nothing, when it would.
func (n *Nexus) tryTakeUA(lun LUN, d *Device, try bool) (*SenseError, bool) {
	if ua := n.takeDeviceUA(lun, d); ua != nil {
		return ua, true
	}
	return d.takeReservationUA(n, try)
}

// takeDeviceUA is takeUA for the conditions the nexus tracks itself.
func (n *Nexus) takeDeviceUA(lun LUN, d *Device) *SenseError {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.lu(lun, d)
	if s.powerOn {
		// A power-on reset supersedes every other condition.
		s.powerOn, s.inquiryChanged = false, false
		s.capSeen = d.capacityEpoch.Load()
		s.modeSeen = d.modeEpoch.Load()
		s.resetSeen = d.resetEpoch.Load()
		n.seePortGroup(s, d)
		s.mediumSeen = d.mediumEpoch.Load()
		return uaPowerOnReset
	}
	if e := d.resetEpoch.Load(); e != s.resetSeen {
		s.resetSeen = e
		return uaLUReset
	}
	if s.inquiryChanged {
		s.inquiryChanged = false
		return uaInquiryChanged
	}
	if e := d.mediumEpoch.Load(); e != s.mediumSeen {
		s.mediumSeen = e
		return uaMediumChanged
	}
	if e := d.capacityEpoch.Load(); e != s.capSeen {
		s.capSeen = e
		return uaCapacityChanged
	}
	if e := d.modeEpoch.Load(); e != s.modeSeen {
		s.modeSeen = e
		return uaModeParamsChanged
	}
	if g := d.portGroup(n.TargetName); g != s.tpg || (g != nil && g.epoch.Load() != s.tpgSeen) {
		// The port's group, or its state, changed (SPC-4 §5.15.2.3).
		n.seePortGroup(s, d)
		return uaALUAChanged
	}
	if s.lunsSeen != n.lunsEpoch {
		s.lunsSeen = n.lunsEpoch
		if n.lunsAck != n.lunsEpoch {
			return uaReportedLUNsChange
		}
	}
	return nil
}

// modeChangedHere posts MODE PARAMETERS CHANGED to every nexus but this
// one at lun (SPC-4: the nexus whose MODE SELECT changed them is not told).
func (n *Nexus) modeChangedHere(lun LUN, d *Device) {
	e := d.modeEpoch.Add(1)
	if n == nil {
		return
	}
	n.mu.Lock()
	if s := n.lu(lun, d); s.modeSeen == e-1 {
		s.modeSeen = e
	}
	n.mu.Unlock()
}

// aluaChangedHere notes that the nexus has seen change e of tpg at lun:
// the nexus whose SET TARGET PORT GROUPS changed a state is not told.
func (n *Nexus) aluaChangedHere(lun LUN, tpg *TargetPortGroup, e uint64) {
	n.mu.Lock()
	if s := n.lus[lun]; s != nil && s.tpg == tpg && s.tpgSeen == e-1 {
		s.tpgSeen = e
	}
	n.mu.Unlock()
}

// remember notes that n prevents medium removal on d, for Close.
func (n *Nexus) remember(d *Device) {
	n.mu.Lock()
	if n.prevents == nil {
		n.prevents = make(map[*Device]struct{})
	}
	n.prevents[d] = struct{}{}
	n.mu.Unlock()
}

// ReleaseReservations releases the SPC-2 reservations the I_T nexus
// holds before it ends by a logout, so that the initiator, once told the
// session is closed, finds them released through any other nexus; on a
// device that shares its state it waits for the release to settle, at
// most wait. Close releases them too, without waiting.
func (n *Nexus) ReleaseReservations(wait time.Duration) {
	n.mu.Lock()
	devices := n.devicesLocked()
	n.mu.Unlock()
	var done []<-chan struct{}
	for d := range devices {
		done = append(done, d.nexusLost(n))
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for _, ch := range done {
		select {
		case <-ch:
		case <-deadline.C:
			return
		}
	}
}

// Close ends the nexus (I_T nexus loss: the session is gone): the medium
// removal preventions it held are dropped (SBC-3 §5.10) and so is an SPC-2
// reservation it held on any device it addressed. The transport calls it
// once when the session ends; n must not be used afterwards.
func (n *Nexus) Close() {
	n.mu.Lock()
	prevents := make([]*Device, 0, len(n.prevents))
	for d := range n.prevents {
		prevents = append(prevents, d)
	}
	devices := n.devicesLocked()
	n.prevents = nil
	n.mu.Unlock()
	for _, d := range prevents {
		d.setPrevent(n, false)
	}
	for d := range devices {
		d.nexusLost(n)
	}
}

// devicesLocked is the set of devices the nexus addressed; n.mu must be
// held.
func (n *Nexus) devicesLocked() map[*Device]bool {
	seen := make(map[*Device]bool, len(n.lus))
	for _, s := range n.lus {
		if s.dev != nil {
			seen[s.dev] = true
		}
	}
	return seen
}
