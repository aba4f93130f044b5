package scsi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/scstd/scstd/vdisk"
)

// SenseKey is the sense key of fixed-format sense data (SPC-4 §4.5.6).
type SenseKey uint8

// Sense keys (SPC-4 table 49).
const (
	NoSense        SenseKey = 0x0
	RecoveredError SenseKey = 0x1
	NotReady       SenseKey = 0x2
	MediumError    SenseKey = 0x3
	HardwareError  SenseKey = 0x4
	IllegalRequest SenseKey = 0x5
	UnitAttention  SenseKey = 0x6
	DataProtect    SenseKey = 0x7
	BlankCheck     SenseKey = 0x8
	VendorSpecific SenseKey = 0x9
	CopyAborted    SenseKey = 0xa
	AbortedCommand SenseKey = 0xb
	VolumeOverflow SenseKey = 0xd
	Miscompare     SenseKey = 0xe
	Completed      SenseKey = 0xf
)

var senseKeyNames = [16]string{
	"NO_SENSE", "RECOVERED_ERROR", "NOT_READY", "MEDIUM_ERROR",
	"HARDWARE_ERROR", "ILLEGAL_REQUEST", "UNIT_ATTENTION", "DATA_PROTECT",
	"BLANK_CHECK", "VENDOR_SPECIFIC", "COPY_ABORTED", "ABORTED_COMMAND",
	"SENSE_KEY_0xc", "VOLUME_OVERFLOW", "MISCOMPARE", "COMPLETED",
}

// String returns the sense key's name as SPC-4 spells it ("ILLEGAL_REQUEST").
func (k SenseKey) String() string {
	if int(k) < len(senseKeyNames) {
		return senseKeyNames[k]
	}
	return "SENSE_KEY_" + strconv.Itoa(int(k))
}

// Status is a SCSI status byte (SAM-5 §5.3).
type Status uint8

// Status codes (SAM-5 table 37).
const (
	Good                Status = 0x00
	CheckCondition      Status = 0x02
	ConditionMet        Status = 0x04
	Busy                Status = 0x08
	ReservationConflict Status = 0x18
	TaskSetFull         Status = 0x28
	ACAActive           Status = 0x30
	TaskAborted         Status = 0x40
)

// String returns the status's name as SAM-5 spells it ("CHECK_CONDITION").
func (s Status) String() string {
	switch s {
	case Good:
		return "GOOD"
	case CheckCondition:
		return "CHECK_CONDITION"
	case ConditionMet:
		return "CONDITION_MET"
	case Busy:
		return "BUSY"
	case ReservationConflict:
		return "RESERVATION_CONFLICT"
	case TaskSetFull:
		return "TASK_SET_FULL"
	case ACAActive:
		return "ACA_ACTIVE"
	case TaskAborted:
		return "TASK_ABORTED"
	}
	return "STATUS_0x" + strconv.FormatUint(uint64(s)|0x100, 16)[1:]
}

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

// Error describes the sense as "ILLEGAL_REQUEST asc=0x24 ascq=0x00".
func (e *SenseError) Error() string {
	return fmt.Sprintf("scsi: %s asc=0x%02x ascq=0x%02x", e.Key, e.ASC, e.ASCQ)
}

// FixedSenseLen is the length of the fixed-format sense data scstd
// produces: 18 bytes (additional sense length 10).
const FixedSenseLen = 18

// AppendFixed appends e as fixed-format sense data (SPC-4 §4.5.3),
// response code 70h (current error), 18 bytes.
func (e *SenseError) AppendFixed(b []byte) []byte {
	var s [FixedSenseLen]byte
	s[0] = 0x70
	s[2] = byte(e.Key & 0x0f)
	if e.InfoValid {
		s[0] |= 0x80
		// The INFORMATION field is four bytes in fixed format; larger
		// values do not fit and leave VALID clear.
		if e.Info > 0xffffffff {
			s[0] &^= 0x80
		} else {
			binary.BigEndian.PutUint32(s[3:7], uint32(e.Info))
		}
	}
	s[7] = FixedSenseLen - 8
	s[12] = e.ASC
	s[13] = e.ASCQ
	if e.FieldValid {
		s[15] = 0x80 // SKSV
		if e.CommandData {
			s[15] |= 0x40
		}
		if e.BitValid {
			s[15] |= 0x08 | (e.Bit & 0x07)
		}
		binary.BigEndian.PutUint16(s[16:18], e.Field)
	}
	return append(b, s[:]...)
}

// FixedSense returns 18 bytes of fixed-format sense data (current error)
// with the given key and additional sense code/qualifier, e.g. for the
// SCSI event of an iSCSI Asynchronous Message (event 0).
func FixedSense(key SenseKey, asc, ascq uint8) []byte {
	e := SenseError{Key: key, ASC: asc, ASCQ: ascq}
	return e.AppendFixed(make([]byte, 0, FixedSenseLen))
}

// Sense conditions used across the package. They are shared values: never
// modify one; use invalidField / invalidParam for field pointers.
var (
	// ErrInvalidOpcode is INVALID COMMAND OPERATION CODE (20h/00h).
	ErrInvalidOpcode = &SenseError{Key: IllegalRequest, ASC: 0x20}
	// ErrLBAOutOfRange is LOGICAL BLOCK ADDRESS OUT OF RANGE (21h/00h).
	ErrLBAOutOfRange = &SenseError{Key: IllegalRequest, ASC: 0x21}
	// ErrInvalidFieldInCDB is INVALID FIELD IN CDB (24h/00h) without a
	// field pointer.
	ErrInvalidFieldInCDB = &SenseError{Key: IllegalRequest, ASC: 0x24}
	// ErrLUNotSupported is LOGICAL UNIT NOT SUPPORTED (25h/00h).
	ErrLUNotSupported = &SenseError{Key: IllegalRequest, ASC: 0x25}
	// ErrInvalidFieldInParamList is INVALID FIELD IN PARAMETER LIST
	// (26h/00h) without a field pointer.
	ErrInvalidFieldInParamList = &SenseError{Key: IllegalRequest, ASC: 0x26}
	// ErrInvalidFieldInIU is INVALID FIELD IN INFORMATION UNIT (0Eh/03h):
	// the initiator sent less data-out than the CDB's transfer length.
	ErrInvalidFieldInIU = &SenseError{Key: IllegalRequest, ASC: 0x0e, ASCQ: 0x03}
	// ErrParamListLength is PARAMETER LIST LENGTH ERROR (1Ah/00h).
	ErrParamListLength = &SenseError{Key: IllegalRequest, ASC: 0x1a}
	// ErrSavingParamsUnsupported is SAVING PARAMETERS NOT SUPPORTED (39h/00h).
	ErrSavingParamsUnsupported = &SenseError{Key: IllegalRequest, ASC: 0x39}
	// ErrWriteProtected is DATA PROTECT, WRITE PROTECTED (27h/00h).
	ErrWriteProtected = &SenseError{Key: DataProtect, ASC: 0x27}
	// ErrSpaceAllocationFailed is DATA PROTECT, SPACE ALLOCATION FAILED
	// WRITE PROTECT (27h/07h): the backend ran out of space.
	ErrSpaceAllocationFailed = &SenseError{Key: DataProtect, ASC: 0x27, ASCQ: 0x07}
	// ErrNotReadyManual is NOT READY, LOGICAL UNIT NOT READY, MANUAL
	// INTERVENTION REQUIRED (04h/03h): the device is offline.
	ErrNotReadyManual = &SenseError{Key: NotReady, ASC: 0x04, ASCQ: 0x03}
	// ErrMediumNotPresent is NOT READY, MEDIUM NOT PRESENT (3Ah/00h): a
	// removable disk's medium was ejected.
	ErrMediumNotPresent = &SenseError{Key: NotReady, ASC: 0x3a}
	// ErrNoMediumTrayClosed is NOT READY, MEDIUM NOT PRESENT - TRAY
	// CLOSED (3Ah/01h): a CD-ROM drive without a disc.
	ErrNoMediumTrayClosed = &SenseError{Key: NotReady, ASC: 0x3a, ASCQ: 0x01}
	// ErrNoMediumTrayOpen is NOT READY, MEDIUM NOT PRESENT - TRAY OPEN
	// (3Ah/02h): a CD-ROM drive whose tray START STOP UNIT opened.
	ErrNoMediumTrayOpen = &SenseError{Key: NotReady, ASC: 0x3a, ASCQ: 0x02}
	// ErrIllegalModeForTrack is ILLEGAL REQUEST, ILLEGAL MODE FOR THIS
	// TRACK (64h/00h): READ CD asked for a sector type the disc does not
	// hold.
	ErrIllegalModeForTrack = &SenseError{Key: IllegalRequest, ASC: 0x64}
	// ErrMediumRemovalPrevented is ILLEGAL REQUEST, MEDIUM REMOVAL
	// PREVENTED (53h/02h).
	ErrMediumRemovalPrevented = &SenseError{Key: IllegalRequest, ASC: 0x53, ASCQ: 0x02}
	// ErrReadError is MEDIUM ERROR, UNRECOVERED READ ERROR (11h/00h).
	ErrReadError = &SenseError{Key: MediumError, ASC: 0x11}
	// ErrWriteError is MEDIUM ERROR, WRITE ERROR (0Ch/00h).
	ErrWriteError = &SenseError{Key: MediumError, ASC: 0x0c}
	// ErrInternalTarget is HARDWARE ERROR, INTERNAL TARGET FAILURE (44h/00h).
	ErrInternalTarget = &SenseError{Key: HardwareError, ASC: 0x44}
	// ErrMiscompareVerify is MISCOMPARE DURING VERIFY OPERATION (1Dh/00h)
	// without INFORMATION; see miscompareAt.
	ErrMiscompareVerify = &SenseError{Key: Miscompare, ASC: 0x1d}
)

// Unit attention conditions (sense key UNIT ATTENTION).
var (
	uaPowerOnReset       = &SenseError{Key: UnitAttention, ASC: 0x29, ASCQ: 0x00}
	uaLUReset            = &SenseError{Key: UnitAttention, ASC: 0x29, ASCQ: 0x03}
	uaModeParamsChanged  = &SenseError{Key: UnitAttention, ASC: 0x2a, ASCQ: 0x01}
	uaCapacityChanged    = &SenseError{Key: UnitAttention, ASC: 0x2a, ASCQ: 0x09}
	uaReportedLUNsChange = &SenseError{Key: UnitAttention, ASC: 0x3f, ASCQ: 0x0e}
	uaMediumChanged      = &SenseError{Key: UnitAttention, ASC: 0x28, ASCQ: 0x00} // NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED
	uaInquiryChanged     = &SenseError{Key: UnitAttention, ASC: 0x3f, ASCQ: 0x03}
)

// invalidField returns INVALID FIELD IN CDB pointing at byte (and bit,
// when bit >= 0) of the CDB.
func invalidField(byteIdx int, bit int) *SenseError {
	e := &SenseError{Key: IllegalRequest, ASC: 0x24, FieldValid: true, CommandData: true, Field: uint16(byteIdx)}
	if bit >= 0 {
		e.BitValid = true
		e.Bit = uint8(bit)
	}
	return e
}

// invalidParam returns INVALID FIELD IN PARAMETER LIST pointing at byte
// (and bit, when bit >= 0) of the parameter list.
func invalidParam(byteIdx int, bit int) *SenseError {
	e := &SenseError{Key: IllegalRequest, ASC: 0x26, FieldValid: true, Field: uint16(byteIdx)}
	if bit >= 0 {
		e.BitValid = true
		e.Bit = uint8(bit)
	}
	return e
}

// miscompareAt returns MISCOMPARE DURING VERIFY OPERATION whose
// INFORMATION field holds off (SBC-3: the offset of the first miscompared
// byte, in bytes from the start of the data-out or in blocks as the
// command defines).
func miscompareAt(off uint64) *SenseError {
	return &SenseError{Key: Miscompare, ASC: 0x1d, Info: off, InfoValid: true}
}

// senseFromError maps any error a handler or backend returned to sense
// data: a *SenseError stands for itself; ENOSPC and EDQUOT become SPACE
// ALLOCATION FAILED; vdisk.ErrReadOnly and EROFS become WRITE PROTECTED;
// EOPNOTSUPP (a file system that cannot punch holes, a device without
// discard) becomes INVALID FIELD IN CDB; everything else (EIO included)
// becomes a MEDIUM ERROR: WRITE ERROR when write is true, UNRECOVERED READ
// ERROR otherwise.
func senseFromError(err error, write bool) *SenseError {
	var se *SenseError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return ErrSpaceAllocationFailed
	case errors.Is(err, vdisk.ErrReadOnly), errors.Is(err, syscall.EROFS):
		return ErrWriteProtected
	case errors.Is(err, syscall.EOPNOTSUPP):
		return ErrInvalidFieldInCDB
	case write:
		return ErrWriteError
	default:
		return ErrReadError
	}
}

// BackendError maps an error from a vdisk.Backend call to the sense a
// command reports, as senseFromError does; write says whether the failed
// call wrote to the medium. Handlers in other files return its result.
func BackendError(err error, write bool) error {
	if err == nil {
		return nil
	}
	return senseFromError(err, write)
}

// AppendDescriptor appends e as descriptor-format sense data (SPC-4
// §4.5.2), response code 72h, with an information descriptor when
// InfoValid and a sense key specific descriptor when FieldValid.
func (e *SenseError) AppendDescriptor(b []byte) []byte {
	start := len(b)
	b = append(b, 0x72, byte(e.Key&0x0f), e.ASC, e.ASCQ, 0, 0, 0, 0)
	if e.InfoValid {
		b = append(b, 0x00, 0x0a, 0x80, 0)
		b = binary.BigEndian.AppendUint64(b, e.Info)
	}
	if e.FieldValid {
		sksv := byte(0x80)
		if e.CommandData {
			sksv |= 0x40
		}
		if e.BitValid {
			sksv |= 0x08 | (e.Bit & 0x07)
		}
		b = append(b, 0x02, 0x06, 0, 0, sksv)
		b = binary.BigEndian.AppendUint16(b, e.Field)
		b = append(b, 0)
	}
	b[start+7] = byte(len(b) - start - 8)
	return b
}
