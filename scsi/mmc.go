package scsi

import "encoding/binary"

// MMC-6 commands a read-only CD-ROM or DVD-ROM device (vcdrom) needs
// besides those it shares with disks (INQUIRY, TEST UNIT READY, READ(10/
// 12), READ CAPACITY(10), MODE SENSE, START STOP UNIT, PREVENT ALLOW
// MEDIUM REMOVAL): enough for initiators to find the profile, poll for
// media events and read the table of contents of a single-track,
// single-session disc.

// MMC-6 profiles, features and addressing.
const (
	mmcProfileNone            = 0x0000
	mmcProfileCDROM           = 0x0008
	mmcProfileDVDROM          = 0x0010
	mmcCDCapacityBytes        = 900 << 20 // larger images are DVD-ROM
	mmcTrackDataControl       = 0x14      // ADR 1, CONTROL 4: data track
	mmcLeadOut                = 0xaa
	mmcMediaEventsClass       = 4
	mmcFramesPerSecond        = 75
	mmcLeadInFrames           = 150 // MSF addresses start at 00:02:00
	mmcFeatureProfileList     = 0x0000
	mmcFeatureCore            = 0x0001
	mmcFeatureRemovableMedium = 0x0003
	mmcFeatureRandomReadable  = 0x0010
)

// mmcProfile returns the current profile: none without medium, DVD-ROM
// for images larger than a CD holds, else CD-ROM.
func (t *task) mmcProfile() uint16 {
	switch {
	case t.be == nil || t.dev.ejected.Load():
		return mmcProfileNone
	case t.size > mmcCDCapacityBytes:
		return mmcProfileDVDROM
	}
	return mmcProfileCDROM
}

// appendFeature appends a feature descriptor (MMC-6 §5.2.2).
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

// getConfiguration handles GET CONFIGURATION (MMC-6 §6.6): the profile
// list (CD-ROM, DVD-ROM), Core, Removable Medium and Random Readable
// features.
//
//	byte 1    RT (1-0): 00b all, 01b current, 10b the starting feature only
//	byte 2-3  STARTING FEATURE NUMBER
//	byte 7-8  ALLOCATION LENGTH
func getConfiguration(t *task) ([]byte, error) {
	cdb := t.cdb()
	rt := cdb[1] & 0x03
	if rt == 3 {
		return nil, invalidField(1, 1)
	}
	start := be16(cdb[2:4])
	profile := t.mmcProfile()
	present := profile != mmcProfileNone

	b := make([]byte, 8, 64)
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
			cur = 1
		}
		profiles = append(binary.BigEndian.AppendUint16(profiles, p), cur, 0)
	}
	add(mmcFeatureProfileList, 0, true, true, profiles)
	// Core: physical interface standard 1 (SCSI family).
	add(mmcFeatureCore, 2, true, true, []byte{0, 0, 0, 1, 0, 0, 0, 0})
	// Removable Medium: tray loading mechanism, Load, Eject, Lock.
	add(mmcFeatureRemovableMedium, 2, true, true, []byte{0x39, 0, 0, 0})
	var rr [8]byte
	binary.BigEndian.PutUint32(rr[0:4], t.blockSize())
	binary.BigEndian.PutUint16(rr[4:6], 1) // BLOCKING
	if profile == mmcProfileDVDROM {
		binary.BigEndian.PutUint16(rr[4:6], 16)
	}
	add(mmcFeatureRandomReadable, 0, false, present, rr[:])
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-4))
	return allocLen(b, uint32(be16(cdb[7:9]))), nil
}

// getEventStatus handles GET EVENT STATUS NOTIFICATION (MMC-6 §6.7),
// polled mode only, with the media event class: no event pending, and
// whether a medium is present.
//
//	byte 1 bit 0 POLLED (must be 1)
//	byte 4       NOTIFICATION CLASS REQUEST
//	byte 7-8     ALLOCATION LENGTH
func getEventStatus(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[1]&0x01 == 0 {
		return nil, invalidField(1, 0)
	}
	const supported = 1 << mmcMediaEventsClass
	if cdb[4]&supported == 0 {
		// No supported class asked for: NEA, header only.
		b := []byte{0, 2, 0x80, supported}
		return allocLen(b, uint32(be16(cdb[7:9]))), nil
	}
	b := []byte{0, 6, mmcMediaEventsClass, supported, 0, 0, 0, 0}
	if t.mmcProfile() != mmcProfileNone {
		b[5] = 0x02 // MEDIA PRESENT
	}
	return allocLen(b, uint32(be16(cdb[7:9]))), nil
}

// appendTOCAddress appends a track start address as an LBA or, when msf,
// as minute/second/frame.
func appendTOCAddress(b []byte, lba uint32, msf bool) []byte {
	if !msf {
		return binary.BigEndian.AppendUint32(b, lba)
	}
	f := uint64(lba) + mmcLeadInFrames
	m := f / (60 * mmcFramesPerSecond)
	if m > 0xff {
		m = 0xff
	}
	return append(b, 0, byte(m), byte(f/mmcFramesPerSecond%60), byte(f%mmcFramesPerSecond))
}

// readTOC handles READ TOC/PMA/ATIP (MMC-6 §6.26) for a disc of one data
// track in one session: format 0000b (TOC) and 0001b (session
// information).
//
//	byte 1 bit 1 MSF
//	byte 2       FORMAT (3-0)
//	byte 6       TRACK/SESSION NUMBER
//	byte 7-8     ALLOCATION LENGTH
func readTOC(t *task) ([]byte, error) {
	cdb := t.cdb()
	msf := cdb[1]&0x02 != 0
	track := cdb[6]
	b := make([]byte, 4, 20)
	b[2], b[3] = 1, 1 // first and last track (or session)
	switch cdb[2] & 0x0f {
	case 0:
		if track > 1 && track != mmcLeadOut {
			return nil, invalidField(6, -1)
		}
		if track <= 1 {
			b = append(b, 0, mmcTrackDataControl, 1, 0)
			b = appendTOCAddress(b, 0, msf)
		}
		b = append(b, 0, mmcTrackDataControl, mmcLeadOut, 0)
		b = appendTOCAddress(b, uint32(min(t.blocks(), 0xffffffff)), msf)
	case 1:
		b = append(b, 0, mmcTrackDataControl, 1, 0)
		b = appendTOCAddress(b, 0, msf)
	default:
		return nil, invalidField(2, 3)
	}
	binary.BigEndian.PutUint16(b[0:2], uint16(len(b)-2))
	return allocLen(b, uint32(be16(cdb[7:9]))), nil
}

// mmcCommands are the MMC-only commands, added to the dispatch table with
// the core ones.
var mmcCommands = []commandDesc{
	{op: ReadTOC, cdbLen: 10, types: typesCDROM,
		usage:   []byte{0x43, 0x02, 0x0f, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x07},
		handler: readTOC},
	{op: GetConfiguration, cdbLen: 10, types: typesCDROM, flags: flagNoMedium,
		usage:   []byte{0x46, 0x03, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0x07},
		handler: getConfiguration},
	{op: GetEventStatusNotif, cdbLen: 10, types: typesCDROM, flags: flagNoMedium,
		usage:   []byte{0x4a, 0x01, 0x00, 0x00, 0xff, 0x00, 0x00, 0xff, 0xff, 0x07},
		handler: getEventStatus},
}
