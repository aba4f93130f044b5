package vdisk

import (
	"errors"
	"fmt"
)

// nullBackend stores nothing: reads return zeroes, writes are discarded.
// It is useful to measure the target itself without storage in the way.
type nullBackend struct {
	size     int64
	readOnly bool
}

func openNull(s Spec) (Backend, error) {
	if s.Size <= 0 {
		return nil, errors.New("vdisk: vdisk_nullio needs a size greater than zero")
	}
	if s.Filename != "" {
		return nil, fmt.Errorf("vdisk: vdisk_nullio takes no filename (got %s)", s.Filename)
	}
	return &nullBackend{size: s.Size, readOnly: s.ReadOnly}, nil
}

// ReadAt fills p with zeroes.
func (b *nullBackend) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

// WriteAt discards p.
func (b *nullBackend) WriteAt(p []byte, off int64) (int, error) {
	if b.readOnly {
		return 0, ErrReadOnly
	}
	return len(p), nil
}

// Unmap succeeds: every block of a null device is always deallocated and
// reads as zeroes.
func (b *nullBackend) Unmap(off, length int64) error {
	if b.readOnly {
		return ErrReadOnly
	}
	return nil
}

// ZeroRange succeeds, as Unmap does.
func (b *nullBackend) ZeroRange(off, length int64) error { return b.Unmap(off, length) }

// Size returns the configured capacity.
func (b *nullBackend) Size() (int64, error) { return b.size, nil }

// Sync has nothing to flush.
func (b *nullBackend) Sync() error { return nil }

// Close does nothing.
func (b *nullBackend) Close() error { return nil }
