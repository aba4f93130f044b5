package scsi

import "github.com/scstd/scstd/internal/bufpool"

// Commands that read and write the medium as one step: COMPARE AND WRITE,
// ORWRITE(16) and WRITE ATOMIC(16). Each holds its device's atomic lock
// (Device.atomicMu) from its read to its write, so these commands are
// atomic with respect to one another on a device (VMware ATS, cluster
// lock sectors). Plain WRITE commands do not take the lock: a WRITE
// racing a COMPARE AND WRITE to the same blocks is ordered by the backend
// alone.
//
// A device that shares its logical unit with other device servers
// (SetSharedPR) makes COMPARE AND WRITE and ORWRITE, the two that read
// before they write, hold the logical unit's atomic token too
// (SharedPR.Atomic), taken before the lock: they are then atomic across
// device servers. WRITE ATOMIC only writes, and needs no token.

// lockAtomic takes the logical unit's atomic token when the device
// shares it, then the device's atomic lock; unlockAtomic releases both.
func (t *task) lockAtomic() error {
	if s := t.dev.sharedStore(); s != nil {
		release, err := s.Atomic()
		if err != nil {
			return asSense(err)
		}
		t.atomicRelease = release
	}
	t.dev.atomicMu.Lock()
	return nil
}

// unlockAtomic releases what lockAtomic took.
func (t *task) unlockAtomic() {
	t.dev.atomicMu.Unlock()
	if t.atomicRelease != nil {
		t.atomicRelease()
		t.atomicRelease = nil
	}
}

// compareAndWrite handles COMPARE AND WRITE (SBC-3 §5.2): the data-out
// holds the verify data then the write data, NUMBER OF LOGICAL BLOCKS
// each. When the medium equals the verify data the write data replaces
// it; otherwise nothing is written and the command fails with MISCOMPARE
// DURING VERIFY OPERATION, INFORMATION the offset of the first differing
// byte.
//
//	byte 1   bits 7-5 WRPROTECT (must be 0), bit 4 DPO, bit 3 FUA, bit 1 FUA_NV
//	byte 2-9 LOGICAL BLOCK ADDRESS
//	byte 13  NUMBER OF LOGICAL BLOCKS (at most MAXIMUM COMPARE AND WRITE LENGTH)
//	byte 14  GROUP NUMBER
func compareAndWrite(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[1]&maskProtect != 0 {
		return nil, invalidField(1, 7)
	}
	lba, n := be64(cdb[2:10]), uint64(cdb[13])
	if n > maxCompareAndWriteBlocks {
		return nil, invalidField(13, -1)
	}
	if err := t.checkRange(lba, n); err != nil {
		return nil, err
	}
	size := 2 * n * uint64(t.blockSize())
	if uint64(len(t.cmd.DataOut)) > size {
		// More data-out than two NUMBER OF LOGICAL BLOCKS: the initiator
		// and the CDB disagree on what is compared with what.
		t.outLen = size
		return nil, ErrInvalidFieldInCDB
	}
	data, err := t.dataOut(size, false)
	if err != nil || n == 0 {
		return nil, err
	}
	half := len(data) / 2
	if err := t.lockAtomic(); err != nil {
		return nil, err
	}
	defer t.unlockAtomic()
	if err := t.compare(lba, data[:half], false); err != nil {
		return nil, err
	}
	return nil, t.writeAt(data[half:], lba*uint64(t.blockSize()), cdb[1]&bitFUA != 0)
}

// orWrite handles ORWRITE(16) (SBC-3 §5.8): each block of data-out is
// ORed into the medium.
//
//	byte 1     bits 7-5 ORPROTECT (must be 0), bit 4 DPO, bit 3 FUA, bit 1 FUA_NV
//	byte 2-9   LOGICAL BLOCK ADDRESS
//	byte 10-13 TRANSFER LENGTH
//	byte 14    GROUP NUMBER
func orWrite(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[1]&maskProtect != 0 {
		return nil, invalidField(1, 7)
	}
	lba, n := be64(cdb[2:10]), uint64(be32(cdb[10:14]))
	if err := t.checkTransfer(n, 10); err != nil {
		return nil, err
	}
	if err := t.checkRange(lba, n); err != nil {
		return nil, err
	}
	bs := uint64(t.blockSize())
	data, err := t.dataOut(n*bs, false)
	if err != nil || n == 0 {
		return nil, err
	}
	bp := bufpool.Get(len(data))
	defer bufpool.Put(bp)
	buf := *bp
	if err := t.lockAtomic(); err != nil {
		return nil, err
	}
	defer t.unlockAtomic()
	if err := t.readAt(buf, lba*bs); err != nil {
		return nil, ErrWriteError
	}
	for i, c := range data {
		buf[i] |= c
	}
	return nil, t.writeAt(buf, lba*bs, cdb[1]&bitFUA != 0)
}

// writeAtomic handles WRITE ATOMIC(16) (SBC-4 §5.48): the blocks are
// written with one backend call, under the device's atomic lock, so that
// no other atomic command sees part of them. The Block Limits VPD page
// reports MAXIMUM ATOMIC TRANSFER LENGTH, alignment and granularity 1.
//
//	byte 1     bits 7-5 WRPROTECT (must be 0), bit 4 DPO, bit 3 FUA
//	byte 2-9   LOGICAL BLOCK ADDRESS
//	byte 12-13 TRANSFER LENGTH
//	byte 14    GROUP NUMBER
func writeAtomic(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[1]&maskProtect != 0 {
		return nil, invalidField(1, 7)
	}
	lba, n := be64(cdb[2:10]), uint64(be16(cdb[12:14]))
	if err := t.checkRange(lba, n); err != nil {
		return nil, err
	}
	bs := uint64(t.blockSize())
	if n*bs > maxAtomicTransferBytes {
		return nil, invalidField(12, -1)
	}
	data, err := t.dataOut(n*bs, false)
	if err != nil || n == 0 {
		return nil, err
	}
	t.dev.atomicMu.Lock()
	defer t.dev.atomicMu.Unlock()
	return nil, t.writeAt(data, lba*bs, cdb[1]&bitFUA != 0)
}
