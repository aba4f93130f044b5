package scsi

// Notification classes of GET EVENT STATUS NOTIFICATION (MMC-6 §6.7):
// bit numbers of the NOTIFICATION CLASS REQUEST and SUPPORTED EVENT
// CLASSES bytes, and the values of the NOTIFICATION CLASS field.
const (
	gesnClassMedia      = 4
	gesnClassDeviceBusy = 6
	gesnSupported       = 1<<gesnClassMedia | 1<<gesnClassDeviceBusy
	gesnNEA             = 0x80 // no event available: no supported class was asked for
)

// getEventStatus handles GET EVENT STATUS NOTIFICATION (MMC-6 §6.7),
// polled mode only, with the media and device busy classes. A media
// event (new media, media removal) is reported once to each nexus that
// polls, with the media status; the drive is never busy. When both
// classes are asked for, the media class answers (the lower class has
// priority).
//
//	byte 1 bit 0 POLLED (must be 1: asynchronous mode is not supported)
//	byte 4       NOTIFICATION CLASS REQUEST
//	byte 7-8     ALLOCATION LENGTH
//
// The response: EVENT DESCRIPTOR LENGTH (2 bytes, what follows it), NEA
// (7) and NOTIFICATION CLASS (2-0), SUPPORTED EVENT CLASSES, then the
// 4-byte event descriptor:
//
//	media       EVENT CODE (3-0); MEDIA PRESENT (1), DOOR OR TRAY OPEN (0); START SLOT; END SLOT
//	device busy EVENT CODE (3-0); BUSY STATUS; TIME (2 bytes)
func getEventStatus(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[1]&0x01 == 0 {
		return nil, invalidField(1, 0)
	}
	alloc := uint32(be16(cdb[7:9]))
	req := cdb[4] & gesnSupported
	if req == 0 {
		b := t.dataIn(4)
		b[1], b[2], b[3] = 2, gesnNEA, gesnSupported
		return allocLen(b, alloc), nil
	}
	b := t.dataIn(8)
	b[1], b[3] = 6, gesnSupported
	if req&(1<<gesnClassMedia) == 0 {
		b[2] = gesnClassDeviceBusy // no event, not busy
		return allocLen(b, alloc), nil
	}
	b[2] = gesnClassMedia
	b[4] = t.cmd.Nexus.takeMediaEvent(t.cmd.LUN, t.dev)
	switch {
	case t.dev.ejected.Load():
		b[5] = 0x01 // DOOR OR TRAY OPEN
	case t.be != nil:
		b[5] = 0x02 // MEDIA PRESENT
	}
	return allocLen(b, alloc), nil
}
