package scsi

import "math/bits"

// READ CD fields (MMC-6 §6.17).
const (
	readCDSectorTypeMask  = 0x1c // byte 1 bits 4-2: EXPECTED SECTOR TYPE
	readCDSectorTypeShift = 2
	readCDUserData        = 0x10 // byte 9: USER DATA
	readCDSubChannelMask  = 0x07 // byte 10: SUB-CHANNEL DATA SELECTION
)

// Expected sector types of READ CD.
const (
	sectorAnyType    = 0 // all types
	sectorCDDA       = 1
	sectorMode1      = 2
	sectorMode2      = 3 // formless
	sectorMode2Form1 = 4
	sectorMode2Form2 = 5
)

// readCD handles READ CD (MMC-6 §6.17) on a CD whose sectors are all
// mode 1 with 2048 bytes of user data: with EXPECTED SECTOR TYPE all types
// or mode 1, it returns the user data of each sector (byte 9 = 10h), or
// nothing (byte 9 = 00h). The sector types a data disc does not hold
// (CD-DA, mode 2) are ILLEGAL MODE FOR THIS TRACK, as is READ CD on a
// DVD; the parts of a sector it cannot produce (sync pattern, headers,
// EDC/ECC, C2 error information, sub-channel data) are INVALID FIELD IN
// CDB pointing at the bit asked for.
//
//	byte 1 bits 4-2 EXPECTED SECTOR TYPE; bit 1 DAP (for CD-DA: ignored)
//	byte 2-5        STARTING LOGICAL BLOCK ADDRESS
//	byte 6-8        TRANSFER LENGTH (sectors)
//	byte 9          SYNC (7), HEADER CODES (6-5), USER DATA (4),
//	                EDC & ECC (3), C2 ERROR INFORMATION (2-1)
//	byte 10 bits 2-0 SUB-CHANNEL DATA SELECTION
func readCD(t *task) ([]byte, error) {
	cdb := t.cdb()
	switch (cdb[1] & readCDSectorTypeMask) >> readCDSectorTypeShift {
	case sectorAnyType, sectorMode1:
	case sectorCDDA, sectorMode2, sectorMode2Form1, sectorMode2Form2:
		return nil, ErrIllegalModeForTrack
	default:
		return nil, invalidField(1, 4)
	}
	if other := cdb[9] &^ readCDUserData &^ 0x01; other != 0 {
		return nil, invalidField(9, bits.Len8(other)-1)
	}
	if cdb[10]&readCDSubChannelMask != 0 {
		return nil, invalidField(10, 2)
	}
	if t.mmcProfile() != mmcProfileCDROM {
		return nil, ErrIllegalModeForTrack
	}
	lba := uint64(be32(cdb[2:6]))
	n := uint64(cdb[6])<<16 | uint64(be16(cdb[7:9]))
	if err := t.checkTransfer(n, 6); err != nil {
		return nil, err
	}
	if err := t.checkRange(lba, n); err != nil {
		return nil, err
	}
	if n == 0 || cdb[9]&readCDUserData == 0 {
		return nil, nil
	}
	b, err := t.readBlocks(lba, n)
	if err == nil {
		t.noteRead(lba, n)
	}
	return b, err
}
