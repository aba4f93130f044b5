// Package state keeps what scstd must find again after a restart, in its
// state directory (state_dir, default /var/lib/scstd):
//
//	state_dir/              0750, created when missing
//	  identity.seed         64 hex digits: the installation's random seed,
//	                        made once; NAA designators derive from it
//	  pr/                   persistent reservations kept through power loss
//	    naa.<hex>.json      one file per device, named by its NAA designator
//	    dev_disk.<name>.json  (a dev_disk device, by name: its NAA is the disk's)
//	  dev_disk/             the identity of each dev_disk device's disk
//	    <name>.json         (package diskid), recorded when it first opened
//
// Every file is written whole or not at all: to a temporary file in the
// same directory, fsync'ed, renamed over the old one, and the directory
// fsync'ed, so that a crash leaves the old file or the new one.
//
// A PR file is JSON, versioned:
//
//	{
//	  "format": "scstd-persistent-reservations",
//	  "version": 1,
//	  "device": "disk1",                          informational: the name when saved
//	  "aptpl": true,
//	  "generation": 3,                            PRgeneration
//	  "registrations": [
//	    {"initiator_port": "iqn.1994-05.com.redhat:h1,i,0x23d000000001",
//	     "target_port": "iqn.2026-11.org.example:a,t,0x0001",
//	     "key": "0xaaaaaaaaaaaaaaaa", "rel_tgt_port_id": 1}
//	  ],
//	  "reservation": {"type": "WRITE_EXCLUSIVE",  absent when there is none
//	     "initiator_port": "...", "target_port": "..."}
//	}
//
// A PR or identity file that does not parse, has another format or
// version, or does not hold together is corrupt: Load says so, and the file is moved aside to
// NAME.corrupt (replacing an older one) so that the next save does not
// destroy what an administrator may want to look at.
package state

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/scstd/scstd/scsi"
)

// DefaultDir is the default state directory.
const DefaultDir = "/var/lib/scstd"

// File names in the state directory.
const (
	seedFile  = "identity.seed"
	prDir     = "pr"
	diskIDDir = "dev_disk"
)

// seedLen is the length of the installation's seed in bytes.
const seedLen = 32

// Dir is an open state directory.
type Dir struct {
	path string
	seed []byte
}

// Open opens the state directory at path, creating it (mode 0750) and
// its seed when missing. A seed that exists but cannot be read, or is not
// 64 hex digits, is an error: a new one would give every device that does
// not pin naa_id a new identity, which multipath initiators would take
// for new disks.
func Open(path string) (*Dir, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("state: state_dir %q is not an absolute path", path)
	}
	if err := os.MkdirAll(path, 0o750); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	for _, sub := range []string{prDir, diskIDDir} {
		if err := os.MkdirAll(filepath.Join(path, sub), 0o750); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
	}
	d := &Dir{path: path}
	name := filepath.Join(path, seedFile)
	b, err := os.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		seed := make([]byte, seedLen)
		if _, err := rand.Read(seed); err != nil {
			return nil, fmt.Errorf("state: seed: %w", err)
		}
		if err := WriteFileAtomic(name, []byte(hex.EncodeToString(seed)+"\n"), 0o640); err != nil {
			return nil, err
		}
		d.seed = seed
	case err != nil:
		return nil, fmt.Errorf("state: %w", err)
	default:
		seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(seed) != seedLen {
			return nil, fmt.Errorf("state: %s is not %d hex digits; restore it from a backup, or remove it to make a new one "+
				"(every device without naa_id then gets a new NAA designator)", name, 2*seedLen)
		}
		d.seed = seed
	}
	return d, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// Seed returns the installation's random seed (see scsi.DeriveNAA).
func (d *Dir) Seed() []byte { return d.seed }

// PRKey returns the key of a device's persistent reservation file: its
// NAA designator ("naa.6..."), or for a device whose identity is not
// scstd's (dev_disk) its handler and name.
func PRKey(naa []byte, handler, name string) string {
	if len(naa) > 0 {
		return "naa." + hex.EncodeToString(naa)
	}
	return handler + "." + name
}

// PR returns the store of the device whose persistent reservations are
// kept under key (PRKey); device is its name, recorded in the file for
// whoever reads it.
func (d *Dir) PR(key, device string) *PRFile {
	return &PRFile{path: filepath.Join(d.path, prDir, key+".json"), device: device}
}

// PRFile is one device's persistent reservation file. It implements
// scsi.PRStore.
type PRFile struct {
	path   string
	device string
}

// Path returns the file's path.
func (f *PRFile) Path() string { return f.path }

// prFormat and prVersion identify the file format.
const (
	prFormat  = "scstd-persistent-reservations"
	prVersion = 1
)

// prFile is the JSON form of a PR file.
type prFile struct {
	Format        string           `json:"format"`
	Version       int              `json:"version"`
	Device        string           `json:"device"`
	APTPL         bool             `json:"aptpl"`
	Generation    uint32           `json:"generation"`
	Registrations []prRegistration `json:"registrations"`
	Reservation   *prReservation   `json:"reservation,omitempty"`
}

type prRegistration struct {
	InitiatorPort string `json:"initiator_port"`
	TargetPort    string `json:"target_port"`
	Key           string `json:"key"`
	RelTgtPortID  uint16 `json:"rel_tgt_port_id"`
}

type prReservation struct {
	Type          string `json:"type"`
	InitiatorPort string `json:"initiator_port,omitempty"`
	TargetPort    string `json:"target_port,omitempty"`
}

// prTypes are the reservation types by name.
var prTypes = map[string]scsi.PRType{}

func init() {
	for _, t := range []scsi.PRType{scsi.PRWriteExclusive, scsi.PRExclusiveAccess, scsi.PRWriteExclusiveRegOnly,
		scsi.PRExclusiveAccessRegOnly, scsi.PRWriteExclusiveAllReg, scsi.PRExclusiveAccessAllReg} {
		prTypes[t.String()] = t
	}
}

// Save writes st as the device's state, atomically and durably.
func (f *PRFile) Save(st scsi.PRState) error {
	out := prFile{Format: prFormat, Version: prVersion, Device: f.device, APTPL: st.APTPL,
		Generation: st.Generation, Registrations: []prRegistration{}}
	for _, g := range st.Registrations {
		out.Registrations = append(out.Registrations, prRegistration{InitiatorPort: g.InitiatorPort,
			TargetPort: g.TargetPort, Key: "0x" + strconv.FormatUint(uint64(g.Key), 16), RelTgtPortID: g.RelTgtPortID})
	}
	if r := st.Reservation; r != nil {
		out.Reservation = &prReservation{Type: r.Type.String(), InitiatorPort: r.InitiatorPort, TargetPort: r.TargetPort}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(f.path, append(b, '\n'), 0o640)
}

// MoveTo moves the device's saved state to dst's place, durably; nothing
// saved is fine. A state already at dst is replaced.
func (f *PRFile) MoveTo(dst *PRFile) error {
	if err := os.Rename(f.path, dst.path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("state: %w", err)
	}
	return syncDir(filepath.Dir(dst.path))
}

// Remove deletes the device's state, durably; none is fine.
func (f *PRFile) Remove() error {
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return syncDir(filepath.Dir(f.path))
}

// ErrCorrupt marks a PR file that was read but does not hold a state.
var ErrCorrupt = errors.New("corrupt")

// Load reads the device's saved state. ok is false when nothing was
// saved. A file that cannot be read is an error (the file stays as it
// is); one that is corrupt is an error wrapping ErrCorrupt, and the file
// stays as it is too: the caller moves it aside (MoveAside) when it acts
// on the finding, so that reading alone changes nothing.
func (f *PRFile) Load() (st scsi.PRState, ok bool, err error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("state: %w", err)
	}
	st, err = decodePR(b)
	if err != nil {
		return scsi.PRState{}, false, fmt.Errorf("state: %s: %w: %w", f.path, ErrCorrupt, err)
	}
	return st, true, nil
}

// MoveAside moves a corrupt file aside to NAME.corrupt, replacing an
// older one, and returns the error that says so (wrapping ErrCorrupt and
// why, the reason the file is corrupt).
func (f *PRFile) MoveAside(why error) error { return moveAside(f.path, why) }

// moveAside moves the corrupt file path aside to path.corrupt (see
// PRFile.MoveAside).
func moveAside(path string, why error) error {
	aside := path + ".corrupt"
	if err := os.Rename(path, aside); err != nil {
		return fmt.Errorf("state: %s: %w: %v (and it could not be moved aside: %v)", path, ErrCorrupt, why, err)
	}
	syncDir(filepath.Dir(path))
	return fmt.Errorf("state: %s: %w: %v; moved aside to %s", path, ErrCorrupt, why, aside)
}

// decodePR parses a PR file.
func decodePR(b []byte) (scsi.PRState, error) {
	var in prFile
	var st scsi.PRState
	if err := json.Unmarshal(b, &in); err != nil {
		return st, err
	}
	if in.Format != prFormat || in.Version != prVersion {
		return st, fmt.Errorf("format %q version %d, want %q version %d", in.Format, in.Version, prFormat, prVersion)
	}
	st.APTPL, st.Generation = in.APTPL, in.Generation
	for _, g := range in.Registrations {
		key, err := strconv.ParseUint(strings.TrimPrefix(g.Key, "0x"), 16, 64)
		if err != nil || !strings.HasPrefix(g.Key, "0x") {
			return st, fmt.Errorf("registration key %q is not 0x and hex digits", g.Key)
		}
		st.Registrations = append(st.Registrations, scsi.PRRegistration{InitiatorPort: g.InitiatorPort,
			TargetPort: g.TargetPort, Key: scsi.ReservationKey(key), RelTgtPortID: g.RelTgtPortID})
	}
	if r := in.Reservation; r != nil {
		t, ok := prTypes[r.Type]
		if !ok {
			return st, fmt.Errorf("reservation type %q", r.Type)
		}
		st.Reservation = &scsi.PRReservation{Type: t, InitiatorPort: r.InitiatorPort, TargetPort: r.TargetPort}
	}
	return st, nil
}

// WriteFileAtomic replaces name with data: written to a temporary file in
// the same directory, fsync'ed, renamed over name, and the directory
// fsync'ed. A crash leaves the old file or the new one, never a part.
func WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	done = true
	return syncDir(dir)
}

// syncDir makes a directory's entries (a rename, a removal) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
