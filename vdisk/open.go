package vdisk

import (
	"errors"
	"fmt"
	"os"
)

// Open opens the backend that s describes, dispatching on s.Handler.
//
// Errors name the file and say what to do about it, for example
// "vdisk: open /x/y.img: no such file or directory (set size to create it)".
func Open(s Spec) (Backend, error) {
	switch s.Handler {
	case FileIO:
		return openFile(s)
	case BlockIO:
		return openBlock(s)
	case NullIO:
		return openNull(s)
	case CDROM:
		// A CD-ROM image is an ordinary file that is never written, created
		// or resized.
		s.ReadOnly, s.Size, s.WriteThrough = true, 0, false
		return openFile(s)
	case "":
		return nil, errors.New("vdisk: no handler given (want vdisk_fileio, vdisk_blockio, vdisk_nullio or vcdrom)")
	default:
		return nil, fmt.Errorf("vdisk: unknown handler %q (want vdisk_fileio, vdisk_blockio, vdisk_nullio or vcdrom)", s.Handler)
	}
}

// Mapper is implemented by backends that know which byte ranges hold data,
// so that GET LBA STATUS can report deallocated ranges.
type Mapper interface {
	// MapStatus reports whether the byte at off is mapped (holds data) and
	// how many bytes from off, at most length, share that state.
	MapStatus(off, length int64) (mapped bool, n int64, err error)
}

// Zeroer is implemented by backends that can make a byte range read as
// zeroes without writing them, deallocating it where the storage can (a
// punched hole, BLKZEROOUT): WRITE SAME with UNMAP and a zero block.
type Zeroer interface {
	ZeroRange(off, length int64) error
}

// statTarget stats the file a spec names, refusing directories and an empty
// name with an error that says what is wanted instead.
func statTarget(s Spec) (os.FileInfo, error) {
	if s.Filename == "" {
		return nil, fmt.Errorf("vdisk: %s needs a filename", s.Handler)
	}
	fi, err := os.Stat(s.Filename)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("vdisk: %s is a directory (name an image file or a block device)", s.Filename)
	}
	return fi, nil
}
