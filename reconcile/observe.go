package reconcile

import (
	"fmt"
	"maps"
	"os"
	"syscall"

	"github.com/scstd/scstd/vdisk"
)

// fileID returns the identity of the file or block device at path:
// "rdev:<number>" for a device node (the same disk under any
// name), "<dev>:<inode>" for anything else; "" when it cannot be stat'ed.
func fileID(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if fi.Mode()&os.ModeDevice != 0 {
		return fmt.Sprintf("rdev:%d", st.Rdev)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// hasFile reports whether a handler serves a file or block device.
func hasFile(h vdisk.Handler) bool { return h != vdisk.NullIO }

// observe fills in the FileID of desired's devices from the file system,
// for the devices the engine serves from an open file: a file replaced
// under the same name (a new inode) then makes Diff replace the device.
// Devices that are offline, or whose file cannot be stat'ed now, keep the
// running identity, so that a missing or unreadable file never takes a
// serving device down on reload. It costs one stat per such device;
// desired.Devices is copied before it is changed. Called with e.mu held.
func (e *Engine) observe(desired *Model) {
	copied := false
	for name, d := range e.devices {
		have := d.model
		if d.backend == nil || have.FileID == "" {
			continue
		}
		want, ok := desired.Devices[name]
		if !ok || want.Filename != have.Filename || want.Handler != have.Handler {
			continue
		}
		id := fileID(want.Filename)
		if id == "" {
			id = have.FileID
		}
		if !copied {
			desired.Devices = maps.Clone(desired.Devices)
			copied = true
		}
		want.FileID = id
		desired.Devices[name] = want
	}
}

// noteFileID records the identity of the file d now serves from in d's
// model and the running model. Called with e.mu held.
func (e *Engine) noteFileID(d *device, running map[string]Device) {
	id := ""
	if d.backend != nil && hasFile(d.model.Handler) {
		id = fileID(d.model.Filename)
	}
	d.model.FileID = id
	if m, ok := running[d.name]; ok {
		m.FileID = id
		running[d.name] = m
	}
}
