package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/sys/unix"
)

// MaxConfigSize is the most a configuration may hold: the sum of its files'
// sizes. A path beyond it is refused before it is read.
const MaxConfigSize = 16 << 20

// Source is one configuration file as read from disk.
type Source struct {
	// Name is the file's path: the configuration path itself, or for a
	// directory the directory joined with the entry's name.
	Name string
	// Bytes is the file's content.
	Bytes []byte
}

// Sources is a configuration as read from disk, before it is decoded:
// what ReadSources found at a path.
type Sources struct {
	// Path is the path given, a file or a directory.
	Path string
	// Dir is true when Path is a directory.
	Dir bool
	// Files are the files read, in name order.
	Files []Source
}

// ReadSources reads the configuration at path: a regular file, or a
// directory whose *.hcl entries (names starting with "." skipped, symlinks
// followed) are all regular files. Everything else is refused before it is
// opened (a FIFO would block the reader, a device such as /dev/zero would
// never end), and so is a configuration of more than MaxConfigSize bytes in
// all. Each file is stat'ed, opened with O_NONBLOCK, checked again on the
// open descriptor and read with a limit, so a file swapped or grown
// meanwhile changes nothing of that.
func ReadSources(path string) (*Sources, hcl.Diagnostics) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, pathDiag("Cannot read configuration",
			"%s: %v. Expected a configuration file or a directory of *.hcl files.", path, unwrapPathError(err))
	}
	s := &Sources{Path: path, Dir: fi.IsDir()}
	if !s.Dir {
		if !fi.Mode().IsRegular() {
			return nil, pathDiag("Configuration is not a regular file",
				"%s is %s. Expected a configuration file or a directory of *.hcl files.", path, modeName(fi.Mode()))
		}
		b, err := readRegular(path, MaxConfigSize)
		if err != nil {
			return nil, readDiag(path, err)
		}
		s.Files = []Source{{Name: path, Bytes: b}}
		return s, nil
	}
	names, diags := dirEntries(path)
	if diags.HasErrors() {
		return nil, diags
	}
	budget := int64(MaxConfigSize)
	for _, name := range names {
		b, err := readRegular(name, budget)
		if err != nil {
			var big *tooLargeError
			if errors.As(err, &big) {
				return nil, pathDiag("Configuration too large",
					"The *.hcl files of %s hold more than %d bytes (16 MiB) in all: with %s (%d bytes) they pass the limit.",
					path, MaxConfigSize, name, big.size)
			}
			return nil, readDiag(name, err)
		}
		budget -= int64(len(b))
		s.Files = append(s.Files, Source{Name: name, Bytes: b})
	}
	return s, nil
}

// dirEntries lists the configuration files of directory path: every entry
// ending in ".hcl" and not starting with ".", in name order. Each must be
// a regular file, or a symlink to one.
func dirEntries(path string) ([]string, hcl.Diagnostics) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, pathDiag("Cannot read configuration directory", "%s: %v.", path, unwrapPathError(err))
	}
	var names []string
	var diags hcl.Diagnostics
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".hcl") {
			continue
		}
		full := filepath.Join(path, n)
		st, err := os.Stat(full)
		switch {
		case err != nil:
			diags = append(diags, pathDiag("Cannot read configuration file", "%s: %v.", full, unwrapPathError(err))...)
			continue
		case !st.Mode().IsRegular():
			diags = append(diags, pathDiag("Configuration file is not a regular file",
				"%s is %s. Every *.hcl entry of the configuration directory %s must be a regular file (or a symlink to one); rename it so that it does not end in .hcl, or remove it.",
				full, modeName(st.Mode()), path)...)
			continue
		}
		names = append(names, full)
	}
	sort.Strings(names)
	if len(names) == 0 && !diags.HasErrors() {
		return nil, pathDiag("No configuration files", "The directory %s holds no *.hcl file.", path)
	}
	return names, diags
}

// tooLargeError says that a file is larger than what may be read.
type tooLargeError struct {
	size, limit int64
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%d bytes, more than the %d allowed", e.size, e.limit)
}

// notRegularError is returned by readRegular for anything but a regular file.
type notRegularError struct {
	mode fs.FileMode
}

func (e *notRegularError) Error() string { return modeName(e.mode) + ", not a regular file" }

// readRegular reads the regular file name, of at most limit bytes. It
// checks the type before opening (opening a device or a FIFO may block or
// have side effects), opens with O_NONBLOCK so that a FIFO swapped in
// meanwhile cannot block the open, checks the type again on the open
// descriptor, and reads no more than limit+1 bytes.
func readRegular(name string, limit int64) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &notRegularError{mode: fi.Mode()}
	}
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &notRegularError{mode: fi.Mode()}
	}
	if fi.Size() > limit {
		return nil, &tooLargeError{size: fi.Size(), limit: limit}
	}
	// One buffer of the file's size, with the room to see it end (or
	// grow while read): io.ReadAll's doubling took twice the file's size.
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if int64(len(b)) > limit {
		return nil, &tooLargeError{size: int64(len(b)), limit: limit}
	}
	return b, nil
}

// readDiag is the diagnostic for a file readRegular refused.
func readDiag(name string, err error) hcl.Diagnostics {
	var big *tooLargeError
	var odd *notRegularError
	switch {
	case errors.As(err, &big):
		return pathDiag("Configuration too large",
			"%s is %d bytes; a configuration holds at most %d bytes (16 MiB).", name, big.size, MaxConfigSize)
	case errors.As(err, &odd):
		return pathDiag("Configuration is not a regular file",
			"%s is %s. Expected a configuration file or a directory of *.hcl files.", name, modeName(odd.mode))
	}
	return pathDiag("Cannot read configuration file", "%s: %v.", name, unwrapPathError(err))
}

// pathDiag is an error about the configuration path as a whole, which has
// no line to point at.
func pathDiag(summary, format string, args ...any) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
	}}
}

// Hash identifies the configuration's content, so that tooling can tell
// whether a running daemon matches the files (drift). For a file it is the
// SHA-256 of the file, what `sha256sum FILE` prints; for a directory, the
// SHA-256 of each file's name, length and content, in name order.
func (s *Sources) Hash() string {
	h := sha256.New()
	if !s.Dir && len(s.Files) == 1 {
		h.Write(s.Files[0].Bytes)
		return hex.EncodeToString(h.Sum(nil))
	}
	for _, f := range s.Files {
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f.Name), len(f.Bytes))
		h.Write(f.Bytes)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// EmptyFiles returns the names of the files that hold zero bytes. A file
// truncated by accident (`: > /etc/scst.hcl`, a full disk during a save)
// reads as a valid configuration that removes everything it declared.
func (s *Sources) EmptyFiles() []string {
	var out []string
	for _, f := range s.Files {
		if len(f.Bytes) == 0 {
			out = append(out, f.Name)
		}
	}
	return out
}

// EmptyWarning is the warning for a configuration whose files in names are
// empty: applying it removes what they declared.
func EmptyWarning(names []string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, n := range names {
		pos := hcl.Pos{Line: 1, Column: 1, Byte: 0}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "Empty configuration file",
			Detail: "The file holds zero bytes: applying it removes every device and target it declared before, and ends their sessions. " +
				"A running daemon ignores an empty file on SIGHUP, on the file watch and on `scstd reload`; only `scstd reload -force` applies it.",
			Subject: &hcl.Range{Filename: n, Start: pos, End: pos},
		})
	}
	return diags
}
