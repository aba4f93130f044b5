package sgio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/scstd/scstd/internal/diskid"
	"github.com/scstd/scstd/internal/hctl"
	"github.com/scstd/scstd/scsi"
)

// Handler is the name of the handler this package serves, as SCST spells
// it.
const Handler = "dev_disk"

// DefaultTimeout bounds a command when Options.Timeout is zero: the
// Linux sd driver's default.
const DefaultTimeout = 30 * time.Second

// Options say how a device is opened.
type Options struct {
	// Timeout bounds each command (0: DefaultTimeout).
	Timeout time.Duration
}

// ioctl numbers of the SCSI generic interface (include/scsi/sg.h).
const (
	sgIO            = 0x2285
	sgGetVersionNum = 0x2282
)

// sg_io_hdr constants.
const (
	sgInterfaceID = 'S'
	dxferNone     = -1
	dxferToDev    = -2
	dxferFromDev  = -3
)

// sgIOHdr is struct sg_io_hdr (see the package documentation for its
// layout).
type sgIOHdr struct {
	interfaceID    int32
	dxferDirection int32
	cmdLen         uint8
	mxSbLen        uint8
	iovecCount     uint16
	dxferLen       uint32
	dxferp         unsafe.Pointer
	cmdp           unsafe.Pointer
	sbp            unsafe.Pointer
	timeout        uint32
	flags          uint32
	packID         int32
	usrPtr         unsafe.Pointer
	status         uint8
	maskedStatus   uint8
	msgStatus      uint8
	sbLenWr        uint8
	hostStatus     uint16
	driverStatus   uint16
	resid          int32
	duration       uint32
	info           uint32
}

// sgMaxQueue is how many commands the sg driver accepts at once on one
// open file (SG_MAX_QUEUE); more get EDOM, so Pass waits for a slot.
const sgMaxQueue = 16

// Device is one opened logical unit. Its methods are safe for concurrent
// use.
type Device struct {
	path     string // the node opened
	sys      string // where sysfs is mounted
	f        *os.File
	timeout  uint32 // milliseconds
	bs       uint32
	size     int64
	maxXfer  int
	id       diskid.Identity
	slots    chan struct{}
	hdrs     sync.Pool
	ioctlFn  func(fd uintptr, req uint, arg unsafe.Pointer) error
	closeMu  sync.RWMutex
	isClosed bool
}

// Open opens the logical unit name (a device node, or an H:C:T:L address
// resolved through /sys) and checks it: a disk that answers SG_IO and
// READ CAPACITY.
func Open(name string, opts Options) (*Device, error) {
	return open(name, opts, "/sys", "/dev", ioctl)
}

func open(name string, opts Options, sys, dev string, ioc func(uintptr, uint, unsafe.Pointer) error) (*Device, error) {
	path := name
	if hctl.Valid(name) {
		p, err := resolveHCTL(sys, dev, name)
		if err != nil {
			return nil, err
		}
		path = p
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("dev_disk %s: %w", name, err)
	}
	d := &Device{path: path, sys: sys, f: f, slots: make(chan struct{}, sgMaxQueue), ioctlFn: ioc}
	d.hdrs.New = func() any { return new(request) }
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	d.timeout = uint32(min(opts.Timeout.Milliseconds(), 1<<32-2))
	if err := d.check(name); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// check makes sure d answers SG_IO as a disk and reads its block size,
// capacity and transfer limit.
func (d *Device) check(name string) error {
	var version int32
	if err := d.ioctlFn(d.f.Fd(), sgGetVersionNum, unsafe.Pointer(&version)); err != nil {
		return fmt.Errorf("dev_disk %s: %s does not take SG_IO (%w); name an sg node, a SCSI disk or H:C:T:L", name, d.path, err)
	}
	inq := make([]byte, 36)
	n, err := d.command(scsiCmd{0x12, 0, 0, 0, 36, 0}, inq)
	if err != nil {
		return fmt.Errorf("dev_disk %s: INQUIRY: %w", name, err)
	}
	if n < 1 || inq[0] != 0x00 {
		if n < 1 {
			return fmt.Errorf("dev_disk %s: INQUIRY returned no data", name)
		}
		return fmt.Errorf("dev_disk %s: %s is peripheral qualifier %d, device type %02xh, not a connected disk (00h)", name, d.path, inq[0]>>5, inq[0]&0x1f)
	}
	if err := d.readCapacity(name); err != nil {
		return err
	}
	d.maxXfer = d.transferLimit()
	vpd80, err := d.vpd(0x80)
	if err != nil {
		return fmt.Errorf("dev_disk %s: INQUIRY VPD 80h: %w", name, err)
	}
	vpd83, err := d.vpd(0x83)
	if err != nil {
		return fmt.Errorf("dev_disk %s: INQUIRY VPD 83h: %w", name, err)
	}
	d.id = diskid.FromPages(inq[:n], vpd80, vpd83)
	return nil
}

// vpdMax is the allocation length of a VPD page read for the identity.
const vpdMax = 4096

// vpd reads VPD page pc; nil when the device has not that page (ILLEGAL
// REQUEST). A unit attention is read and the command retried.
func (d *Device) vpd(pc byte) ([]byte, error) {
	b := make([]byte, vpdMax)
	for try := 0; ; try++ {
		n, err := d.command(scsiCmd{0x12, 0x01, pc, vpdMax >> 8, vpdMax & 0xff, 0}, b)
		var se *statusErr
		switch {
		case err == nil:
			return b[:n], nil
		case errors.As(err, &se) && se.unitAttention() && try < 8:
			continue
		case errors.As(err, &se) && se.illegalRequest():
			return nil, nil
		}
		return nil, err
	}
}

// readCapacity reads the block size and capacity: READ CAPACITY(16),
// or (10) when the device does not know (16). Unit attentions the device
// reports first (power on, reset) are read and retried.
func (d *Device) readCapacity(name string) error {
	b := make([]byte, 32)
	for try := 0; ; try++ {
		n, err := d.command(scsiCmd{0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, b)
		var se *statusErr
		switch {
		case err == nil && n >= 12:
			d.size = int64(binary.BigEndian.Uint64(b[0:8])+1) * int64(binary.BigEndian.Uint32(b[8:12]))
			d.bs = binary.BigEndian.Uint32(b[8:12])
		case errors.As(err, &se) && se.unitAttention() && try < 8:
			continue
		case errors.As(err, &se) && se.illegalRequest():
			n, err = d.command(scsiCmd{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, b[:8])
			if errors.As(err, &se) && se.unitAttention() && try < 8 {
				continue
			}
			if err != nil || n < 8 {
				return fmt.Errorf("dev_disk %s: READ CAPACITY(10): %v", name, errOrShort(err))
			}
			d.size = int64(binary.BigEndian.Uint32(b[0:4])+1) * int64(binary.BigEndian.Uint32(b[4:8]))
			d.bs = binary.BigEndian.Uint32(b[4:8])
		default:
			return fmt.Errorf("dev_disk %s: READ CAPACITY(16): %v", name, errOrShort(err))
		}
		if d.bs == 0 || d.bs&(d.bs-1) != 0 {
			return fmt.Errorf("dev_disk %s: block size %d is not a power of two", name, d.bs)
		}
		return nil
	}
}

func errOrShort(err error) error {
	if err == nil {
		return errors.New("short data")
	}
	return err
}

// transferLimit returns the largest transfer of one command. SG_IO on an
// sg node takes up to the SCSI host's max_sectors (sysfs); otherwise the
// queue's limit (BLKSECTGET: bytes for an sg node, sectors for a block
// node), 256 KiB when nothing says.
func (d *Device) transferLimit() int {
	const fallback = 256 << 10
	fi, err := d.f.Stat()
	if err != nil {
		return fallback
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode()&os.ModeCharDevice != 0 {
		if n := hostMaxSectors(d.sys, st.Rdev); n > 0 {
			return n * 512
		}
	}
	var v int32
	if err := d.ioctlFn(d.f.Fd(), unix.BLKSECTGET, unsafe.Pointer(&v)); err != nil || v <= 0 {
		return fallback
	}
	if fi.Mode()&os.ModeCharDevice != 0 {
		return int(v)
	}
	return int(uint16(v)) * 512
}

// scsiCmd is a CDB the package sends itself.
type scsiCmd []byte

// statusErr is a command of the package's own that did not end GOOD.
type statusErr struct {
	status scsi.Status
	sense  []byte
}

func (e *statusErr) Error() string {
	if len(e.sense) >= 14 && e.sense[0]&0x7f <= 0x71 {
		return fmt.Sprintf("%s, sense key %xh, ASC/ASCQ %02xh/%02xh", e.status, e.sense[2]&0x0f, e.sense[12], e.sense[13])
	}
	if len(e.sense) >= 4 {
		return fmt.Sprintf("%s, sense key %xh, ASC/ASCQ %02xh/%02xh", e.status, e.sense[1]&0x0f, e.sense[2], e.sense[3])
	}
	return e.status.String()
}

func (e *statusErr) key() byte {
	switch {
	case len(e.sense) >= 3 && e.sense[0]&0x7f <= 0x71:
		return e.sense[2] & 0x0f
	case len(e.sense) >= 2:
		return e.sense[1] & 0x0f
	}
	return 0
}

func (e *statusErr) unitAttention() bool {
	return e.status == scsi.CheckCondition && e.key() == byte(scsi.UnitAttention)
}

func (e *statusErr) illegalRequest() bool {
	return e.status == scsi.CheckCondition && e.key() == byte(scsi.IllegalRequest)
}

// command sends one of the package's own data-in commands and returns the
// bytes read, or a *statusErr when it did not end GOOD.
func (d *Device) command(cdb scsiCmd, in []byte) (int, error) {
	var sense [scsiSenseMax]byte
	c := scsi.PassCommand{CDB: cdb, DataIn: in, Sense: sense[:]}
	if err := d.Pass(&c); err != nil {
		return 0, err
	}
	if c.Status != scsi.Good {
		return 0, &statusErr{status: c.Status, sense: append([]byte(nil), c.Sense[:c.SenseLen]...)}
	}
	return c.InLen, nil
}

// scsiSenseMax is the sense buffer of the package's own commands.
const scsiSenseMax = 96

// request is one SG_IO call's header and CDB, pooled so that Pass does
// not allocate.
type request struct {
	hdr sgIOHdr
	cdb [260]byte
}

// Pass executes one command; see scsi.Passthrough and the package
// documentation for what its outcomes mean.
func (d *Device) Pass(c *scsi.PassCommand) error {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.isClosed {
		return fmt.Errorf("dev_disk %s: %w", d.path, os.ErrClosed)
	}
	if len(c.CDB) == 0 || len(c.CDB) > 255 {
		return scsi.ErrInvalidFieldInCDB
	}
	d.slots <- struct{}{}
	defer func() { <-d.slots }()

	r := d.hdrs.Get().(*request)
	defer d.hdrs.Put(r)
	n := copy(r.cdb[:], c.CDB)
	h := &r.hdr
	*h = sgIOHdr{
		interfaceID:    sgInterfaceID,
		dxferDirection: dxferNone,
		cmdLen:         uint8(n),
		mxSbLen:        uint8(min(len(c.Sense), 255)),
		cmdp:           unsafe.Pointer(&r.cdb[0]),
		timeout:        d.timeout,
	}
	if len(c.Sense) > 0 {
		h.sbp = unsafe.Pointer(&c.Sense[0])
	}
	write := len(c.DataOut) > 0
	switch {
	case write:
		h.dxferDirection, h.dxferLen, h.dxferp = dxferToDev, uint32(len(c.DataOut)), unsafe.Pointer(&c.DataOut[0])
	case len(c.DataIn) > 0:
		h.dxferDirection, h.dxferLen, h.dxferp = dxferFromDev, uint32(len(c.DataIn)), unsafe.Pointer(&c.DataIn[0])
	}
	err := d.ioctlFn(d.f.Fd(), sgIO, unsafe.Pointer(h))
	switch {
	case err != nil:
		err = ioctlError(d.path, err)
	case h.hostStatus != didOK:
		err = hostError(d.path, h.hostStatus, write)
	case h.driverStatus&0x0f == driverTimeout:
		err = errTimeout
	}
	if errors.Is(err, errBusy) {
		c.Status = scsi.Busy
		return nil
	}
	if err != nil {
		return err
	}
	c.Status = scsi.Status(h.status)
	if c.Status == scsi.Good && h.driverStatus&0x0f >= driverError {
		return scsi.ErrInternalTarget
	}
	if c.Status == scsi.CheckCondition {
		c.SenseLen = int(min(h.sbLenWr, h.mxSbLen))
	}
	if h.dxferDirection == dxferFromDev {
		resid := int(h.resid)
		c.InLen = len(c.DataIn) - min(max(resid, 0), len(c.DataIn))
	}
	return nil
}

// ioctl issues an ioctl whose argument is a pointer.
func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// BlockSize returns the logical block size read when the device was opened.
func (d *Device) BlockSize() uint32 { return d.bs }

// MaxTransfer returns the largest data transfer of one command.
func (d *Device) MaxTransfer() int { return d.maxXfer }

// Size returns the capacity read when the device was opened.
func (d *Device) Size() (int64, error) { return d.size, nil }

// Identity returns the identity of the disk read when the device was
// opened: standard INQUIRY, VPD pages 80h and 83h (see package diskid).
func (d *Device) Identity() diskid.Identity { return d.id }

// Path returns the device node the device was opened through.
func (d *Device) Path() string { return d.path }

// Close closes the device node once the commands in progress have
// returned.
func (d *Device) Close() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.isClosed {
		return nil
	}
	d.isClosed = true
	return d.f.Close()
}

var _ scsi.Passthrough = (*Device)(nil)
