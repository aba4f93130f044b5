package scsi

import (
	"strconv"

	"github.com/scstd/scstd/vdisk"
)

// This file holds the types package scsi shares with its callers (iscsi,
// reconcile): LUN numbers, device types and configuration, LUN map
// entries, and a command with its result.

// LUN is a logical unit number as configured (0..16383). On the wire it is
// eight bytes (SAM-5 §4.7): peripheral addressing for 0..255, flat space
// addressing for 256..16383.
type LUN uint16

// DeviceType is the peripheral device type reported by INQUIRY.
type DeviceType uint8

// Peripheral device types scstd serves.
const (
	TypeDisk  DeviceType = 0x00
	TypeCDROM DeviceType = 0x05
)

// DeviceConfig is what a device is created with. Runtime state
// (reservations, mode page changes, unit attention counters) lives inside
// Device, not here.
type DeviceConfig struct {
	Name         string
	Type         DeviceType
	BlockSize    uint32 // 512 or 4096 (2048 for CD-ROM)
	ReadOnly     bool
	NVCache      bool // ignore SYNCHRONIZE CACHE and FUA
	WriteThrough bool // WCE=0 in the caching mode page
	Removable    bool
	// T10DevID identifies the device in VPD page 83h (T10 vendor ID and
	// NAA designators); empty means Name.
	T10DevID string
	// USN is the unit serial number of VPD page 80h; empty means one
	// derived from T10DevID.
	USN string
	// NAA is the logical unit's NAA designator in VPD page 83h: 16 bytes
	// of NAA IEEE Registered Extended (6h; see DeriveNAA), or 8 bytes of
	// an 8-byte NAA format (LegacyNAA pinned to keep an identity from
	// before). Empty: LegacyNAA(T10DevID).
	NAA []byte
	// Passthrough makes a pass-through device: a real logical unit
	// (SetPassthrough) executes its commands, and its identity comes from
	// that unit, not from the fields above.
	Passthrough bool
}

// LogicalUnit is one entry of a LUN map: a device seen through one LUN,
// possibly read-only for that mapping alone.
type LogicalUnit struct {
	Device   *Device
	ReadOnly bool
	// Stats are the LUN's I/O counters. NewLUNMap gives a unit without
	// them new ones; a reload that rebuilds a LUN map passes on those of
	// a LUN that still reaches the same device, so that its counters go
	// on.
	Stats *IOStats
}

// Result is the outcome of one SCSI command.
type Result struct {
	Status Status
	// Sense is fixed-format sense data when Status is CHECK CONDITION.
	Sense []byte
	// Data is the data-in the command produced. It may be longer than the
	// initiator's expected length; the transport truncates and reports the
	// overflow as a residual.
	Data []byte
	// DataOutLen is the number of data-out bytes the CDB called for
	// (transfer length × block size, parameter list length); 0 for a
	// command without data-out. The transport compares it with the
	// expected data transfer length to report residuals (RFC 7143
	// §11.4.5.2).
	DataOutLen uint32
}

// Command is one SCSI command as the transport hands it over.
type Command struct {
	Nexus *Nexus
	LUNs  *LUNMap // the LUN map this nexus sees now
	LUN   LUN
	// LUNValid is false when the 8-byte LUN field could not be decoded;
	// the command then gets LOGICAL UNIT NOT SUPPORTED (except INQUIRY /
	// REPORT LUNS handling per SPC-4).
	LUNValid bool
	CDB      []byte
	Attr     TaskAttribute
	// DataOut holds every data-out byte received for the command.
	DataOut []byte
	// ExpectedIn is the initiator's expected data-in length.
	ExpectedIn uint32
	// DataIn, when non-nil, is a buffer of capacity >= ExpectedIn that
	// Execute may fill and return as Result.Data, to avoid allocating.
	DataIn []byte
	// Buffers, when set and DataIn is too small, supplies the data-in
	// buffer, sized by what the command returns rather than by
	// ExpectedIn.
	Buffers DataInBuffers
}

// DataInBuffers supplies the buffer a command fills with data-in, so
// that the transport can pool it.
type DataInBuffers interface {
	// DataInBuffer returns a buffer of length n, or nil to let Execute
	// allocate one. Execute asks at most once per call; a command that
	// TryExecute gave up asks again when Execute runs it.
	DataInBuffer(n int) []byte
}

// DataInLoans is implemented by DataInBuffers whose transport can send
// data-in that the backend lends (vdisk.Lender) without reading it from
// Go: a READ then returns the lent bytes as Result.Data instead of
// copying them into a buffer.
type DataInLoans interface {
	// TakesLoans reports whether the data-in may be lent: false when
	// the transport reads it (to compute a data digest).
	TakesLoans() bool
	// HoldLoan keeps l (nil for a loan with nothing to return) until
	// the data-in has been sent, then returns it.
	HoldLoan(l vdisk.Loan)
}

// TaskAttribute is the SAM task attribute of a command. Its values are
// those the ATTR field of an iSCSI SCSI Command PDU carries (RFC 7143
// §11.3.1.2), so that package iscsi decodes the field into it.
type TaskAttribute uint8

// Task attributes.
const (
	Untagged TaskAttribute = iota
	Simple
	Ordered
	HeadOfQueue
	ACA
)

// String returns the task attribute's name as SAM-5 spells it.
func (a TaskAttribute) String() string {
	switch a {
	case Untagged:
		return "UNTAGGED"
	case Simple:
		return "SIMPLE"
	case Ordered:
		return "ORDERED"
	case HeadOfQueue:
		return "HEAD_OF_QUEUE"
	case ACA:
		return "ACA"
	}
	return "TASK_ATTRIBUTE_" + strconv.Itoa(int(a))
}

// String returns the peripheral device type's name ("DISK", "CDROM").
func (t DeviceType) String() string {
	switch t {
	case TypeDisk:
		return "DISK"
	case TypeCDROM:
		return "CDROM"
	}
	return "DEVICE_TYPE_0x" + strconv.FormatUint(uint64(t)|0x100, 16)[1:]
}
