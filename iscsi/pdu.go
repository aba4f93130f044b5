package iscsi

import (
	"encoding/binary"
	"fmt"

	"github.com/scstd/scstd/scsi"
)

// Opcode is the six-bit operation code in byte 0 of every PDU (RFC 7143 §11.2.1.2).
type Opcode uint8

// Initiator opcodes.
const (
	OpNOPOut          Opcode = 0x00
	OpSCSICommand     Opcode = 0x01
	OpTaskMgmtRequest Opcode = 0x02
	OpLoginRequest    Opcode = 0x03
	OpTextRequest     Opcode = 0x04
	OpDataOut         Opcode = 0x05
	OpLogoutRequest   Opcode = 0x06
	OpSNACKRequest    Opcode = 0x10
)

// Target opcodes.
const (
	OpNOPIn            Opcode = 0x20
	OpSCSIResponse     Opcode = 0x21
	OpTaskMgmtResponse Opcode = 0x22
	OpLoginResponse    Opcode = 0x23
	OpTextResponse     Opcode = 0x24
	OpDataIn           Opcode = 0x25
	OpLogoutResponse   Opcode = 0x26
	OpR2T              Opcode = 0x31
	OpAsyncMessage     Opcode = 0x32
	OpReject           Opcode = 0x3f
)

var opcodeNames = map[Opcode]string{
	OpNOPOut: "NOP_OUT", OpSCSICommand: "SCSI_COMMAND", OpTaskMgmtRequest: "TASK_MGMT_REQUEST",
	OpLoginRequest: "LOGIN_REQUEST", OpTextRequest: "TEXT_REQUEST", OpDataOut: "DATA_OUT",
	OpLogoutRequest: "LOGOUT_REQUEST", OpSNACKRequest: "SNACK_REQUEST",
	OpNOPIn: "NOP_IN", OpSCSIResponse: "SCSI_RESPONSE", OpTaskMgmtResponse: "TASK_MGMT_RESPONSE",
	OpLoginResponse: "LOGIN_RESPONSE", OpTextResponse: "TEXT_RESPONSE", OpDataIn: "DATA_IN",
	OpLogoutResponse: "LOGOUT_RESPONSE", OpR2T: "R2T", OpAsyncMessage: "ASYNC_MESSAGE", OpReject: "REJECT",
}

// String returns the name of o as logs show it.
func (o Opcode) String() string {
	if n, ok := opcodeNames[o]; ok {
		return n
	}
	return fmt.Sprintf("OPCODE_%#02x", uint8(o))
}

// BHSLen is the length of the basic header segment.
const BHSLen = 48

// BHS is a raw basic header segment. Its accessors read the fields every
// PDU shares (RFC 7143 §11.2.1); the per-kind structs below read the rest.
//
//	byte 0   |.|I| opcode (6)    |
//	byte 1   |F| opcode-specific |
//	bytes 2-3  opcode-specific
//	byte 4     TotalAHSLength (4-byte words)
//	bytes 5-7  DataSegmentLength
//	bytes 8-15 LUN or opcode-specific
//	bytes 16-19 Initiator Task Tag
//	bytes 20-47 opcode-specific
type BHS [BHSLen]byte

// Opcode returns the PDU's opcode.
func (h *BHS) Opcode() Opcode { return Opcode(h[0] & 0x3f) }

// Immediate reports the I bit (immediate delivery).
func (h *BHS) Immediate() bool { return h[0]&0x40 != 0 }

// Final reports the F bit.
func (h *BHS) Final() bool { return h[1]&0x80 != 0 }

// TotalAHSLength is the AHS length in 4-byte words.
func (h *BHS) TotalAHSLength() int { return int(h[4]) }

// DataSegmentLength is the data segment length in bytes, without padding.
func (h *BHS) DataSegmentLength() uint32 {
	return uint32(h[5])<<16 | uint32(h[6])<<8 | uint32(h[7])
}

// SetDataSegmentLength stores n (at most 2^24-1) in bytes 5-7.
func (h *BHS) SetDataSegmentLength(n uint32) {
	h[5], h[6], h[7] = byte(n>>16), byte(n>>8), byte(n)
}

// ITT returns the initiator task tag.
func (h *BHS) ITT() uint32 { return binary.BigEndian.Uint32(h[16:20]) }

// LUN returns bytes 8-15.
func (h *BHS) LUN() [8]byte { return [8]byte(h[8:16]) }

// SetOpcode stores op and the I (immediate) bit in byte 0.
func (h *BHS) SetOpcode(op Opcode, immediate bool) {
	h[0] = byte(op) & 0x3f
	if immediate {
		h[0] |= 0x40
	}
}

// SetITT stores the initiator task tag.
func (h *BHS) SetITT(itt uint32) { binary.BigEndian.PutUint32(h[16:20], itt) }

// ReservedTag is the all-ones task tag: "no task" in ITT/TTT fields.
const ReservedTag uint32 = 0xffffffff

// ProtocolError is a violation of RFC 7143 framing or field rules found
// while reading or decoding a PDU. The connection answers it with a
// Reject (Reason) when the header could be parsed, or closes otherwise.
type ProtocolError struct {
	Op     Opcode
	Reason RejectReason
	Msg    string
}

// Error implements error.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("iscsi: protocol error (%s, %s): %s", e.Op, e.Reason, e.Msg)
}

func protoErr(op Opcode, format string, args ...any) *ProtocolError {
	return &ProtocolError{Op: op, Reason: RejectProtocolError, Msg: fmt.Sprintf(format, args...)}
}

func checkOpcode(h *BHS, want Opcode) error {
	if got := h.Opcode(); got != want {
		return &ProtocolError{Op: got, Reason: RejectProtocolError, Msg: "decoded as " + want.String()}
	}
	return nil
}

func u32(b []byte) uint32      { return binary.BigEndian.Uint32(b) }
func put32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func u16(b []byte) uint16      { return binary.BigEndian.Uint16(b) }
func put16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }

func bit(b byte, mask byte) bool { return b&mask != 0 }

func setBit(b *byte, mask byte, on bool) {
	if on {
		*b |= mask
	}
}

// AHSType is the type byte of an additional header segment (RFC 7143 §11.2.2).
type AHSType uint8

// AHS types.
const (
	AHSExtendedCDB        AHSType = 1
	AHSBidiReadDataLength AHSType = 2
)

// String returns the name of t as logs show it.
func (t AHSType) String() string {
	switch t {
	case AHSExtendedCDB:
		return "EXTENDED_CDB"
	case AHSBidiReadDataLength:
		return "BIDI_READ_DATA_LENGTH"
	}
	return fmt.Sprintf("AHS_%d", uint8(t))
}

// SCSICommand is an initiator's SCSI Command PDU (RFC 7143 §11.3).
type SCSICommand struct {
	Immediate                  bool
	Final                      bool
	Read                       bool
	Write                      bool
	Attr                       scsi.TaskAttribute
	LUN                        [8]byte
	ITT                        uint32
	ExpectedDataTransferLength uint32
	CmdSN                      uint32
	ExpStatSN                  uint32
	CDB                        [16]byte
}

// Decode fills p from h.
func (p *SCSICommand) Decode(h *BHS) error {
	if err := checkOpcode(h, OpSCSICommand); err != nil {
		return err
	}
	*p = SCSICommand{
		Immediate: h.Immediate(), Final: bit(h[1], 0x80), Read: bit(h[1], 0x40), Write: bit(h[1], 0x20),
		Attr: scsi.TaskAttribute(h[1] & 0x07), LUN: h.LUN(), ITT: h.ITT(),
		ExpectedDataTransferLength: u32(h[20:]), CmdSN: u32(h[24:]), ExpStatSN: u32(h[28:]),
		CDB: [16]byte(h[32:48]),
	}
	if p.Attr > scsi.ACA {
		return protoErr(OpSCSICommand, "reserved task attribute %d", p.Attr)
	}
	return nil
}

// Encode fills the zeroed header h from p.
func (p *SCSICommand) Encode(h *BHS) {
	h.SetOpcode(OpSCSICommand, p.Immediate)
	setBit(&h[1], 0x80, p.Final)
	setBit(&h[1], 0x40, p.Read)
	setBit(&h[1], 0x20, p.Write)
	h[1] |= byte(p.Attr) & 0x07
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.ExpectedDataTransferLength)
	put32(h[24:], p.CmdSN)
	put32(h[28:], p.ExpStatSN)
	copy(h[32:48], p.CDB[:])
}

// ServiceResponse is the iSCSI response code of a SCSI Response PDU
// (RFC 7143 §11.4.3).
type ServiceResponse uint8

// Service responses.
const (
	CommandCompleted ServiceResponse = 0x00
	TargetFailure    ServiceResponse = 0x01
)

// String returns the name of r as logs show it.
func (r ServiceResponse) String() string {
	switch r {
	case CommandCompleted:
		return "COMMAND_COMPLETED"
	case TargetFailure:
		return "TARGET_FAILURE"
	}
	return fmt.Sprintf("RESPONSE_%#02x", uint8(r))
}

// SCSIResponse is a target's SCSI Response PDU (RFC 7143 §11.4). Its data
// segment, if any, is a 2-byte SenseLength followed by sense data.
type SCSIResponse struct {
	BidiOverflow          bool // o
	BidiUnderflow         bool // u
	Overflow              bool // O
	Underflow             bool // U
	Response              ServiceResponse
	Status                uint8 // SCSI status (scsi.Status values)
	ITT                   uint32
	SNACKTag              uint32
	StatSN                uint32
	ExpCmdSN              uint32
	MaxCmdSN              uint32
	ExpDataSN             uint32
	BidiReadResidualCount uint32
	ResidualCount         uint32
}

// Encode fills the zeroed header h from p.
func (p *SCSIResponse) Encode(h *BHS) {
	h.SetOpcode(OpSCSIResponse, false)
	h[1] = 0x80
	setBit(&h[1], 0x10, p.BidiOverflow)
	setBit(&h[1], 0x08, p.BidiUnderflow)
	setBit(&h[1], 0x04, p.Overflow)
	setBit(&h[1], 0x02, p.Underflow)
	h[2], h[3] = byte(p.Response), p.Status
	h.SetITT(p.ITT)
	put32(h[20:], p.SNACKTag)
	put32(h[24:], p.StatSN)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
	put32(h[36:], p.ExpDataSN)
	put32(h[40:], p.BidiReadResidualCount)
	put32(h[44:], p.ResidualCount)
}

// Decode fills p from h.
func (p *SCSIResponse) Decode(h *BHS) error {
	if err := checkOpcode(h, OpSCSIResponse); err != nil {
		return err
	}
	*p = SCSIResponse{
		BidiOverflow: bit(h[1], 0x10), BidiUnderflow: bit(h[1], 0x08),
		Overflow: bit(h[1], 0x04), Underflow: bit(h[1], 0x02),
		Response: ServiceResponse(h[2]), Status: h[3], ITT: h.ITT(),
		SNACKTag: u32(h[20:]), StatSN: u32(h[24:]), ExpCmdSN: u32(h[28:]), MaxCmdSN: u32(h[32:]),
		ExpDataSN: u32(h[36:]), BidiReadResidualCount: u32(h[40:]), ResidualCount: u32(h[44:]),
	}
	if p.Overflow && p.Underflow || p.BidiOverflow && p.BidiUnderflow {
		return protoErr(OpSCSIResponse, "both overflow and underflow set")
	}
	return nil
}

// TMFunction is a task management function code (RFC 7143 §11.5.1).
type TMFunction uint8

// Task management functions.
const (
	TMAbortTask        TMFunction = 1
	TMAbortTaskSet     TMFunction = 2
	TMClearACA         TMFunction = 3
	TMClearTaskSet     TMFunction = 4
	TMLogicalUnitReset TMFunction = 5
	TMTargetWarmReset  TMFunction = 6
	TMTargetColdReset  TMFunction = 7
	TMTaskReassign     TMFunction = 8
)

var tmFunctionNames = [...]string{"", "ABORT_TASK", "ABORT_TASK_SET", "CLEAR_ACA", "CLEAR_TASK_SET",
	"LOGICAL_UNIT_RESET", "TARGET_WARM_RESET", "TARGET_COLD_RESET", "TASK_REASSIGN"}

// String returns the name of f as logs show it.
func (f TMFunction) String() string {
	if f >= 1 && int(f) < len(tmFunctionNames) {
		return tmFunctionNames[f]
	}
	return fmt.Sprintf("TMF_%d", uint8(f))
}

// TaskMgmtRequest is an initiator's Task Management Function Request
// (RFC 7143 §11.5). A reserved Function value is not a decode error: the
// target answers it with TMFunctionRejected.
type TaskMgmtRequest struct {
	Immediate bool
	Function  TMFunction
	LUN       [8]byte
	ITT       uint32
	RTT       uint32 // Referenced Task Tag
	CmdSN     uint32
	ExpStatSN uint32
	RefCmdSN  uint32
	ExpDataSN uint32
}

// Decode fills p from h.
func (p *TaskMgmtRequest) Decode(h *BHS) error {
	if err := checkOpcode(h, OpTaskMgmtRequest); err != nil {
		return err
	}
	*p = TaskMgmtRequest{
		Immediate: h.Immediate(), Function: TMFunction(h[1] & 0x7f), LUN: h.LUN(), ITT: h.ITT(),
		RTT: u32(h[20:]), CmdSN: u32(h[24:]), ExpStatSN: u32(h[28:]), RefCmdSN: u32(h[32:]), ExpDataSN: u32(h[36:]),
	}
	return nil
}

// Encode fills the zeroed header h from p.
func (p *TaskMgmtRequest) Encode(h *BHS) {
	h.SetOpcode(OpTaskMgmtRequest, p.Immediate)
	h[1] = 0x80 | byte(p.Function)&0x7f
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.RTT)
	put32(h[24:], p.CmdSN)
	put32(h[28:], p.ExpStatSN)
	put32(h[32:], p.RefCmdSN)
	put32(h[36:], p.ExpDataSN)
}

// TMResponse is the response code of a Task Management Function Response
// (RFC 7143 §11.6.1).
type TMResponse uint8

// Task management responses.
const (
	TMFunctionComplete         TMResponse = 0
	TMTaskDoesNotExist         TMResponse = 1
	TMLUNDoesNotExist          TMResponse = 2
	TMTaskStillAllegiant       TMResponse = 3
	TMReassignmentNotSupported TMResponse = 4
	TMFunctionNotSupported     TMResponse = 5
	TMAuthorizationFailed      TMResponse = 6
	TMFunctionRejected         TMResponse = 255
)

var tmResponseNames = [...]string{"FUNCTION_COMPLETE", "TASK_DOES_NOT_EXIST", "LUN_DOES_NOT_EXIST",
	"TASK_STILL_ALLEGIANT", "REASSIGNMENT_NOT_SUPPORTED", "FUNCTION_NOT_SUPPORTED", "AUTHORIZATION_FAILED"}

// String returns the name of r as logs show it.
func (r TMResponse) String() string {
	if int(r) < len(tmResponseNames) {
		return tmResponseNames[r]
	}
	if r == TMFunctionRejected {
		return "FUNCTION_REJECTED"
	}
	return fmt.Sprintf("TMRESPONSE_%d", uint8(r))
}

// TaskMgmtResponse is a target's Task Management Function Response (RFC 7143 §11.6).
type TaskMgmtResponse struct {
	Response TMResponse
	ITT      uint32
	StatSN   uint32
	ExpCmdSN uint32
	MaxCmdSN uint32
}

// Encode fills the zeroed header h from p.
func (p *TaskMgmtResponse) Encode(h *BHS) {
	h.SetOpcode(OpTaskMgmtResponse, false)
	h[1] = 0x80
	h[2] = byte(p.Response)
	h.SetITT(p.ITT)
	put32(h[24:], p.StatSN)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
}

// Decode fills p from h.
func (p *TaskMgmtResponse) Decode(h *BHS) error {
	if err := checkOpcode(h, OpTaskMgmtResponse); err != nil {
		return err
	}
	*p = TaskMgmtResponse{Response: TMResponse(h[2]), ITT: h.ITT(),
		StatSN: u32(h[24:]), ExpCmdSN: u32(h[28:]), MaxCmdSN: u32(h[32:])}
	return nil
}

// DataOut is an initiator's SCSI Data-Out PDU (RFC 7143 §11.7).
type DataOut struct {
	Final        bool
	LUN          [8]byte
	ITT          uint32
	TTT          uint32
	ExpStatSN    uint32
	DataSN       uint32
	BufferOffset uint32
}

// Decode fills p from h.
func (p *DataOut) Decode(h *BHS) error {
	if err := checkOpcode(h, OpDataOut); err != nil {
		return err
	}
	*p = DataOut{Final: h.Final(), LUN: h.LUN(), ITT: h.ITT(), TTT: u32(h[20:]),
		ExpStatSN: u32(h[28:]), DataSN: u32(h[36:]), BufferOffset: u32(h[40:])}
	return nil
}

// Encode fills the zeroed header h from p.
func (p *DataOut) Encode(h *BHS) {
	h.SetOpcode(OpDataOut, false)
	setBit(&h[1], 0x80, p.Final)
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.TTT)
	put32(h[28:], p.ExpStatSN)
	put32(h[36:], p.DataSN)
	put32(h[40:], p.BufferOffset)
}

// DataIn is a target's SCSI Data-In PDU (RFC 7143 §11.7). With HasStatus
// (the S bit) it also carries the command's status, and Final must be set.
type DataIn struct {
	Final         bool
	Acknowledge   bool // A: DataACK SNACK requested (ERL ≥ 1)
	Overflow      bool // O
	Underflow     bool // U
	HasStatus     bool // S
	Status        uint8
	LUN           [8]byte
	ITT           uint32
	TTT           uint32
	StatSN        uint32
	ExpCmdSN      uint32
	MaxCmdSN      uint32
	DataSN        uint32
	BufferOffset  uint32
	ResidualCount uint32
}

// Encode fills the zeroed header h from p. StatSN is written only when
// HasStatus is set, as RFC 7143 requires.
func (p *DataIn) Encode(h *BHS) {
	h.SetOpcode(OpDataIn, false)
	setBit(&h[1], 0x80, p.Final)
	setBit(&h[1], 0x40, p.Acknowledge)
	setBit(&h[1], 0x04, p.Overflow)
	setBit(&h[1], 0x02, p.Underflow)
	setBit(&h[1], 0x01, p.HasStatus)
	if p.HasStatus {
		h[3] = p.Status
		put32(h[24:], p.StatSN)
	}
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.TTT)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
	put32(h[36:], p.DataSN)
	put32(h[40:], p.BufferOffset)
	put32(h[44:], p.ResidualCount)
}

// Decode fills p from h.
func (p *DataIn) Decode(h *BHS) error {
	if err := checkOpcode(h, OpDataIn); err != nil {
		return err
	}
	*p = DataIn{Final: h.Final(), Acknowledge: bit(h[1], 0x40), Overflow: bit(h[1], 0x04),
		Underflow: bit(h[1], 0x02), HasStatus: bit(h[1], 0x01), Status: h[3], LUN: h.LUN(), ITT: h.ITT(),
		TTT: u32(h[20:]), StatSN: u32(h[24:]), ExpCmdSN: u32(h[28:]), MaxCmdSN: u32(h[32:]),
		DataSN: u32(h[36:]), BufferOffset: u32(h[40:]), ResidualCount: u32(h[44:])}
	if p.HasStatus && !p.Final {
		return protoErr(OpDataIn, "S bit without F bit")
	}
	return nil
}

// R2T is a target's Ready To Transfer PDU (RFC 7143 §11.8).
type R2T struct {
	LUN                       [8]byte
	ITT                       uint32
	TTT                       uint32
	StatSN                    uint32
	ExpCmdSN                  uint32
	MaxCmdSN                  uint32
	R2TSN                     uint32
	BufferOffset              uint32
	DesiredDataTransferLength uint32
}

// Encode fills the zeroed header h from p.
func (p *R2T) Encode(h *BHS) {
	h.SetOpcode(OpR2T, false)
	h[1] = 0x80
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.TTT)
	put32(h[24:], p.StatSN)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
	put32(h[36:], p.R2TSN)
	put32(h[40:], p.BufferOffset)
	put32(h[44:], p.DesiredDataTransferLength)
}

// Decode fills p from h.
func (p *R2T) Decode(h *BHS) error {
	if err := checkOpcode(h, OpR2T); err != nil {
		return err
	}
	*p = R2T{LUN: h.LUN(), ITT: h.ITT(), TTT: u32(h[20:]), StatSN: u32(h[24:]), ExpCmdSN: u32(h[28:]),
		MaxCmdSN: u32(h[32:]), R2TSN: u32(h[36:]), BufferOffset: u32(h[40:]), DesiredDataTransferLength: u32(h[44:])}
	return nil
}

// AsyncEvent is the AsyncEvent code of an Asynchronous Message (RFC 7143 §11.9.1).
type AsyncEvent uint8

// Asynchronous events.
const (
	AsyncSCSIEvent          AsyncEvent = 0
	AsyncLogoutRequest      AsyncEvent = 1
	AsyncConnectionDrop     AsyncEvent = 2
	AsyncSessionDrop        AsyncEvent = 3
	AsyncNegotiationRequest AsyncEvent = 4
	AsyncTaskTermination    AsyncEvent = 5
	AsyncVendorSpecific     AsyncEvent = 255
)

var asyncEventNames = [...]string{"SCSI_EVENT", "LOGOUT_REQUEST", "CONNECTION_DROP", "SESSION_DROP",
	"NEGOTIATION_REQUEST", "TASK_TERMINATION"}

// String returns the name of e as logs show it.
func (e AsyncEvent) String() string {
	if int(e) < len(asyncEventNames) {
		return asyncEventNames[e]
	}
	if e == AsyncVendorSpecific {
		return "VENDOR_SPECIFIC"
	}
	return fmt.Sprintf("ASYNC_EVENT_%d", uint8(e))
}

// AsyncMessage is a target's Asynchronous Message PDU (RFC 7143 §11.9).
// Its data segment is a 2-byte SenseLength, sense data, then iSCSI event
// data. ITT is always ReservedTag; Encode writes it.
type AsyncMessage struct {
	LUN        [8]byte
	StatSN     uint32
	ExpCmdSN   uint32
	MaxCmdSN   uint32
	Event      AsyncEvent
	VCode      uint8
	Parameter1 uint16
	Parameter2 uint16
	Parameter3 uint16
}

// Encode fills the zeroed header h from p.
func (p *AsyncMessage) Encode(h *BHS) {
	h.SetOpcode(OpAsyncMessage, false)
	h[1] = 0x80
	copy(h[8:16], p.LUN[:])
	h.SetITT(ReservedTag)
	put32(h[24:], p.StatSN)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
	h[36], h[37] = byte(p.Event), p.VCode
	put16(h[38:], p.Parameter1)
	put16(h[40:], p.Parameter2)
	put16(h[42:], p.Parameter3)
}

// Decode fills p from h.
func (p *AsyncMessage) Decode(h *BHS) error {
	if err := checkOpcode(h, OpAsyncMessage); err != nil {
		return err
	}
	*p = AsyncMessage{LUN: h.LUN(), StatSN: u32(h[24:]), ExpCmdSN: u32(h[28:]), MaxCmdSN: u32(h[32:]),
		Event: AsyncEvent(h[36]), VCode: h[37], Parameter1: u16(h[38:]), Parameter2: u16(h[40:]), Parameter3: u16(h[42:])}
	return nil
}

// TextRequest is an initiator's Text Request PDU (RFC 7143 §11.10).
type TextRequest struct {
	Immediate bool
	Final     bool
	Continue  bool // C: the text continues in the next PDU
	LUN       [8]byte
	ITT       uint32
	TTT       uint32
	CmdSN     uint32
	ExpStatSN uint32
}

// Decode fills p from h.
func (p *TextRequest) Decode(h *BHS) error {
	if err := checkOpcode(h, OpTextRequest); err != nil {
		return err
	}
	*p = TextRequest{Immediate: h.Immediate(), Final: h.Final(), Continue: bit(h[1], 0x40), LUN: h.LUN(),
		ITT: h.ITT(), TTT: u32(h[20:]), CmdSN: u32(h[24:]), ExpStatSN: u32(h[28:])}
	if p.Final && p.Continue {
		return protoErr(OpTextRequest, "F and C bits both set")
	}
	return nil
}

// Encode fills the zeroed header h from p.
func (p *TextRequest) Encode(h *BHS) {
	h.SetOpcode(OpTextRequest, p.Immediate)
	setBit(&h[1], 0x80, p.Final)
	setBit(&h[1], 0x40, p.Continue)
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.TTT)
	put32(h[24:], p.CmdSN)
	put32(h[28:], p.ExpStatSN)
}

// TextResponse is a target's Text Response PDU (RFC 7143 §11.11).
type TextResponse struct {
	Final    bool
	Continue bool
	LUN      [8]byte
	ITT      uint32
	TTT      uint32
	StatSN   uint32
	ExpCmdSN uint32
	MaxCmdSN uint32
}

// Encode fills the zeroed header h from p.
func (p *TextResponse) Encode(h *BHS) {
	h.SetOpcode(OpTextResponse, false)
	setBit(&h[1], 0x80, p.Final)
	setBit(&h[1], 0x40, p.Continue)
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.TTT)
	put32(h[24:], p.StatSN)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
}

// Decode fills p from h.
func (p *TextResponse) Decode(h *BHS) error {
	if err := checkOpcode(h, OpTextResponse); err != nil {
		return err
	}
	*p = TextResponse{Final: h.Final(), Continue: bit(h[1], 0x40), LUN: h.LUN(), ITT: h.ITT(),
		TTT: u32(h[20:]), StatSN: u32(h[24:]), ExpCmdSN: u32(h[28:]), MaxCmdSN: u32(h[32:])}
	if p.Final && p.Continue {
		return protoErr(OpTextResponse, "F and C bits both set")
	}
	return nil
}

// LoginStage is a login stage in the CSG and NSG fields (RFC 7143 §11.12.3).
type LoginStage uint8

// Login stages.
const (
	StageSecurity    LoginStage = 0
	StageOperational LoginStage = 1
	StageFullFeature LoginStage = 3
)

// String returns the name of s as logs show it.
func (s LoginStage) String() string {
	switch s {
	case StageSecurity:
		return "SECURITY"
	case StageOperational:
		return "OPERATIONAL"
	case StageFullFeature:
		return "FULL_FEATURE"
	}
	return fmt.Sprintf("STAGE_%d", uint8(s))
}

// LoginRequest is an initiator's Login Request PDU (RFC 7143 §11.12).
// The I bit is always set on the wire.
type LoginRequest struct {
	Transit    bool // T
	Continue   bool // C
	CSG        LoginStage
	NSG        LoginStage
	VersionMax uint8
	VersionMin uint8
	ISID       [6]byte
	TSIH       uint16
	ITT        uint32
	CID        uint16
	CmdSN      uint32
	ExpStatSN  uint32
}

// Decode fills p from h. Reserved stage codes and T with C are errors.
func (p *LoginRequest) Decode(h *BHS) error {
	if err := checkOpcode(h, OpLoginRequest); err != nil {
		return err
	}
	*p = LoginRequest{Transit: bit(h[1], 0x80), Continue: bit(h[1], 0x40),
		CSG: LoginStage(h[1] >> 2 & 3), NSG: LoginStage(h[1] & 3), VersionMax: h[2], VersionMin: h[3],
		ISID: [6]byte(h[8:14]), TSIH: u16(h[14:]), ITT: h.ITT(), CID: u16(h[20:]),
		CmdSN: u32(h[24:]), ExpStatSN: u32(h[28:])}
	switch {
	case p.Transit && p.Continue:
		return protoErr(OpLoginRequest, "T and C bits both set")
	case p.CSG == 2 || p.CSG == StageFullFeature:
		return protoErr(OpLoginRequest, "invalid current stage %s", p.CSG)
	case p.Transit && (p.NSG == 2 || p.NSG <= p.CSG):
		return protoErr(OpLoginRequest, "invalid stage transition %s -> %s", p.CSG, p.NSG)
	}
	return nil
}

// Encode fills the zeroed header h from p.
func (p *LoginRequest) Encode(h *BHS) {
	h.SetOpcode(OpLoginRequest, true)
	setBit(&h[1], 0x80, p.Transit)
	setBit(&h[1], 0x40, p.Continue)
	h[1] |= byte(p.CSG&3)<<2 | byte(p.NSG&3)
	h[2], h[3] = p.VersionMax, p.VersionMin
	copy(h[8:14], p.ISID[:])
	put16(h[14:], p.TSIH)
	h.SetITT(p.ITT)
	put16(h[20:], p.CID)
	put32(h[24:], p.CmdSN)
	put32(h[28:], p.ExpStatSN)
}

// LoginStatus is the Status-Class (high byte) and Status-Detail (low byte)
// of a Login Response (RFC 7143 §11.13.5).
type LoginStatus uint16

// Login statuses.
const (
	LoginSuccess                LoginStatus = 0x0000
	LoginTargetMovedTemp        LoginStatus = 0x0101
	LoginTargetMovedPerm        LoginStatus = 0x0102
	LoginInitiatorError         LoginStatus = 0x0200
	LoginAuthFailed             LoginStatus = 0x0201
	LoginAuthorizationFailure   LoginStatus = 0x0202
	LoginNotFound               LoginStatus = 0x0203
	LoginTargetRemoved          LoginStatus = 0x0204
	LoginUnsupportedVersion     LoginStatus = 0x0205
	LoginTooManyConnections     LoginStatus = 0x0206
	LoginMissingParameter       LoginStatus = 0x0207
	LoginCantIncludeInSession   LoginStatus = 0x0208
	LoginSessionTypeUnsupported LoginStatus = 0x0209
	LoginSessionDoesNotExist    LoginStatus = 0x020a
	LoginInvalidDuringLogin     LoginStatus = 0x020b
	LoginTargetError            LoginStatus = 0x0300
	LoginServiceUnavailable     LoginStatus = 0x0301
	LoginOutOfResources         LoginStatus = 0x0302
)

var loginStatusNames = map[LoginStatus]string{
	LoginSuccess: "SUCCESS", LoginTargetMovedTemp: "TARGET_MOVED_TEMPORARILY",
	LoginTargetMovedPerm: "TARGET_MOVED_PERMANENTLY", LoginInitiatorError: "INITIATOR_ERROR",
	LoginAuthFailed: "AUTHENTICATION_FAILURE", LoginAuthorizationFailure: "AUTHORIZATION_FAILURE",
	LoginNotFound: "NOT_FOUND", LoginTargetRemoved: "TARGET_REMOVED",
	LoginUnsupportedVersion: "UNSUPPORTED_VERSION", LoginTooManyConnections: "TOO_MANY_CONNECTIONS",
	LoginMissingParameter: "MISSING_PARAMETER", LoginCantIncludeInSession: "CANT_INCLUDE_IN_SESSION",
	LoginSessionTypeUnsupported: "SESSION_TYPE_NOT_SUPPORTED", LoginSessionDoesNotExist: "SESSION_DOES_NOT_EXIST",
	LoginInvalidDuringLogin: "INVALID_DURING_LOGIN", LoginTargetError: "TARGET_ERROR",
	LoginServiceUnavailable: "SERVICE_UNAVAILABLE", LoginOutOfResources: "OUT_OF_RESOURCES",
}

// String returns the name of s as logs show it.
func (s LoginStatus) String() string {
	if n, ok := loginStatusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("LOGIN_STATUS_%04x", uint16(s))
}

// Class is the Status-Class byte.
func (s LoginStatus) Class() uint8 { return uint8(s >> 8) }

// Detail is the Status-Detail byte.
func (s LoginStatus) Detail() uint8 { return uint8(s) }

// LoginResponse is a target's Login Response PDU (RFC 7143 §11.13).
type LoginResponse struct {
	Transit       bool
	Continue      bool
	CSG           LoginStage
	NSG           LoginStage
	VersionMax    uint8
	VersionActive uint8
	ISID          [6]byte
	TSIH          uint16
	ITT           uint32
	StatSN        uint32
	ExpCmdSN      uint32
	MaxCmdSN      uint32
	Status        LoginStatus
}

// Encode fills the zeroed header h from p.
func (p *LoginResponse) Encode(h *BHS) {
	h.SetOpcode(OpLoginResponse, false)
	setBit(&h[1], 0x80, p.Transit)
	setBit(&h[1], 0x40, p.Continue)
	h[1] |= byte(p.CSG&3)<<2 | byte(p.NSG&3)
	h[2], h[3] = p.VersionMax, p.VersionActive
	copy(h[8:14], p.ISID[:])
	put16(h[14:], p.TSIH)
	h.SetITT(p.ITT)
	put32(h[24:], p.StatSN)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
	h[36], h[37] = p.Status.Class(), p.Status.Detail()
}

// Decode fills p from h.
func (p *LoginResponse) Decode(h *BHS) error {
	if err := checkOpcode(h, OpLoginResponse); err != nil {
		return err
	}
	*p = LoginResponse{Transit: bit(h[1], 0x80), Continue: bit(h[1], 0x40),
		CSG: LoginStage(h[1] >> 2 & 3), NSG: LoginStage(h[1] & 3), VersionMax: h[2], VersionActive: h[3],
		ISID: [6]byte(h[8:14]), TSIH: u16(h[14:]), ITT: h.ITT(), StatSN: u32(h[24:]),
		ExpCmdSN: u32(h[28:]), MaxCmdSN: u32(h[32:]), Status: LoginStatus(u16(h[36:]))}
	if p.Transit && p.Continue {
		return protoErr(OpLoginResponse, "T and C bits both set")
	}
	return nil
}

// LogoutReason is the reason code of a Logout Request (RFC 7143 §11.14.1).
type LogoutReason uint8

// Logout reasons.
const (
	LogoutCloseSession      LogoutReason = 0
	LogoutCloseConnection   LogoutReason = 1
	LogoutRemoveForRecovery LogoutReason = 2
)

// String returns the name of r as logs show it.
func (r LogoutReason) String() string {
	switch r {
	case LogoutCloseSession:
		return "CLOSE_SESSION"
	case LogoutCloseConnection:
		return "CLOSE_CONNECTION"
	case LogoutRemoveForRecovery:
		return "REMOVE_FOR_RECOVERY"
	}
	return fmt.Sprintf("LOGOUT_REASON_%d", uint8(r))
}

// LogoutRequest is an initiator's Logout Request PDU (RFC 7143 §11.14).
type LogoutRequest struct {
	Immediate bool
	Reason    LogoutReason
	ITT       uint32
	CID       uint16
	CmdSN     uint32
	ExpStatSN uint32
}

// Decode fills p from h. A reserved reason code is an error.
func (p *LogoutRequest) Decode(h *BHS) error {
	if err := checkOpcode(h, OpLogoutRequest); err != nil {
		return err
	}
	*p = LogoutRequest{Immediate: h.Immediate(), Reason: LogoutReason(h[1] & 0x7f), ITT: h.ITT(),
		CID: u16(h[20:]), CmdSN: u32(h[24:]), ExpStatSN: u32(h[28:])}
	if p.Reason > LogoutRemoveForRecovery {
		return protoErr(OpLogoutRequest, "reserved reason code %d", p.Reason)
	}
	return nil
}

// Encode fills the zeroed header h from p.
func (p *LogoutRequest) Encode(h *BHS) {
	h.SetOpcode(OpLogoutRequest, p.Immediate)
	h[1] = 0x80 | byte(p.Reason)&0x7f
	h.SetITT(p.ITT)
	put16(h[20:], p.CID)
	put32(h[24:], p.CmdSN)
	put32(h[28:], p.ExpStatSN)
}

// LogoutResponseCode is the Response field of a Logout Response (RFC 7143 §11.15.1).
type LogoutResponseCode uint8

// Logout response codes.
const (
	LogoutSuccess              LogoutResponseCode = 0
	LogoutCIDNotFound          LogoutResponseCode = 1
	LogoutRecoveryNotSupported LogoutResponseCode = 2
	LogoutCleanupFailed        LogoutResponseCode = 3
)

// String returns the name of c as logs show it.
func (c LogoutResponseCode) String() string {
	switch c {
	case LogoutSuccess:
		return "SUCCESS"
	case LogoutCIDNotFound:
		return "CID_NOT_FOUND"
	case LogoutRecoveryNotSupported:
		return "RECOVERY_NOT_SUPPORTED"
	case LogoutCleanupFailed:
		return "CLEANUP_FAILED"
	}
	return fmt.Sprintf("LOGOUT_RESPONSE_%d", uint8(c))
}

// LogoutResponse is a target's Logout Response PDU (RFC 7143 §11.15).
type LogoutResponse struct {
	Response    LogoutResponseCode
	ITT         uint32
	StatSN      uint32
	ExpCmdSN    uint32
	MaxCmdSN    uint32
	Time2Wait   uint16
	Time2Retain uint16
}

// Encode fills the zeroed header h from p.
func (p *LogoutResponse) Encode(h *BHS) {
	h.SetOpcode(OpLogoutResponse, false)
	h[1] = 0x80
	h[2] = byte(p.Response)
	h.SetITT(p.ITT)
	put32(h[24:], p.StatSN)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
	put16(h[40:], p.Time2Wait)
	put16(h[42:], p.Time2Retain)
}

// Decode fills p from h.
func (p *LogoutResponse) Decode(h *BHS) error {
	if err := checkOpcode(h, OpLogoutResponse); err != nil {
		return err
	}
	*p = LogoutResponse{Response: LogoutResponseCode(h[2]), ITT: h.ITT(), StatSN: u32(h[24:]),
		ExpCmdSN: u32(h[28:]), MaxCmdSN: u32(h[32:]), Time2Wait: u16(h[40:]), Time2Retain: u16(h[42:])}
	return nil
}

// SNACKType is the Type field of a SNACK Request (RFC 7143 §11.16.1).
type SNACKType uint8

// SNACK types.
const (
	SNACKDataR2T    SNACKType = 0
	SNACKStatus     SNACKType = 1
	SNACKDataACK    SNACKType = 2
	SNACKRDataSNACK SNACKType = 3
)

var snackTypeNames = [...]string{"DATA_R2T", "STATUS", "DATA_ACK", "R_DATA"}

// String returns the name of t as logs show it.
func (t SNACKType) String() string {
	if int(t) < len(snackTypeNames) {
		return snackTypeNames[t]
	}
	return fmt.Sprintf("SNACK_TYPE_%d", uint8(t))
}

// SNACKRequest is an initiator's SNACK Request PDU (RFC 7143 §11.16).
type SNACKRequest struct {
	Type      SNACKType
	LUN       [8]byte
	ITT       uint32
	TTT       uint32 // Target Transfer Tag or SNACK Tag
	ExpStatSN uint32
	BegRun    uint32
	RunLength uint32
}

// Decode fills p from h. A reserved SNACK type is an error.
func (p *SNACKRequest) Decode(h *BHS) error {
	if err := checkOpcode(h, OpSNACKRequest); err != nil {
		return err
	}
	*p = SNACKRequest{Type: SNACKType(h[1] & 0x0f), LUN: h.LUN(), ITT: h.ITT(), TTT: u32(h[20:]),
		ExpStatSN: u32(h[28:]), BegRun: u32(h[40:]), RunLength: u32(h[44:])}
	if p.Type > SNACKRDataSNACK {
		return protoErr(OpSNACKRequest, "reserved SNACK type %d", p.Type)
	}
	return nil
}

// Encode fills the zeroed header h from p.
func (p *SNACKRequest) Encode(h *BHS) {
	h.SetOpcode(OpSNACKRequest, false)
	h[1] = 0x80 | byte(p.Type)&0x0f
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.TTT)
	put32(h[28:], p.ExpStatSN)
	put32(h[40:], p.BegRun)
	put32(h[44:], p.RunLength)
}

// RejectReason is the Reason field of a Reject PDU (RFC 7143 §11.17.1).
type RejectReason uint8

// Reject reasons.
const (
	RejectDataDigestError     RejectReason = 0x02
	RejectSNACKReject         RejectReason = 0x03
	RejectProtocolError       RejectReason = 0x04
	RejectCommandNotSupported RejectReason = 0x05
	RejectImmediateRejected   RejectReason = 0x06
	RejectTaskInProgress      RejectReason = 0x07
	RejectInvalidDataACK      RejectReason = 0x08
	RejectInvalidPDUField     RejectReason = 0x09
	RejectOutOfResources      RejectReason = 0x0a
	RejectNegotiationReset    RejectReason = 0x0b
	RejectWaitingForLogout    RejectReason = 0x0c
)

var rejectReasonNames = map[RejectReason]string{
	RejectDataDigestError: "DATA_DIGEST_ERROR", RejectSNACKReject: "SNACK_REJECT",
	RejectProtocolError: "PROTOCOL_ERROR", RejectCommandNotSupported: "COMMAND_NOT_SUPPORTED",
	RejectImmediateRejected: "IMMEDIATE_COMMAND_REJECTED", RejectTaskInProgress: "TASK_IN_PROGRESS",
	RejectInvalidDataACK: "INVALID_DATA_ACK", RejectInvalidPDUField: "INVALID_PDU_FIELD",
	RejectOutOfResources: "OUT_OF_RESOURCES", RejectNegotiationReset: "NEGOTIATION_RESET",
	RejectWaitingForLogout: "WAITING_FOR_LOGOUT",
}

// String returns the name of r as logs show it.
func (r RejectReason) String() string {
	if n, ok := rejectReasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("REJECT_%#02x", uint8(r))
}

// Reject is a target's Reject PDU (RFC 7143 §11.17). Its data segment is
// the rejected PDU's BHS. ITT is always ReservedTag; Encode writes it.
type Reject struct {
	Reason   RejectReason
	StatSN   uint32
	ExpCmdSN uint32
	MaxCmdSN uint32
	DataSN   uint32 // DataSN/R2TSN, for SNACK rejects
}

// Encode fills the zeroed header h from p.
func (p *Reject) Encode(h *BHS) {
	h.SetOpcode(OpReject, false)
	h[1] = 0x80
	h[2] = byte(p.Reason)
	h.SetITT(ReservedTag)
	put32(h[24:], p.StatSN)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
	put32(h[36:], p.DataSN)
}

// Decode fills p from h.
func (p *Reject) Decode(h *BHS) error {
	if err := checkOpcode(h, OpReject); err != nil {
		return err
	}
	*p = Reject{Reason: RejectReason(h[2]), StatSN: u32(h[24:]), ExpCmdSN: u32(h[28:]),
		MaxCmdSN: u32(h[32:]), DataSN: u32(h[36:])}
	return nil
}

// NOPOut is an initiator's NOP-Out PDU (RFC 7143 §11.18). ITT ReservedTag
// means no answer is wanted; TTT other than ReservedTag answers a NOP-In.
type NOPOut struct {
	Immediate bool
	LUN       [8]byte
	ITT       uint32
	TTT       uint32
	CmdSN     uint32
	ExpStatSN uint32
}

// Decode fills p from h.
func (p *NOPOut) Decode(h *BHS) error {
	if err := checkOpcode(h, OpNOPOut); err != nil {
		return err
	}
	*p = NOPOut{Immediate: h.Immediate(), LUN: h.LUN(), ITT: h.ITT(), TTT: u32(h[20:]),
		CmdSN: u32(h[24:]), ExpStatSN: u32(h[28:])}
	if p.ITT == ReservedTag && p.TTT == ReservedTag && !p.Immediate {
		return protoErr(OpNOPOut, "ITT and TTT both reserved without the I bit")
	}
	return nil
}

// Encode fills the zeroed header h from p.
func (p *NOPOut) Encode(h *BHS) {
	h.SetOpcode(OpNOPOut, p.Immediate)
	h[1] = 0x80
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.TTT)
	put32(h[24:], p.CmdSN)
	put32(h[28:], p.ExpStatSN)
}

// NOPIn is a target's NOP-In PDU (RFC 7143 §11.19): the answer to a
// NOP-Out (TTT ReservedTag) or a target ping (ITT ReservedTag).
type NOPIn struct {
	LUN      [8]byte
	ITT      uint32
	TTT      uint32
	StatSN   uint32
	ExpCmdSN uint32
	MaxCmdSN uint32
}

// Encode fills the zeroed header h from p.
func (p *NOPIn) Encode(h *BHS) {
	h.SetOpcode(OpNOPIn, false)
	h[1] = 0x80
	copy(h[8:16], p.LUN[:])
	h.SetITT(p.ITT)
	put32(h[20:], p.TTT)
	put32(h[24:], p.StatSN)
	put32(h[28:], p.ExpCmdSN)
	put32(h[32:], p.MaxCmdSN)
}

// Decode fills p from h.
func (p *NOPIn) Decode(h *BHS) error {
	if err := checkOpcode(h, OpNOPIn); err != nil {
		return err
	}
	*p = NOPIn{LUN: h.LUN(), ITT: h.ITT(), TTT: u32(h[20:]), StatSN: u32(h[24:]),
		ExpCmdSN: u32(h[28:]), MaxCmdSN: u32(h[32:])}
	return nil
}
