package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/scstd/scstd/internal/diskid"
	"github.com/scstd/scstd/internal/hctl"
)

// DefaultDevDiskTimeout is the default timeout of a command passed to a
// dev_disk device: the Linux sd driver's.
const DefaultDevDiskTimeout = 30 * time.Second

// sysfsRoot is where sysfs is mounted; tests point it at a fake tree.
var sysfsRoot = "/sys"

// checkDisk checks the disk of a dev_disk device as `scstd validate` does
// (see CheckStorage): a SCSI address must name a SCSI device that has an
// sg node, a path must be a device node, and where sysfs tells, the node
// of a SCSI device; it must open read-write.
func (v *validator) checkDisk(d *Device) {
	r := d.Range("path")
	const runTime = " At run time the device is offline (NOT READY) until its disk appears."
	if hctl.Valid(d.Path) {
		dir := filepath.Join(sysfsRoot, "bus/scsi/devices", d.Path)
		if _, err := os.Stat(dir); err != nil {
			v.errorf(r, "Disk missing", "There is no SCSI device at %s (lsscsi lists the addresses of this host's SCSI devices).%s", d.Path, runTime)
			return
		}
		ents, _ := os.ReadDir(filepath.Join(dir, "scsi_generic"))
		if !slices.ContainsFunc(ents, func(e fs.DirEntry) bool { return strings.HasPrefix(e.Name(), "sg") }) {
			v.errorf(r, "Disk has no sg node", "The SCSI device at %s has no sg node to pass commands through; load the sg module (modprobe sg), or name the disk's block device in path.%s", d.Path, runTime)
		}
		return
	}
	fi, err := os.Stat(d.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.errorf(r, "Disk missing", "%s does not exist; a dev_disk device needs the device node of a SCSI disk (an sg node such as /dev/sg2, its block device, or H:C:T:L).%s", d.Path, runTime)
		return
	case err != nil:
		v.errorf(r, "Disk unusable", "%v.", err)
		return
	case fi.Mode()&fs.ModeDevice == 0:
		v.errorf(r, "Not a device node", "%s is %s; a dev_disk device passes commands to a SCSI disk through its device node (an sg node such as /dev/sg2, or its block device).", d.Path, modeName(fi.Mode()))
		return
	}
	if node, ok := sysfsNode(fi); ok {
		if _, err := os.Stat(node); err == nil {
			if _, isSCSI := scsiAddress(fi); !isSCSI {
				v.errorf(r, "Not a SCSI disk", "%s is %s that is no SCSI device's (sysfs has no SCSI address for it); a dev_disk device needs an sg node or a SCSI disk.", d.Path, modeName(fi.Mode()))
				return
			}
		}
	}
	f, err := os.OpenFile(d.Path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		v.errorf(r, "Disk unusable", "%v.", err)
		return
	}
	f.Close()
}

// checkDiskIdentity warns, as `scstd validate` does, when the disk of
// dev_disk device d is not the one the device recorded in the state
// directory (package diskid): at run time the device would stay offline.
// It compares what sysfs says of the disk (no command is sent), and says
// nothing when there is no record, or the record, the disk or its sysfs
// entries cannot be read.
func (v *validator) checkDiskIdentity(d *Device, stateDir string) {
	if stateDir == "" {
		return
	}
	addr := d.Path
	if !hctl.Valid(addr) {
		fi, err := os.Stat(d.Path)
		if err != nil {
			return
		}
		if addr, _ = scsiAddress(fi); addr == "" {
			return
		}
	}
	rec := diskid.RecordPath(stateDir, d.Name)
	b, err := os.ReadFile(rec)
	if err != nil {
		return
	}
	r := d.Range("path")
	want, err := diskid.DecodeRecord(b)
	if err != nil {
		v.warnf(r, "Disk identity record corrupt", "%s, the identity recorded of the disk of device %q, is corrupt (%v). At run time it is moved aside to %s.corrupt and the device stays offline until that copy is removed.", rec, d.Name, err, rec)
		return
	}
	s, err := diskid.FromSysfs(filepath.Join(sysfsRoot, "bus/scsi/devices", addr))
	if err != nil {
		return
	}
	if !s.Compare(want.Identity).Equal(want.Identity) {
		v.warnf(r, "Another disk", "%s leads to %s, but device %q exported %s (recorded in %s). At run time the device stays offline so that its LUNs do not reach another disk. If this is the disk to export, remove %s (or remove the device from the configuration, reload, and add it back).",
			d.Path, s.Identity, d.Name, want.Identity, rec, rec)
	}
}

// sysfsNode returns the sysfs directory of a device node's device number
// (/sys/dev/char/M:m or /sys/dev/block/M:m).
func sysfsNode(fi fs.FileInfo) (string, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode()&fs.ModeDevice == 0 {
		return "", false
	}
	kind := "block"
	if fi.Mode()&fs.ModeCharDevice != 0 {
		kind = "char"
	}
	rdev := uint64(st.Rdev)
	// Linux's dev_t: major in bits 8..19 and 32..63, minor in 0..7 and 20..31.
	major := (rdev>>8)&0xfff | (rdev>>32)&^0xfff
	minor := rdev&0xff | (rdev>>12)&^0xff
	return filepath.Join(sysfsRoot, "dev", kind, fmt.Sprintf("%d:%d", major, minor)), true
}

// scsiAddress returns the SCSI address H:C:T:L of the device a device
// node belongs to, as sysfs tells: an sg node's SCSI device, a disk's, or
// for a partition the disk's it is part of.
func scsiAddress(fi fs.FileInfo) (string, bool) {
	dir, ok := sysfsNode(fi)
	if !ok {
		return "", false
	}
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", false
	}
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		dir = filepath.Dir(dir)
	}
	dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device"))
	if err != nil || !hctl.Valid(filepath.Base(dev)) {
		return "", false
	}
	return filepath.Base(dev), true
}

// diskKey identifies the disk behind a dev_disk or vdisk_blockio device,
// for the storage safety checks: its SCSI address when sysfs tells (the
// same disk through its sg node, its block device, a partition of it, or
// H:C:T:L), else the node's kind and device number. ok is false for other
// handlers and for a node that cannot be stat'ed.
func diskKey(d *Device) (key string, ok bool) {
	name := d.Path
	switch d.Handler {
	case HandlerDevDisk:
		if hctl.Valid(d.Path) {
			return "scsi " + d.Path, true
		}
	case HandlerBlockIO:
		name = d.Filename
	default:
		return "", false
	}
	fi, err := os.Stat(name)
	if err != nil || fi.Mode()&fs.ModeDevice == 0 {
		return "", false
	}
	if a, ok := scsiAddress(fi); ok {
		return "scsi " + a, true
	}
	node, _ := sysfsNode(fi)
	return "node " + filepath.Base(filepath.Dir(node)) + " " + filepath.Base(node), true
}

// diskUser is a device and the disk behind it (see diskKey).
type diskUser struct {
	d   *Device
	key string
}

// storageName is the file or disk a device names, and where.
func (d *Device) storageName() (string, hcl.Range) {
	if d.Handler == HandlerDevDisk {
		return d.Path, d.Range("path")
	}
	return d.Filename, d.Range("filename")
}

// checkSameDisk refuses a disk behind a dev_disk device and another
// device (see CheckStorageSafety) and reports whether it did. Two
// dev_disk devices that name it alike are Validate's to report.
func (v *validator) checkSameDisk(disks []diskUser, d *Device, key string) bool {
	for _, u := range disks {
		if u.key != key || (u.d.Handler != HandlerDevDisk && d.Handler != HandlerDevDisk) {
			continue
		}
		name, r := d.storageName()
		other, or := u.d.storageName()
		what := "device number " + strings.TrimPrefix(key, "node ")
		if a, ok := strings.CutPrefix(key, "scsi "); ok {
			what = "SCSI device " + a
		}
		switch {
		case u.d.Handler == HandlerDevDisk && d.Handler == HandlerDevDisk:
			if u.d.Path == d.Path {
				continue
			}
			v.errorf(r, "Disk passed through twice",
				"%s is also the disk of device %q (as %s, at %s): %s. One disk can back one dev_disk device, whose identity is the disk's; map that device as several LUNs instead.",
				name, u.d.Name, other, at(or), what)
		case u.d.ReadOnly && d.ReadOnly:
			continue
		default:
			v.errorf(r, "Disk used twice",
				"%s is also the disk of device %q (as %s, at %s): %s. Two devices on one disk would each have their own identity and reservations over the same data. Map one device as several LUNs, or set read_only = true on both.",
				name, u.d.Name, other, at(or), what)
		}
		return true
	}
	return false
}
