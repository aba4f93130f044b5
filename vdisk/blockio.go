package vdisk

import (
	"fmt"
	"io/fs"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// blockBackend exports a block device, always opened with O_DIRECT so that
// the host's page cache neither doubles the memory used nor hides the
// device's own write cache behaviour.
type blockBackend struct {
	f        *os.File
	d        *directFile
	limit    int64 // Spec.Size, when it asks for less than the whole device
	readOnly bool
}

func openBlock(s Spec) (Backend, error) {
	fi, err := statTarget(s)
	if err != nil {
		if _, ok := err.(*fs.PathError); ok {
			return nil, fmt.Errorf("vdisk: %w (vdisk_blockio needs an existing block device)", err)
		}
		return nil, err
	}
	if fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 {
		return nil, fmt.Errorf("vdisk: %s is not a block device (use handler vdisk_fileio for image files)", s.Filename)
	}
	flags := os.O_RDWR | unix.O_DIRECT | unix.O_CLOEXEC
	if s.ReadOnly {
		flags = os.O_RDONLY | unix.O_DIRECT | unix.O_CLOEXEC
	} else if s.WriteThrough {
		flags |= unix.O_DSYNC
	}
	f, err := os.OpenFile(s.Filename, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("vdisk: %w", err)
	}
	b := &blockBackend{f: f, readOnly: s.ReadOnly}
	sector, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil || sector <= 0 || sector&(sector-1) != 0 || sector > pageAlign {
		sector = pageAlign
	}
	b.d = &directFile{f: f, align: int64(sector), memAlign: uintptr(sector)}
	size, err := b.Size()
	if err != nil {
		f.Close()
		return nil, err
	}
	if s.Size > size {
		f.Close()
		return nil, fmt.Errorf("vdisk: %s holds %d bytes, less than size %d (a block device cannot be extended; lower size or leave it unset)", s.Filename, size, s.Size)
	}
	if size == 0 {
		f.Close()
		return nil, fmt.Errorf("vdisk: %s has no capacity (is the medium present?)", s.Filename)
	}
	b.limit = s.Size
	return b, nil
}

// ReadAt reads len(p) bytes at off; it is safe for concurrent use.
func (b *blockBackend) ReadAt(p []byte, off int64) (int, error) { return b.d.ReadAt(p, off) }

// WriteAt writes p at off; it is safe for concurrent use.
func (b *blockBackend) WriteAt(p []byte, off int64) (int, error) {
	if b.readOnly {
		return 0, ErrReadOnly
	}
	return b.d.WriteAt(p, off)
}

// Size returns the device's capacity (BLKGETSIZE64), or the size the spec
// asked for when that is smaller.
func (b *blockBackend) Size() (int64, error) {
	var size uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, b.f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); errno != 0 {
		return 0, fmt.Errorf("vdisk: BLKGETSIZE64 %s: %w", b.f.Name(), errno)
	}
	if b.limit > 0 && int64(size) > b.limit {
		return b.limit, nil
	}
	return int64(size), nil
}

// Sync flushes completed writes, and the device's volatile cache, to stable
// storage.
func (b *blockBackend) Sync() error {
	if err := unix.Fdatasync(int(b.f.Fd())); err != nil {
		return fmt.Errorf("vdisk: fdatasync %s: %w", b.f.Name(), err)
	}
	return nil
}

// Unmap discards the byte range (BLKDISCARD). Devices without discard
// support return EOPNOTSUPP.
func (b *blockBackend) Unmap(off, length int64) error {
	if b.readOnly {
		return ErrReadOnly
	}
	r := [2]uint64{uint64(off), uint64(length)}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, b.f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&r))); errno != 0 {
		return errno
	}
	return nil
}

// ZeroRange makes the byte range read as zeroes (BLKZEROOUT), letting the
// kernel deallocate it on devices that can.
func (b *blockBackend) ZeroRange(off, length int64) error {
	if b.readOnly {
		return ErrReadOnly
	}
	r := [2]uint64{uint64(off), uint64(length)}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, b.f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r))); errno != 0 {
		return errno
	}
	return nil
}

// Close closes the device.
func (b *blockBackend) Close() error { return b.f.Close() }
