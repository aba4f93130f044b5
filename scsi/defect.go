package scsi

import "encoding/binary"

// readDefectData handles READ DEFECT DATA(10) and (12) (SBC-3 §5.17-5.18).
// A virtual disk has no defects: the lists asked for are reported valid
// and empty, in the format asked for.
//
//	(10) byte 2 REQ_PLIST (4), REQ_GLIST (3), DEFECT LIST FORMAT (2-0); byte 7-8 ALLOCATION LENGTH
//	(12) byte 1 the same flags;                                          byte 6-9 ALLOCATION LENGTH
func readDefectData(t *task) ([]byte, error) {
	cdb := t.cdb()
	var b []byte
	if Opcode(cdb[0]) == ReadDefectData10 {
		b = t.dataIn(4)
		b[1] = cdb[2] & 0x1f
		return allocLen(b, uint32(be16(cdb[7:9]))), nil
	}
	b = t.dataIn(8)
	b[1] = cdb[1] & 0x1f
	binary.BigEndian.PutUint32(b[4:8], 0) // DEFECT LIST LENGTH
	return allocLen(b, be32(cdb[6:10])), nil
}
