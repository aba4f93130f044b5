package scsi

import (
	"encoding/binary"
	"errors"
	"slices"
	"syscall"

	"github.com/scstd/scstd/internal/bufpool"
	"github.com/scstd/scstd/vdisk"
)

// Logical block provisioning (SBC-3 §4.7): UNMAP, WRITE SAME(10/16), GET
// LBA STATUS, and PRE-FETCH(10/16), whose range checks are all it does.
//
// A device is thin provisioned when its backend is a vdisk.Unmapper (the
// Block Limits and Logical Block Provisioning VPD pages and READ
// CAPACITY(16) LBPME say so). UNMAP is then accepted; on other devices it
// is INVALID COMMAND OPERATION CODE, as those pages promise. A backend that
// turns out unable to deallocate (EOPNOTSUPP) gets zeroes written instead.

// provisioningCommands are UNMAP, WRITE SAME, COMPARE AND WRITE, GET LBA
// STATUS, ORWRITE, PRE-FETCH, WRITE ATOMIC, EXTENDED COPY and RECEIVE COPY
// RESULTS: the dispatch table's share of this file and of atomic.go and
// xcopy.go.
var provisioningCommands = slices.Concat(blockProvisioningCommands, copyCommands)

// blockProvisioningCommands are the commands of this file and atomic.go.
var blockProvisioningCommands = []commandDesc{
	{op: Unmap, cdbLen: 10, types: typesDisk, flags: flagDataOut | flagWrite,
		usage:   []byte{0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f, 0xff, 0xff, 0x07},
		handler: unmap},
	{op: WriteSame10, cdbLen: 10, types: typesDisk, flags: flagDataOut | flagWrite,
		usage:   []byte{0x41, 0x08, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07},
		handler: writeSame},
	{op: WriteSame16, cdbLen: 16, types: typesDisk, flags: flagDataOut | flagWrite,
		usage: []byte{0x93, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0x1f, 0x07},
		handler: writeSame},
	{op: PreFetch10, cdbLen: 10, types: typesDisk,
		usage:   []byte{0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07},
		handler: preFetch},
	{op: PreFetch16, cdbLen: 16, types: typesDisk,
		usage: []byte{0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0x1f, 0x07},
		handler: preFetch},
	{op: ServiceActionIn16, sa: SAGetLBAStatus, hasSA: true, name: "GET_LBA_STATUS",
		cdbLen: 16, types: typesDisk,
		usage: []byte{0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0x00, 0x07},
		handler: getLBAStatus},
	{op: CompareAndWrite, cdbLen: 16, types: typesDisk, flags: flagDataOut | flagWrite,
		usage: []byte{0x89, 0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0x00, 0x00, 0x00, 0xff, 0x1f, 0x07},
		handler: compareAndWrite},
	{op: OrWrite16, cdbLen: 16, types: typesDisk, flags: flagDataOut | flagWrite,
		usage: []byte{0x8b, 0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0x1f, 0x07},
		handler: orWrite},
	{op: WriteAtomic16, cdbLen: 16, types: typesDisk, flags: flagDataOut | flagWrite,
		usage: []byte{0x9c, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0x00, 0x00, 0xff, 0xff, 0x1f, 0x07},
		handler: writeAtomic},
}

// Byte 1 bits of WRITE SAME(10/16).
const (
	wsANCHOR = 0x10
	wsUNMAP  = 0x08
	wsPBDATA = 0x04 // obsolete
	wsLBDATA = 0x02 // obsolete
	wsNDOB   = 0x01 // WRITE SAME(16) only
)

// fillChunk is the most bytes written or zeroed per backend call when a
// command covers a long range (WRITE SAME, zero fill).
const fillChunk = 1 << 20

// unmap handles UNMAP (SBC-3 §5.28).
//
//	byte 1    bit 0 ANCHOR (not supported: ANC_SUP=0)
//	byte 6    GROUP NUMBER
//	byte 7-8  PARAMETER LIST LENGTH
//
// Parameter list: UNMAP DATA LENGTH (0-1), UNMAP BLOCK DESCRIPTOR DATA
// LENGTH (2-3), reserved (4-7), then 16-byte descriptors: LBA (0-7),
// NUMBER OF LOGICAL BLOCKS (8-11), reserved (12-15). Every descriptor is
// checked before any block is deallocated.
func unmap(t *task) ([]byte, error) {
	if t.unmapper() == nil {
		return nil, ErrInvalidOpcode
	}
	cdb := t.cdb()
	if cdb[1]&0x01 != 0 {
		return nil, invalidField(1, 0)
	}
	plen := uint64(be16(cdb[7:9]))
	if plen == 0 {
		return nil, nil
	}
	if plen < 8 {
		t.outLen = plen
		return nil, ErrParamListLength
	}
	p, err := t.dataOut(plen, true)
	if err != nil {
		return nil, err
	}
	bdLen := uint64(be16(p[2:4]))
	if bdLen+8 > plen || uint64(be16(p[0:2]))+2 > plen {
		return nil, ErrParamListLength
	}
	desc := p[8 : 8+bdLen&^15]
	if len(desc)/16 > maxUnmapDescriptors {
		return nil, invalidParam(2, -1)
	}
	var total uint64
	for i := 0; i < len(desc); i += 16 {
		lba, n := be64(desc[i:i+8]), uint64(be32(desc[i+8:i+12]))
		if err := t.checkRange(lba, n); err != nil {
			return nil, err
		}
		if total += n; total > maxUnmapLBACount {
			return nil, invalidParam(8+i+8, -1)
		}
	}
	for i := 0; i < len(desc); i += 16 {
		lba, n := be64(desc[i:i+8]), uint64(be32(desc[i+8:i+12]))
		if n == 0 {
			continue
		}
		if err := t.deallocate(lba, n); err != nil {
			return nil, err
		}
	}
	return nil, t.flushIfWriteThrough()
}

// deallocate unmaps n blocks at lba, writing zeroes when the backend turns
// out unable to.
func (t *task) deallocate(lba, n uint64) error {
	bs := uint64(t.blockSize())
	err := t.unmapper().Unmap(int64(lba*bs), int64(n*bs))
	if unsupported(err) {
		return t.fill(lba, n, nil)
	}
	return BackendError(err, true)
}

// zeroBlocks makes n blocks at lba read as zeroes, deallocating them when
// the backend can (vdisk.Zeroer), writing zeroes otherwise.
func (t *task) zeroBlocks(lba, n uint64) error {
	z, ok := t.be.(vdisk.Zeroer)
	if !ok {
		return t.fill(lba, n, nil)
	}
	bs := uint64(t.blockSize())
	err := z.ZeroRange(int64(lba*bs), int64(n*bs))
	if unsupported(err) {
		return t.fill(lba, n, nil)
	}
	return BackendError(err, true)
}

// unsupported reports whether a backend error says the operation is not
// available on this storage, so that a fallback should be used: EINVAL is
// what BLKDISCARD and BLKZEROOUT answer for a range that is not aligned to
// the device's own logical blocks (512-byte blocks exported from a 4Kn
// disk), which writing zeroes handles.
func unsupported(err error) bool {
	return errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL)
}

// fill writes block (one logical block; nil for zeroes) to n blocks at
// lba, in pieces of at most fillChunk bytes.
func (t *task) fill(lba, n uint64, block []byte) error {
	bs := uint64(t.blockSize())
	per := max(fillChunk/bs, 1)
	bp := bufpool.Get(int(min(n, per) * bs))
	defer bufpool.Put(bp)
	buf := *bp
	if block == nil {
		clear(buf)
	} else {
		for off := 0; off < len(buf); off += int(bs) {
			copy(buf[off:], block)
		}
	}
	for n > 0 {
		k := min(n, per)
		if _, err := t.be.WriteAt(buf[:k*bs], int64(lba*bs)); err != nil {
			return senseFromError(err, true)
		}
		lba += k
		n -= k
	}
	return nil
}

// flushIfWriteThrough makes completed writes durable when the cache is
// write-through (WCE=0), as every write command does.
func (t *task) flushIfWriteThrough() error {
	if !t.syncNeeded(false) {
		return nil
	}
	return BackendError(t.be.Sync(), true)
}

// writeSame handles WRITE SAME(10) and WRITE SAME(16) (SBC-3 §5.41,
// §5.42): one block of data-out written to every block of the range.
//
//	byte 1 bits 7-5 WRPROTECT (must be 0), bit 4 ANCHOR (not supported),
//	       bit 3 UNMAP, bits 2-1 PBDATA/LBDATA (obsolete, must be 0),
//	       bit 0 NDOB (16 only: no data-out, the block is zeroes)
//	WRITE SAME(10): LBA 2-5, GROUP 6, NUMBER OF LOGICAL BLOCKS 7-8
//	WRITE SAME(16): LBA 2-9, NUMBER OF LOGICAL BLOCKS 10-13, GROUP 14
//
// NUMBER OF LOGICAL BLOCKS 0 means "to the end of the medium" (WSNZ=0),
// within MAXIMUM WRITE SAME LENGTH like any other count. With UNMAP and a
// zero block the range is deallocated where the backend can; UNMAP on a
// device that is not thin provisioned is refused, as LBPWS says.
func writeSame(t *task) ([]byte, error) {
	cdb := t.cdb()
	var lba, n uint64
	lenField := 10
	if Opcode(cdb[0]) == WriteSame10 {
		lba, n, lenField = uint64(be32(cdb[2:6])), uint64(be16(cdb[7:9])), 7
		if cdb[1]&wsNDOB != 0 {
			return nil, invalidField(1, 0)
		}
	} else {
		lba, n = be64(cdb[2:10]), uint64(be32(cdb[10:14]))
	}
	flags := cdb[1]
	switch {
	case flags&maskProtect != 0:
		return nil, invalidField(1, 7)
	case flags&wsANCHOR != 0:
		return nil, invalidField(1, 4)
	case flags&(wsPBDATA|wsLBDATA) != 0:
		return nil, invalidField(1, 2)
	case flags&wsUNMAP != 0 && t.unmapper() == nil:
		return nil, invalidField(1, 3)
	}
	if lba > t.blocks() {
		return nil, ErrLBAOutOfRange
	}
	if n == 0 {
		n = t.blocks() - lba
	}
	if n > maxWriteSameBlocks {
		return nil, invalidField(lenField, -1)
	}
	if err := t.checkRange(lba, n); err != nil {
		return nil, err
	}
	bs := uint64(t.blockSize())
	var block []byte
	if flags&wsNDOB == 0 {
		if uint64(len(t.cmd.DataOut)) > bs {
			t.outLen = bs
			return nil, ErrInvalidFieldInCDB
		}
		var err error
		if block, err = t.dataOut(bs, false); err != nil {
			return nil, err
		}
		if allZero(block) {
			block = nil
		}
	}
	if n == 0 {
		return nil, nil
	}
	var err error
	if block == nil && flags&wsUNMAP != 0 {
		err = t.zeroBlocks(lba, n)
	} else {
		err = t.fill(lba, n, block)
	}
	if err != nil {
		return nil, err
	}
	return nil, t.flushIfWriteThrough()
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.NativeEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// preFetch handles PRE-FETCH(10) and PRE-FETCH(16) (SBC-3 §5.9, §5.10).
// The range is checked; there is no device cache to load, so the command
// completes with GOOD, which SBC-3 specifies for blocks that did not fit in
// the cache (CONDITION MET would claim they are cached).
//
//	byte 1 bit 1 IMMED
//	PRE-FETCH(10): LBA 2-5, GROUP 6, PREFETCH LENGTH 7-8
//	PRE-FETCH(16): LBA 2-9, PREFETCH LENGTH 10-13, GROUP 14
func preFetch(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[1]&^0x02 != 0 {
		return nil, invalidField(1, -1)
	}
	var lba, n uint64
	if Opcode(cdb[0]) == PreFetch10 {
		lba, n = uint64(be32(cdb[2:6])), uint64(be16(cdb[7:9]))
	} else {
		lba, n = be64(cdb[2:10]), uint64(be32(cdb[10:14]))
	}
	return nil, t.checkRange(lba, n)
}

// Provisioning status of an LBA status descriptor (SBC-3 table 40).
const (
	lbaMapped      = 0x0
	lbaDeallocated = 0x1
)

// maxLBAStatusDescriptors bounds the descriptors of one GET LBA STATUS.
const maxLBAStatusDescriptors = 64

// getLBAStatus handles GET LBA STATUS (SBC-3 §5.16), SERVICE ACTION IN(16)
// service action 12h: from the starting LBA, extents of mapped and
// deallocated blocks, as the backend reports them (vdisk.Mapper); a
// backend that cannot tell has every block mapped.
//
//	byte 2-9   STARTING LOGICAL BLOCK ADDRESS
//	byte 10-13 ALLOCATION LENGTH
func getLBAStatus(t *task) ([]byte, error) {
	cdb := t.cdb()
	lba, alloc := be64(cdb[2:10]), be32(cdb[10:14])
	end := t.blocks()
	if lba >= end {
		return nil, ErrLBAOutOfRange
	}
	nDesc := maxLBAStatusDescriptors
	if alloc >= 24 {
		nDesc = int(min(uint32(nDesc), (alloc-8)/16))
	} else {
		nDesc = 1
	}
	bs := uint64(t.blockSize())
	mapper, _ := t.be.(vdisk.Mapper)
	b := t.dataIn(8 + 16*nDesc)[:8]
	for i := 0; i < nDesc && lba < end; i++ {
		n, status := min(end-lba, 0xffffffff), byte(lbaMapped)
		if mapper != nil {
			mapped, length, err := mapper.MapStatus(int64(lba*bs), int64(n*bs))
			if err != nil {
				return nil, BackendError(err, false)
			}
			switch k := uint64(length) / bs; {
			case !mapped && k > 0:
				n, status = k, lbaDeallocated
			case !mapped:
				n = 1 // a hole smaller than a block: the block holds data
			default:
				n = max(1, min(n, (uint64(length)+bs-1)/bs))
			}
		}
		var d [16]byte
		binary.BigEndian.PutUint64(d[0:8], lba)
		binary.BigEndian.PutUint32(d[8:12], uint32(n))
		d[12] = status
		b = append(b, d[:]...)
		lba += n
	}
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-4))
	return allocLen(b, alloc), nil
}
