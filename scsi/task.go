package scsi

// SenseKey is the sense key of fixed-format sense data (SPC-4 §4.5.6).
type SenseKey uint8

// SenseError is a SCSI command failure reported to the initiator as CHECK
// CONDITION with the given sense key and additional sense code/qualifier.
type SenseError struct {
	Key  SenseKey
	ASC  uint8
	ASCQ uint8
	// Info, when InfoValid, goes into the INFORMATION field (e.g. the
	// first LBA that failed MISCOMPARE in COMPARE AND WRITE).
	Info      uint64
	InfoValid bool
	// Field pointer (sense-key specific), when FieldValid: the byte (and
	// bit, when BitValid) of the CDB (CommandData) or parameter list that
	// is wrong.
	FieldValid  bool
	CommandData bool
	BitValid    bool
	Bit         uint8
	Field       uint16
}

func (e *SenseError) Error() string { return "scsi: sense error" }

// task is one command being executed: the command, and the logical unit
// and device it addresses (nil for LUN-less commands like REPORT LUNS on an
// unmapped LUN).
type task struct {
	cmd *Command
	lu  *LogicalUnit
	dev *Device
}

// handler executes one opcode. It returns the data-in (nil for none) or an
// error: a *SenseError becomes CHECK CONDITION with that sense; any other
// error is mapped to sense by the dispatcher (ENOSPC, EIO, ...).
type handler func(t *task) ([]byte, error)
