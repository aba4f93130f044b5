package scsi

import (
	"encoding/binary"
	"math/bits"

	"github.com/scstd/scstd/vdisk"
)

// readCapacity10 handles READ CAPACITY(10) (SBC-3 §5.15): the last LBA,
// or FFFFFFFFh when it does not fit (the initiator then uses READ
// CAPACITY(16)), and the block length.
//
//	byte 2-5  LOGICAL BLOCK ADDRESS (obsolete; must be 0 unless PMI)
//	byte 8    bit 0 PMI (obsolete)
func readCapacity10(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[8]&0x01 == 0 && be32(cdb[2:6]) != 0 {
		return nil, invalidField(2, -1)
	}
	b := t.dataIn(8)
	last := t.lastLBA()
	if last > 0xffffffff {
		last = 0xffffffff
	}
	binary.BigEndian.PutUint32(b[0:4], uint32(last))
	binary.BigEndian.PutUint32(b[4:8], t.blockSize())
	return b, nil
}

// lastLBA returns the address of the last logical block (0 for an empty
// device, which has none).
func (t *task) lastLBA() uint64 {
	if n := t.blocks(); n > 0 {
		return n - 1
	}
	return 0
}

// readCapacity16 handles READ CAPACITY(16) (SBC-3 §5.16), SERVICE ACTION
// IN(16) service action 10h: last LBA, block length, no protection, the
// logical blocks per physical block of the storage (lowest aligned LBA 0),
// and LBPME when the backend can deallocate and UNMAP is served.
//
//	byte 2-9   LOGICAL BLOCK ADDRESS (obsolete; must be 0 unless PMI)
//	byte 10-13 ALLOCATION LENGTH
//	byte 14    bit 0 PMI (obsolete)
func readCapacity16(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[14]&0x01 == 0 && be64(cdb[2:10]) != 0 {
		return nil, invalidField(2, -1)
	}
	b := t.dataIn(32)
	binary.BigEndian.PutUint64(b[0:8], t.lastLBA())
	binary.BigEndian.PutUint32(b[8:12], t.blockSize())
	b[13] = t.lbppbExponent()
	if t.unmapper() != nil && supported(Unmap, 0) {
		b[14] = 0x80 // LBPME
	}
	return allocLen(b, be32(cdb[10:14])), nil
}

// lbppbExponent returns LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (SBC-3
// §5.16.2): log2 of the backend's physical block size (vdisk.PhysicalBlocker)
// over the logical block length; 0 when the backend does not say, or the
// physical block is not a power-of-two multiple of the logical block.
func (t *task) lbppbExponent() uint8 {
	pb, ok := t.be.(vdisk.PhysicalBlocker)
	if !ok {
		return 0
	}
	bs := int64(t.blockSize())
	n := pb.PhysicalBlockSize()
	if n <= bs || n%bs != 0 || (n/bs)&(n/bs-1) != 0 {
		return 0
	}
	return uint8(bits.TrailingZeros64(uint64(n / bs)))
}

// physicalBlocks returns the logical blocks per physical block.
func (t *task) physicalBlocks() uint32 { return 1 << t.lbppbExponent() }
