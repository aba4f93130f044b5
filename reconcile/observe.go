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

// hasFile reports whether a handler serves a file or block device whose
// identity the engine tracks (see Device.FileID). A dev_disk device
// serves a disk whose identity is its own (INQUIRY, VPD 83h).
func hasFile(h vdisk.Handler) bool { return h != vdisk.NullIO && h != devDisk }

// serving returns the models of the devices the engine serves from a
// file whose identity it knows, for observe. Called with e.mu held.
func (e *Engine) serving() map[string]Device {
	out := map[string]Device{}
	for name, d := range e.devices {
		if d.backend != nil && d.model.FileID != "" {
			out[name] = d.model
		}
	}
	return out
}

// observe fills in the FileID of desired's devices from the file system,
// for those whose file a serving device (see serving) serves from: a
// file replaced under the same name (a new inode) then makes Diff replace
// the device, and a device that takes over another's file under a new
// name is seen to be the same storage (a rename). A device whose file
// cannot be stat'ed now, within the time limit, keeps the running
// identity, so that a missing or unreadable file never takes a serving
// device down on reload. It costs one stat per such file, without the
// engine lock; desired.Devices is copied before it is changed.
func (e *Engine) observe(desired *Model, serving map[string]Device) {
	if len(serving) == 0 {
		return
	}
	byFile := map[string]Device{}
	for _, have := range serving {
		byFile[string(have.Handler)+"\x00"+have.Filename] = have
	}
	ids := map[string]string{}
	copied := false
	for name, want := range desired.Devices {
		have, ok := serving[name]
		if !ok || want.Filename != have.Filename || want.Handler != have.Handler {
			if _, ours := byFile[string(want.Handler)+"\x00"+want.Filename]; !ours {
				continue
			}
			have = Device{}
		}
		id, seen := ids[want.Filename]
		if !seen {
			id = e.open.FileID(want.Filename)
			ids[want.Filename] = id
		}
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

// noteFileID records the identity of the file d now serves from, as the
// open found it, in d's model and in running. Called with e.mu held.
func (e *Engine) noteFileID(d *device, o opened, running Model) {
	if o.err != nil || d.backend != o.backend {
		return
	}
	d.model.FileID = o.fileID
	if m, ok := running.Devices[d.name]; ok {
		m.FileID = o.fileID
		running.Devices[d.name] = m
	}
}
