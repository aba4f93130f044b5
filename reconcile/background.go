package reconcile

import (
	"github.com/scstd/scstd/vdisk"
)

// retryOffline reopens offline devices, and devices whose reopen with new
// attributes failed. A device that opens comes online at once (its LUNs
// stop answering NOT READY); nothing else changes.
func (e *Engine) retryOffline() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	for _, name := range sortedKeys(e.devices) {
		d := e.devices[name]
		want := specOf(d.model)
		if d.online() && d.have == want {
			continue
		}
		b, err := openStorage(want)
		if err != nil {
			if !d.online() {
				d.reason = err
				d.dev.SetOffline(err)
			}
			continue
		}
		e.serve(d, opened{spec: want, backend: b})
		e.noteFileID(d, e.running.Devices)
	}
}

// pollSizes re-reads the size of every online file or block device, so
// that storage that grew on its own raises CAPACITY DATA HAS CHANGED.
// The stat calls run without the engine lock.
func (e *Engine) pollSizes() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	var devs []*device
	for _, d := range e.devices {
		if d.backend != nil && d.model.Handler != vdisk.NullIO {
			devs = append(devs, d)
		}
	}
	e.mu.Unlock()
	for _, d := range devs {
		changed, err := d.dev.RefreshSize()
		switch {
		case err != nil:
			e.log.Warn("device size", "device", d.name, "err", err)
		case changed:
			e.log.Info("device size changed", "device", d.name, "size", d.dev.Size())
		}
	}
}
