package scsi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// Passthrough is the storage of a pass-through device (SCST's dev_disk
// handler): a real SCSI logical unit that executes the initiators'
// commands itself. A Device made with DeviceConfig.Passthrough serves
// from one (SetPassthrough) instead of a vdisk.Backend; its dispatcher
// hands every command to Pass except the few the target answers itself
// (see "Pass-through devices" in the package documentation).
//
// Pass must be safe for concurrent use. Its error return is for commands
// whose outcome the device did not report: a transport failure (mapped
// to sense by the implementation, as a *SenseError), or a device that has
// disappeared (an error wrapping syscall.ENODEV or syscall.ENXIO), which
// takes the Device offline until it is given a Passthrough again.
type Passthrough interface {
	// Pass executes one command on the device and fills in its outcome.
	Pass(c *PassCommand) error
	// BlockSize is the device's logical block size in bytes, read when
	// it was opened; it sizes the data of block commands.
	BlockSize() uint32
	// MaxTransfer is the largest data transfer, in bytes, that one
	// command may carry to or from the device.
	MaxTransfer() int
	// Size is the device's capacity in bytes, read when it was opened.
	Size() (int64, error)
	// Close releases the device. No call may follow it.
	Close() error
}

// PassCommand is one command handed to a Passthrough: the CDB and data
// buffers going in, the device's status, data-in length and sense coming
// back.
type PassCommand struct {
	CDB []byte
	// DataOut is sent to the device (a data-out command); DataIn receives
	// the data-in, at most len(DataIn) bytes. At most one is non-empty.
	DataOut, DataIn []byte
	// Sense receives the sense data the device returns with CHECK
	// CONDITION.
	Sense []byte

	// Status is the device's SCSI status.
	Status Status
	// InLen is the number of data-in bytes the device transferred
	// (len(DataIn) less the residual it reported).
	InLen int
	// SenseLen is the number of sense bytes written to Sense.
	SenseLen int
}

// maxPassSense is the sense buffer given to a Passthrough: the most sense
// data SPC-4 allows (additional sense length 244 plus the header).
const maxPassSense = 252

// passState is what passing a command needs beyond its task: the command
// handed to the device, its sense buffer and room for a rewritten CDB.
// They are pooled, so that passing a command allocates nothing.
type passState struct {
	cmd   PassCommand
	sense [maxPassSense]byte
	cdb   [32]byte
}

var passPool = sync.Pool{New: func() any { return new(passState) }}

// SetPassthrough makes a pass-through device serve from p, bringing it
// online, and caches p's size. A nil p is SetOffline(nil). The storage
// the device served from before is returned as a Drain: the caller
// closes it once Drain.Done is closed, when no command uses it any more.
func (d *Device) SetPassthrough(p Passthrough) Drain {
	if p == nil {
		return d.SetOffline(nil)
	}
	if n, err := p.Size(); err == nil {
		d.setSize(n)
	}
	return d.swap(newState(nil, p, nil))
}

// lose marks st, the state a command took its Passthrough from, as lost
// because the disk reports that it is gone: the device answers NOT READY
// until the engine gives it a Passthrough again (its retries reopen the
// disk), and the lost one is closed through the Drain that replacing st
// returns. A state already replaced is marked alike, to no effect.
func (d *Device) lose(st *devState, err error) {
	e := error(fmt.Errorf("scsi: device %s lost: %w", d.cfg.Name, err))
	st.lost.CompareAndSwap(nil, &e)
}

// passthrough returns the Passthrough st serves from, nil when it serves
// from none or its disk is lost.
func (st *devState) passthrough() Passthrough {
	if st.lost.Load() != nil {
		return nil
	}
	return st.pass
}

// deviceGone reports whether a Passthrough's error says its device has
// disappeared.
func deviceGone(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO)
}

// passThrough executes a command on a pass-through device, after the
// unit attention check that every device shares. The order:
//
//	CDB shorter than its group's length, or NACA set → ILLEGAL REQUEST
//	REPORT LUNS, RESERVE/RELEASE, PERSISTENT RESERVE IN/OUT   the target's own handlers
//	device offline?                       yes → NOT READY 04h/03h (standard INQUIRY: qualifier 001b)
//	REQUEST SENSE with a unit attention of the target's own pending → it, else passed
//	reservation held by another nexus?    yes → RESERVATION CONFLICT
//	read-only LU and a command not known to leave the medium alone → DATA PROTECT 27h/00h
//	INQUIRY VPD 83h                       the device's logical unit designators, the target's port designators
//	everything else                       passed to the device; its status and sense returned verbatim
func (t *task) passThrough() Result {
	cdb := t.cmd.CDB
	if len(cdb) < cdbLength(cdb) {
		return checkCondition(ErrInvalidFieldInCDB)
	}
	if nacaSet(cdb) {
		return checkCondition(invalidField(cdbLength(cdb)-1, 2))
	}
	// The reference on the storage is dropped by Execute when the
	// command completes (see Device.acquire).
	t.st = t.dev.acquire()
	op := Opcode(cdb[0])
	switch op {
	case ReportLUNs, Reserve6, Release6, Reserve10, Release10, PersistentReserveIn, PersistentReserveOut:
		return t.passLocal()
	}
	p := t.st.passthrough()
	if p == nil {
		if op == Inquiry && len(cdb) > 1 && cdb[1]&0x01 == 0 {
			return t.offlineInquiry()
		}
		if op == RequestSense {
			return t.passLocal()
		}
		return checkCondition(ErrNotReadyManual)
	}
	if op == RequestSense && t.cmd.Nexus != nil {
		if ua := t.cmd.Nexus.takeUA(t.cmd.LUN, t.dev); ua != nil {
			return t.senseData(ua)
		}
	}
	if t.dev.reservationConflict(t) {
		return Result{Status: ReservationConflict}
	}
	rule := passRules[cdb[0]]
	if t.readOnly() && (!rule.known || rule.write) {
		return checkCondition(ErrWriteProtected)
	}
	if op == Inquiry && len(cdb) > 2 && cdb[1]&0x01 != 0 && cdb[2] == vpdDeviceIdent {
		return t.passDeviceIdent(p)
	}
	return t.pass(p, rule)
}

// nacaSet reports whether the NACA bit of a CDB's CONTROL byte is set;
// scstd does not support ACA (SAM-5 §5.9.1).
func nacaSet(cdb []byte) bool {
	n := cdbLength(cdb)
	return n > 0 && n <= len(cdb) && cdb[n-1]&controlNACA != 0
}

// cdbLength returns the length of a CDB from its operation code's group
// (SPC-4 §4.3.4): 6, 10, 12 or 16 bytes, and for the variable length
// group 7Fh eight plus its ADDITIONAL CDB LENGTH. Vendor specific groups
// count as their whole CDB.
func cdbLength(cdb []byte) int {
	switch cdb[0] >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	case 3:
		if cdb[0] == byte(VariableLength) && len(cdb) > 7 {
			return 8 + int(cdb[7])
		}
	}
	return len(cdb)
}

// passLocal runs the target's own handler for a command of a pass-through
// device: the dispatch table's descriptor, its CDB checks, and its
// offline rule.
func (t *task) passLocal() Result {
	if t.desc == nil {
		if commandIndex[t.cmd.CDB[0]].bySA != nil {
			return checkCondition(invalidField(1, 4))
		}
		return checkCondition(ErrInvalidOpcode)
	}
	if e := t.checkCDB(); e != nil {
		return checkCondition(e)
	}
	if t.st.passthrough() == nil && t.desc.flags&flagOffline == 0 {
		return checkCondition(ErrNotReadyManual)
	}
	if t.dev.reservationConflict(t) {
		return Result{Status: ReservationConflict}
	}
	return t.run()
}

// offlineInquiry answers standard INQUIRY for an offline pass-through
// device: peripheral qualifier 001b (a disk is supported here but not
// connected now), the target's own identity strings.
func (t *task) offlineInquiry() Result {
	if e := t.checkCDB(); e != nil {
		return checkCondition(e)
	}
	b, err := inquiry(t)
	if err != nil {
		return t.failed(err)
	}
	if len(b) > 0 {
		b[0] = 0x20 | byte(t.dev.cfg.Type)&0x1f
	}
	return Result{Status: Good, Data: b}
}

// senseData answers REQUEST SENSE with e as its parameter data, in the
// format the DESC bit asks for.
func (t *task) senseData(e *SenseError) Result {
	cdb := t.cmd.CDB
	var b []byte
	if cdb[1]&0x01 != 0 {
		b = e.AppendDescriptor(t.dataIn(0)[:0])
	} else {
		b = e.AppendFixed(t.dataIn(0)[:0])
	}
	return Result{Status: Good, Data: allocLen(b, uint32(cdb[4]))}
}

// pass hands the command to the device: data-in sized from the CDB (so
// that an initiator expecting less gets an overflow residual, not a
// failed transfer), data-out as the CDB calls for it.
func (t *task) pass(p Passthrough, rule passRule) Result {
	ps := passPool.Get().(*passState)
	defer passPool.Put(ps)
	pc := &ps.cmd
	*pc = PassCommand{CDB: t.cmd.CDB[:cdbLength(t.cmd.CDB)], Sense: ps.sense[:]}
	dir, n, known := rule.transfer(t.cmd.CDB, p.BlockSize())
	if !known {
		switch {
		case len(t.cmd.DataOut) > 0 && t.cmd.ExpectedIn > 0:
			// SG_IO carries one direction; no disk command needs both.
			return checkCondition(ErrInvalidFieldInCDB)
		case len(t.cmd.DataOut) > 0:
			dir, n = xferOut, uint64(len(t.cmd.DataOut))
		case t.cmd.ExpectedIn > 0:
			dir, n = xferIn, uint64(t.cmd.ExpectedIn)
		}
	}
	if n > uint64(passMaxTransfer(p)) {
		if rule.lenSize > 0 {
			return checkCondition(invalidField(int(rule.lenOff), -1))
		}
		return checkCondition(ErrInvalidFieldInCDB)
	}
	var res Result
	switch dir {
	case xferIn:
		pc.DataIn = t.dataInNoClear(int(n))
	case xferOut:
		res.DataOutLen = uint32(min(n, 0xffffffff))
		out := t.cmd.DataOut
		if uint64(len(out)) < n {
			var short *SenseError
			switch {
			case !rule.blocks:
				short = ErrParamListLength
			case rule.oneBlock:
				short = ErrInvalidFieldInIU
			}
			if short != nil {
				r := checkCondition(short)
				r.DataOutLen = res.DataOutLen
				return r
			}
			// Fewer bytes than the CDB asked for: like the target's
			// own WRITE, write the whole blocks that arrived and
			// report the rest as a residual (FCP-4 §9.4.2 a).
			bs := uint64(p.BlockSize())
			whole := uint64(len(out)) / bs / uint64(rule.mul)
			if whole == 0 {
				return res
			}
			pc.CDB = rule.shorten(ps.cdb[:0], pc.CDB, whole)
			out = out[:whole*bs*uint64(rule.mul)]
		}
		pc.DataOut = out[:min(uint64(len(out)), n)]
	}
	err := p.Pass(pc)
	if err != nil {
		if deviceGone(err) {
			t.dev.lose(t.st, err)
			return checkCondition(ErrNotReadyManual)
		}
		r := checkCondition(senseFromError(err, rule.write))
		r.DataOutLen = res.DataOutLen
		return r
	}
	res.Status = pc.Status
	if pc.InLen > 0 {
		res.Data = t.patchDataIn(pc.DataIn[:pc.InLen], p)
	}
	if pc.Status == CheckCondition && pc.SenseLen > 0 {
		res.Sense = append([]byte(nil), pc.Sense[:pc.SenseLen]...)
		t.deviceUA(res.Sense)
	}
	return res
}

// passMaxTransfer is the largest data transfer of one passed command:
// the device's, and no more than the target's own devices take
// (maxTransferBytes), which bounds the memory one command holds.
func passMaxTransfer(p Passthrough) int { return min(p.MaxTransfer(), maxTransferBytes) }

// patchDataIn adjusts what the device returned where the target's view
// differs from the device's: the write-protect bit of MODE SENSE on a
// read-only LU, the TPGS field of standard INQUIRY (the device's
// asymmetric access describes its own ports, not the target's), and the
// transfer lengths of the Block Limits VPD page, which may not exceed
// what one command can carry to the device here. INQUIRY and MODE SENSE
// data is cut to the length it gives itself: not every host adapter
// reports the residual of a short transfer (QEMU's virtio-scsi does not
// for the commands it emulates).
func (t *task) patchDataIn(b []byte, p Passthrough) []byte {
	cdb := t.cmd.CDB
	switch Opcode(cdb[0]) {
	case ModeSense6:
		if t.readOnly() && len(b) > 2 {
			b[2] |= 0x80
		}
		if len(b) > 0 {
			b = b[:min(len(b), 1+int(b[0]))]
		}
	case ModeSense10:
		if t.readOnly() && len(b) > 3 {
			b[3] |= 0x80
		}
		if len(b) > 1 {
			b = b[:min(len(b), 2+int(be16(b)))]
		}
	case Inquiry:
		switch {
		case cdb[1]&0x01 == 0 && len(b) > 4:
			b = b[:min(len(b), 5+int(b[4]))]
		case cdb[1]&0x01 != 0 && len(b) > 3:
			b = b[:min(len(b), 4+int(be16(b[2:])))]
		}
		switch {
		case cdb[1]&0x01 == 0 && len(b) > 5:
			b[5] &^= 0x30
		case cdb[1]&0x01 != 0 && cdb[2] == vpdBlockLimits && len(b) >= 16:
			limit := uint32(passMaxTransfer(p)) / max(p.BlockSize(), 1)
			for _, off := range []int{8, 12} { // MAXIMUM, OPTIMAL TRANSFER LENGTH
				if v := be32(b[off:]); v == 0 && off == 8 || v > limit {
					binary.BigEndian.PutUint32(b[off:], limit)
				}
			}
		}
	}
	return b
}

// capacityChangedHere posts CAPACITY DATA HAS CHANGED to every nexus but
// n at lun: n has just been told by the device itself.
func (n *Nexus) capacityChangedHere(lun LUN, d *Device) {
	e := d.capacityEpoch.Add(1)
	n.mu.Lock()
	if s := n.lu(lun, d); s.capSeen == e-1 {
		s.capSeen = e
	}
	n.mu.Unlock()
}

// deviceUA spreads two unit attentions the device reported to one nexus
// to every other nexus of the device, as the device would have to each of
// its initiators: CAPACITY DATA HAS CHANGED and MODE PARAMETERS CHANGED.
func (t *task) deviceUA(sense []byte) {
	key, asc, ascq, ok := senseCodes(sense)
	if !ok || key != UnitAttention || asc != 0x2a || t.cmd.Nexus == nil {
		return
	}
	switch ascq {
	case 0x01:
		t.cmd.Nexus.modeChangedHere(t.cmd.LUN, t.dev)
	case 0x09:
		t.cmd.Nexus.capacityChangedHere(t.cmd.LUN, t.dev)
	}
}

// senseCodes reads the sense key, ASC and ASCQ of fixed (70h/71h) or
// descriptor (72h/73h) format sense data.
func senseCodes(s []byte) (key SenseKey, asc, ascq uint8, ok bool) {
	if len(s) < 4 {
		return 0, 0, 0, false
	}
	switch s[0] & 0x7f {
	case 0x70, 0x71:
		if len(s) < 14 {
			return 0, 0, 0, false
		}
		return SenseKey(s[2] & 0x0f), s[12], s[13], true
	case 0x72, 0x73:
		return SenseKey(s[1] & 0x0f), s[2], s[3], true
	}
	return 0, 0, 0, false
}

// passDeviceIdent answers INQUIRY VPD page 83h for a pass-through device:
// the device's designators of the logical unit (association 00b) as it
// reports them, followed by the target's relative target port, target
// port group and SCSI name designators; the device's own port and target
// designators describe its local attachment and are dropped.
func (t *task) passDeviceIdent(p Passthrough) Result {
	cdb := t.cmd.CDB
	alloc := uint32(be16(cdb[3:5]))
	ps := passPool.Get().(*passState)
	defer passPool.Put(ps)
	pc := &ps.cmd
	q := ps.cdb[:6]
	copy(q, []byte{byte(Inquiry), 0x01, vpdDeviceIdent, 0, 0, 0})
	page := make([]byte, 4096)
	for {
		binary.BigEndian.PutUint16(q[3:5], uint16(min(len(page), 0xffff)))
		*pc = PassCommand{CDB: q, DataIn: page, Sense: ps.sense[:]}
		if err := p.Pass(pc); err != nil {
			if deviceGone(err) {
				t.dev.lose(t.st, err)
				return checkCondition(ErrNotReadyManual)
			}
			return checkCondition(senseFromError(err, false))
		}
		if pc.Status != Good {
			r := Result{Status: pc.Status}
			if pc.SenseLen > 0 {
				r.Sense = append([]byte(nil), pc.Sense[:pc.SenseLen]...)
			}
			return r
		}
		got := page[:pc.InLen]
		if len(got) < 4 {
			return checkCondition(ErrInternalTarget)
		}
		need := 4 + int(be16(got[2:4]))
		if need <= len(got) || len(page) >= 0xffff {
			return Result{Status: Good, Data: allocLen(t.mergeDeviceIdent(got[:min(need, len(got))]), alloc)}
		}
		page = make([]byte, need)
	}
}

// mergeDeviceIdent rebuilds a device's VPD page 83h with its logical
// unit designators and the target's port designators.
func (t *task) mergeDeviceIdent(dev []byte) []byte {
	b := append(make([]byte, 0, len(dev)+128), dev[:4]...)
	for d := dev[4:]; len(d) >= 4; {
		n := 4 + int(d[3])
		if n > len(d) {
			break
		}
		if d[1]&0x30 == assocLU {
			b = append(b, d[:n]...)
		}
		d = d[n:]
	}
	b = t.appendPortDesignators(b)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-4))
	return b
}

// xferDir is the direction of a command's data transfer.
type xferDir uint8

const (
	xferNone xferDir = iota
	xferIn
	xferOut
)

// passRule is what the target knows about an operation code for
// pass-through: the direction of its data and where its length is, and
// whether it writes the medium (refused on a read-only LU).
type passRule struct {
	known bool
	write bool
	dir   xferDir
	// lenOff and lenSize locate the length field (lenSize 0: none);
	// blocks says it counts logical blocks (times mul), not bytes.
	lenOff, lenSize uint8
	blocks          bool
	mul             uint8
	// fixed is the length of a command whose length is not in its CDB
	// (READ CAPACITY(10): 8); oneBlock marks WRITE SAME (one block of
	// data whatever the number of blocks written).
	fixed    uint32
	oneBlock bool
	// bytchk marks VERIFY and WRITE AND VERIFY's relatives whose data-out
	// depends on BYTCHK (byte 1 bits 2..1).
	bytchk bool
}

// transfer returns the direction and byte count of a command's data as
// its CDB gives them, or known false when the rule does not say.
func (r passRule) transfer(cdb []byte, bs uint32) (xferDir, uint64, bool) {
	if !r.known || (r.lenSize == 0 && r.fixed == 0 && r.dir != xferNone) {
		return xferNone, 0, false
	}
	if r.dir == xferNone {
		return xferNone, 0, true
	}
	if r.fixed > 0 {
		return r.dir, uint64(r.fixed), true
	}
	if int(r.lenOff)+int(r.lenSize) > len(cdb) {
		return xferNone, 0, false
	}
	var n uint64
	for _, x := range cdb[r.lenOff : r.lenOff+r.lenSize] {
		n = n<<8 | uint64(x)
	}
	if Opcode(cdb[0]) == Read6 || Opcode(cdb[0]) == Write6 {
		if n == 0 {
			n = 256
		}
	}
	if Opcode(cdb[0]) == WriteSame16 && cdb[1]&0x01 != 0 { // NDOB
		return xferNone, 0, true
	}
	if r.bytchk {
		switch cdb[1] >> 1 & 0x03 {
		case 0:
			return xferNone, 0, true
		case 3:
			return r.dir, uint64(bs), true
		}
	}
	if !r.blocks {
		return r.dir, n, true
	}
	if r.oneBlock {
		return r.dir, uint64(bs), true
	}
	return r.dir, n * uint64(bs) * uint64(max(r.mul, 1)), true
}

// shorten copies cdb into buf with its block count set to blocks.
func (r passRule) shorten(buf, cdb []byte, blocks uint64) []byte {
	b := append(buf, cdb...)
	for i := int(r.lenSize) - 1; i >= 0; i-- {
		b[int(r.lenOff)+i] = byte(blocks)
		blocks >>= 8
	}
	return b
}

// passRules holds a rule per operation code; unknown codes have the zero
// rule (known false): their direction and length are the initiator's.
var passRules = func() (rs [256]passRule) {
	none := func(ops ...Opcode) {
		for _, op := range ops {
			rs[op] = passRule{known: true}
		}
	}
	in := func(op Opcode, off, size uint8) {
		rs[op] = passRule{known: true, dir: xferIn, lenOff: off, lenSize: size}
	}
	out := func(op Opcode, off, size uint8) {
		rs[op] = passRule{known: true, dir: xferOut, lenOff: off, lenSize: size}
	}
	read := func(op Opcode, off, size uint8) {
		rs[op] = passRule{known: true, dir: xferIn, lenOff: off, lenSize: size, blocks: true, mul: 1}
	}
	write := func(op Opcode, off, size uint8) {
		rs[op] = passRule{known: true, write: true, dir: xferOut, lenOff: off, lenSize: size, blocks: true, mul: 1}
	}
	none(TestUnitReady, StartStopUnit, PreventAllowMedium, PreFetch10, PreFetch16,
		SynchronizeCache10, SynchronizeCache16, 0x01 /* REZERO UNIT */, 0x0b /* SEEK(6) */, 0x2b /* SEEK(10) */)
	in(RequestSense, 4, 1)
	in(Inquiry, 3, 2)
	in(ModeSense6, 4, 1)
	in(ModeSense10, 7, 2)
	in(ReceiveDiagnostic, 3, 2)
	in(ReadDefectData10, 7, 2)
	in(ReadDefectData12, 6, 4)
	in(ReadBuffer, 6, 3)
	in(LogSense, 7, 2)
	in(ServiceActionIn16, 10, 4) // READ CAPACITY(16), GET LBA STATUS, REPORT REFERRALS
	in(MaintenanceIn, 6, 4)
	in(ReceiveCopyResults, 10, 4)
	rs[ReadCapacity10] = passRule{known: true, dir: xferIn, fixed: 8}
	out(ModeSelect6, 4, 1)
	out(ModeSelect10, 7, 2)
	out(SendDiagnostic, 3, 2)
	out(LogSelect, 7, 2)
	out(MaintenanceOut, 6, 4)
	read(Read6, 4, 1)
	read(Read10, 7, 2)
	read(Read12, 6, 4)
	read(Read16, 10, 4)
	write(Write6, 4, 1)
	write(Write10, 7, 2)
	write(Write12, 6, 4)
	write(Write16, 10, 4)
	write(WriteAndVerify10, 7, 2)
	write(WriteAndVerify12, 6, 4)
	write(WriteAndVerify16, 10, 4)
	write(OrWrite16, 10, 4)
	write(WriteAtomic16, 12, 2)
	write(CompareAndWrite, 13, 1)
	rs[CompareAndWrite].mul = 2 // verify data and write data
	for _, op := range []Opcode{Verify10, Verify12, Verify16} {
		off, size := uint8(7), uint8(2)
		switch op {
		case Verify12:
			off, size = 6, 4
		case Verify16:
			off, size = 10, 4
		}
		rs[op] = passRule{known: true, dir: xferOut, lenOff: off, lenSize: size, blocks: true, mul: 1, bytchk: true}
	}
	for _, op := range []Opcode{WriteAndVerify10, WriteAndVerify12, WriteAndVerify16} {
		rs[op].bytchk = false
	}
	rs[WriteSame10] = passRule{known: true, write: true, dir: xferOut, lenOff: 7, lenSize: 2, blocks: true, mul: 1, oneBlock: true}
	rs[WriteSame16] = passRule{known: true, write: true, dir: xferOut, lenOff: 10, lenSize: 4, blocks: true, mul: 1, oneBlock: true}
	// Writes whose parameter data the CDB sizes.
	rs[Unmap] = passRule{known: true, write: true, dir: xferOut, lenOff: 7, lenSize: 2}
	rs[WriteBuffer] = passRule{known: true, write: true, dir: xferOut, lenOff: 6, lenSize: 3}
	rs[Sanitize] = passRule{known: true, write: true, dir: xferOut, lenOff: 7, lenSize: 2}
	rs[ExtendedCopy] = passRule{known: true, write: true, dir: xferOut, lenOff: 10, lenSize: 4}
	// Writes whose data length the initiator gives (FORMAT UNIT's
	// FMTDATA, REASSIGN BLOCKS' list): direction and length unknown.
	rs[FormatUnit] = passRule{known: true, write: true, dir: xferOut}
	rs[ReassignBlocks] = passRule{known: true, write: true, dir: xferOut}
	return rs
}()
