package reconcile

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/scstd/scstd/internal/state"
	"github.com/scstd/scstd/scsi"
)

// Persistent reservations kept through power loss (APTPL): each device
// has a PR file in the state directory, keyed by its NAA designator (so
// that a rename keeps it) or, for a dev_disk device, by its name. A new
// scsi.Device (an added or replaced device, or every device at start) is
// given its file as its scsi.PRStore and the state saved in it. A device
// that a reload removes from the configuration loses its file, a renamed
// dev_disk device's file moves with it (movePR); one that
// is only offline (its storage does not open) keeps it, and serves it.

// savedPR is what prepare read of a device's saved persistent
// reservations.
type savedPR struct {
	file    *state.PRFile
	st      scsi.PRState
	ok      bool
	err     error
	corrupt error // why the file is corrupt: it is moved aside at commit
}

// prKey returns the key of a device's PR file.
func prKey(name string, m Device) string {
	naa, _ := hex.DecodeString(m.NAA)
	return state.PRKey(naa, string(m.Handler), name)
}

// loadPR reads the persistent reservations saved for device name, to run
// as m. A file that cannot be read is logged; a corrupt one is moved aside
// and logged when the reload commits (attach), so that a refused reload
// leaves the state directory as it was. Either way the device starts
// without persistent reservations and serves, and its status says why.
//
// With a listing, a device whose file is not in it starts with none,
// without trying to open a file that is not there.
func (e *Engine) loadPR(name string, m Device, listing *prListing) savedPR {
	e.mu.Lock()
	st := e.state
	e.mu.Unlock()
	if st == nil {
		return savedPR{}
	}
	f := st.PR(prKey(name, m), name)
	s := savedPR{file: f}
	if listing != nil && !listing.mayHave(f.Path()) {
		return s
	}
	s.st, s.ok, s.err = f.Load()
	if s.ok {
		if err := scsi.CheckPRState(s.st); err != nil {
			s.st, s.ok, s.err = scsi.PRState{}, false, fmt.Errorf("state: %s: %w: %w", f.Path(), state.ErrCorrupt, err)
		}
	}
	switch {
	case errors.Is(s.err, state.ErrCorrupt):
		s.corrupt, s.err = s.err, nil
	case s.err != nil:
		e.log.Warn("persistent reservations not restored: the device starts with none", "device", name, "file", f.Path(), "err", s.err)
	case s.ok:
		e.log.Info("persistent reservations restored", "device", name, "file", f.Path(),
			"registrations", len(s.st.Registrations), "reserved", s.st.Reservation != nil)
	}
	return s
}

// prListing is one listing of the directory of the PR files, taken when
// first asked, for the devices a plan adds: a start of 10,000 devices
// otherwise spends 10,000 failed opens (60 ms of CPU) finding that none
// has a file.
type prListing struct {
	listed bool
	names  map[string]bool // nil when the directory could not be listed
}

// mayHave reports whether the PR file path may exist: it is listed, or
// the directory could not be listed.
func (l *prListing) mayHave(path string) bool {
	if !l.listed {
		l.listed = true
		if entries, err := os.ReadDir(filepath.Dir(path)); err == nil {
			l.names = make(map[string]bool, len(entries))
			for _, en := range entries {
				l.names[en.Name()] = true
			}
		}
	}
	return l.names == nil || l.names[filepath.Base(path)]
}

// attach gives a new device its PR file and the state saved in it; a
// corrupt file is moved aside and logged now, as the reload commits.
func (s savedPR) attach(d *scsi.Device, log *slog.Logger) {
	if s.file == nil {
		return
	}
	if s.corrupt != nil {
		s.err = s.file.MoveAside(s.corrupt)
		log.Warn("persistent reservations not restored: the device starts with none", "device", d.Name(), "file", s.file.Path(), "err", s.err)
	}
	d.SetPRStore(s.file)
	if s.ok || s.err != nil {
		d.RestorePR(s.st, s.err)
	}
}

// forgetPR removes the PR files of the devices the plan removed from the
// configuration, and of replaced devices whose key changed; their
// scsi.Devices stop saving first. Called with e.mu held, after commit.
func (e *Engine) forgetPR(p Plan, retired []retired) {
	if e.state == nil {
		return
	}
	old := map[string]*scsi.Device{}
	for _, r := range retired {
		old[r.d.name] = r.d.dev
	}
	for _, c := range p.Changes {
		name := c.Addr.Device
		var key string
		switch c.Op {
		case RemoveDevice:
			key = prKey(name, c.Before.(Device))
		case ReplaceDevice:
			key = prKey(name, c.Before.(Device))
			if key == prKey(name, c.After.(Device)) {
				if d := old[name]; d != nil {
					d.SetPRStore(nil) // the new device owns the file now
				}
				continue
			}
		default:
			continue
		}
		if d := old[name]; d != nil {
			d.SetPRStore(nil)
		}
		f := e.state.PR(key, name)
		if err := f.Remove(); err != nil {
			e.log.Warn("removing the persistent reservations of a removed device", "device", name, "file", f.Path(), "err", err)
		}
	}
}

// movePR moves the PR file of a dev_disk device renamed from old to name
// (its key is its name): the device saves to the new file from now on,
// and a restart finds its reservations under its new name. Called with
// e.mu held, after commit.
func (e *Engine) movePR(name, old string) {
	d := e.devices[name]
	if d == nil {
		return
	}
	key := prKey(name, d.model)
	if key == prKey(old, d.model) {
		return
	}
	src, dst := e.state.PR(prKey(old, d.model), old), e.state.PR(key, name)
	if err := d.dev.MovePRStore(dst, func() error { return src.MoveTo(dst) }); err != nil {
		e.log.Warn("moving the persistent reservations of a renamed device", "device", name, "from", src.Path(), "to", dst.Path(), "err", err)
	}
}
