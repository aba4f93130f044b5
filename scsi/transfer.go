package scsi

// DataOutLength returns the data-out bytes cdb calls for on lu, for the
// commands that transfer logical blocks (WRITE, WRITE AND VERIFY, VERIFY
// with BYTCHK), so that a transport sizes its buffer from the CDB rather
// than from the initiator's expected transfer length alone. It returns
// false for other commands and when lu has no device; the transport then
// has only the expected length to go by. A length beyond MAXIMUM
// TRANSFER LENGTH is returned as such: Execute refuses the command.
func DataOutLength(lu *LogicalUnit, cdb []byte) (uint32, bool) {
	if lu == nil || lu.Device == nil || len(cdb) == 0 {
		return 0, false
	}
	switch Opcode(cdb[0]) {
	case Write6, Write10, Write12, Write16, WriteAndVerify10, WriteAndVerify12, WriteAndVerify16:
	case Verify10, Verify12, Verify16:
	default:
		return 0, false
	}
	if len(cdb) < cdbLength(cdb) {
		return 0, false
	}
	rw := decodeRW(cdb)
	bs := uint64(lu.Device.cfg.BlockSize)
	blocks := rw.n
	switch Opcode(cdb[0]) {
	case Verify10, Verify12, Verify16:
		switch (rw.flags & maskBytchk) >> shiftBytchk {
		case bytchkNone:
			blocks = 0
		case bytchkCompare:
		case bytchkSingle:
			blocks = min(blocks, 1)
		default:
			return 0, false
		}
	}
	return uint32(min(blocks*bs, 1<<32-1)), true
}
