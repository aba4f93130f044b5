package scsi

import "encoding/binary"

// READ TOC/PMA/ATIP formats (MMC-6 §6.26.2.5).
const (
	tocFormatTOC     = 0x0
	tocFormatSession = 0x1
	tocFormatFullTOC = 0x2
	tocFormatPMA     = 0x3
	tocFormatATIP    = 0x4
	tocFormatCDText  = 0x5
)

// Lead-in points of the full TOC (Q sub-channel mode 1 in the lead-in).
const (
	tocPointFirstTrack = 0xa0 // PMIN: first track number, PSEC: disc type
	tocPointLastTrack  = 0xa1 // PMIN: last track number
	tocPointLeadOut    = 0xa2 // PMIN/PSEC/PFRAME: start of the lead-out
)

// msfOf converts a logical block address to the minute, second and frame
// of its absolute time (LBA 0 is 00:02:00), the minute capped at 255.
func msfOf(lba uint64) (m, s, f byte) {
	fr := lba + mmcLeadInFrames
	return byte(min(fr/(60*mmcFramesPerSecond), 0xff)), byte(fr / mmcFramesPerSecond % 60), byte(fr % mmcFramesPerSecond)
}

// appendTOCAddress appends a track start address as an LBA or, when msf,
// as 0, minute, second, frame.
func appendTOCAddress(b []byte, lba uint64, msf bool) []byte {
	if !msf {
		return binary.BigEndian.AppendUint32(b, uint32(min(lba, 0xffffffff)))
	}
	m, s, f := msfOf(lba)
	return append(b, 0, m, s, f)
}

// appendFullTOCEntry appends an 11-byte full TOC track descriptor of
// session 1 for point, its PMIN/PSEC/PFRAME given: SESSION NUMBER,
// ADR/CONTROL, TNO 0 (lead-in), POINT, MIN SEC FRAME 0 (the lead-in
// address it was read at), ZERO, PMIN, PSEC, PFRAME.
func appendFullTOCEntry(b []byte, point, pmin, psec, pframe byte) []byte {
	return append(b, 1, mmcTrackDataControl, 0, point, 0, 0, 0, 0, pmin, psec, pframe)
}

// readTOC handles READ TOC/PMA/ATIP (MMC-6 §6.26) for a pressed disc of
// one data track in one finalized session:
//
//	0000b TOC          track 1 and the lead-out (track AAh); TRACK NUMBER
//	                   0 or 1 from track 1, AAh the lead-out alone
//	0001b session info the first track of the last complete session
//	0010b full TOC     lead-in points A0h, A1h, A2h and track 1, always
//	                   in MSF; SESSION NUMBER 0 or 1
//	0011b PMA, 0100b ATIP, 0101b CD-TEXT: a pressed CD has none, the
//	                   answer is the header alone (data length 2)
//
// A DVD-ROM answers formats 0000b and 0001b as a CD would (MMC-6 fabricates
// a TOC for it); the other formats are for CDs only. MSF selects
// minute/second/frame addresses for formats 0000b and 0001b. A FORMAT of
// 0 with the format bits of older drives set in the CONTROL byte (SFF-8020i:
// 01b session info, 10b full TOC) is taken as those.
//
//	byte 1 bit 1 MSF
//	byte 2       FORMAT (3-0)
//	byte 6       TRACK/SESSION NUMBER
//	byte 7-8     ALLOCATION LENGTH
//	byte 9       CONTROL, its bits 7-6 the older FORMAT
//
// The response: DATA LENGTH (2 bytes, what follows it), FIRST and LAST
// TRACK (session) NUMBER, then the descriptors: 8 bytes for formats 0000b
// and 0001b (0, ADR/CONTROL, TRACK NUMBER, 0, START ADDRESS), 11 bytes for
// 0010b.
func readTOC(t *task) ([]byte, error) {
	cdb := t.cdb()
	msf := cdb[1]&0x02 != 0
	format := cdb[2] & 0x0f
	if format == tocFormatTOC && cdb[9]>>6 != 0 {
		format = cdb[9] >> 6
		if format > tocFormatFullTOC {
			return nil, invalidField(9, 7)
		}
	}
	track := cdb[6]
	cd := t.mmcProfile() == mmcProfileCDROM
	var buf [48]byte
	b := append(buf[:0], 0, 0, 1, 1) // first and last track (session): 1
	switch format {
	case tocFormatTOC:
		if track > 1 && track != mmcLeadOut {
			return nil, invalidField(6, -1)
		}
		if track <= 1 {
			b = append(b, 0, mmcTrackDataControl, 1, 0)
			b = appendTOCAddress(b, 0, msf)
		}
		b = append(b, 0, mmcTrackDataControl, mmcLeadOut, 0)
		b = appendTOCAddress(b, t.blocks(), msf)
	case tocFormatSession:
		b = append(b, 0, mmcTrackDataControl, 1, 0)
		b = appendTOCAddress(b, 0, msf)
	case tocFormatFullTOC:
		if !cd {
			return nil, invalidField(2, 3)
		}
		if track > 1 {
			return nil, invalidField(6, -1)
		}
		m, s, f := msfOf(t.blocks())
		b = appendFullTOCEntry(b, tocPointFirstTrack, 1, 0x00, 0) // disc type 00h: CD-DA or CD-ROM
		b = appendFullTOCEntry(b, tocPointLastTrack, 1, 0, 0)
		b = appendFullTOCEntry(b, tocPointLeadOut, m, s, f)
		m, s, f = msfOf(0)
		b = appendFullTOCEntry(b, 1, m, s, f)
	case tocFormatPMA, tocFormatATIP, tocFormatCDText:
		if !cd {
			return nil, invalidField(2, 3)
		}
		b[2], b[3] = 0, 0 // reserved
	default:
		return nil, invalidField(2, 3)
	}
	binary.BigEndian.PutUint16(b[0:2], uint16(len(b)-2))
	out := t.dataInNoClear(len(b))
	copy(out, b)
	return allocLen(out, uint32(be16(cdb[7:9]))), nil
}

// discInfoLen is the length of standard disc information with no OPC
// tables.
const discInfoLen = 34

// readDiscInformation handles READ DISC INFORMATION (MMC-6 §6.22) with
// DATA TYPE 000b, standard disc information, for a pressed disc: not
// erasable, last session complete, disc finalized, one session holding
// track 1 alone; no disc identification, bar code or OPC tables. The
// lead-in and lead-out start addresses of a finalized disc are all ones
// (FF/FF/FF in MSF on a CD, whose first byte is reserved). Track and POW
// resources (001b, 010b) concern recordable discs: INVALID FIELD IN CDB.
//
//	byte 1 bits 2-0 DATA TYPE
//	byte 7-8        ALLOCATION LENGTH
func readDiscInformation(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[1]&0x07 != 0 {
		return nil, invalidField(1, 2)
	}
	b := t.dataIn(discInfoLen)
	binary.BigEndian.PutUint16(b[0:2], discInfoLen-2) // DISC INFORMATION LENGTH
	b[2] = 0x0e                                       // STATE OF LAST SESSION 11b complete, DISC STATUS 10b finalized
	b[3] = 1                                          // NUMBER OF FIRST TRACK ON DISC
	b[4] = 1                                          // NUMBER OF SESSIONS (LSB)
	b[5] = 1                                          // FIRST TRACK NUMBER IN LAST SESSION (LSB)
	b[6] = 1                                          // LAST TRACK NUMBER IN LAST SESSION (LSB)
	// b[8] DISC TYPE 00h: CD-DA or CD-ROM (and every non-CD disc).
	leadIn, leadOut := b[16:20], b[20:24]
	copy(leadIn, []byte{0xff, 0xff, 0xff, 0xff})
	copy(leadOut, leadIn)
	if t.mmcProfile() == mmcProfileCDROM {
		leadIn[0], leadOut[0] = 0, 0
	}
	return allocLen(b, uint32(be16(cdb[7:9]))), nil
}
