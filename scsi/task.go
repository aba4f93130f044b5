package scsi

import (
	"encoding/binary"

	"github.com/scstd/scstd/vdisk"
)

// task is one command being executed: the command, and the logical unit
// and device it addresses (nil for LUN-less commands like REPORT LUNS on an
// unmapped LUN).
type task struct {
	cmd  *Command
	lu   *LogicalUnit
	dev  *Device
	desc *commandDesc
	// be is the device's backend as it was when the command started (nil
	// for an offline device); handlers use it, not dev, so that a device
	// going offline mid-command does not change backends under them. st
	// is the device state it came from, holding a reference that keeps
	// be open until the command completes (see Device.acquire).
	be vdisk.Backend
	st *devState
	// size is the device's capacity in bytes when the command started.
	size int64
	// outLen is the data-out length the CDB called for, as dataOut
	// recorded it (Result.DataOutLen).
	outLen uint64
	// atomicRelease releases the shared atomic token lockAtomic took,
	// nil for none.
	atomicRelease func()
	// try says the command runs on a goroutine that must not wait
	// (TryExecute); blocked is set when it would have waited, and the
	// command is then given up.
	try, blocked bool
}

// handler executes one opcode. It returns the data-in (nil for none) or an
// error: a *SenseError becomes CHECK CONDITION with that sense; any other
// error is mapped to sense by the dispatcher (ENOSPC, EIO, ...) as a
// MEDIUM ERROR, WRITE ERROR when the command's descriptor has flagWrite.
type handler func(t *task) ([]byte, error)

// cdb returns the command descriptor block. The dispatcher has checked that
// it is at least desc.cdbLen bytes long.
func (t *task) cdb() []byte { return t.cmd.CDB }

// blockSize returns the device's logical block size in bytes.
func (t *task) blockSize() uint32 { return t.dev.cfg.BlockSize }

// blocks returns the device's capacity in logical blocks.
func (t *task) blocks() uint64 { return uint64(t.size) / uint64(t.dev.cfg.BlockSize) }

// checkRange checks that n blocks starting at lba lie within the device:
// LOGICAL BLOCK ADDRESS OUT OF RANGE otherwise, overflow included. n may be
// zero (SBC-3: then only lba itself is checked, and lba == capacity is
// accepted).
func (t *task) checkRange(lba, n uint64) error {
	max := t.blocks()
	if lba > max || n > max-lba {
		return ErrLBAOutOfRange
	}
	return nil
}

// readOnly reports whether writes through this logical unit are refused.
func (t *task) readOnly() bool {
	return t.dev.readOnly.Load() || (t.lu != nil && t.lu.ReadOnly)
}

// dataOut returns the first n bytes of data-out and records n as the
// length the command called for (the transport reports residuals from
// it). When the initiator sent fewer, it fails with PARAMETER LIST LENGTH
// ERROR for a parameter list (param true) or INVALID FIELD IN INFORMATION
// UNIT for block data (param false), having used none of it. Extra bytes
// are ignored.
func (t *task) dataOut(n uint64, param bool) ([]byte, error) {
	t.outLen = n
	if uint64(len(t.cmd.DataOut)) < n {
		if param {
			return nil, ErrParamListLength
		}
		return nil, ErrInvalidFieldInIU
	}
	return t.cmd.DataOut[:n], nil
}

// blockDataOut returns the data-out of a write of n blocks of bs bytes,
// and records n*bs as the length the command called for. When the
// initiator's expected transfer length was shorter, the command is
// processed normally except that data beyond it is not transferred
// (FCP-4 §9.4.2 a), which libiscsi's iSCSIResiduals expects): only the
// whole blocks that arrived are returned, with their count; the transport
// reports the rest as an overflow residual.
func (t *task) blockDataOut(n, bs uint64) ([]byte, uint64) {
	t.outLen = n * bs
	if have := uint64(len(t.cmd.DataOut)); have < n*bs {
		n = have / bs
	}
	return t.cmd.DataOut[:n*bs], n
}

// dataIn returns a zeroed buffer of n bytes for data-in, reusing the
// transport's buffer when it is large enough or taking one from its
// Buffers. Call it (or dataInNoClear) at most once per command: a second
// call may return the same memory.
func (t *task) dataIn(n int) []byte {
	if b := t.transportBuffer(n); b != nil {
		clear(b)
		return b
	}
	return make([]byte, n)
}

// dataInNoClear is dataIn for a buffer the caller overwrites completely
// (READ): it skips zeroing.
func (t *task) dataInNoClear(n int) []byte {
	if b := t.transportBuffer(n); b != nil {
		return b
	}
	return make([]byte, n)
}

// transportBuffer returns n bytes of the transport's data-in buffer, or
// nil when it offers none that large.
func (t *task) transportBuffer(n int) []byte {
	if b := t.cmd.DataIn; cap(b) >= n && b != nil {
		return b[:n]
	}
	if t.cmd.Buffers != nil {
		if b := t.cmd.Buffers.DataInBuffer(n); len(b) >= n {
			return b[:n]
		}
	}
	return nil
}

// allocLen truncates data-in to the allocation length of the CDB.
func allocLen(b []byte, n uint32) []byte {
	if uint32(len(b)) > n {
		return b[:n]
	}
	return b
}

// be16, be32 and be64 read big-endian CDB fields.
func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// statusError is a handler outcome that is neither GOOD nor CHECK
// CONDITION but a bare status: RESERVATION CONFLICT from PERSISTENT
// RESERVE OUT and RESERVE/RELEASE. The dispatcher (task.run) answers it
// with that status and no sense data.
type statusError struct{ status Status }

// Error names the status.
func (e *statusError) Error() string { return "scsi: status " + e.status.String() }

// errReservationConflict answers RESERVATION CONFLICT.
var errReservationConflict = &statusError{ReservationConflict}
