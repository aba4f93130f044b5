package scsi

import (
	"bytes"
	"encoding/binary"
)

// Mode pages scstd serves (SBC-3 §6.4, SPC-4 §7.5).
const (
	pageCaching      = 0x08
	pageControl      = 0x0a
	pageInfoExcept   = 0x1c
	pageAll          = 0x3f
	subpageAll       = 0xff
	modeDevSpecWP    = 0x80 // device-specific parameter: write protected
	modeDevSpecDPOFU = 0x10 // device-specific parameter: DPO and FUA supported
)

// Page control values of MODE SENSE (SPC-4 table 97).
const (
	pcCurrent    = 0
	pcChangeable = 1
	pcDefault    = 2
	pcSaved      = 3
)

// modePages lists a disk's pages in the order MODE SENSE returns them
// for 3Fh; cdromModePages a CD-ROM's, which adds the CD/DVD capabilities
// and mechanical status page (mmc.go).
var (
	modePages      = [...]byte{pageCaching, pageControl, pageInfoExcept}
	cdromModePages = [...]byte{pageCaching, pageControl, pageInfoExcept, pageCapabilities}
)

// modePageList returns the pages of t's device.
func (t *task) modePageList() []byte {
	if t.dev.cfg.Type == TypeCDROM {
		return cdromModePages[:]
	}
	return modePages[:]
}

// cachingWCE is the WCE bit in byte 2 of the caching page.
const cachingWCE = 0x04

// controlSWP is the SWP (software write protect) bit in byte 4 of the
// control page: set, the logical unit refuses writes to the medium with
// DATA PROTECT, LOGICAL UNIT SOFTWARE WRITE PROTECTED (SPC-4 §7.5.8).
const controlSWP = 0x08

// appendModePage appends page (one of modePageList) as page control pc
// asks.
func (t *task) appendModePage(b []byte, page byte, pc int) []byte {
	switch page {
	case pageCapabilities:
		return t.appendCapabilitiesPage(b, pc)
	case pageCaching:
		p := [20]byte{pageCaching, 0x12}
		switch pc {
		case pcChangeable:
			p[2] = cachingWCE
		case pcDefault:
			if !t.dev.cfg.WriteThrough {
				p[2] = cachingWCE
			}
		default:
			if !t.dev.writeThrough.Load() {
				p[2] = cachingWCE
			}
		}
		return append(b, p[:]...)
	case pageControl:
		p := [12]byte{pageControl, 0x0a}
		switch {
		case pc == pcChangeable:
			p[4] = controlSWP
		case pc == pcCurrent && t.dev.softWriteProtected():
			p[4] = controlSWP
		}
		if pc != pcChangeable {
			p[2] = 0x02                                 // GLTSD: no log parameters are saved
			p[3] = 0x10                                 // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
			binary.BigEndian.PutUint16(p[8:10], 0xffff) // BUSY TIMEOUT PERIOD: unlimited
		}
		return append(b, p[:]...)
	default: // pageInfoExcept
		p := [12]byte{pageInfoExcept, 0x0a}
		if pc != pcChangeable {
			p[2] = 0x08 // DEXCPT: informational exceptions disabled
		}
		return append(b, p[:]...)
	}
}

// modeSense handles MODE SENSE(6) and MODE SENSE(10) (SPC-4 §6.11-6.12):
// the caching, control and informational exceptions pages (and on a
// CD-ROM the capabilities page), current,
// changeable or default values (saved ones are not supported), with a
// block descriptor unless DBD (long with LLBAA in MODE SENSE(10)).
//
//	(6)  byte 1 bit 3 DBD; byte 2 PC, PAGE CODE; byte 3 SUBPAGE; byte 4 ALLOCATION LENGTH
//	(10) byte 1 bit 4 LLBAA, bit 3 DBD; byte 2-3 as (6); byte 7-8 ALLOCATION LENGTH
func modeSense(t *task) ([]byte, error) {
	cdb := t.cdb()
	ten := Opcode(cdb[0]) == ModeSense10
	dbd := cdb[1]&0x08 != 0
	llbaa := ten && cdb[1]&0x10 != 0
	pc := int(cdb[2] >> 6)
	page := cdb[2] & 0x3f
	sub := cdb[3]
	alloc := uint32(cdb[4])
	if ten {
		alloc = uint32(be16(cdb[7:9]))
	}
	if pc == pcSaved {
		return nil, ErrSavingParamsUnsupported
	}
	if sub != 0 && sub != subpageAll {
		return nil, invalidField(3, -1)
	}
	pages := t.modePageList()
	if page != pageAll {
		i := bytes.IndexByte(pages, page)
		if i < 0 {
			return nil, invalidField(2, 5)
		}
		pages = pages[i : i+1]
	}

	hdrLen := 4
	if ten {
		hdrLen = 8
	}
	b := make([]byte, hdrLen, 128)
	devSpec := byte(modeDevSpecDPOFU)
	if t.readOnly() || t.dev.softWriteProtected() {
		devSpec |= modeDevSpecWP
	}
	if t.dev.cfg.Type != TypeDisk {
		devSpec = 0
		dbd = true
	}
	if !dbd {
		blocks := t.blocks()
		if pc == pcChangeable {
			blocks = 0
		}
		bs := t.blockSize()
		if pc == pcChangeable {
			bs = 0
		}
		if llbaa {
			var d [16]byte
			binary.BigEndian.PutUint64(d[0:8], blocks)
			binary.BigEndian.PutUint32(d[12:16], bs)
			b = append(b, d[:]...)
			b[4] |= 0x01 // LONGLBA
		} else {
			var d [8]byte
			binary.BigEndian.PutUint32(d[0:4], uint32(min(blocks, 0xffffffff)))
			binary.BigEndian.PutUint32(d[4:8], bs&0xffffff)
			b = append(b, d[:]...)
		}
	}
	bdLen := len(b) - hdrLen
	for _, p := range pages {
		b = t.appendModePage(b, p, pc)
	}
	if ten {
		binary.BigEndian.PutUint16(b[0:2], uint16(len(b)-2))
		b[3] = devSpec
		binary.BigEndian.PutUint16(b[6:8], uint16(bdLen))
	} else {
		b[0] = byte(len(b) - 1)
		b[2] = devSpec
		b[3] = byte(bdLen)
	}
	return allocLen(b, alloc), nil
}

// modeSelect handles MODE SELECT(6) and MODE SELECT(10) (SPC-4
// §6.9-6.10). The caching page's WCE and the control page's SWP are the
// changeable fields; every other field of a page, header or block
// descriptor must hold its current value. A change of WCE or SWP posts MODE PARAMETERS CHANGED to the other
// nexuses (SPC-4 §6.9).
//
//	byte 1 bit 4 PF (must be 1), bit 0 SP (must be 0: nothing is saved)
//	(6) byte 4, (10) bytes 7-8: PARAMETER LIST LENGTH
func modeSelect(t *task) ([]byte, error) {
	cdb := t.cdb()
	ten := Opcode(cdb[0]) == ModeSelect10
	if cdb[1]&0x10 == 0 {
		return nil, invalidField(1, 4)
	}
	if cdb[1]&0x01 != 0 {
		return nil, invalidField(1, 0)
	}
	n := uint64(cdb[4])
	hdrLen := 4
	if ten {
		n = uint64(be16(cdb[7:9]))
		hdrLen = 8
	}
	if n == 0 {
		return nil, nil
	}
	p, err := t.dataOut(n, true)
	if err != nil {
		return nil, err
	}
	if len(p) < hdrLen {
		return nil, ErrParamListLength
	}
	var bdLen int
	long := false
	if ten {
		bdLen = int(be16(p[6:8]))
		long = p[4]&0x01 != 0
	} else {
		bdLen = int(p[3])
	}
	if p[1] != 0 { // MEDIUM TYPE
		return nil, invalidParam(1, -1)
	}
	off := hdrLen
	switch {
	case bdLen == 0:
	case !long && bdLen == 8, long && bdLen == 16:
		if off+bdLen > len(p) {
			return nil, ErrParamListLength
		}
		if err := t.checkBlockDescriptor(p[off:off+bdLen], off, long); err != nil {
			return nil, err
		}
	default:
		return nil, invalidParam(hdrLen-1, -1)
	}
	off += bdLen
	wce := !t.dev.writeThrough.Load()
	newWCE := wce
	swp := t.dev.softWriteProtected()
	newSWP := swp
	for off < len(p) {
		if off+2 > len(p) {
			return nil, ErrParamListLength
		}
		if p[off]&0x40 != 0 { // SPF: no subpages are supported
			return nil, invalidParam(off, 6)
		}
		code := p[off] & 0x3f
		if bytes.IndexByte(t.modePageList(), code) < 0 {
			return nil, invalidParam(off, 5)
		}
		cur := t.appendModePage(nil, code, pcCurrent)
		chg := t.appendModePage(nil, code, pcChangeable)
		plen := int(p[off+1]) + 2
		if plen != len(cur) {
			return nil, invalidParam(off+1, -1)
		}
		if off+plen > len(p) {
			return nil, ErrParamListLength
		}
		got := p[off : off+plen]
		for i := 2; i < plen; i++ {
			if (got[i]^cur[i])&^chg[i] != 0 {
				return nil, invalidParam(off+i, -1)
			}
		}
		switch code {
		case pageCaching:
			newWCE = got[2]&cachingWCE != 0
		case pageControl:
			newSWP = got[4]&controlSWP != 0
		}
		off += plen
	}
	changed := newWCE != wce
	if changed {
		t.dev.writeThrough.Store(!newWCE)
	}
	if newSWP != swp && t.dev.setSoftWriteProtect(newSWP) {
		changed = true
	}
	if changed {
		t.cmd.Nexus.modeChangedHere(t.cmd.LUN, t.dev)
	}
	return nil, nil
}

// checkBlockDescriptor accepts a block descriptor at offset off of the
// parameter list only when it does not ask to change the capacity or the
// block length: NUMBER OF LOGICAL BLOCKS 0 or current, LOGICAL BLOCK
// LENGTH current.
func (t *task) checkBlockDescriptor(d []byte, off int, long bool) error {
	var blocks uint64
	var bs uint32
	var bsOff int
	if long {
		blocks, bs, bsOff = be64(d[0:8]), be32(d[12:16]), 12
	} else {
		blocks, bs, bsOff = uint64(be32(d[0:4])), be32(d[4:8])&0xffffff, 5
	}
	cur := t.blocks()
	if !long && cur > 0xffffffff {
		cur = 0xffffffff
	}
	if blocks != 0 && blocks != cur {
		return invalidParam(off, -1)
	}
	if bs != t.blockSize() {
		return invalidParam(off+bsOff, -1)
	}
	return nil
}
