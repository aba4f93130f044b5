package scsi

import "encoding/binary"

// Reporting options of REPORT SUPPORTED OPERATION CODES (SPC-4 table 208).
const (
	rsocAll          = 0 // every command
	rsocOpcode       = 1 // one opcode without service actions
	rsocOpcodeSA     = 2 // one opcode and service action
	rsocOpcodeMaybeS = 3 // one opcode, with service action when it has them
)

// SUPPORT values of the one-command format.
const (
	supportNo  = 1
	supportYes = 3
)

// reportSupportedOpcodes handles REPORT SUPPORTED OPERATION CODES (SPC-4
// §6.35), MAINTENANCE IN service action 0Ch, from the dispatch table:
// every command a device of this type supports, or one of them with its
// CDB usage data; with RCTD each carries a command timeouts descriptor.
//
//	byte 2    RCTD (7), REPORTING OPTIONS (2-0)
//	byte 3    REQUESTED OPERATION CODE
//	byte 4-5  REQUESTED SERVICE ACTION
//	byte 6-9  ALLOCATION LENGTH
func reportSupportedOpcodes(t *task) ([]byte, error) {
	cdb := t.cdb()
	rctd := cdb[2]&0x80 != 0
	opt := cdb[2] & 0x07
	op := Opcode(cdb[3])
	sa := be16(cdb[4:6])
	alloc := be32(cdb[6:10])
	switch opt {
	case rsocAll:
		return allocLen(t.allCommandDescriptors(rctd), alloc), nil
	case rsocOpcode, rsocOpcodeSA, rsocOpcodeMaybeS:
	default:
		return nil, invalidField(2, 2)
	}
	e := &commandIndex[op]
	hasSA := e.bySA != nil
	switch {
	case opt == rsocOpcode && hasSA:
		return nil, invalidField(3, -1)
	case opt == rsocOpcodeSA && !hasSA && e.desc != nil:
		return nil, invalidField(3, -1)
	case opt == rsocOpcodeSA && sa > 31, opt == rsocOpcodeMaybeS && hasSA && sa > 31:
		return nil, invalidField(4, -1)
	}
	var d *commandDesc
	if hasSA {
		d = e.bySA[sa&0x1f]
	} else {
		d = e.desc
	}
	if d != nil && (!d.types.has(t.dev.cfg.Type) || !t.dev.offersALUA(d.flags)) {
		d = nil
	}
	return allocLen(oneCommandDescriptor(t.dataIn(0)[:0], d, rctd), alloc), nil
}

// allCommandDescriptors builds the all-commands parameter data: a 4-byte
// length, then one 8-byte descriptor per command (plus 12 bytes of
// timeouts with RCTD).
func (t *task) allCommandDescriptors(rctd bool) []byte {
	b := make([]byte, 4, 4+20*len(commandList))
	for _, d := range commandList {
		if !d.types.has(t.dev.cfg.Type) || !t.dev.offersALUA(d.flags) {
			continue
		}
		var e [8]byte
		e[0] = byte(d.op)
		if d.hasSA {
			binary.BigEndian.PutUint16(e[2:4], uint16(d.sa))
			e[5] = 0x01 // SERVACTV
		}
		if rctd {
			e[5] |= 0x02 // CTDP
		}
		binary.BigEndian.PutUint16(e[6:8], uint16(d.cdbLen))
		b = append(b, e[:]...)
		if rctd {
			b = appendTimeouts(b, d)
		}
	}
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-4))
	return b
}

// oneCommandDescriptor appends the one-command parameter data for d (nil:
// not supported).
func oneCommandDescriptor(b []byte, d *commandDesc, rctd bool) []byte {
	if d == nil {
		return append(b, 0, supportNo, 0, 0)
	}
	flags := byte(supportYes)
	if rctd {
		flags |= 0x80 // CTDP
	}
	b = append(b, 0, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(d.cdbLen))
	b = append(b, d.usage...)
	if rctd {
		b = appendTimeouts(b, d)
	}
	return b
}

// appendTimeouts appends a command timeouts descriptor (SPC-4 §6.35.4):
// no nominal time given, the recommended timeout in seconds.
func appendTimeouts(b []byte, d *commandDesc) []byte {
	to := d.timeout
	if to == 0 {
		to = defaultTimeout
	}
	b = append(b, 0x00, 0x0a, 0, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	return binary.BigEndian.AppendUint32(b, to)
}
