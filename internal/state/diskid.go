package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/scstd/scstd/internal/diskid"
)

// DiskIDPath returns where the state directory dir keeps the identity
// of dev_disk device name's disk (diskid.RecordPath: package config reads
// it there without opening the directory).
func DiskIDPath(dir, name string) string { return diskid.RecordPath(dir, name) }

// DiskID returns the record of the identity of dev_disk device name's
// disk.
func (d *Dir) DiskID(name string) *DiskIDFile {
	return &DiskIDFile{path: DiskIDPath(d.path, name)}
}

// DiskIDFile is one dev_disk device's identity record.
type DiskIDFile struct {
	path string
}

// Path returns the file's path.
func (f *DiskIDFile) Path() string { return f.path }

// Aside returns the path a corrupt record was moved aside to, and
// whether one is there.
func (f *DiskIDFile) Aside() (string, bool) {
	p := f.path + ".corrupt"
	_, err := os.Lstat(p)
	return p, err == nil
}

// Save records r, atomically and durably.
func (f *DiskIDFile) Save(r diskid.Record) error {
	return WriteFileAtomic(f.path, r.Encode(), 0o640)
}

// Load reads the record. ok is false when there is none. A file that
// cannot be read is an error; one that is corrupt is an error wrapping
// ErrCorrupt. Either stays as it is: the caller moves a corrupt one
// aside (MoveAside) when it acts on it, so that reading changes nothing.
func (f *DiskIDFile) Load() (r diskid.Record, ok bool, err error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("state: %w", err)
	}
	r, err = diskid.DecodeRecord(b)
	if err != nil {
		return diskid.Record{}, false, fmt.Errorf("state: %s: %w: %v", f.path, ErrCorrupt, err)
	}
	return r, true, nil
}

// MoveAside moves a corrupt record aside, durably, to the path Aside
// returns; the error (wrapping ErrCorrupt) says where it went, or why it
// could not be moved.
func (f *DiskIDFile) MoveAside(why error) error { return moveAside(f.path, why) }

// Remove forgets the record, and a corrupt one moved aside, durably.
func (f *DiskIDFile) Remove() error {
	for _, p := range []string{f.path, f.path + ".corrupt"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state: %w", err)
		}
	}
	return syncDir(filepath.Dir(f.path))
}

// RenameDiskID moves dev_disk device from's record to device to; when to
// has one already (saved on the way), from's is removed.
func (d *Dir) RenameDiskID(from, to string) error {
	src, dst := d.DiskID(from), d.DiskID(to)
	if _, err := os.Lstat(dst.path); err == nil {
		return src.Remove()
	}
	if err := os.Rename(src.path, dst.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return syncDir(filepath.Dir(dst.path))
}
