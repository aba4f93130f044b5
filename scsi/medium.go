package scsi

import "github.com/scstd/scstd/vdisk"

// The medium of a removable device (a vcdrom, or a disk with removable
// set): whether one is loaded, whether START STOP UNIT ejected it, and
// the events that tell initiators it changed.
//
//	state                      media access answers            GESN media status
//	medium loaded              (served)                        present
//	ejected by START STOP UNIT NOT READY 3Ah/02h (CD-ROM)      tray open
//	                           NOT READY 3Ah/00h (disk)
//	no medium (RemoveMedium)   NOT READY 3Ah/01h               absent, tray closed
//	offline (storage failed)   NOT READY 04h/03h               (not answered)
//
// A medium loaded (SetBackend on a CD-ROM, or START STOP UNIT loading
// it) posts NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED (28h/00h)
// to every nexus but the one that loaded it, as a device-wide counter
// each nexus compares on its next command (see Nexus.takeDeviceUA); GET
// EVENT STATUS NOTIFICATION reports NewMedia or MediaRemoval once to each
// nexus that polls.

// Media event codes of GET EVENT STATUS NOTIFICATION (MMC-6 §6.7.2.4).
const (
	mediaEventNoChange = 0x0
	mediaEventNew      = 0x2
	mediaEventRemoval  = 0x3
)

// mediaEventSeqShift places the sequence number above the event code in
// Device.mediaEvent.
const mediaEventSeqShift = 8

// loadMedium makes a CD-ROM serve from the disc b of n bytes with its
// tray closed, and tells every nexus that the medium changed.
func (d *Device) loadMedium(b vdisk.Backend, n int64) Drain {
	if n < 0 {
		n = 0
	}
	// No CAPACITY DATA HAS CHANGED: a new medium implies it.
	d.size.Store(n)
	drain := d.swap(newState(b, nil, nil))
	d.ejected.Store(false)
	d.lastRead.Store(0)
	d.mediumEpoch.Add(1)
	d.postMediaEvent(mediaEventNew)
	return drain
}

// RemoveMedium takes the medium out of a removable device and leaves it
// online without one (a vcdrom whose filename is ""): media access
// answers NOT READY, MEDIUM NOT PRESENT (3Ah/01h, tray closed, on a
// CD-ROM), while INQUIRY, REPORT LUNS, MODE SENSE, GET CONFIGURATION,
// GET EVENT STATUS NOTIFICATION (which reports the removal), MECHANISM
// STATUS, START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL go on. It
// does not look at PREVENT ALLOW MEDIUM REMOVAL: the caller decides
// (RemovalPrevented). The backend the device served from is returned as
// a Drain, to close once Drain.Done is closed.
func (d *Device) RemoveMedium() Drain {
	st := newState(nil, nil, nil)
	st.noMedium = true
	had := d.state.Load().backend != nil
	drain := d.swap(st)
	d.ejected.Store(false)
	d.size.Store(0)
	if had {
		d.postMediaEvent(mediaEventRemoval)
	}
	return drain
}

// HasMedium reports whether the device serves a medium that is loaded:
// online, not ejected, not empty.
func (d *Device) HasMedium() bool {
	return d.state.Load().backend != nil && !d.ejected.Load()
}

// RemovalPrevented reports whether an I_T nexus holds a PREVENT ALLOW
// MEDIUM REMOVAL on the device, which a reload that changes or removes
// its medium must respect.
func (d *Device) RemovalPrevented() bool { return d.removalPrevented() }

// PreventedBy reports whether nexus n holds a PREVENT ALLOW MEDIUM
// REMOVAL on the device.
func (d *Device) PreventedBy(n *Nexus) bool {
	if d.nprevent.Load() == 0 {
		return false
	}
	d.preventMu.Lock()
	defer d.preventMu.Unlock()
	_, ok := d.preventers[n]
	return ok
}

// postMediaEvent records a media event under the next sequence number.
func (d *Device) postMediaEvent(code uint8) {
	for {
		old := d.mediaEvent.Load()
		next := (old>>mediaEventSeqShift+1)<<mediaEventSeqShift | uint64(code)
		if d.mediaEvent.CompareAndSwap(old, next) {
			return
		}
	}
}

// noMediumSense is the NOT READY condition of a removable device whose
// medium is absent: the tray is open (ejected) or closed on nothing.
func (d *Device) noMediumSense() *SenseError {
	switch {
	case d.cfg.Type != TypeCDROM:
		return ErrMediumNotPresent
	case d.ejected.Load():
		return ErrNoMediumTrayOpen
	}
	return ErrNoMediumTrayClosed
}

// notReady returns the NOT READY condition that stops a command before
// its handler, or nil: MEDIUM NOT PRESENT when the device has no medium
// or START STOP UNIT ejected it (unless the command runs without one,
// flagNoMedium), else LOGICAL UNIT NOT READY, MANUAL INTERVENTION
// REQUIRED when the device is offline (unless flagOffline).
func (t *task) notReady() *SenseError {
	flags := t.desc.flags
	switch {
	case t.st.noMedium:
		if flags&flagNoMedium == 0 {
			return t.dev.noMediumSense()
		}
	case t.be == nil:
		if flags&flagOffline == 0 {
			return ErrNotReadyManual
		}
	case flags&flagNoMedium == 0 && t.dev.ejected.Load():
		return t.dev.noMediumSense()
	}
	return nil
}

// deviceNotReady is notReady for REQUEST SENSE, which reports the
// condition whatever its own flags.
func (d *Device) deviceNotReady() *SenseError {
	st := d.state.Load()
	switch {
	case st.noMedium:
		return d.noMediumSense()
	case st.backend == nil:
		return ErrNotReadyManual
	case d.ejected.Load():
		return d.noMediumSense()
	}
	return nil
}

// ejectOrLoad carries out START STOP UNIT with LOEJ on a removable
// device: eject (load false) or load the medium, refused with MEDIUM
// REMOVAL PREVENTED while a nexus prevents removal (both ways: the tray
// stays as it is). A load after an eject posts NOT READY TO READY
// CHANGE, MEDIUM MAY HAVE CHANGED to every other nexus. GET EVENT STATUS
// NOTIFICATION reports the removal or the new medium.
func (t *task) ejectOrLoad(load bool) error {
	d := t.dev
	if d.removalPrevented() {
		return ErrMediumRemovalPrevented
	}
	if d.ejected.Swap(!load) == !load {
		return nil // already so
	}
	if t.st == nil || t.st.backend == nil {
		return nil // the tray moves, with no medium in it
	}
	if !load {
		d.postMediaEvent(mediaEventRemoval)
		return nil
	}
	t.cmd.Nexus.mediumLoadedHere(t.cmd.LUN, d)
	d.postMediaEvent(mediaEventNew)
	return nil
}

// mediumLoadedHere posts NOT READY TO READY CHANGE, MEDIUM MAY HAVE
// CHANGED to every nexus but this one at lun, whose own START STOP UNIT
// loaded the medium. n may be nil (then every nexus gets it).
func (n *Nexus) mediumLoadedHere(lun LUN, d *Device) {
	e := d.mediumEpoch.Add(1)
	if n == nil {
		return
	}
	n.mu.Lock()
	if s := n.lu(lun, d); s.mediumSeen == e-1 {
		s.mediumSeen = e
	}
	n.mu.Unlock()
}

// takeMediaEvent returns the media event that this nexus has not been
// told of at lun (mapped to d), marking it told, or mediaEventNoChange.
// A nexus that missed several is told the last. n may be nil (no
// event).
func (n *Nexus) takeMediaEvent(lun LUN, d *Device) uint8 {
	if n == nil {
		return mediaEventNoChange
	}
	ev := d.mediaEvent.Load()
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.lu(lun, d)
	if seq := ev >> mediaEventSeqShift; seq != s.eventSeen {
		s.eventSeen = seq
		return uint8(ev)
	}
	return mediaEventNoChange
}
