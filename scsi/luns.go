package scsi

import "encoding/binary"

// Select report values of REPORT LUNS (SPC-4 table 180).
const (
	selectAllButWellKnown = 0x00
	selectWellKnown       = 0x01
	selectAll             = 0x02
)

// reportLUNs handles REPORT LUNS (SPC-4 §6.33). It works on any LUN, even
// one that addresses no logical unit, and clears REPORTED LUNS DATA HAS
// CHANGED for the nexus on every LUN.
//
//	byte 2    SELECT REPORT
//	byte 6-9  ALLOCATION LENGTH (at least 16)
func reportLUNs(t *task) ([]byte, error) {
	cdb := t.cdb()
	alloc := be32(cdb[6:10])
	if alloc < 16 {
		return nil, invalidField(6, -1)
	}
	var luns []LUN
	switch cdb[2] {
	case selectAllButWellKnown, selectAll:
		luns = t.cmd.LUNs.LUNs()
	case selectWellKnown:
		// scstd has no well-known logical units.
	default:
		return nil, invalidField(2, -1)
	}
	if t.cmd.Nexus != nil {
		t.cmd.Nexus.reportedLUNs()
	}
	n := 8 + 8*len(luns)
	if uint32(n) > alloc {
		n = int(alloc)
	}
	b := t.dataIn(n)
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(8*len(luns)))
	off := copy(b, hdr[:])
	for _, l := range luns {
		if off >= len(b) {
			break
		}
		e := l.Encode()
		off += copy(b[off:], e[:])
	}
	return b, nil
}
