package vdisk

import (
	"errors"
	"io"
)

// Backend is the storage behind one SCSI device. ReadAt and WriteAt must be
// safe for concurrent use, as io.ReaderAt documents; offsets and lengths are
// byte counts already checked against Size by the caller.
type Backend interface {
	io.ReaderAt
	io.WriterAt
	// Size returns the current capacity in bytes. For files and block
	// devices it is read afresh, so a device that grew is noticed.
	Size() (int64, error)
	// Sync makes every completed write durable (fdatasync).
	Sync() error
	// Close releases the backend. No call may follow it.
	Close() error
}

// Unmapper is implemented by backends that can deallocate a byte range
// (punch a hole), so that UNMAP and WRITE SAME with UNMAP free space.
type Unmapper interface {
	Unmap(off, length int64) error
}

// Handler names a backend kind, spelled as SCST spells its handlers.
type Handler string

// The handlers scstd provides.
const (
	FileIO  Handler = "vdisk_fileio"
	BlockIO Handler = "vdisk_blockio"
	NullIO  Handler = "vdisk_nullio"
	CDROM   Handler = "vcdrom"
)

// Spec says how to open a backend.
type Spec struct {
	Handler  Handler
	Filename string
	// Size is the capacity in bytes. For fileio a missing file is created
	// sparse with this size; an existing file smaller than Size is an
	// error unless Extend is set; a larger file is never shrunk. Zero
	// means "take the size of the file or device". Required for nullio.
	Size         int64
	ReadOnly     bool
	ODirect      bool
	WriteThrough bool // every write durable before it completes (O_DSYNC)
	// Extend lets Open extend an existing fileio file smaller than Size
	// to Size. Set it only to reopen the file of a device that already
	// serves from it and whose size was raised (a resize): a device's
	// first open must never change a file it did not create, which may
	// hold anything (the file a typo in the path names, another
	// program's data).
	Extend bool
}

// ErrReadOnly is returned by WriteAt on a backend opened read-only.
var ErrReadOnly = errors.New("vdisk: backend is read-only")
