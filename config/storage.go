package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"
)

// CheckStorage checks the backing files the devices name, as `scstd
// validate` does: a vdisk_fileio file must exist or have a size to be
// created with (in an existing directory), a vdisk_blockio filename must be
// a block device, a vcdrom image must be a readable regular file, and a
// dev_disk disk must exist: a device node (of a SCSI device, where sysfs
// tells) or the SCSI address of a device with an sg node. It is not part
// of Load because at run time missing storage is not a configuration
// error: that device alone goes offline.
func (c *Config) CheckStorage() hcl.Diagnostics {
	v := &validator{}
	errorf := v.errorf
	for _, d := range c.Devices {
		if d.Handler == HandlerDevDisk {
			v.checkDisk(d)
			v.checkDiskIdentity(d, c.StateDir)
			continue
		}
		if d.Filename == "" {
			continue
		}
		r := d.Range("filename")
		fi, err := os.Stat(d.Filename)
		if errors.Is(err, fs.ErrNotExist) {
			switch {
			case d.Handler != HandlerFileIO:
				errorf(r, "Backing file missing", "%s does not exist; a %s device needs an existing %s.", d.Filename, d.Handler, storageKind(d.Handler))
			case !d.Size.IsSet():
				errorf(r, "Backing file missing", "%s does not exist and the device has no size to create it with. Create the file or set size.", d.Filename)
			default:
				dir := filepath.Dir(d.Filename)
				if st, err := os.Stat(dir); err != nil || !st.IsDir() {
					errorf(r, "Directory missing", "%s does not exist and cannot be created: its directory %s does not exist.", d.Filename, dir)
				}
			}
			continue
		}
		if err != nil {
			errorf(r, "Backing file unusable", "%v.", err)
			continue
		}
		switch d.Handler {
		case HandlerBlockIO:
			if fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 {
				errorf(r, "Not a block device", "%s is %s, not a block device; use handler vdisk_fileio for image files.", d.Filename, modeName(fi.Mode()))
				continue
			}
		default:
			if !fi.Mode().IsRegular() {
				errorf(r, "Not a regular file", "%s is %s; a %s device needs a regular file (use vdisk_blockio for block devices).", d.Filename, modeName(fi.Mode()), d.Handler)
				continue
			}
			if d.Handler == HandlerFileIO && fi.Size() == 0 && !d.Size.IsSet() {
				errorf(r, "Empty backing file", "%s is empty; set size to give the device a capacity.", d.Filename)
				continue
			}
			if fi.Size()%int64(d.BlockSize) != 0 && (!d.Size.IsSet() || fi.Size() > d.Size.Bytes) {
				errorf(r, "File size not a multiple of blocksize", "%s holds %d bytes, not a multiple of the block size %d; the last partial block would be unreachable.", d.Filename, fi.Size(), d.BlockSize)
				continue
			}
		}
		if err := checkOpen(d); err != nil {
			errorf(r, "Backing file unusable", "%v.", err)
		}
	}
	return v.diags
}

// checkOpen opens the file the way the device will (read-only devices
// read-only), without writing.
func checkOpen(d *Device) error {
	flag := os.O_RDWR
	if d.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(d.Filename, flag, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

func storageKind(h Handler) string {
	if h == HandlerBlockIO {
		return "block device"
	}
	return "image file"
}

func modeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file"
}

// Served lists the devices a running daemon serves from an open backing
// file: device name → that file. A nil Served means that no daemon was
// asked (`scstd validate`).
type Served map[string]string

// CheckStorageSafety refuses storage that must never be exported, wherever
// a configuration is loaded (validate, run, reload, plan):
//
//   - a backing file that is one of the configuration's own files, or that
//     lies inside a configuration directory: an initiator could write the
//     daemon's next configuration;
//   - two devices on the same file or block device (same device and inode,
//     or same device number for block devices), unless both are read-only:
//     each would have its own identity and reservations over the same data;
//   - a dev_disk device's disk behind another device: another dev_disk
//     device (the disk by another name: its sg node, its block device or
//     its SCSI address), or a vdisk_blockio device on the disk or one of
//     its partitions, unless both are read-only. Disks are compared by
//     SCSI address where sysfs tells, else by device number;
//   - an existing vdisk_fileio file smaller than its size: the daemon
//     creates a missing file but never extends an existing one on first
//     use, as it may be a file that was never meant to be a disk. A device
//     that served (in served) from that same file is grown on reload: that
//     is a resize, and allowed.
//
// It only stats files and reads sysfs. A dev_disk path cannot be a
// configuration file: CheckStorage wants a device node, and a regular
// file does not take SG_IO, so such a device could only stay offline.
// Missing files are not its concern (CheckStorage
// reports them for validate; at run time such a device goes offline).
func (c *Config) CheckStorageSafety(served Served) hcl.Diagnostics {
	return c.checkStorageSafety(served, statIdentity{})
}

// CheckStorageNames applies the rules of CheckStorageSafety to the backing
// paths as the configuration names them (resolved against the files that
// declare them), without looking at the file system: a path that is one
// of the configuration's files or lies inside its directory, and two
// devices that name the same path (unless both are read-only). Sizes are
// not checked. It is `scstd validate -no-storage`'s check, for a machine
// that has the configuration but not the storage, where the files (or
// unrelated files under the same names) would say nothing about the
// machine that serves it.
func (c *Config) CheckStorageNames() hcl.Diagnostics {
	return c.checkStorageSafety(nil, nameIdentity{})
}

// identity tells how checkStorageSafety identifies files: by the file
// system (statIdentity) or by name alone (nameIdentity).
type identity interface {
	// key returns the identity of an existing file; ok is false when
	// there is none to tell (the file is missing, or names only are
	// compared), and the file is then identified by pathKey.
	key(name string) (k fileKey, ok bool)
	// inside reports whether name lies inside the directory dir.
	inside(name, dir string) bool
	// stat returns the file's information, or an error when it is not
	// to be looked at.
	stat(name string) (fs.FileInfo, error)
}

type statIdentity struct{}

func (statIdentity) key(name string) (fileKey, bool) { return statKey(name) }
func (statIdentity) stat(name string) (fs.FileInfo, error) {
	return os.Stat(name)
}
func (statIdentity) inside(name, dir string) bool {
	k, ok := statKey(dir)
	return ok && insideDir(name, k)
}

type nameIdentity struct{}

// errNotLooked is nameIdentity's answer to stat: the file system is not
// consulted.
var errNotLooked = errors.New("not looked at")

func (nameIdentity) key(name string) (fileKey, bool) {
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	return fileKey{path: filepath.Clean(name)}, true
}
func (nameIdentity) stat(string) (fs.FileInfo, error) { return nil, errNotLooked }
func (nameIdentity) inside(name, dir string) bool {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	rel, err := filepath.Rel(dir, filepath.Clean(name))
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../")
}

func (c *Config) checkStorageSafety(served Served, id identity) hcl.Diagnostics {
	v := &validator{}
	errorf := v.errorf
	sources := map[fileKey]string{}
	for _, name := range c.sourceFiles {
		if k, ok := id.key(name); ok {
			sources[k] = name
		}
	}
	type user struct {
		d   *Device
		key fileKey
	}
	var users []user
	var disks []diskUser
	for _, d := range c.Devices {
		if key, ok := diskKey(d); ok {
			if v.checkSameDisk(disks, d, key) {
				continue
			}
			disks = append(disks, diskUser{d: d, key: key})
		}
		if d.Filename == "" {
			continue
		}
		r := d.Range("filename")
		fi, statErr := id.stat(d.Filename)
		key, exists := id.key(d.Filename)
		if !exists {
			key = pathKey(d.Filename)
		}
		if name, ok := sources[key]; ok {
			errorf(r, "Backing file is the configuration",
				"%s is the configuration file %s; an initiator writing to the device would write the daemon's next configuration. Keep backing files out of the configuration, for example in /var/lib/scstd.",
				d.Filename, name)
			continue
		}
		if c.sourceDir != "" && id.inside(d.Filename, c.sourceDir) {
			errorf(r, "Backing file inside the configuration directory",
				"%s lies inside the configuration directory %s, where a file an initiator writes could become configuration. Keep backing files in another directory, for example /var/lib/scstd.",
				d.Filename, c.sourceDir)
			continue
		}
		dup := false
		for _, u := range users {
			if u.key == key && !(u.d.ReadOnly && d.ReadOnly) {
				as := ""
				if u.d.Filename != d.Filename {
					as = "as " + u.d.Filename + ", "
				}
				errorf(r, "Backing file used twice",
					"%s is also the backing file of device %q (%sat %s); two devices on one file would each have their own identity and reservations over the same data. Map one device as several LUNs, or set read_only = true on both.",
					d.Filename, u.d.Name, as, at(u.d.Range("filename")))
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		users = append(users, user{d: d, key: key})
		if d.Handler != HandlerFileIO || !d.Size.IsSet() || statErr != nil || !fi.Mode().IsRegular() || fi.Size() >= d.Size.Bytes {
			continue
		}
		if f, ok := served[d.Name]; ok && f == d.Filename {
			continue // a resize of a device that serves from this file
		}
		hint := ""
		if served == nil {
			hint = fmt.Sprintf(" If a running scstd already serves device %q from this file, raising size grows it on reload: check with `scstd plan`.", d.Name)
		}
		errorf(d.Range("size"), "Backing file smaller than size",
			"%s holds %d bytes, less than size = %s. scstd creates a missing file but never extends an existing one when it first opens it: it may be a file that was never meant to be a disk. Grow the file yourself (truncate -s %d %s) or drop size to serve it at its own size.%s",
			d.Filename, fi.Size(), describeSize(d.Size), d.Size.Bytes, d.Filename, hint)
	}
	return v.diags
}

// fileKey identifies a file: a block device by its device number (the same
// disk under any name), anything else by device and inode; a file that
// does not exist yet by its cleaned path.
type fileKey struct {
	dev, ino uint64
	rdev     uint64
	path     string
}

// statKey returns the identity of the file at name, following symlinks.
func statKey(name string) (fileKey, bool) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileKey{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	if fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0 {
		return fileKey{rdev: uint64(st.Rdev)}, true
	}
	return fileKey{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}

// pathKey identifies a file that does not exist yet: its name in the
// real directory it would be created in.
func pathKey(name string) fileKey {
	dir := filepath.Dir(name)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return fileKey{path: filepath.Join(dir, filepath.Base(name))}
}

// insideDir reports whether name lies at any depth inside the directory
// identified by dir, comparing identities so that symlinks and bind mounts
// do not hide it.
func insideDir(name string, dir fileKey) bool {
	p := filepath.Clean(name)
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	for {
		parent := filepath.Dir(p)
		if parent == p {
			return false
		}
		p = parent
		if k, ok := statKey(p); ok && k == dir {
			return true
		}
	}
}
