package scsi

// Limits the device server reports in the Block Limits VPD page (B0h) and
// enforces. Handlers of every command, in every file, check against these
// so that what INQUIRY promises is what the commands accept.
const (
	// maxTransferBytes bounds the data of one READ, WRITE, VERIFY or
	// WRITE AND VERIFY; MAXIMUM TRANSFER LENGTH is this in blocks.
	maxTransferBytes = 8 << 20
	// optimalTransferBytes is OPTIMAL TRANSFER LENGTH, in bytes.
	optimalTransferBytes = 1 << 20
	// maxUnmapLBACount is MAXIMUM UNMAP LBA COUNT: blocks one UNMAP
	// command may deallocate in total.
	maxUnmapLBACount = 1 << 20
	// maxUnmapDescriptors is MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT.
	maxUnmapDescriptors = 256
	// maxWriteSameBlocks is MAXIMUM WRITE SAME LENGTH, in blocks: what
	// WRITE SAME(10)'s 16-bit field holds. (A larger value makes
	// libiscsi's WriteSame16.Unmap test write 65536 blocks with one
	// WRITE(16), beyond MAXIMUM TRANSFER LENGTH.)
	maxWriteSameBlocks = 0xffff
	// maxCompareAndWriteBlocks is MAXIMUM COMPARE AND WRITE LENGTH.
	maxCompareAndWriteBlocks = 255
	// maxAtomicTransferBytes is MAXIMUM ATOMIC TRANSFER LENGTH, in bytes
	// (WRITE ATOMIC(16)): 256 blocks of 4096 bytes, what initiators
	// (libiscsi's WriteAtomic16 tests) write at most.
	maxAtomicTransferBytes = 1 << 20
)

// maxTransferBlocks returns MAXIMUM TRANSFER LENGTH for block size bs.
func maxTransferBlocks(bs uint32) uint32 { return maxTransferBytes / bs }

// checkTransfer fails with INVALID FIELD IN CDB, pointing at the transfer
// length field at byte field, when n blocks exceed MAXIMUM TRANSFER LENGTH.
func (t *task) checkTransfer(n uint64, field int) error {
	if n > uint64(maxTransferBlocks(t.blockSize())) {
		return invalidField(field, -1)
	}
	return nil
}

// supported reports whether the dispatch table has the command (for VPD
// pages and capacity data that advertise optional commands); sa is
// ignored for opcodes without service actions.
func supported(op Opcode, sa uint8) bool { return lookupOpcode(op, sa) != nil }
