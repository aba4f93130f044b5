package scsi

import (
	"encoding/binary"
)

// The MMC-6 commands of a read-only CD-ROM or DVD-ROM drive (vcdrom)
// besides those it shares with disks (INQUIRY, TEST UNIT READY, READ(10/
// 12), READ CAPACITY(10), MODE SENSE, START STOP UNIT, PREVENT ALLOW
// MEDIUM REMOVAL): what OS installers, firmware (OVMF, SeaBIOS) and the
// Linux sr and Windows cdrom drivers ask of a drive holding a pressed
// disc of one data track (mode 1, 2048-byte sectors) in one finalized
// session. This file has the profiles and features (GET CONFIGURATION),
// MECHANISM STATUS and the capabilities mode page; mmc_events.go, GET
// EVENT STATUS NOTIFICATION; mmc_toc.go, READ TOC/PMA/ATIP and READ DISC
// INFORMATION; mmc_readcd.go, READ CD. medium.go keeps the medium state.

// MMC-6 profiles (§5.3.1) and the disc geometry.
const (
	mmcProfileNone   = 0x0000
	mmcProfileCDROM  = 0x0008
	mmcProfileDVDROM = 0x0010
	// mmcCDMaxBlocks is the capacity of an 80-minute CD in 2048-byte
	// sectors (80 × 60 × 75); a larger image is a DVD-ROM.
	mmcCDMaxBlocks      = 80 * 60 * mmcFramesPerSecond
	mmcTrackDataControl = 0x14 // ADR 1 (Q mode 1), CONTROL 4: data track, copy prohibited
	mmcLeadOut          = 0xaa
	mmcFramesPerSecond  = 75
	mmcLeadInFrames     = 150 // MSF addresses start at 00:02:00
	mmcDVDBlocking      = 16  // blocks per ECC block on a DVD
)

// MMC-6 feature codes (§5.3).
const (
	mmcFeatureProfileList     = 0x0000
	mmcFeatureCore            = 0x0001
	mmcFeatureMorphing        = 0x0002
	mmcFeatureRemovableMedium = 0x0003
	mmcFeatureRandomReadable  = 0x0010
	mmcFeatureCDRead          = 0x001e
	mmcFeatureDVDRead         = 0x001f
)

// mmcProfile returns the current profile: none without an accessible
// medium, DVD-ROM for an image larger than a CD holds, else CD-ROM.
func (t *task) mmcProfile() uint16 {
	switch {
	case t.be == nil || t.dev.ejected.Load():
		return mmcProfileNone
	case t.blocks() > mmcCDMaxBlocks:
		return mmcProfileDVDROM
	}
	return mmcProfileCDROM
}

// appendFeature appends a feature descriptor (MMC-6 §5.2.2):
//
//	byte 0-1 FEATURE CODE
//	byte 2   VERSION (5-2), PERSISTENT (1), CURRENT (0)
//	byte 3   ADDITIONAL LENGTH, then the feature's own data
func appendFeature(b []byte, code uint16, version byte, persistent, current bool, data []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, code)
	flags := version << 2
	if persistent {
		flags |= 0x02
	}
	if current {
		flags |= 0x01
	}
	b = append(b, flags, byte(len(data)))
	return append(b, data...)
}

// Feature data of the drive's fixed features.
var (
	// Core: PHYSICAL INTERFACE STANDARD 1 (SCSI family); DBE: GET EVENT
	// STATUS NOTIFICATION reports the device busy class.
	mmcCoreData = []byte{0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00}
	// Morphing: polled GET EVENT STATUS NOTIFICATION only (ASYNC 0), no
	// operational change events (OCEVENT 0).
	mmcMorphingData = []byte{0x00, 0x00, 0x00, 0x00}
	// Removable Medium: LOADING MECHANISM TYPE 001b (tray), LOAD and
	// EJECT by START STOP UNIT, PVNT JMPR 1 (no prevent jumper), LOCK
	// (PREVENT ALLOW MEDIUM REMOVAL locks the medium in).
	mmcRemovableData = []byte{0x3d, 0x00, 0x00, 0x00}
	// CD Read: no DAP, no C2 error flags, no CD-Text. DVD Read: not a
	// DVD Multi drive, no dual layer recordables.
	mmcCDReadData  = []byte{0x00, 0x00, 0x00, 0x00}
	mmcDVDReadData = []byte{0x00, 0x00, 0x00, 0x00}
)

// getConfiguration handles GET CONFIGURATION (MMC-6 §6.6): the current
// profile, then the features in ascending order: Profile List (DVD-ROM,
// CD-ROM), Core, Morphing and Removable Medium, always current; Random
// Readable when a disc is in; CD Read for a CD, DVD Read for a DVD.
//
//	byte 1    RT (1-0): 00b all from the starting feature, 01b the
//	          current ones from it, 10b the starting feature only
//	byte 2-3  STARTING FEATURE NUMBER
//	byte 7-8  ALLOCATION LENGTH
//
// The response: DATA LENGTH (4 bytes, what follows it), 2 reserved,
// CURRENT PROFILE (2 bytes), feature descriptors.
func getConfiguration(t *task) ([]byte, error) {
	cdb := t.cdb()
	rt := cdb[1] & 0x03
	if rt == 3 {
		return nil, invalidField(1, 1)
	}
	start := be16(cdb[2:4])
	profile := t.mmcProfile()

	b := make([]byte, 8, 96)
	binary.BigEndian.PutUint16(b[6:8], profile)
	add := func(code uint16, version byte, persistent, current bool, data []byte) {
		switch {
		case rt == 2 && code != start, code < start, rt == 1 && !current:
			return
		}
		b = appendFeature(b, code, version, persistent, current, data)
	}
	var profiles []byte
	for _, p := range []uint16{mmcProfileDVDROM, mmcProfileCDROM} {
		cur := byte(0)
		if p == profile {
			cur = 1 // CURRENTP
		}
		profiles = append(binary.BigEndian.AppendUint16(profiles, p), cur, 0)
	}
	add(mmcFeatureProfileList, 0, true, true, profiles)
	add(mmcFeatureCore, 2, true, true, mmcCoreData)
	add(mmcFeatureMorphing, 1, true, true, mmcMorphingData)
	add(mmcFeatureRemovableMedium, 2, true, true, mmcRemovableData)
	// Random Readable: LOGICAL BLOCK SIZE, BLOCKING, PP 0 (no read/write
	// error recovery page).
	var rr [8]byte
	binary.BigEndian.PutUint32(rr[0:4], t.blockSize())
	binary.BigEndian.PutUint16(rr[4:6], 1)
	if profile == mmcProfileDVDROM {
		binary.BigEndian.PutUint16(rr[4:6], mmcDVDBlocking)
	}
	add(mmcFeatureRandomReadable, 0, false, profile != mmcProfileNone, rr[:])
	add(mmcFeatureCDRead, 2, false, profile == mmcProfileCDROM, mmcCDReadData)
	add(mmcFeatureDVDRead, 2, false, profile == mmcProfileDVDROM, mmcDVDReadData)
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-4))
	return allocLen(b, uint32(be16(cdb[7:9]))), nil
}

// mechanismStatus handles MECHANISM STATUS (MMC-6 §6.10): a drive that is
// no changer, idle, with its door (tray) open after an eject, and the
// last block read as its current address.
//
//	byte 8-9 ALLOCATION LENGTH
//
// The response is the 8-byte header with no slot tables:
//
//	byte 0   FAULT (7), CHANGER STATE (6-5), CURRENT SLOT (4-0)
//	byte 1   MECHANISM STATE (7-5), DOOR OPEN (4), CURRENT SLOT high (2-0)
//	byte 2-4 CURRENT LBA (legacy)
//	byte 5   NUMBER OF SLOTS AVAILABLE
//	byte 6-7 LENGTH OF SLOT TABLES
func mechanismStatus(t *task) ([]byte, error) {
	cdb := t.cdb()
	b := t.dataIn(8)
	if t.dev.ejected.Load() {
		b[1] = 0x10
	}
	lba := min(t.dev.lastRead.Load(), 0xffffff)
	b[2], b[3], b[4] = byte(lba>>16), byte(lba>>8), byte(lba)
	return allocLen(b, uint32(be16(cdb[8:10]))), nil
}

// noteRead remembers the last block a read reached on a CD-ROM, for
// MECHANISM STATUS.
func (t *task) noteRead(lba, n uint64) {
	if t.dev.cfg.Type == TypeCDROM && n > 0 {
		t.dev.lastRead.Store(uint32(min(lba+n-1, 0xffffffff)))
	}
}

// readNoted is READ(10) and READ(12) on every device type: read, which on
// a CD-ROM also remembers where it stopped (noteRead).
func readNoted(t *task) ([]byte, error) {
	b, err := read(t)
	if err == nil {
		rw := decodeRW(t.cdb())
		t.noteRead(rw.lba, rw.n)
	}
	return b, err
}

// pageCapabilities is the CD/DVD Capabilities and Mechanical Status mode
// page (MMC, page code 2Ah), 32 bytes with no write speed descriptors.
const (
	pageCapabilities    = 0x2a
	capabilitiesPageLen = 32
)

// appendCapabilitiesPage appends mode page 2Ah as page control pc asks.
// It is read only: no field is changeable. The drive reads CD-ROM and
// DVD-ROM discs (no CD-R/RW, no write bits, no audio, no mode 2, no
// sub-channel), has a tray it ejects and locks, no prevent jumper, and
// reports the lock state (a PREVENT ALLOW MEDIUM REMOVAL in force):
//
//	byte 0    PS 0, PAGE CODE 2Ah     byte 1     PAGE LENGTH 1Eh
//	byte 2    DVD-ROM READ (3)        byte 3     write bits: none
//	byte 4    audio, mode 2: none     byte 5     CD-DA, sub-channel: none
//	byte 6    LOADING MECHANISM TYPE (7-5) 001b tray, EJECT (3),
//	          PREVENT JUMPER (2) 0: none, LOCK STATE (1), LOCK (0)
//	byte 7    changer, volume: none   byte 8-31  speeds, buffer, copy
//	                                             management, write speed
//	                                             descriptors: 0
func (t *task) appendCapabilitiesPage(b []byte, pc int) []byte {
	var p [capabilitiesPageLen]byte
	p[0], p[1] = pageCapabilities, capabilitiesPageLen-2
	if pc == pcChangeable {
		return append(b, p[:]...)
	}
	p[2] = 0x08
	p[6] = 0x20 | 0x08 | 0x01
	if pc == pcCurrent && t.dev.removalPrevented() {
		p[6] |= 0x02
	}
	return append(b, p[:]...)
}

// mmcCommands are the MMC-only commands, added to the dispatch table with
// the core ones.
var mmcCommands = []commandDesc{
	{op: ReadTOC, cdbLen: 10, types: typesCDROM,
		usage:   []byte{0x43, 0x02, 0x0f, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xc7},
		handler: readTOC},
	{op: GetConfiguration, cdbLen: 10, types: typesCDROM, flags: flagNoMedium,
		usage:   []byte{0x46, 0x03, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0x07},
		handler: getConfiguration},
	{op: GetEventStatusNotif, cdbLen: 10, types: typesCDROM, flags: flagNoMedium,
		usage:   []byte{0x4a, 0x01, 0x00, 0x00, 0xff, 0x00, 0x00, 0xff, 0xff, 0x07},
		handler: getEventStatus},
	{op: ReadDiscInformation, cdbLen: 10, types: typesCDROM,
		usage:   []byte{0x51, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x07},
		handler: readDiscInformation},
	{op: MechanismStatus, cdbLen: 12, types: typesCDROM, flags: flagNoMedium,
		usage:   []byte{0xbd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x07},
		handler: mechanismStatus},
	{op: ReadCD, cdbLen: 12, types: typesCDROM,
		usage:   []byte{0xbe, 0x1c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x07, 0x07},
		handler: readCD},
}
