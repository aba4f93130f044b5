package scsi

import "strconv"

// Opcode is the first byte of a SCSI CDB (SPC-4 §4.3.4).
type Opcode uint8

// Operation codes of the SPC-4, SBC-3 and MMC-6 commands scstd knows by
// name.
const (
	TestUnitReady        Opcode = 0x00
	RequestSense         Opcode = 0x03
	FormatUnit           Opcode = 0x04
	ReassignBlocks       Opcode = 0x07
	Read6                Opcode = 0x08
	Write6               Opcode = 0x0a
	Inquiry              Opcode = 0x12
	ModeSelect6          Opcode = 0x15
	Reserve6             Opcode = 0x16
	Release6             Opcode = 0x17
	ModeSense6           Opcode = 0x1a
	StartStopUnit        Opcode = 0x1b
	ReceiveDiagnostic    Opcode = 0x1c
	SendDiagnostic       Opcode = 0x1d
	PreventAllowMedium   Opcode = 0x1e
	ReadCapacity10       Opcode = 0x25
	Read10               Opcode = 0x28
	Write10              Opcode = 0x2a
	WriteAndVerify10     Opcode = 0x2e
	Verify10             Opcode = 0x2f
	PreFetch10           Opcode = 0x34
	SynchronizeCache10   Opcode = 0x35
	ReadDefectData10     Opcode = 0x37
	WriteBuffer          Opcode = 0x3b
	ReadBuffer           Opcode = 0x3c
	WriteSame10          Opcode = 0x41
	Unmap                Opcode = 0x42
	Sanitize             Opcode = 0x48
	LogSelect            Opcode = 0x4c
	LogSense             Opcode = 0x4d
	ReadTOC              Opcode = 0x43 // MMC-6
	GetConfiguration     Opcode = 0x46 // MMC-6
	GetEventStatusNotif  Opcode = 0x4a // MMC-6
	ReadDiscInformation  Opcode = 0x51 // MMC-6
	ModeSelect10         Opcode = 0x55
	Reserve10            Opcode = 0x56
	Release10            Opcode = 0x57
	ModeSense10          Opcode = 0x5a
	PersistentReserveIn  Opcode = 0x5e
	PersistentReserveOut Opcode = 0x5f
	VariableLength       Opcode = 0x7f
	ExtendedCopy         Opcode = 0x83
	ReceiveCopyResults   Opcode = 0x84
	Read16               Opcode = 0x88
	CompareAndWrite      Opcode = 0x89
	Write16              Opcode = 0x8a
	OrWrite16            Opcode = 0x8b
	WriteAndVerify16     Opcode = 0x8e
	Verify16             Opcode = 0x8f
	PreFetch16           Opcode = 0x90
	SynchronizeCache16   Opcode = 0x91
	WriteSame16          Opcode = 0x93
	WriteAtomic16        Opcode = 0x9c
	ServiceActionIn16    Opcode = 0x9e
	ServiceActionOut16   Opcode = 0x9f
	ReportLUNs           Opcode = 0xa0
	MaintenanceIn        Opcode = 0xa3
	MaintenanceOut       Opcode = 0xa4
	Read12               Opcode = 0xa8
	Write12              Opcode = 0xaa
	WriteAndVerify12     Opcode = 0xae
	Verify12             Opcode = 0xaf
	ReadDefectData12     Opcode = 0xb7
	MechanismStatus      Opcode = 0xbd // MMC-6
	ReadCD               Opcode = 0xbe // MMC-6
)

// Service actions of SERVICE ACTION IN(16) and MAINTENANCE IN that scstd
// knows by name (byte 1, bits 4..0 of the CDB).
const (
	SAReadCapacity16          uint8 = 0x10 // SERVICE ACTION IN(16)
	SAGetLBAStatus            uint8 = 0x12 // SERVICE ACTION IN(16)
	SAReportTargetPortGroups  uint8 = 0x0a // MAINTENANCE IN
	SAReportSupportedOpcodes  uint8 = 0x0c // MAINTENANCE IN
	SAReportSupportedTaskMgmt uint8 = 0x0d // MAINTENANCE IN
	SAReportIdentifyingInfo   uint8 = 0x05 // MAINTENANCE IN
	SAReportTimestamp         uint8 = 0x0f // MAINTENANCE IN
	SASetTargetPortGroups     uint8 = 0x0a // MAINTENANCE OUT
)

var opcodeNames = map[Opcode]string{
	TestUnitReady:        "TEST_UNIT_READY",
	RequestSense:         "REQUEST_SENSE",
	FormatUnit:           "FORMAT_UNIT",
	ReassignBlocks:       "REASSIGN_BLOCKS",
	Read6:                "READ_6",
	Write6:               "WRITE_6",
	Inquiry:              "INQUIRY",
	ModeSelect6:          "MODE_SELECT_6",
	Reserve6:             "RESERVE_6",
	Release6:             "RELEASE_6",
	ModeSense6:           "MODE_SENSE_6",
	StartStopUnit:        "START_STOP_UNIT",
	ReceiveDiagnostic:    "RECEIVE_DIAGNOSTIC_RESULTS",
	SendDiagnostic:       "SEND_DIAGNOSTIC",
	PreventAllowMedium:   "PREVENT_ALLOW_MEDIUM_REMOVAL",
	ReadCapacity10:       "READ_CAPACITY_10",
	Read10:               "READ_10",
	Write10:              "WRITE_10",
	WriteAndVerify10:     "WRITE_AND_VERIFY_10",
	Verify10:             "VERIFY_10",
	PreFetch10:           "PRE_FETCH_10",
	SynchronizeCache10:   "SYNCHRONIZE_CACHE_10",
	ReadDefectData10:     "READ_DEFECT_DATA_10",
	WriteBuffer:          "WRITE_BUFFER",
	ReadBuffer:           "READ_BUFFER",
	WriteSame10:          "WRITE_SAME_10",
	Unmap:                "UNMAP",
	Sanitize:             "SANITIZE",
	LogSelect:            "LOG_SELECT",
	LogSense:             "LOG_SENSE",
	ReadTOC:              "READ_TOC_PMA_ATIP",
	GetConfiguration:     "GET_CONFIGURATION",
	GetEventStatusNotif:  "GET_EVENT_STATUS_NOTIFICATION",
	ReadDiscInformation:  "READ_DISC_INFORMATION",
	ModeSelect10:         "MODE_SELECT_10",
	Reserve10:            "RESERVE_10",
	Release10:            "RELEASE_10",
	ModeSense10:          "MODE_SENSE_10",
	PersistentReserveIn:  "PERSISTENT_RESERVE_IN",
	PersistentReserveOut: "PERSISTENT_RESERVE_OUT",
	VariableLength:       "VARIABLE_LENGTH",
	ExtendedCopy:         "EXTENDED_COPY",
	ReceiveCopyResults:   "RECEIVE_COPY_RESULTS",
	Read16:               "READ_16",
	CompareAndWrite:      "COMPARE_AND_WRITE",
	Write16:              "WRITE_16",
	OrWrite16:            "ORWRITE_16",
	WriteAndVerify16:     "WRITE_AND_VERIFY_16",
	Verify16:             "VERIFY_16",
	PreFetch16:           "PRE_FETCH_16",
	SynchronizeCache16:   "SYNCHRONIZE_CACHE_16",
	WriteSame16:          "WRITE_SAME_16",
	WriteAtomic16:        "WRITE_ATOMIC_16",
	ServiceActionIn16:    "SERVICE_ACTION_IN_16",
	ServiceActionOut16:   "SERVICE_ACTION_OUT_16",
	ReportLUNs:           "REPORT_LUNS",
	MaintenanceIn:        "MAINTENANCE_IN",
	MaintenanceOut:       "MAINTENANCE_OUT",
	Read12:               "READ_12",
	Write12:              "WRITE_12",
	WriteAndVerify12:     "WRITE_AND_VERIFY_12",
	Verify12:             "VERIFY_12",
	ReadDefectData12:     "READ_DEFECT_DATA_12",
	MechanismStatus:      "MECHANISM_STATUS",
	ReadCD:               "READ_CD",
}

// String returns the command's name as SPC-4 spells it, with underscores
// ("WRITE_16"), or "OPCODE_0xNN" for an opcode scstd does not name.
func (o Opcode) String() string {
	if s, ok := opcodeNames[o]; ok {
		return s
	}
	return "OPCODE_0x" + strconv.FormatUint(uint64(o)|0x100, 16)[1:]
}
