package scsi

import (
	"strconv"
	"sync"
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
	// lunsEpoch counts ReportedLUNsChanged calls; lunsAck is its value at
	// the last REPORT LUNS, which clears the condition on every LUN.
	lunsEpoch, lunsAck uint64
	// prevents are the devices on which this nexus has a PREVENT ALLOW
	// MEDIUM REMOVAL in force, dropped by Close.
	prevents map[*Device]struct{}
}

// nexusLU is what a nexus knows about one LUN: the device it last saw
// there and the device event counters it has reported.
type nexusLU struct {
	dev                          *Device
	powerOn                      bool
	capSeen, modeSeen, resetSeen uint64
	lunsSeen                     uint64
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
// every LUN of this nexus; REPORT LUNS clears it everywhere.
func (n *Nexus) ReportedLUNsChanged() {
	n.mu.Lock()
	n.lunsEpoch++
	n.mu.Unlock()
}

// reportedLUNs clears REPORTED LUNS DATA HAS CHANGED on every LUN (SPC-4
// §6.33: REPORT LUNS does so).
func (n *Nexus) reportedLUNs() {
	n.mu.Lock()
	n.lunsAck = n.lunsEpoch
	n.mu.Unlock()
}

// lu returns the nexus's state for lun, fresh (power-on pending) when the
// LUN is new to the nexus or now maps another device. n.mu must be held.
func (n *Nexus) lu(lun LUN, d *Device) *nexusLU {
	s := n.lus[lun]
	if s == nil || s.dev != d {
		s = &nexusLU{
			dev:       d,
			powerOn:   true,
			capSeen:   d.capacityEpoch.Load(),
			modeSeen:  d.modeEpoch.Load(),
			resetSeen: d.resetEpoch.Load(),
			lunsSeen:  n.lunsEpoch,
		}
		n.lus[lun] = s
	}
	return s
}

// takeUA returns the highest-priority unit attention pending for lun
// (mapped to d) and clears it, or nil: power-on, logical unit reset,
// capacity changed, mode parameters changed, reported LUNs changed, then
// those the reservation code queued for this nexus.
func (n *Nexus) takeUA(lun LUN, d *Device) *SenseError {
	if ua := n.takeDeviceUA(lun, d); ua != nil {
		return ua
	}
	return d.reservationUA(n)
}

// takeDeviceUA is takeUA for the conditions the nexus tracks itself.
func (n *Nexus) takeDeviceUA(lun LUN, d *Device) *SenseError {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.lu(lun, d)
	if s.powerOn {
		// A power-on reset supersedes every other condition.
		s.powerOn = false
		s.capSeen = d.capacityEpoch.Load()
		s.modeSeen = d.modeEpoch.Load()
		s.resetSeen = d.resetEpoch.Load()
		return uaPowerOnReset
	}
	if e := d.resetEpoch.Load(); e != s.resetSeen {
		s.resetSeen = e
		return uaLUReset
	}
	if e := d.capacityEpoch.Load(); e != s.capSeen {
		s.capSeen = e
		return uaCapacityChanged
	}
	if e := d.modeEpoch.Load(); e != s.modeSeen {
		s.modeSeen = e
		return uaModeParamsChanged
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

// remember notes that n prevents medium removal on d, for Close.
func (n *Nexus) remember(d *Device) {
	n.mu.Lock()
	if n.prevents == nil {
		n.prevents = make(map[*Device]struct{})
	}
	n.prevents[d] = struct{}{}
	n.mu.Unlock()
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
	seen := make(map[*Device]bool, len(n.lus))
	for _, s := range n.lus {
		seen[s.dev] = true
	}
	n.prevents = nil
	n.mu.Unlock()
	for _, d := range prevents {
		d.setPrevent(n, false)
	}
	for d := range seen {
		d.nexusLost(n)
	}
}
