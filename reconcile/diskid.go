package reconcile

import (
	"errors"
	"fmt"

	"github.com/scstd/scstd/internal/diskid"
	"github.com/scstd/scstd/internal/state"
	"github.com/scstd/scstd/scsi"
)

// A dev_disk device names its disk by a path (an sg node, a block node or
// H:C:T:L) that may lead to another disk after a hot-swap, a rescan or a
// reboot that renumbers sg nodes. The first time a device's disk opens,
// the engine records the disk's identity (package diskid) in the state
// directory, dev_disk/NAME.json, when the reload or the retry that opened
// it commits (a refused reload records nothing); every later open (a
// retry, a reload's reopen, a restart) compares. A different disk is closed again and the
// device stays offline, with a reason that names both disks and the
// admin step that accepts the new one: removing the record (then the
// next retry records the disk found), or removing the device from the
// configuration (which forgets its record) and adding it back.
//
// The persistent reservations of a dev_disk device belong to the disk it
// recorded: when a disk is recorded anew, whatever reservations the
// device kept (its PR file) are dropped.
//
// A record that is corrupt is moved aside (NAME.json.corrupt) when the
// reload or the retry that found it commits (a refused reload leaves it
// where it is), and logged, and the device stays offline until an
// administrator removes the copy: a record that cannot be read cannot
// vouch for a disk. A record that cannot be saved is kept in memory, and
// logged.

// identified is a pass-through disk that tells its identity (package
// sgio's disks do).
type identified interface {
	Identity() diskid.Identity
}

// diskChanged is why a dev_disk device whose path leads to another disk
// than the one it recorded stays offline.
type diskChanged struct {
	device, path string
	want, found  diskid.Identity
	// record is the record's file; "" when it is kept in memory only.
	record string
}

func (e *diskChanged) Error() string {
	where, accept := "recorded in "+e.record, "remove "+e.record+" (or remove the device from the configuration, reload, and add it back)"
	if e.record == "" {
		where, accept = "recorded in memory: the state directory could not keep it", "remove the device from the configuration, reload, and add it back"
	}
	return fmt.Sprintf("dev_disk %s: %s leads to another disk: found %s, but the device exported %s (%s); "+
		"it stays offline so that its LUNs do not reach another disk. If the disk found is the one to export, %s; "+
		"its persistent reservations are then dropped", e.device, e.path, e.found, e.want, where, accept)
}

// diskUnverified is why a dev_disk device whose identity record cannot
// be read stays offline.
type diskUnverified struct {
	device, path string
	found        diskid.Identity
	err          error
	// remove is the file whose removal accepts the disk found.
	remove string
	// corrupt is the corrupt record to move aside (to remove) when the
	// open that found it is committed (moveCorrupt); nil when there is
	// none.
	corrupt *state.DiskIDFile
}

func (e *diskUnverified) Error() string {
	moved := ""
	if e.corrupt != nil {
		moved = "; it is moved aside to " + e.remove
	}
	return fmt.Sprintf("dev_disk %s: the identity recorded of its disk cannot be read (%v%s), so %s (found at %s) cannot be told to be the disk the device exported; "+
		"it stays offline. If it is the disk to export, remove %s; its persistent reservations are then dropped", e.device, e.err, moved, e.found, e.path, e.remove)
}

// moveCorrupt moves aside the corrupt identity record that err, why a
// dev_disk device's disk was not accepted, found: at the commit of the
// reload or the retry that opened the disk, not before, so that a refused
// reload leaves the state directory as it was. Called with e.mu held.
func (e *Engine) moveCorrupt(name string, err error) {
	var u *diskUnverified
	if !errors.As(err, &u) || u.corrupt == nil {
		return
	}
	e.idMu.Lock()
	defer e.idMu.Unlock()
	e.log.Warn("corrupt disk identity record", "device", name, "err", u.corrupt.MoveAside(u.err))
}

// wrongDisk reports whether err keeps a dev_disk device offline because
// its disk is not, or cannot be shown to be, the one it recorded.
func wrongDisk(err error) bool {
	var changed *diskChanged
	var unverified *diskUnverified
	return errors.As(err, &changed) || errors.As(err, &unverified)
}

// checkDisk holds o, a dev_disk device's opened disk, to the identity
// recorded for device name (or, for a device being renamed, for its
// running name alias): a disk that differs is closed and o carries why.
// A disk opened the first time is to be recorded (o.recorded), and a
// renamed device's record to be saved under its new name: o.record
// holds what to save, and recordDisk saves it when the reload or the
// retry that opened the disk commits, so that one that stops before
// leaves the state directory (and the identities kept in memory) as
// they were. Called without e.mu.
func (e *Engine) checkDisk(name, alias string, o opened) opened {
	disk, ok := o.backend.(identified)
	if !ok {
		return o
	}
	record, recorded, err := e.verifyDisk(name, alias, o.spec.Path, disk.Identity())
	if err != nil {
		o.backend.Close()
		o.backend, o.err = nil, err
		return o
	}
	o.record, o.recorded = record, recorded
	return o
}

// verifyDisk compares found, the identity of the disk at path, with the
// one recorded for device name (or alias). It returns the record to save
// under name, nil when there is none to save: the disk found when none
// is recorded (recorded), or alias's record for a renamed device.
func (e *Engine) verifyDisk(name, alias, path string, found diskid.Identity) (record *diskid.Record, recorded bool, err error) {
	e.mu.Lock()
	st := e.state
	e.mu.Unlock()
	e.idMu.Lock()
	defer e.idMu.Unlock()
	if want, ok := e.unsavedIDs[name]; ok {
		if want.Equal(found) {
			return nil, false, nil
		}
		return nil, false, &diskChanged{device: name, path: path, want: want, found: found}
	}
	first := &diskid.Record{Device: name, Path: path, Identity: found}
	if st == nil {
		return first, true, nil
	}
	f := st.DiskID(name)
	src := f // the record read
	rec, ok, err := f.Load()
	if !ok && err == nil && alias != "" {
		src = st.DiskID(alias)
		rec, ok, err = src.Load()
	}
	switch {
	case err != nil:
		e.log.Warn("disk identity record unreadable", "device", name, "file", src.Path(), "err", err)
		u := &diskUnverified{device: name, path: path, found: found, err: err, remove: src.Path()}
		if errors.Is(err, state.ErrCorrupt) {
			u.remove, _ = src.Aside()
			u.corrupt = src
		}
		return nil, false, u
	case ok && !rec.Equal(found):
		return nil, false, &diskChanged{device: name, path: path, want: rec.Identity, found: found, record: f.Path()}
	case ok && alias == "":
		return nil, false, nil
	case ok:
		// Renamed: the record follows the device (the old one goes
		// when the rename is committed).
		return &rec, false, nil
	}
	if aside, there := f.Aside(); there {
		return nil, false, &diskUnverified{device: name, path: path, found: found, err: fmt.Errorf("a corrupt record was moved aside to %s", aside), remove: aside}
	}
	return first, true, nil
}

// recordDisk saves the record checkDisk left in o for device name,
// durably, at the commit of the reload or the retry that opened o. A
// disk recorded the first time whose record cannot be saved (or with no
// state directory) is kept in memory, and logged. Called with e.mu held.
func (e *Engine) recordDisk(name string, o opened) {
	r := o.record
	if r == nil {
		return
	}
	e.idMu.Lock()
	defer e.idMu.Unlock()
	if e.state == nil {
		e.unsavedIDs[name] = r.Identity
		e.log.Warn("disk identity recorded in memory only: no state directory", "device", name, "disk", r.Identity.String())
		return
	}
	f := e.state.DiskID(name)
	if err := f.Save(*r); err != nil {
		if !o.recorded {
			e.log.Warn("disk identity not saved under the device's new name", "device", name, "file", f.Path(), "err", err)
			return
		}
		e.unsavedIDs[name] = r.Identity
		e.log.Warn("disk identity recorded in memory only", "device", name, "disk", r.Identity.String(), "file", f.Path(), "err", err)
		return
	}
	if !o.recorded {
		return
	}
	e.log.Info("disk identity recorded", "device", name, "disk", r.Identity.String(), "path", r.Path, "file", f.Path())
	if r.Identity.Weak() {
		e.log.Warn("the disk has neither designators nor a serial: scstd can tell another disk from it only by vendor and product", "device", name, "disk", r.Identity.String())
	}
}

// dropPR drops the persistent reservations device d kept (its PR file
// and its state) when its disk was recorded anew: they were another
// disk's, or made before any was recorded. Called with e.mu held.
func (e *Engine) dropPR(d *device) {
	pr := d.dev.PRStatus()
	if len(pr.Registrations) > 0 || pr.APTPL || pr.Reservation != nil {
		e.log.Warn("persistent reservations dropped: they were kept for another disk", "device", d.name, "registrations", len(pr.Registrations))
	}
	d.dev.RestorePR(scsi.PRState{}, nil)
	if e.state == nil {
		return
	}
	f := e.state.PR(prKey(d.name, d.model), d.name)
	if err := f.Remove(); err != nil {
		e.log.Warn("removing the persistent reservations of another disk", "device", d.name, "file", f.Path(), "err", err)
	}
}

// forgetDisks forgets the identity records of the dev_disk devices the
// plan removes from the configuration (or turns into another handler's),
// and moves those of renamed ones. Called with e.mu held, after commit.
func (e *Engine) forgetDisks(p Plan) {
	e.idMu.Lock()
	defer e.idMu.Unlock()
	for _, c := range p.Changes {
		name := c.Addr.Device
		switch c.Op {
		case RemoveDevice:
			if c.Before.(Device).Handler != devDisk {
				continue
			}
		case ReplaceDevice:
			if c.Before.(Device).Handler != devDisk || c.After.(Device).Handler == devDisk {
				continue
			}
		case RenameDevice:
			old := c.Before.(string)
			if e.running.Devices[name].Handler != devDisk {
				continue
			}
			if id, ok := e.unsavedIDs[old]; ok {
				e.unsavedIDs[name] = id
				delete(e.unsavedIDs, old)
			}
			if e.state != nil {
				if err := e.state.RenameDiskID(old, name); err != nil {
					e.log.Warn("moving the disk identity of a renamed device", "device", name, "err", err)
				}
				e.movePR(name, old)
			}
			continue
		default:
			continue
		}
		delete(e.unsavedIDs, name)
		if e.state == nil {
			continue
		}
		f := e.state.DiskID(name)
		if err := f.Remove(); err != nil {
			e.log.Warn("removing the disk identity of a removed device", "device", name, "file", f.Path(), "err", err)
		}
	}
}
