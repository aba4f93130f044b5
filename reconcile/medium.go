package reconcile

import (
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// drives returns the scsi.Device of every vcdrom drive, by running name,
// for liveSessions. Called with e.mu held.
func (e *Engine) drives() map[string]*scsi.Device {
	out := map[string]*scsi.Device{}
	for name, d := range e.devices {
		if d.model.Handler == vdisk.CDROM {
			out[name] = d.dev
		}
	}
	return out
}

// liveSessions returns the live sessions for Diff, each with the drives
// (of drives) whose medium it holds in with PREVENT ALLOW MEDIUM REMOVAL:
// a ChangeMedium that takes that medium out is disruptive for it.
func (e *Engine) liveSessions(drives map[string]*scsi.Device) []Session {
	infos := e.srv.Sessions()
	out := SessionsOf(infos)
	names := sortedKeys(drives)
	for i := range out {
		n := infos[i].Nexus
		if n == nil {
			continue
		}
		for _, name := range names {
			if drives[name].PreventedBy(n) {
				out[i].Locks = append(out[i].Locks, name)
			}
		}
	}
	return out
}
