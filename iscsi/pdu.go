package iscsi

import (
	"encoding/binary"
	"fmt"
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
