package scsi

import (
	"bytes"
	"errors"
	"io"

	"github.com/scstd/scstd/internal/bufpool"
	"github.com/scstd/scstd/vdisk"
)

// rwCDB is the decoded addressing of a READ, WRITE, VERIFY or WRITE AND
// VERIFY CDB (SBC-3 §5).
type rwCDB struct {
	lba uint64
	n   uint64 // transfer length in blocks
	// flags is CDB byte 1 of the 10/12/16-byte forms: xxPROTECT (7-5),
	// DPO (4), FUA (3) or BYTCHK (2-1); zero for the 6-byte forms.
	flags byte
	// lenField is the CDB byte where the transfer length starts.
	lenField int
}

// Byte 1 bits of READ/WRITE/VERIFY(10/12/16).
const (
	bitDPO        = 0x10
	bitFUA        = 0x08
	maskProtect   = 0xe0
	maskBytchk    = 0x06
	shiftBytchk   = 1
	bytchkNone    = 0
	bytchkCompare = 1
	bytchkSingle  = 3
)

// decodeRW decodes the LBA and transfer length of the 6, 10, 12 and 16
// byte forms. READ(6) and WRITE(6): a transfer length of 0 means 256
// blocks (SBC-3).
func decodeRW(cdb []byte) rwCDB {
	switch cdb[0] >> 5 {
	case 0: // 6-byte
		n := uint64(cdb[4])
		if n == 0 {
			n = 256
		}
		return rwCDB{lba: uint64(cdb[1]&0x1f)<<16 | uint64(be16(cdb[2:4])), n: n, lenField: 4}
	case 1, 2: // 10-byte
		return rwCDB{lba: uint64(be32(cdb[2:6])), n: uint64(be16(cdb[7:9])), flags: cdb[1], lenField: 7}
	case 5: // 12-byte
		return rwCDB{lba: uint64(be32(cdb[2:6])), n: uint64(be32(cdb[6:10])), flags: cdb[1], lenField: 6}
	default: // 16-byte
		return rwCDB{lba: be64(cdb[2:10]), n: uint64(be32(cdb[10:14])), flags: cdb[1], lenField: 10}
	}
}

// check validates a decoded CDB: no protection information requested
// (the device is formatted without it), transfer length within the
// block limits, and blocks within the capacity.
func (t *task) checkRW(rw rwCDB) error {
	if rw.flags&maskProtect != 0 {
		return invalidField(1, 7)
	}
	if err := t.checkTransfer(rw.n, rw.lenField); err != nil {
		return err
	}
	return t.checkRange(rw.lba, rw.n)
}

// readBlocks reads n blocks at lba into the command's data-in buffer.
func (t *task) readBlocks(lba, n uint64) ([]byte, error) {
	bs := uint64(t.blockSize())
	buf := t.dataInNoClear(int(n * bs))
	if err := t.readAt(buf, lba*bs); err != nil {
		return nil, err
	}
	return buf, nil
}

// readAt fills buf from the backend at byte offset off. A short read at
// the end of the backend fails like any I/O error.
func (t *task) readAt(buf []byte, off uint64) error {
	var got int
	var err error
	if t.try {
		got, err = t.tryIO(buf, off, false)
		if t.blocked {
			return errBlocked
		}
	} else {
		got, err = t.be.ReadAt(buf, int64(off))
	}
	if got == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return senseFromError(err, false)
}

// writeAt writes buf to the backend at byte offset off and, when fua or a
// write-through cache ask for it, makes it durable.
func (t *task) writeAt(buf []byte, off uint64, fua bool) error {
	if t.try {
		if t.syncNeeded(fua) {
			t.blocked = true
			return errBlocked
		}
		if _, err := t.tryIO(buf, off, true); t.blocked {
			return errBlocked
		} else if err != nil {
			return senseFromError(err, true)
		}
		return nil
	}
	if _, err := t.be.WriteAt(buf, int64(off)); err != nil {
		return senseFromError(err, true)
	}
	if t.syncNeeded(fua) {
		if err := t.be.Sync(); err != nil {
			return senseFromError(err, true)
		}
	}
	return nil
}

// errBlocked is what an I/O tried without waiting returns when it would
// have waited (t.blocked is then set); the command is given up.
var errBlocked = errors.New("scsi: the command would wait")

// tryIO reads (or writes) buf at byte offset off without waiting
// (vdisk.NoWaiter), setting t.blocked when the backend cannot. A write
// the backend took in part before it would have waited is not given up:
// its first bytes are on the medium, and the Execute that would run it
// again could find the device preempted, offline or not ready and answer
// that the command did not run. Its checks have passed, so it is
// finished here with a write that may wait (rare: the page cache took
// part of the range), and completes.
func (t *task) tryIO(buf []byte, off uint64, write bool) (int, error) {
	nw, ok := t.be.(vdisk.NoWaiter)
	if !ok {
		t.blocked = true
		return 0, errBlocked
	}
	var n int
	var err error
	if write {
		n, err = nw.TryWriteAt(buf, int64(off))
	} else {
		n, err = nw.TryReadAt(buf, int64(off))
	}
	if err != vdisk.ErrWouldBlock {
		return n, err
	}
	if write && n > 0 {
		m, err := t.be.WriteAt(buf[n:], int64(off)+int64(n))
		return n + m, err
	}
	t.blocked = true
	return n, errBlocked
}

// read handles READ(6/10/12/16) (SBC-3 §5.11-5.14). DPO and FUA are
// accepted: a read always comes from the backend, which holds every
// completed write.
func read(t *task) ([]byte, error) {
	rw := decodeRW(t.cdb())
	if err := t.checkRW(rw); err != nil {
		return nil, err
	}
	if rw.n == 0 {
		return nil, nil
	}
	if p, ok := t.lendBlocks(rw.lba, rw.n); ok {
		return p, nil
	}
	return t.readBlocks(rw.lba, rw.n)
}

// lendBlocks returns n blocks at lba lent by the backend (vdisk.Lender)
// when the read is large enough and the transport takes loans; false
// when they are to be read.
func (t *task) lendBlocks(lba, n uint64) ([]byte, bool) {
	bs := uint64(t.blockSize())
	size := n * bs
	if size < vdisk.LendMin {
		return nil, false
	}
	lender, ok := t.be.(vdisk.Lender)
	if !ok {
		return nil, false
	}
	loans, ok := t.cmd.Buffers.(DataInLoans)
	if !ok || !loans.TakesLoans() {
		return nil, false
	}
	p, l, ok := lender.LendAt(int64(lba*bs), int(size))
	if !ok {
		return nil, false
	}
	loans.HoldLoan(l)
	return p, true
}

// write handles WRITE(6/10/12/16) (SBC-3 §5.32-5.35). With FUA (or a
// write-through cache) the data is durable before GOOD, unless nv_cache.
// Data-out shorter than the transfer length writes the whole blocks that
// arrived (blockDataOut).
func write(t *task) ([]byte, error) {
	rw := decodeRW(t.cdb())
	if err := t.checkRW(rw); err != nil {
		return nil, err
	}
	bs := uint64(t.blockSize())
	data, n := t.blockDataOut(rw.n, bs)
	if n == 0 {
		return nil, nil
	}
	return nil, t.writeAt(data, rw.lba*bs, rw.flags&bitFUA != 0)
}

// verify handles VERIFY(10/12/16) (SBC-3 §5.27-5.29). BYTCHK 00b checks
// the range only (the backend has no medium to scan); 01b compares the
// data-out with the medium; 11b compares one block of data-out with each
// block. A difference is MISCOMPARE DURING VERIFY OPERATION with the
// offset of the first differing byte in INFORMATION.
func verify(t *task) ([]byte, error) {
	rw := decodeRW(t.cdb())
	if err := t.checkRW(rw); err != nil {
		return nil, err
	}
	bytchk := (rw.flags & maskBytchk) >> shiftBytchk
	bs := uint64(t.blockSize())
	switch bytchk {
	case bytchkNone:
		return nil, nil
	case bytchkCompare:
		data, err := t.dataOut(rw.n*bs, false)
		if err != nil || rw.n == 0 {
			return nil, err
		}
		return nil, t.compare(rw.lba, data, false)
	case bytchkSingle:
		data, err := t.dataOut(bs, false)
		if err != nil || rw.n == 0 {
			return nil, err
		}
		for i := uint64(0); i < rw.n; i++ {
			if err := t.compare(rw.lba+i, data, false); err != nil {
				if se, ok := err.(*SenseError); ok && se.Key == Miscompare {
					return nil, miscompareAt(i*bs + se.Info)
				}
				return nil, err
			}
		}
		return nil, nil
	default:
		return nil, invalidField(1, 2)
	}
}

// compare reads len(data) bytes at lba and compares them with data:
// MISCOMPARE DURING VERIFY OPERATION with the offset of the first
// differing byte when they differ. write says whether the comparison is
// part of a write (WRITE AND VERIFY), for error mapping.
func (t *task) compare(lba uint64, data []byte, write bool) error {
	bs := uint64(t.blockSize())
	bp := bufpool.Get(len(data))
	defer bufpool.Put(bp)
	buf := *bp
	if err := t.readAt(buf, lba*bs); err != nil {
		if write {
			return ErrWriteError
		}
		return err
	}
	if bytes.Equal(buf, data) {
		return nil
	}
	i := 0
	for i < len(data) && buf[i] == data[i] {
		i++
	}
	return miscompareAt(uint64(i))
}

// writeAndVerify handles WRITE AND VERIFY(10/12/16) (SBC-3 §5.36-5.38):
// the write is made durable (unless nv_cache) and, with BYTCHK 01b, read
// back and compared; BYTCHK 11b is not defined for it.
func writeAndVerify(t *task) ([]byte, error) {
	rw := decodeRW(t.cdb())
	if err := t.checkRW(rw); err != nil {
		return nil, err
	}
	bytchk := (rw.flags & maskBytchk) >> shiftBytchk
	if bytchk > bytchkCompare {
		return nil, invalidField(1, 2)
	}
	bs := uint64(t.blockSize())
	data, n := t.blockDataOut(rw.n, bs)
	if n == 0 {
		return nil, nil
	}
	if err := t.writeAt(data, rw.lba*bs, true); err != nil {
		return nil, err
	}
	if bytchk == bytchkNone {
		return nil, nil
	}
	return nil, t.compare(rw.lba, data, true)
}

// synchronizeCache handles SYNCHRONIZE CACHE(10/16) (SBC-3 §5.22-5.23):
// the range is checked, then the backend flushed (fdatasync) unless
// nv_cache. IMMED is accepted; the flush completes before GOOD anyway.
func synchronizeCache(t *task) ([]byte, error) {
	cdb := t.cdb()
	var lba, n uint64
	if Opcode(cdb[0]) == SynchronizeCache10 {
		lba, n = uint64(be32(cdb[2:6])), uint64(be16(cdb[7:9]))
	} else {
		lba, n = be64(cdb[2:10]), uint64(be32(cdb[10:14]))
	}
	if err := t.checkRange(lba, n); err != nil {
		return nil, err
	}
	if t.dev.nvCache.Load() {
		return nil, nil
	}
	return nil, BackendError(t.be.Sync(), true)
}
