// Package diskid tells one SCSI disk from another: the identity a
// dev_disk device records of the disk it first opened, so that an
// address or device node that later leads to another disk (after a
// hot-swap, a rescan or a reboot that renumbers the sg nodes) is not
// exported under the same LUN.
//
// An Identity is read from three pages the disk answers (FromPages), or
// from the copies sysfs keeps of them (FromSysfs, for `scstd validate`,
// which does not send commands):
//
//	standard INQUIRY   T10 VENDOR IDENTIFICATION (bytes 8..15) and
//	                   PRODUCT IDENTIFICATION (16..31), spaces trimmed
//	VPD 80h            the PRODUCT SERIAL NUMBER, spaces and NULs trimmed
//	VPD 83h            every designation descriptor of the logical unit
//	                   (ASSOCIATION 00b) but its LU group (type 6):
//	                   "naa." and hex (type 3), "eui." and hex (2), "t10."
//	                   (1), "name." (8, SCSI name string), "uuid." (Ah),
//	                   "md5." (7), "vendor." (0); binary ones in lower-case
//	                   hex, text ones trimmed
//
// The revision is left out (a firmware update changes it). Two identities
// are the same disk when every field is equal (Equal): a disk whose
// designators changed is another disk until an administrator says
// otherwise. A disk that has neither designators nor a serial can be told
// apart by its vendor and product alone (Weak).
//
// # Record file
//
// The engine keeps each dev_disk device's identity in the state
// directory (package state, dev_disk/NAME.json), as JSON:
//
//	{
//	  "format": "scstd-dev-disk-identity",
//	  "version": 1,
//	  "device": "sdb",                 the device's name
//	  "path": "0:0:1:0",               informational: its path when recorded
//	  "vendor": "QEMU",
//	  "product": "QEMU HARDDISK",
//	  "serial": "SCSTDVM0",             absent when the disk has none
//	  "designators": ["naa.5000c50015ea71ac", "vendor.SCSTDVM0"]
//	}
//
// DecodeRecord refuses a file of another format or version, or without
// a vendor: it is corrupt.
//
// The package uses the standard library only, so that package config
// can compare what sysfs says with a record.
package diskid

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Identity is what tells a disk from another.
type Identity struct {
	Vendor      string   `json:"vendor"`
	Product     string   `json:"product"`
	Serial      string   `json:"serial,omitempty"`
	Designators []string `json:"designators,omitempty"`
}

// FromPages reads an identity from a disk's standard INQUIRY data and
// its VPD pages 80h and 83h (nil or empty: the disk has not that page).
// Pages that are cut short are read as far as they go.
func FromPages(inquiry, vpd80, vpd83 []byte) Identity {
	var id Identity
	if len(inquiry) >= 16 {
		id.Vendor = text(inquiry[8:min(16, len(inquiry))])
	}
	if len(inquiry) > 16 {
		id.Product = text(inquiry[16:min(32, len(inquiry))])
	}
	if body, ok := page(vpd80, 0x80); ok {
		id.Serial = text(body)
	}
	if body, ok := page(vpd83, 0x83); ok {
		id.Designators = designators(body)
	}
	return id
}

// page returns the body of a VPD page with code pc, cut at its PAGE
// LENGTH or at what was read.
func page(b []byte, pc byte) ([]byte, bool) {
	if len(b) < 4 || b[1] != pc {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	return b[4:min(4+n, len(b))], true
}

// designatorTypes name the designator types kept, by DESIGNATOR TYPE.
var designatorTypes = map[byte]string{0x0: "vendor", 0x1: "t10", 0x2: "eui", 0x3: "naa", 0x7: "md5", 0x8: "name", 0xa: "uuid"}

// designators returns the logical unit's designators of a VPD 83h body,
// sorted.
func designators(b []byte) []string {
	var out []string
	for len(b) >= 4 {
		codeSet, assoc, typ, n := b[0]&0x0f, (b[1]>>4)&0x3, b[1]&0x0f, int(b[3])
		if 4+n > len(b) {
			break
		}
		d := b[4 : 4+n]
		b = b[4+n:]
		name, ok := designatorTypes[typ]
		if assoc != 0 || !ok || n == 0 {
			continue
		}
		var v string
		if codeSet == 1 { // binary
			v = hex.EncodeToString(d)
		} else {
			v = text(d)
		}
		if v == "" {
			continue
		}
		if s := name + "." + v; !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// text is an ASCII field without its padding (spaces, NULs), with bytes
// that are not printable ASCII written as '?'.
func text(b []byte) string {
	s := []byte(strings.Trim(string(b), " \x00"))
	for i, c := range s {
		if c < 0x20 || c > 0x7e {
			s[i] = '?'
		}
	}
	return string(s)
}

// Equal reports whether id and o are the same disk.
func (id Identity) Equal(o Identity) bool {
	return id.Vendor == o.Vendor && id.Product == o.Product && id.Serial == o.Serial && slices.Equal(id.Designators, o.Designators)
}

// Weak reports whether the disk has neither designators nor a serial:
// only its vendor and product tell it from another.
func (id Identity) Weak() bool { return id.Serial == "" && len(id.Designators) == 0 }

// rank orders designator types by how surely they name one logical unit.
var rank = []string{"naa.", "eui.", "name.", "uuid.", "t10.", "md5.", "vendor."}

// Primary returns the designator that best names the disk (NAA, then
// EUI-64, SCSI name string, UUID, T10 vendor ID, MD5, vendor specific),
// or "" when it has none.
func (id Identity) Primary() string {
	for _, p := range rank {
		for _, d := range id.Designators {
			if strings.HasPrefix(d, p) {
				return d
			}
		}
	}
	return ""
}

// String names the disk for an administrator: its best designator, its
// serial, vendor and product, e.g. `naa.5000c50015ea71ac (serial
// SCSTDVM0, QEMU QEMU HARDDISK)`.
func (id Identity) String() string {
	var parts []string
	if id.Serial != "" {
		parts = append(parts, "serial "+id.Serial)
	}
	parts = append(parts, strings.TrimSpace(id.Vendor+" "+id.Product))
	s := "(" + strings.Join(parts, ", ") + ")"
	if p := id.Primary(); p != "" {
		s = p + " " + s
	}
	return s
}

// Record is a dev_disk device's recorded identity.
type Record struct {
	// Device is the device's name; Path its path when it was recorded.
	Device, Path string
	Identity
}

// recordFormat and recordVersion identify the record file format.
const (
	recordFormat  = "scstd-dev-disk-identity"
	recordVersion = 1
)

type recordFile struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Device  string `json:"device"`
	Path    string `json:"path"`
	Identity
}

// Encode returns r as its record file.
func (r Record) Encode() []byte {
	b, err := json.MarshalIndent(recordFile{Format: recordFormat, Version: recordVersion, Device: r.Device, Path: r.Path, Identity: r.Identity}, "", "  ")
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return append(b, '\n')
}

// DecodeRecord parses a record file.
func DecodeRecord(b []byte) (Record, error) {
	var in recordFile
	if err := json.Unmarshal(b, &in); err != nil {
		return Record{}, err
	}
	if in.Format != recordFormat || in.Version != recordVersion {
		return Record{}, fmt.Errorf("format %q version %d, want %q version %d", in.Format, in.Version, recordFormat, recordVersion)
	}
	if in.Vendor == "" {
		return Record{}, errors.New("no vendor")
	}
	slices.Sort(in.Designators)
	if len(in.Designators) == 0 {
		in.Designators = nil
	}
	return Record{Device: in.Device, Path: in.Path, Identity: in.Identity}, nil
}

// FromSysfs reads the identity of the SCSI device whose sysfs directory
// is dir (/sys/bus/scsi/devices/H:C:T:L): its vendor and model files and
// its copies of VPD pages 80h and 83h (vpd_pg80, vpd_pg83), which the
// kernel reads when it finds the device. sysfs has no copy of a page the
// disk has not, nor of pages the kernel did not read (it skips them for
// some disks): Compare takes what sysfs lacks from the record. It fails
// when a file that is there cannot be read (vpd_pg* are root's).
func FromSysfs(dir string) (Sysfs, error) {
	var s Sysfs
	var inq [32]byte
	for _, f := range []struct {
		name string
		dst  []byte
		n    int
		have *bool
	}{
		{"vendor", inq[8:16], 8, nil}, {"model", inq[16:32], 16, nil},
		{"vpd_pg80", nil, 0, &s.HasVPD80}, {"vpd_pg83", nil, 0, &s.HasVPD83},
	} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		switch {
		case errors.Is(err, fs.ErrNotExist) && f.have != nil:
			continue
		case err != nil:
			return Sysfs{}, err
		case f.have != nil:
			*f.have = true
			if f.name == "vpd_pg80" {
				s.vpd80 = b
			} else {
				s.vpd83 = b
			}
		default:
			copy(f.dst, pad(strings.TrimRight(string(b), "\n"), f.n))
		}
	}
	s.Identity = FromPages(inq[:], s.vpd80, s.vpd83)
	return s, nil
}

// Sysfs is a disk's identity as sysfs tells it.
type Sysfs struct {
	Identity
	// HasVPD80 and HasVPD83 say whether sysfs had a copy of each page.
	HasVPD80, HasVPD83 bool
	vpd80, vpd83       []byte
}

// Compare returns the identity to compare with recorded: s's, with the
// fields of pages sysfs has no copy of taken from recorded.
func (s Sysfs) Compare(recorded Identity) Identity {
	id := s.Identity
	if !s.HasVPD80 {
		id.Serial = recorded.Serial
	}
	if !s.HasVPD83 {
		id.Designators = recorded.Designators
	}
	return id
}

// RecordPath returns where the state directory stateDir keeps the
// identity record of dev_disk device name: dev_disk/NAME.json.
func RecordPath(stateDir, name string) string {
	return filepath.Join(stateDir, "dev_disk", name+".json")
}

// pad is s cut or padded with spaces to n bytes, as INQUIRY holds it.
func pad(s string, n int) []byte {
	b := []byte(s + strings.Repeat(" ", n))
	return b[:n]
}
