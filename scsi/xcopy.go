package scsi

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"sync"

	"github.com/scstd/scstd/internal/bufpool"
)

// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 §6.4, §6.18): the
// device server is a copy manager that copies blocks between logical
// units this I_T nexus can see, without the data crossing the network
// (VMware VAAI XCOPY, sg_xcopy).
//
// Supported: identification descriptor target descriptors (E4h) naming a
// logical unit by the NAA or T10 vendor ID designator of its Device
// Identification VPD page, and block device to block device segment
// descriptors (02h). Copies complete before status (no held data, no
// inline data); RECEIVE COPY RESULTS reports the operating parameters and
// the status of copies whose LIST ID USAGE asked for it to be held.

// Copy manager limits (RECEIVE COPY RESULTS, OPERATING PARAMETERS).
const (
	xcopyMaxTargets      = 2
	xcopyMaxSegments     = 32
	xcopyMaxDescListLen  = 1024
	xcopyHeaderLen       = 16
	xcopyTargetDescLen   = 32
	xcopySegB2BLen       = 0x1c
	xcopyMaxSegmentBlock = 0xffff // NUMBER OF BLOCKS is two bytes
	xcopyChunk           = 1 << 20
)

// Descriptor type codes (SPC-4 tables 107 and 111).
const (
	segBlockToBlock  = 0x02
	tgtIdentDescript = 0xe4
)

// Sense conditions of the copy manager.
var (
	errTooManyTargetDescs     = &SenseError{Key: IllegalRequest, ASC: 0x26, ASCQ: 0x06}
	errUnsupportedTargetDesc  = &SenseError{Key: IllegalRequest, ASC: 0x26, ASCQ: 0x07}
	errTooManySegmentDescs    = &SenseError{Key: IllegalRequest, ASC: 0x26, ASCQ: 0x08}
	errUnsupportedSegmentDesc = &SenseError{Key: IllegalRequest, ASC: 0x26, ASCQ: 0x09}
	// errUnreachableCopyTarget: a segment names a target descriptor
	// index beyond the list.
	errUnreachableCopyTarget = &SenseError{Key: CopyAborted, ASC: 0x08, ASCQ: 0x04}
	// errCopyTargetNotReachable: no logical unit this nexus sees has
	// the designator, or it is offline.
	errCopyTargetNotReachable = &SenseError{Key: CopyAborted, ASC: 0x0d, ASCQ: 0x02}
	// errCopyAborted: a segment reaches beyond a logical unit's
	// capacity, or its blocks do not divide into the other's.
	errCopyAborted = &SenseError{Key: CopyAborted}
)

// copyTarget is a resolved target descriptor: the logical unit it names,
// or nil when this nexus sees no such logical unit.
type copyTarget struct {
	lu *LogicalUnit
}

// copySegment is a block to block segment descriptor.
type copySegment struct {
	src, dst uint16
	dc       bool // NUMBER OF BLOCKS counts destination blocks
	n        uint64
	srcLBA   uint64
	dstLBA   uint64
}

// extendedCopy handles EXTENDED COPY(LID1) (SPC-4 §6.4).
//
//	byte 10-13 PARAMETER LIST LENGTH
//
// Parameter list: LIST IDENTIFIER (0), flags (1), TARGET DESCRIPTOR LIST
// LENGTH (2-3), SEGMENT DESCRIPTOR LIST LENGTH (8-11), INLINE DATA LENGTH
// (12-15), then the target and segment descriptors. Every descriptor is
// checked before the first block is copied.
func extendedCopy(t *task) ([]byte, error) {
	cdb := t.cdb()
	plen := uint64(be32(cdb[10:14]))
	if plen == 0 {
		return nil, nil
	}
	if plen < xcopyHeaderLen {
		t.outLen = plen
		return nil, ErrParamListLength
	}
	p, err := t.dataOut(plen, true)
	if err != nil {
		return nil, err
	}
	tdl, sdl, inl := uint64(be16(p[2:4])), uint64(be32(p[8:12])), uint64(be32(p[12:16]))
	if xcopyHeaderLen+tdl+sdl+inl > plen || tdl+sdl > xcopyMaxDescListLen {
		return nil, ErrParamListLength
	}
	if inl != 0 {
		return nil, invalidParam(12, -1)
	}
	if tdl%xcopyTargetDescLen != 0 {
		return nil, invalidParam(2, -1)
	}
	if tdl/xcopyTargetDescLen > xcopyMaxTargets {
		return nil, errTooManyTargetDescs
	}
	var targets [xcopyMaxTargets]copyTarget
	nTargets := int(tdl / xcopyTargetDescLen)
	for i := range nTargets {
		off := xcopyHeaderLen + i*xcopyTargetDescLen
		d := p[off : off+xcopyTargetDescLen]
		if d[0] != tgtIdentDescript {
			return nil, errUnsupportedTargetDesc
		}
		if d[1]&0x1f != byte(TypeDisk) {
			return nil, invalidParam(off+1, 4)
		}
		targets[i].lu = t.findCopyTarget(d[4:24])
	}
	segs, err := parseSegments(p[xcopyHeaderLen+tdl:xcopyHeaderLen+tdl+sdl], xcopyHeaderLen+int(tdl))
	if err != nil {
		return nil, err
	}
	res := copyResult{status: copyCompleted}
	for _, s := range segs {
		if int(s.src) >= nTargets || int(s.dst) >= nTargets {
			err = errUnreachableCopyTarget
		} else {
			var n uint64
			n, err = t.copyBlocks(targets[s.src].lu, targets[s.dst].lu, s)
			res.bytes += n
		}
		if err != nil {
			res.status = copyFailed
			break
		}
		res.segments++
	}
	if p[1]>>3&0x3 == listIDHold {
		copyResults.put(copyKey{t.dev, nexusOf(t.cmd.Nexus), p[0]}, res)
	}
	return nil, err
}

// LIST ID USAGE (parameter list byte 1, bits 4-3) asking the copy
// manager to hold the copy status for RECEIVE COPY RESULTS.
const listIDHold = 0

// COPY MANAGER STATUS values (SPC-4 table 382).
const (
	copyCompleted = 0x01
	copyFailed    = 0x02
)

// copyResult is what COPY STATUS reports about a finished EXTENDED COPY.
type copyResult struct {
	status   byte
	segments uint16
	bytes    uint64
}

// copyKey names a copy's results: the copy manager's device, the I_T
// nexus that sent it and its LIST IDENTIFIER.
type copyKey struct {
	dev   *Device
	nexus itNexus
	list  byte
}

// maxCopyResults bounds the results held for RECEIVE COPY RESULTS; the
// oldest are dropped first.
const maxCopyResults = 256

// copyStore holds the results of EXTENDED COPY commands that asked for
// them to be held, until read or displaced.
type copyStore struct {
	mu    sync.Mutex
	m     map[copyKey]copyResult
	order []copyKey
}

var copyResults copyStore

func (s *copyStore) put(k copyKey, r copyResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[copyKey]copyResult)
	}
	if _, ok := s.m[k]; !ok {
		if len(s.order) == maxCopyResults {
			delete(s.m, s.order[0])
			s.order = s.order[1:]
		}
		s.order = append(s.order, k)
	}
	s.m[k] = r
}

func (s *copyStore) get(k copyKey) (copyResult, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[k]
	return r, ok
}

// parseSegments decodes the segment descriptor list, which starts at byte
// base of the parameter list.
func parseSegments(b []byte, base int) ([]copySegment, error) {
	var segs []copySegment
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return nil, ErrParamListLength
		}
		d := b[off:]
		if d[0] != segBlockToBlock {
			return nil, errUnsupportedSegmentDesc
		}
		if be16(d[2:4]) != xcopySegB2BLen-4 {
			return nil, invalidParam(base+off+2, -1)
		}
		if len(d) < xcopySegB2BLen {
			return nil, ErrParamListLength
		}
		if len(segs) == xcopyMaxSegments {
			return nil, errTooManySegmentDescs
		}
		segs = append(segs, copySegment{
			dc:     d[1]&0x02 != 0,
			src:    be16(d[4:6]),
			dst:    be16(d[6:8]),
			n:      uint64(be16(d[10:12])),
			srcLBA: be64(d[12:20]),
			dstLBA: be64(d[20:28]),
		})
		off += xcopySegB2BLen
	}
	return segs, nil
}

// findCopyTarget returns the logical unit, among those this nexus sees,
// whose logical unit designator (NAA or T10 vendor ID) equals the
// designation descriptor desig, or nil.
func (t *task) findCopyTarget(desig []byte) *LogicalUnit {
	assoc, typ, n := desig[1]>>4&0x3, desig[1]&0x0f, int(desig[3])
	if assoc != 0 || 4+n > len(desig) {
		return nil
	}
	id := desig[4 : 4+n]
	match := func(lu *LogicalUnit) bool {
		if lu == nil || lu.Device == nil {
			return false
		}
		d := lu.Device
		switch typ {
		case desigNAA:
			return bytes.Equal(id, d.id.naa)
		case desigT10Vendor:
			return string(id) == string(padASCII(inquiryVendor, 8))+d.id.t10ID
		}
		return false
	}
	if t.cmd.LUNs == nil {
		if match(t.lu) {
			return t.lu
		}
		return nil
	}
	for _, l := range t.cmd.LUNs.LUNs() {
		if lu := t.cmd.LUNs.Lookup(l); match(lu) {
			return lu
		}
	}
	return nil
}

// copyBlocks carries out one block to block segment from src to dst and
// returns the bytes it copied.
func (t *task) copyBlocks(src, dst *LogicalUnit, s copySegment) (uint64, error) {
	if src == nil || dst == nil {
		return 0, errCopyTargetNotReachable
	}
	sd, dd := src.Device, dst.Device
	ss, ds := sd.acquire(), dd.acquire()
	defer ss.release()
	defer ds.release()
	sb, db := ss.backend, ds.backend
	if sb == nil || db == nil {
		return 0, errCopyTargetNotReachable
	}
	if dst.ReadOnly || dd.readOnly.Load() {
		return 0, ErrWriteProtected
	}
	sbs, dbs := uint64(sd.cfg.BlockSize), uint64(dd.cfg.BlockSize)
	n := s.n * sbs
	if s.dc {
		n = s.n * dbs
	}
	if n%sbs != 0 || n%dbs != 0 {
		return 0, errCopyAborted
	}
	srcEnd, dstEnd := uint64(sd.Size())/sbs, uint64(dd.Size())/dbs
	if s.srcLBA > srcEnd || n/sbs > srcEnd-s.srcLBA || s.dstLBA > dstEnd || n/dbs > dstEnd-s.dstLBA {
		return 0, errCopyAborted
	}
	bp := bufpool.Get(int(min(n, xcopyChunk)))
	defer bufpool.Put(bp)
	buf := *bp
	from, to := s.srcLBA*sbs, s.dstLBA*dbs
	for done := uint64(0); done < n; {
		c := buf[:min(n-done, uint64(len(buf)))]
		if got, err := sb.ReadAt(c, int64(from+done)); got != len(c) {
			if err == nil {
				return done, ErrReadError
			}
			return done, senseFromError(err, false)
		}
		if _, err := db.WriteAt(c, int64(to+done)); err != nil {
			return done, senseFromError(err, true)
		}
		done += uint64(len(c))
	}
	if !dd.nvCache.Load() && dd.writeThrough.Load() {
		return n, BackendError(db.Sync(), true)
	}
	return n, nil
}

// receiveCopyOperatingParams handles RECEIVE COPY RESULTS with service
// action OPERATING PARAMETERS (SPC-4 §6.18.4): the copy manager's limits.
//
//	byte 10-13 ALLOCATION LENGTH
func receiveCopyOperatingParams(t *task) ([]byte, error) {
	cdb := t.cdb()
	implemented := []byte{segBlockToBlock, tgtIdentDescript}
	b := t.dataIn(44 + len(implemented))
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-4))
	b[4] = 0x01 // SNLID: list identifiers need not be unique
	binary.BigEndian.PutUint16(b[8:10], xcopyMaxTargets)
	binary.BigEndian.PutUint16(b[10:12], xcopyMaxSegments)
	binary.BigEndian.PutUint32(b[12:16], xcopyMaxDescListLen)
	binary.BigEndian.PutUint32(b[16:20], xcopyMaxSegmentBlock*t.blockSize())
	binary.BigEndian.PutUint16(b[34:36], 1) // TOTAL CONCURRENT COPIES
	b[36] = 1                               // MAXIMUM CONCURRENT COPIES
	b[37] = byte(bits.TrailingZeros32(t.blockSize()))
	b[43] = byte(len(implemented))
	copy(b[44:], implemented)
	return allocLen(b, be32(cdb[10:14])), nil
}

// receiveCopyStatus handles RECEIVE COPY RESULTS with service action
// COPY STATUS (SPC-4 §6.18.3): how the EXTENDED COPY with this LIST
// IDENTIFIER, sent through this I_T nexus, ended. Copies finish before
// their status, so none is ever in progress; a list identifier with no
// held results is INVALID FIELD IN CDB.
//
//	byte 2     LIST IDENTIFIER
//	byte 10-13 ALLOCATION LENGTH
func receiveCopyStatus(t *task) ([]byte, error) {
	cdb := t.cdb()
	r, ok := copyResults.get(copyKey{t.dev, nexusOf(t.cmd.Nexus), cdb[2]})
	if !ok {
		return nil, invalidField(2, -1)
	}
	b := t.dataIn(12)
	binary.BigEndian.PutUint32(b[0:4], 8)
	b[4] = r.status
	binary.BigEndian.PutUint16(b[5:7], r.segments)
	// TRANSFER COUNT UNITS: bytes while they fit in four bytes, else KiB.
	if r.bytes > 0xffffffff {
		b[7] = 0x01
		binary.BigEndian.PutUint32(b[8:12], uint32(min(r.bytes>>10, 0xffffffff)))
	} else {
		binary.BigEndian.PutUint32(b[8:12], uint32(r.bytes))
	}
	return allocLen(b, be32(cdb[10:14])), nil
}

// copyCommands are EXTENDED COPY(LID1) and RECEIVE COPY RESULTS.
var copyCommands = []commandDesc{
	{op: ExtendedCopy, sa: 0x00, hasSA: true, name: "EXTENDED_COPY_LID1",
		cdbLen: 16, types: typesDisk, flags: flagDataOut, timeout: 120,
		usage: []byte{0x83, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
			0xff, 0xff, 0xff, 0xff, 0x00, 0x07},
		handler: extendedCopy},
	{op: ReceiveCopyResults, sa: 0x00, hasSA: true, name: "RECEIVE_COPY_RESULTS/COPY_STATUS",
		cdbLen: 16, types: typesDisk,
		usage: []byte{0x84, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
			0xff, 0xff, 0xff, 0xff, 0x00, 0x07},
		handler: receiveCopyStatus},
	{op: ReceiveCopyResults, sa: 0x03, hasSA: true, name: "RECEIVE_COPY_RESULTS/OPERATING_PARAMETERS",
		cdbLen: 16, types: typesDisk,
		usage: []byte{0x84, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
			0xff, 0xff, 0xff, 0xff, 0x00, 0x07},
		handler: receiveCopyOperatingParams},
}
