package scsi

// testUnitReady handles TEST UNIT READY (SPC-4 §6.47): the dispatcher has
// already reported NOT READY for an offline device and any unit attention.
func testUnitReady(t *task) ([]byte, error) { return nil, nil }

// requestSense handles REQUEST SENSE (SPC-4 §6.39). It returns, as data
// with GOOD status, LOGICAL UNIT NOT SUPPORTED for a LUN without a logical
// unit, else the pending unit attention (clearing it), else NOT READY for an
// offline device, else NO SENSE.
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
		if t.dev.Offline() != nil {
			e = ErrNotReadyManual
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
