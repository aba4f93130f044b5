package scsi

// testUnitReady handles TEST UNIT READY (SPC-4 §6.47): the dispatcher has
// already reported NOT READY for an offline device and any unit attention.
func testUnitReady(t *task) ([]byte, error) { return nil, nil }

// requestSense handles REQUEST SENSE (SPC-4 §6.39). It returns, as data
// with GOOD status, LOGICAL UNIT NOT SUPPORTED for a LUN without a logical
// unit, else the pending unit attention (clearing it), else NOT READY for an
// offline device or a missing or ejected medium, else NOT READY for a
// target port whose asymmetric access state refuses media access, else
// NO SENSE.
//
//	byte 1 bit 0 DESC: descriptor format sense data
//	byte 4       ALLOCATION LENGTH
func requestSense(t *task) ([]byte, error) {
	cdb := t.cdb()
	desc := cdb[1]&0x01 != 0
	if cdb[1]&0xfe != 0 {
		return nil, invalidField(1, -1)
	}
	e := &SenseError{Key: NoSense}
	switch {
	case t.dev == nil:
		e = ErrLUNotSupported
	case t.cmd.Nexus != nil:
		if ua := t.cmd.Nexus.takeUA(t.cmd.LUN, t.dev); ua != nil {
			e = ua
			break
		}
		fallthrough
	default:
		if nr := t.dev.deviceNotReady(); nr != nil {
			e = nr
		} else if a := t.portStateSense(); a != nil {
			e = a
		}
	}
	var b []byte
	if desc {
		b = e.AppendDescriptor(t.dataIn(0)[:0])
	} else {
		b = e.AppendFixed(t.dataIn(0)[:0])
	}
	return allocLen(b, uint32(cdb[4])), nil
}

// startStopUnit handles START STOP UNIT (SBC-3 §5.25). A non-zero POWER
// CONDITION is accepted and START and LOEJ are then ignored, as SBC-3
// says. On a removable device LOEJ ejects (START=0) or loads (START=1) the
// medium, unless a PREVENT ALLOW MEDIUM REMOVAL is in force (MEDIUM
// REMOVAL PREVENTED); see ejectOrLoad. On a fixed disk START and LOEJ are accepted and have
// no effect: the backend is always spinning.
//
//	byte 1 bit 0 IMMED
//	byte 3       POWER CONDITION MODIFIER
//	byte 4       POWER CONDITION (7-4), NO_FLUSH (2), LOEJ (1), START (0)
func startStopUnit(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[4]>>4 != 0 {
		return nil, nil
	}
	loej := cdb[4]&0x02 != 0
	start := cdb[4]&0x01 != 0
	if !loej || !t.dev.removable() {
		return nil, nil
	}
	return nil, t.ejectOrLoad(start)
}

// preventAllow handles PREVENT ALLOW MEDIUM REMOVAL (SBC-3 §5.10):
// PREVENT 01b keeps the medium of a removable device in until this nexus
// allows it again (00b), a logical unit reset or the nexus ends (see
// Nexus.Close). PREVENT 10b and 11b are obsolete (INVALID FIELD IN CDB).
//
//	byte 4 bits 1-0 PREVENT
func preventAllow(t *task) ([]byte, error) {
	prevent := t.cdb()[4] & 0x03
	if prevent > 1 {
		return nil, invalidField(4, 1)
	}
	t.dev.setPrevent(t.cmd.Nexus, prevent == 1)
	return nil, nil
}
