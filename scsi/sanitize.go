package scsi

import (
	"sync"
	"sync/atomic"

	"github.com/scstd/scstd/internal/bufpool"
	"github.com/scstd/scstd/vdisk"
)

// SanitizeAction is the service action of a SANITIZE command (SBC-3
// §5.19, table 41).
type SanitizeAction uint8

// SANITIZE service actions. CRYPTO ERASE is not offered: scstd does not
// encrypt the medium, so it has no key to change. A SANITIZE with it
// fails with INVALID FIELD IN CDB like any other unsupported service
// action, and REPORT SUPPORTED OPERATION CODES does not list it.
const (
	SanitizeOverwrite       SanitizeAction = 0x01
	SanitizeBlockErase      SanitizeAction = 0x02
	SanitizeCryptoErase     SanitizeAction = 0x03
	SanitizeExitFailureMode SanitizeAction = 0x1f
)

// String names the service action for logs.
func (a SanitizeAction) String() string {
	switch a {
	case SanitizeOverwrite:
		return "OVERWRITE"
	case SanitizeBlockErase:
		return "BLOCK_ERASE"
	case SanitizeCryptoErase:
		return "CRYPTO_ERASE"
	case SanitizeExitFailureMode:
		return "EXIT_FAILURE_MODE"
	}
	return "SANITIZE_SA_0x" + hex2(uint8(a))
}

// hex2 formats b as two lower-case hex digits.
func hex2(b uint8) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xf]})
}

// SANITIZE CDB fields (SBC-3 §5.19.1).
const (
	sanitizeIMMED = 0x80 // byte 1: return before the operation ends
	sanitizeAUSE  = 0x20 // byte 1: EXIT FAILURE MODE may end a failure
)

// sanitizeTimeout is the recommended timeout of SANITIZE, in seconds,
// reported with RCTD: an overwrite of a large device takes a while.
const sanitizeTimeout = 3600

// Sense conditions of the sanitize operation.
var (
	// ErrSanitizeFailed is MEDIUM ERROR, SANITIZE COMMAND FAILED (31h/03h):
	// the last sanitize operation failed and the device is in sanitize
	// failure mode.
	ErrSanitizeFailed = &SenseError{Key: MediumError, ASC: 0x31, ASCQ: 0x03}
	// ErrSoftwareWriteProtected is DATA PROTECT, LOGICAL UNIT SOFTWARE
	// WRITE PROTECTED (27h/02h): the control mode page's SWP is set.
	ErrSoftwareWriteProtected = &SenseError{Key: DataProtect, ASC: 0x27, ASCQ: 0x02}
	// errCommandSequence is ILLEGAL REQUEST, COMMAND SEQUENCE ERROR
	// (2Ch/00h).
	errCommandSequence = &SenseError{Key: IllegalRequest, ASC: 0x2c}
)

// devExtra is the state of a device that most devices never use: the
// control mode page's SWP and the sanitize operation. Device.extras
// points to it once a command needs it, so that until then the
// per-command checks cost one atomic load.
type devExtra struct {
	// swp is SOFTWARE WRITE PROTECT of the control mode page.
	swp atomic.Bool
	// mu serialises the start of sanitize operations.
	mu sync.Mutex
	// running is set while a sanitize operation runs; progress is its
	// PROGRESS INDICATION (fraction done, out of 65536).
	running  atomic.Bool
	progress atomic.Uint32
	// failed is set when the last sanitize operation failed (sanitize
	// failure mode); ause is its AUSE bit: EXIT FAILURE MODE may end it.
	failed atomic.Bool
	ause   atomic.Bool
}

// extra returns the device's devExtra, nil when it has none.
func (d *Device) extra() *devExtra { return d.extras.Load() }

// extraOrNew returns the device's devExtra, creating it.
func (d *Device) extraOrNew() *devExtra {
	if x := d.extras.Load(); x != nil {
		return x
	}
	d.extras.CompareAndSwap(nil, new(devExtra))
	return d.extras.Load()
}

// softWriteProtected reports whether SWP is set in the device's control
// mode page.
func (d *Device) softWriteProtected() bool {
	x := d.extra()
	return x != nil && x.swp.Load()
}

// setSoftWriteProtect sets or clears SWP; it reports whether it changed.
func (d *Device) setSoftWriteProtect(on bool) bool {
	if !on && d.extra() == nil {
		return false
	}
	return d.extraOrNew().swp.Swap(on) != on
}

// sanitizeCheck is the dispatcher's check of sanitize state, after the
// device-ready checks: while a sanitize operation runs every command but
// INQUIRY, REPORT LUNS and REQUEST SENSE gets NOT READY, SANITIZE IN
// PROGRESS with the progress indication (SBC-3 §4.11.3); in sanitize
// failure mode all but those and SANITIZE get SANITIZE COMMAND FAILED.
func (t *task) sanitizeCheck() *SenseError {
	x := t.dev.extra()
	if x == nil || t.desc.flags&flagNoLU != 0 {
		return nil
	}
	if x.running.Load() {
		return x.inProgress()
	}
	if x.failed.Load() && t.desc.op != Sanitize {
		return ErrSanitizeFailed
	}
	return nil
}

// inProgress returns NOT READY, LOGICAL UNIT NOT READY, SANITIZE IN
// PROGRESS (04h/1Bh) with the PROGRESS INDICATION in the sense-key
// specific bytes (SPC-4 §4.5.2.4.4: SKSV set, bytes 16-17).
func (x *devExtra) inProgress() *SenseError {
	return &SenseError{Key: NotReady, ASC: 0x04, ASCQ: 0x1b,
		FieldValid: true, Field: uint16(min(x.progress.Load(), 0xffff))}
}

// requestSenseSanitize handles REQUEST SENSE: while a sanitize operation
// runs it reports SANITIZE IN PROGRESS with the progress indication (SBC-3
// §4.11.3), otherwise what requestSense reports.
func requestSenseSanitize(t *task) ([]byte, error) {
	cdb := t.cdb()
	if t.dev == nil || cdb[1]&0xfe != 0 {
		return requestSense(t)
	}
	x := t.dev.extra()
	if x == nil || !x.running.Load() {
		return requestSense(t)
	}
	e := x.inProgress()
	var b []byte
	if cdb[1]&0x01 != 0 {
		b = e.AppendDescriptor(t.dataIn(0)[:0])
	} else {
		b = e.AppendFixed(t.dataIn(0)[:0])
	}
	return allocLen(b, uint32(cdb[4])), nil
}

// sanitizeJob is one sanitize operation, independent of the task that
// started it (which may return before it ends, IMMED).
type sanitizeJob struct {
	be      vdisk.Backend
	bs      uint64
	blocks  uint64
	action  SanitizeAction
	pattern []byte // OVERWRITE: INITIALIZATION PATTERN
	count   int    // OVERWRITE: OVERWRITE COUNT (passes)
	invert  bool   // OVERWRITE: invert the pattern between passes
	x       *devExtra
}

// sanitize handles SANITIZE (SBC-3 §5.19): OVERWRITE writes the
// initialization pattern (repeated to fill each logical block) over the
// whole medium OVERWRITE COUNT times, inverted between passes when INVERT
// is set and as given in the last pass, then flushes; BLOCK ERASE
// deallocates every block (writing zeroes where the backend cannot
// deallocate); EXIT FAILURE MODE ends sanitize failure mode when the
// failed operation had AUSE set. With IMMED the command returns once the
// parameters are checked; the operation runs on, and other commands get
// SANITIZE IN PROGRESS until it ends.
//
//	byte 1   bit 7 IMMED, bit 6 reserved, bit 5 AUSE, bits 4-0 SERVICE ACTION
//	byte 2-6 reserved
//	byte 7-8 PARAMETER LIST LENGTH
//
// OVERWRITE parameter list: byte 0 bit 7 INVERT, bits 6-5 TEST (must be
// 0), bits 4-0 OVERWRITE COUNT (not 0); byte 2-3 INITIALIZATION PATTERN
// LENGTH (1 to the block length); byte 4- INITIALIZATION PATTERN.
func sanitize(t *task) ([]byte, error) {
	cdb := t.cdb()
	if cdb[1]&0x40 != 0 {
		return nil, invalidField(1, 6)
	}
	for i := 2; i <= 6; i++ {
		if cdb[i] != 0 {
			return nil, invalidField(i, -1)
		}
	}
	action := SanitizeAction(cdb[1] & 0x1f)
	plen := uint64(be16(cdb[7:9]))
	bs := uint64(t.blockSize())
	job := &sanitizeJob{be: t.be, bs: bs, blocks: t.blocks(), action: action}
	switch action {
	case SanitizeOverwrite:
		if plen <= 4 || plen > bs+4 {
			return nil, invalidField(7, -1)
		}
		p, err := t.dataOut(plen, true)
		if err != nil {
			return nil, err
		}
		if p[0]&0x60 != 0 {
			return nil, invalidParam(0, 6)
		}
		if p[0]&0x1f == 0 {
			return nil, invalidParam(0, 4)
		}
		n := uint64(be16(p[2:4]))
		if n == 0 || n > bs || n > plen-4 {
			return nil, invalidParam(2, -1)
		}
		job.count = int(p[0] & 0x1f)
		job.invert = p[0]&0x80 != 0
		job.pattern = append([]byte(nil), p[4:4+n]...)
	case SanitizeBlockErase, SanitizeExitFailureMode:
		if plen != 0 {
			return nil, invalidField(7, -1)
		}
	default:
		return nil, invalidField(1, 4)
	}
	x := t.dev.extraOrNew()
	if action == SanitizeExitFailureMode {
		if !x.failed.Load() || !x.ause.Load() {
			return nil, errCommandSequence
		}
		x.failed.Store(false)
		return nil, nil
	}
	x.mu.Lock()
	if x.running.Load() {
		e := x.inProgress()
		x.mu.Unlock()
		return nil, e
	}
	x.progress.Store(0)
	x.ause.Store(cdb[1]&sanitizeAUSE != 0)
	x.running.Store(true)
	x.mu.Unlock()
	job.x = x
	if cdb[1]&sanitizeIMMED != 0 {
		// The job outlives the command: it keeps the backend open.
		st := t.st
		st.hold()
		go func() {
			defer st.release()
			job.run()
		}()
		return nil, nil
	}
	return nil, job.run()
}

// run performs the operation and leaves the device either sanitized or in
// sanitize failure mode.
func (j *sanitizeJob) run() error {
	var err error
	if j.action == SanitizeOverwrite {
		err = j.overwrite()
	} else {
		err = j.blockErase()
	}
	if err == nil {
		err = j.be.Sync()
	}
	j.x.failed.Store(err != nil)
	j.x.progress.Store(0)
	j.x.running.Store(false)
	if err != nil {
		return ErrSanitizeFailed
	}
	return nil
}

// overwrite writes every pass of the OVERWRITE service action.
func (j *sanitizeJob) overwrite() error {
	per := max(fillChunk/j.bs, 1)
	bp := bufpool.Get(int(min(j.blocks, per) * j.bs))
	defer bufpool.Put(bp)
	buf := *bp
	total := uint64(j.count) * j.blocks
	var done uint64
	for pass := 0; pass < j.count; pass++ {
		// The last pass writes the pattern as given; with INVERT the
		// passes before it alternate.
		inv := j.invert && (j.count-1-pass)%2 == 1
		fillPattern(buf, j.bs, j.pattern, inv)
		for lba := uint64(0); lba < j.blocks; {
			k := min(j.blocks-lba, per)
			if _, err := j.be.WriteAt(buf[:k*j.bs], int64(lba*j.bs)); err != nil {
				return err
			}
			lba += k
			done += k
			j.x.progress.Store(uint32(done * 0x10000 / total))
		}
	}
	return nil
}

// fillPattern fills buf, block by block, with pattern repeated to fill
// each block of bs bytes, each byte inverted when inv.
func fillPattern(buf []byte, bs uint64, pattern []byte, inv bool) {
	for off := uint64(0); off < uint64(len(buf)); off += bs {
		blk := buf[off:min(off+bs, uint64(len(buf)))]
		for i := 0; i < len(blk); i += len(pattern) {
			copy(blk[i:], pattern)
		}
		if inv {
			for i := range blk {
				blk[i] = ^blk[i]
			}
		}
	}
}

// blockErase deallocates the whole medium, in pieces so that progress is
// reported, writing zeroes where the backend cannot deallocate.
func (j *sanitizeJob) blockErase() error {
	u, _ := j.be.(vdisk.Unmapper)
	per := max(eraseChunk/j.bs, 1)
	var zeroes []byte
	for lba := uint64(0); lba < j.blocks; {
		k := min(j.blocks-lba, per)
		var err error
		if u != nil {
			err = u.Unmap(int64(lba*j.bs), int64(k*j.bs))
		}
		if u == nil || unsupported(err) {
			if zeroes == nil {
				zeroes = make([]byte, min(j.blocks, max(fillChunk/j.bs, 1))*j.bs)
			}
			err = writeZeroes(j.be, zeroes, int64(lba*j.bs), int64(k*j.bs))
		}
		if err != nil {
			return err
		}
		lba += k
		j.x.progress.Store(uint32(lba * 0x10000 / j.blocks))
	}
	return nil
}

// eraseChunk is how much BLOCK ERASE deallocates at a time.
const eraseChunk = 64 << 20

// writeZeroes writes n zero bytes at off from the zero buffer z.
func writeZeroes(be vdisk.Backend, z []byte, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(z)))
		if _, err := be.WriteAt(z[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}
