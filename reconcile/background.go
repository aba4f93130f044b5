package reconcile

import (
	"context"
	"maps"
)

// retryOffline reopens offline devices, and devices whose reopen with new
// attributes failed. A device that opens comes online at once (its LUNs
// stop answering NOT READY); nothing else changes. It skips a round while
// an Apply runs (which retries them itself), and opens without the
// engine lock, each within the time limit.
func (e *Engine) retryOffline() {
	if !e.applyMu.TryLock() {
		return
	}
	defer e.applyMu.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	specs := map[string]spec{}
	for name, d := range e.devices {
		if d.backend != nil && !d.online() {
			e.log.Warn("device lost", "device", name, "err", d.dev.Offline())
		}
		if spec, ok := d.reopen(d.model); ok {
			specs[name] = spec
		}
	}
	e.mu.Unlock()
	if len(specs) == 0 {
		return
	}
	opened := e.openAll(context.Background(), specs, nil)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		for _, o := range opened {
			if o.backend != nil {
				o.backend.Close()
			}
		}
		return
	}
	running := e.running
	running.Devices = maps.Clone(running.Devices)
	for _, name := range sortedKeys(opened) {
		o, d := opened[name], e.devices[name]
		if o.err != nil {
			e.moveCorrupt(name, o.err)
		}
		if o.err != nil && !d.online() {
			if wrongDisk(o.err) && (d.reason == nil || d.reason.Error() != o.err.Error()) {
				e.log.Warn("device offline", "device", name, "err", o.err)
			}
			e.goOffline(d, o.err)
			continue
		}
		if o.err != nil {
			continue
		}
		e.serve(d, o)
		e.noteFileID(d, o, running)
	}
	e.running = running
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
		if d.online() && hasFile(d.model.Handler) {
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
