package vdisk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// fileBackend keeps a device's blocks in a regular file, read and written
// with pread and pwrite (or through directFile when opened with O_DIRECT).
type fileBackend struct {
	f            *os.File
	fd           int
	rw           readerWriterAt
	readOnly     bool
	writeThrough bool
	// try says how TryReadAt and TryWriteAt find out whether an I/O
	// waits (nowait.go); noTryRead and noTryWrite are set when the file
	// system refused RWF_NOWAIT.
	try                   uint8
	noTryRead, noTryWrite atomic.Bool
	// lend maps the file for reads lent to the transport (lend.go).
	lend fileLend
}

// readerWriterAt is what fileBackend does its I/O through: the *os.File
// itself, or a directFile around it.
type readerWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

func openFile(s Spec) (Backend, error) {
	fi, err := statTarget(s)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if s.ReadOnly {
			return nil, fmt.Errorf("vdisk: open %s: %w (a read-only device is never created; create the file first)", s.Filename, unwrapPath(err))
		}
		if s.Size <= 0 {
			return nil, fmt.Errorf("vdisk: open %s: %w (set size to create it)", s.Filename, unwrapPath(err))
		}
		dir := filepath.Dir(s.Filename)
		if _, derr := os.Stat(dir); derr != nil {
			return nil, fmt.Errorf("vdisk: cannot create %s: directory %s: %w (create the directory first)", s.Filename, dir, unwrapPath(derr))
		}
	case err != nil:
		if _, ok := err.(*fs.PathError); ok {
			return nil, fmt.Errorf("vdisk: %w", err)
		}
		return nil, err
	case fi.Mode()&fs.ModeDevice != 0:
		return nil, fmt.Errorf("vdisk: %s is a device, not an image file (use handler vdisk_blockio for block devices)", s.Filename)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("vdisk: %s is not a regular file (%s)", s.Filename, fi.Mode().Type())
	}

	flags := os.O_RDWR
	if s.ReadOnly {
		flags = os.O_RDONLY
	} else if !exists {
		flags |= os.O_CREATE | os.O_EXCL
	}
	if s.ODirect {
		flags |= unix.O_DIRECT
	}
	if s.WriteThrough && !s.ReadOnly {
		flags |= unix.O_DSYNC
	}
	f, err := os.OpenFile(s.Filename, flags|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EINVAL) && s.ODirect {
			return nil, fmt.Errorf("vdisk: %w (the file system does not support O_DIRECT; set o_direct = false)", err)
		}
		return nil, fmt.Errorf("vdisk: %w", err)
	}
	b := &fileBackend{f: f, fd: int(f.Fd()), rw: f, readOnly: s.ReadOnly, writeThrough: s.WriteThrough && !s.ReadOnly}
	b.try = tryMode(b.fd, s.ODirect)
	if err := b.fitSize(s, exists); err != nil {
		f.Close()
		if !exists {
			os.Remove(s.Filename)
		}
		return nil, err
	}
	if s.ODirect {
		b.rw = newDirectFile(f)
	}
	return b, nil
}

// fitSize extends the file to s.Size when it is smaller: a file just
// created, or an existing one when s.Extend. It never shrinks.
func (b *fileBackend) fitSize(s Spec, existed bool) error {
	size, err := b.Size()
	if err != nil {
		return err
	}
	switch {
	case size >= s.Size:
	case s.ReadOnly:
		return fmt.Errorf("vdisk: %s holds %d bytes, less than size %d, and is read-only so it cannot be extended (lower size or make it writable)", s.Filename, size, s.Size)
	case existed && !s.Extend:
		return fmt.Errorf("vdisk: %s holds %d bytes, less than size %d; an existing file is not extended when its device first opens it (grow it yourself, e.g. truncate -s %d %s, or drop size to serve it as it is)",
			s.Filename, size, s.Size, s.Size, s.Filename)
	default:
		if err := b.f.Truncate(s.Size); err != nil {
			return fmt.Errorf("vdisk: extend %s to %d bytes: %w", s.Filename, s.Size, unwrapPath(err))
		}
		size = s.Size
	}
	switch {
	case size == 0 && s.ReadOnly:
		return fmt.Errorf("vdisk: %s is empty (a read-only device needs an image with data)", s.Filename)
	case size == 0:
		return fmt.Errorf("vdisk: %s is empty (set size to give it a capacity)", s.Filename)
	}
	return nil
}

// newDirectFile wraps a file opened with O_DIRECT, asking the kernel for the
// alignment it needs (statx STATX_DIOALIGN) and assuming a page otherwise.
func newDirectFile(f *os.File) *directFile {
	d := &directFile{f: f, align: pageAlign, memAlign: pageAlign}
	var st unix.Statx_t
	err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st)
	if err == nil && st.Mask&unix.STATX_DIOALIGN != 0 && validAlign(st.Dio_offset_align) && validAlign(st.Dio_mem_align) {
		d.align = int64(st.Dio_offset_align)
		d.memAlign = uintptr(st.Dio_mem_align)
	}
	return d
}

// validAlign reports whether a is a usable power-of-two alignment no larger
// than the bounce buffers are aligned to.
func validAlign(a uint32) bool {
	return a != 0 && a&(a-1) == 0 && a <= pageAlign
}

// ReadAt reads len(p) bytes at off; it is safe for concurrent use.
func (b *fileBackend) ReadAt(p []byte, off int64) (int, error) {
	return b.rw.ReadAt(p, off)
}

// WriteAt writes p at off; it is safe for concurrent use.
func (b *fileBackend) WriteAt(p []byte, off int64) (int, error) {
	if b.readOnly {
		return 0, ErrReadOnly
	}
	return b.rw.WriteAt(p, off)
}

// Size returns the file's current length.
func (b *fileBackend) Size() (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(b.f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("vdisk: stat %s: %w", b.f.Name(), err)
	}
	return st.Size, nil
}

// Sync flushes completed writes to stable storage.
func (b *fileBackend) Sync() error {
	if err := unix.Fdatasync(int(b.f.Fd())); err != nil {
		return fmt.Errorf("vdisk: fdatasync %s: %w", b.f.Name(), err)
	}
	return nil
}

// Unmap punches a hole over the byte range, keeping the file's size.
// File systems without hole punching return EOPNOTSUPP.
func (b *fileBackend) Unmap(off, length int64) error {
	if b.readOnly {
		return ErrReadOnly
	}
	return unix.Fallocate(int(b.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
}

// ZeroRange punches a hole over the byte range, which then reads as
// zeroes; it is Unmap under the name WRITE SAME looks for.
func (b *fileBackend) ZeroRange(off, length int64) error { return b.Unmap(off, length) }

// MapStatus reports whether off lies in data or in a hole, and how far that
// extent reaches, using lseek SEEK_DATA and SEEK_HOLE. The file offset that
// lseek moves is never used for I/O, which goes through pread and pwrite.
func (b *fileBackend) MapStatus(off, length int64) (bool, int64, error) {
	fd := int(b.f.Fd())
	data, err := unix.Seek(fd, off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		return false, length, nil // a hole up to the end of the file
	case err != nil:
		return true, length, err
	case data > off:
		return false, min(data-off, length), nil
	}
	hole, err := unix.Seek(fd, off, unix.SEEK_HOLE)
	if err != nil {
		return true, length, err
	}
	return true, min(hole-off, length), nil
}

// Close closes the file. Its mapping, if reads were lent from it, stays
// until the last loan comes back.
func (b *fileBackend) Close() error {
	b.closeLend()
	return b.f.Close()
}

// unwrapPath strips an *fs.PathError so that a message that names the path
// itself does not name it twice.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
