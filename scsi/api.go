package scsi

import "github.com/scstd/scstd/vdisk"

// This file is the contract between package scsi and its callers (iscsi,
// reconcile). The scsi helper owns the implementation; the signatures here
// are what the other packages are written against.

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
	T10DevID     string
	USN          string
}

// LogicalUnit is one entry of a LUN map: a device seen through one LUN,
// possibly read-only for that mapping alone.
type LogicalUnit struct {
	Device   *Device
	ReadOnly bool
}

// Status is a SCSI status byte (SAM-5 §5.3).
type Status uint8

// Result is the outcome of one SCSI command.
type Result struct {
	Status Status
	// Sense is fixed-format sense data when Status is CHECK CONDITION.
	Sense []byte
	// Data is the data-in the command produced. It may be longer than the
	// initiator's expected length; the transport truncates and reports the
	// overflow as a residual.
	Data []byte
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
}

// TaskAttribute is the SAM task attribute of a command.
type TaskAttribute uint8

// Task attributes.
const (
	Untagged TaskAttribute = iota
	Simple
	Ordered
	HeadOfQueue
	ACA
)

// Device is one SCSI device (an SCST "device"): a backend plus identity,
// attributes and runtime state shared by every LUN and nexus that maps it.
// It outlives engine snapshots: a reload that keeps a device keeps its
// Device value.
type Device struct {
	cfg DeviceConfig
	// The scsi helper adds the rest (backend behind an atomic pointer so
	// a device can go offline and come back, reservations, counters).
	backend vdisk.Backend
}

// NewDevice makes a device. A nil backend makes an offline device, whose
// LUNs answer NOT READY until SetBackend gives it one.
func NewDevice(cfg DeviceConfig, b vdisk.Backend) *Device { return &Device{cfg: cfg, backend: b} }

// LUNMap is an immutable map from LUN to logical unit, shared by every
// nexus that sees it. Its identity changes when the map changes.
type LUNMap struct {
	units map[LUN]*LogicalUnit
}

// NewLUNMap builds a LUN map; the caller must not modify m afterwards.
func NewLUNMap(m map[LUN]*LogicalUnit) *LUNMap { return &LUNMap{units: m} }

// Nexus is the SCSI state of one I_T nexus (an iSCSI session): its pending
// unit attentions per LUN and its identity for reservations.
type Nexus struct {
	// InitiatorPort is the SCSI initiator port name, "iqn...,i,0x<isid>".
	InitiatorPort string
	// TargetName is the iSCSI target name, TargetPort the SCSI target
	// port name "iqn...,t,0x<tpgt>".
	TargetName string
	TargetPort string
	// RelTgtPortID is the relative target port identifier (VPD 83h).
	RelTgtPortID uint16
}

// Execute runs one command to completion and returns its status, sense and
// data-in. It never panics on any CDB; it is safe to call concurrently.
func Execute(cmd *Command) Result { return Result{} }
