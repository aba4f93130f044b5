package sgio

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/scstd/scstd/internal/diskid"
	"github.com/scstd/scstd/scsi"
)

func TestHeaderLayout(t *testing.T) {
	var h sgIOHdr
	if n := unsafe.Sizeof(h); n != 88 {
		t.Fatalf("sg_io_hdr is %d bytes, want 88", n)
	}
	offsets := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"dxfer_direction", unsafe.Offsetof(h.dxferDirection), 4},
		{"cmd_len", unsafe.Offsetof(h.cmdLen), 8},
		{"dxfer_len", unsafe.Offsetof(h.dxferLen), 12},
		{"dxferp", unsafe.Offsetof(h.dxferp), 16},
		{"cmdp", unsafe.Offsetof(h.cmdp), 24},
		{"sbp", unsafe.Offsetof(h.sbp), 32},
		{"timeout", unsafe.Offsetof(h.timeout), 40},
		{"usr_ptr", unsafe.Offsetof(h.usrPtr), 56},
		{"status", unsafe.Offsetof(h.status), 64},
		{"sb_len_wr", unsafe.Offsetof(h.sbLenWr), 67},
		{"host_status", unsafe.Offsetof(h.hostStatus), 68},
		{"driver_status", unsafe.Offsetof(h.driverStatus), 70},
		{"resid", unsafe.Offsetof(h.resid), 72},
		{"info", unsafe.Offsetof(h.info), 80},
	}
	for _, o := range offsets {
		if o.got != o.want {
			t.Errorf("%s at offset %d, want %d", o.name, o.got, o.want)
		}
	}
}

func hx(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kernelReply is what the fake kernel does with one SG_IO call.
type kernelReply struct {
	err    error
	status uint8
	host   uint16
	driver uint16
	sense  []byte
	data   []byte // data-in to copy
	resid  int32
}

// fakeKernel answers the ioctls Open and Pass make. reply decides SG_IO;
// it sees the CDB and the data-out.
type fakeKernel struct {
	reply   func(cdb, out []byte) kernelReply
	timeout uint32 // the last SG_IO's timeout
	sectors int32  // BLKSECTGET
}

func (k *fakeKernel) ioctl(_ uintptr, req uint, arg unsafe.Pointer) error {
	switch req {
	case sgGetVersionNum:
		*(*int32)(arg) = 30527
	case unix.BLKSECTGET:
		*(*int32)(arg) = k.sectors
	case sgIO:
		h := (*sgIOHdr)(arg)
		if h.interfaceID != 'S' {
			return syscall.ENOSYS
		}
		k.timeout = h.timeout
		cdb := unsafe.Slice((*byte)(h.cmdp), h.cmdLen)
		var data []byte
		if h.dxferLen > 0 {
			data = unsafe.Slice((*byte)(h.dxferp), h.dxferLen)
		}
		var out []byte
		if h.dxferDirection == dxferToDev {
			out = data
		}
		r := k.reply(cdb, out)
		if r.err != nil {
			return r.err
		}
		h.status, h.hostStatus, h.driverStatus = r.status, r.host, r.driver
		if len(r.sense) > 0 {
			h.sbLenWr = uint8(copy(unsafe.Slice((*byte)(h.sbp), h.mxSbLen), r.sense))
		}
		if h.dxferDirection == dxferFromDev {
			n := copy(data, r.data)
			h.resid = int32(len(data) - n)
			if r.resid != 0 {
				h.resid = r.resid
			}
		}
	default:
		return syscall.ENOTTY
	}
	return nil
}

// disk answers INQUIRY (type typ) and READ CAPACITY(16) for a 1 MiB disk
// of 4 KiB blocks, after ua unit attentions.
func disk(typ byte, ua int) func(cdb, out []byte) kernelReply {
	return func(cdb, _ []byte) kernelReply {
		switch cdb[0] {
		case 0x12:
			return kernelReply{data: append([]byte{typ, 0, 6, 2, 31}, make([]byte, 31)...)}
		case 0x9e:
			if ua > 0 {
				ua--
				return kernelReply{status: 2, sense: (&scsi.SenseError{Key: scsi.UnitAttention, ASC: 0x29}).AppendFixed(nil)}
			}
			return kernelReply{data: []byte{0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0x10, 0}}
		}
		return kernelReply{}
	}
}

// openFake opens a device node stand-in (a regular file) through k.
func openFake(t *testing.T, k *fakeKernel, opts Options) (*Device, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sg0")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return open(p, opts, "/nonexistent", "/nonexistent", k.ioctl)
}

func TestOpenChecksTheDevice(t *testing.T) {
	k := &fakeKernel{reply: disk(0x00, 2), sectors: 128}
	d, err := openFake(t, k, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if size, _ := d.Size(); d.BlockSize() != 4096 || size != 256*4096 {
		t.Errorf("block size %d, size %d; want 4096 and 1 MiB (after two unit attentions)", d.BlockSize(), size)
	}
	if d.MaxTransfer() != 128*512 {
		t.Errorf("largest transfer %d, want 64 KiB (128 sectors of a block node)", d.MaxTransfer())
	}
	if k.timeout != 5000 {
		t.Errorf("commands carry a %d ms timeout, want 5000", k.timeout)
	}

	k = &fakeKernel{reply: disk(0x05, 0)}
	if _, err := openFake(t, k, Options{}); err == nil || !strings.Contains(err.Error(), "device type 05h") {
		t.Errorf("a CD-ROM opened: %v", err)
	}
	k = &fakeKernel{reply: func(cdb, out []byte) kernelReply { return kernelReply{err: syscall.EIO} }}
	if _, err := openFake(t, k, Options{}); err == nil {
		t.Error("a device whose INQUIRY fails opened")
	}
}

func TestPassOutcomes(t *testing.T) {
	descSense := hx(t, "72 03 11 00 00 00 00 00")
	tests := []struct {
		name       string
		reply      kernelReply
		write      bool
		wantStatus scsi.Status
		wantSense  []byte
		wantInLen  int
		wantErr    string // a sense ("ABORTED_COMMAND asc=0x08 ascq=0x01") or "gone"
	}{
		{"good read", kernelReply{data: bytes.Repeat([]byte{1}, 512)}, false, scsi.Good, nil, 512, ""},
		{"short read: residual", kernelReply{data: bytes.Repeat([]byte{1}, 100)}, false, scsi.Good, nil, 100, ""},
		{"check condition: sense verbatim", kernelReply{status: 2, driver: 0x08, sense: descSense}, false, scsi.CheckCondition, descSense, 0, ""},
		{"reservation conflict", kernelReply{status: 0x18}, false, scsi.ReservationConflict, nil, 0, ""},
		{"DID_TIME_OUT", kernelReply{host: didTimeOut}, false, 0, nil, 0, "ABORTED_COMMAND asc=0x08 ascq=0x01"},
		{"DRIVER_TIMEOUT", kernelReply{driver: driverTimeout}, false, 0, nil, 0, "ABORTED_COMMAND asc=0x08 ascq=0x01"},
		{"DID_NO_CONNECT", kernelReply{host: didNoConnect}, false, 0, nil, 0, "gone"},
		{"DID_BAD_TARGET", kernelReply{host: didBadTarget}, false, 0, nil, 0, "gone"},
		{"ioctl ENODEV", kernelReply{err: syscall.ENODEV}, false, 0, nil, 0, "gone"},
		{"DID_BUS_BUSY", kernelReply{host: didBusBusy}, false, scsi.Busy, nil, 0, ""},
		{"DID_TRANSPORT_DISRUPTED", kernelReply{host: didTransportDisrupted}, false, scsi.Busy, nil, 0, ""},
		{"ioctl EDOM (sg queue full)", kernelReply{err: syscall.EDOM}, false, scsi.Busy, nil, 0, ""},
		{"DID_ERROR", kernelReply{host: didError}, false, 0, nil, 0, "ABORTED_COMMAND asc=0x08 ascq=0x00"},
		{"DID_RESET", kernelReply{host: didReset}, false, 0, nil, 0, "ABORTED_COMMAND asc=0x08 ascq=0x00"},
		{"DID_PARITY", kernelReply{host: didParity}, false, 0, nil, 0, "ABORTED_COMMAND asc=0x47 ascq=0x00"},
		{"DID_MEDIUM_ERROR on a read", kernelReply{host: didMediumError}, false, 0, nil, 0, "MEDIUM_ERROR asc=0x11 ascq=0x00"},
		{"DID_MEDIUM_ERROR on a write", kernelReply{host: didMediumError}, true, 0, nil, 0, "MEDIUM_ERROR asc=0x0c ascq=0x00"},
		{"DID_ALLOC_FAILURE", kernelReply{host: didAllocFailure}, true, 0, nil, 0, "DATA_PROTECT asc=0x27 ascq=0x07"},
		{"DID_TARGET_FAILURE", kernelReply{host: didTargetFailure}, false, 0, nil, 0, "HARDWARE_ERROR asc=0x44 ascq=0x00"},
		{"unknown host status", kernelReply{host: 0x7f}, false, 0, nil, 0, "HARDWARE_ERROR asc=0x44 ascq=0x00"},
		{"DRIVER_HARD with GOOD", kernelReply{driver: 0x07}, false, 0, nil, 0, "HARDWARE_ERROR asc=0x44 ascq=0x00"},
		{"ioctl EINVAL", kernelReply{err: syscall.EINVAL}, false, 0, nil, 0, "ILLEGAL_REQUEST asc=0x24 ascq=0x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := &fakeKernel{reply: disk(0, 0)}
			d, err := openFake(t, k, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var gotOut []byte
			k.reply = func(cdb, out []byte) kernelReply {
				gotOut = bytes.Clone(out)
				return tc.reply
			}
			var sense [252]byte
			c := &scsi.PassCommand{CDB: hx(t, "28 00 00000000 00 0001 00"), Sense: sense[:]}
			if tc.write {
				c.CDB = hx(t, "2a 00 00000000 00 0001 00")
				c.DataOut = bytes.Repeat([]byte{7}, 4096)
			} else {
				c.DataIn = make([]byte, 512)
			}
			err = d.Pass(c)
			switch {
			case tc.wantErr == "gone":
				if !errors.Is(err, syscall.ENXIO) && !errors.Is(err, syscall.ENODEV) {
					t.Fatalf("error %v, want one wrapping ENXIO or ENODEV", err)
				}
				return
			case tc.wantErr != "":
				var se *scsi.SenseError
				if !errors.As(err, &se) || se.Error() != "scsi: "+tc.wantErr {
					t.Fatalf("error %v, want %s", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("error %v", err)
			}
			if c.Status != tc.wantStatus || !bytes.Equal(c.Sense[:c.SenseLen], tc.wantSense) || c.InLen != tc.wantInLen {
				t.Errorf("status %v sense %x in %d, want %v %x %d", c.Status, c.Sense[:c.SenseLen], c.InLen, tc.wantStatus, tc.wantSense, tc.wantInLen)
			}
			if tc.write && len(gotOut) != 4096 {
				t.Errorf("the kernel got %d bytes of data-out, want 4096", len(gotOut))
			}
		})
	}
}

func TestPassAfterClose(t *testing.T) {
	d, err := openFake(t, &fakeKernel{reply: disk(0, 0)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := d.Pass(&scsi.PassCommand{CDB: hx(t, "00 00 00 00 00 00")}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Pass after Close: %v", err)
	}
}

func TestResolveHCTL(t *testing.T) {
	sys := t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(sys, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk("bus/scsi/devices/0:0:1:0/scsi_generic/sg3")
	mk("bus/scsi/devices/2:0:0:0")
	tests := []struct {
		hctl, want, err string
	}{
		{"0:0:1:0", "/dev/sg3", ""},
		{"2:0:0:0", "", "no sg node"},
		{"1:0:0:0", "", "no SCSI device at 1:0:0:0"},
	}
	for _, tc := range tests {
		got, err := resolveHCTL(sys, "/dev", tc.hctl)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %q, %v; want %q, %q", tc.hctl, got, err, tc.want, tc.err)
		}
	}
}

func TestHostMaxSectors(t *testing.T) {
	sys := t.TempDir()
	host := filepath.Join(sys, "devices/pci0000:00/virtio1/host0")
	for _, d := range []string{host + "/target0:0:0/0:0:0:0", host + "/scsi_host/host0", sys + "/dev/char"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(host+"/scsi_host/host0/max_sectors", []byte("65535\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(sys+"/dev/char/21:0", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host+"/target0:0:0/0:0:0:0", sys+"/dev/char/21:0/device"); err != nil {
		t.Fatal(err)
	}
	if n := hostMaxSectors(sys, unix.Mkdev(21, 0)); n != 65535 {
		t.Errorf("max_sectors %d, want 65535", n)
	}
	if n := hostMaxSectors(sys, unix.Mkdev(21, 1)); n != 0 {
		t.Errorf("max_sectors of an unknown node %d, want 0", n)
	}
}

// TestOpenReadsIdentity: Open reads the disk's identity from standard
// INQUIRY and VPD pages 80h and 83h, retries a page after a unit
// attention, takes ILLEGAL REQUEST for a page the disk has not, and
// fails on any other error rather than record a partial identity.
func TestOpenReadsIdentity(t *testing.T) {
	std := append([]byte{0, 0, 6, 2, 31, 0, 0, 0}, []byte("QEMU    QEMU HARDDISK   2.5+")...)
	vpd80 := append([]byte{0, 0x80, 0, 8}, "SCSTDVM0"...)
	vpd83 := []byte{0, 0x83, 0, 12, 1, 3, 0, 8, 0x50, 0x00, 0xc5, 0x00, 0x15, 0xea, 0x71, 0xac}
	illegal := kernelReply{status: 2, sense: (&scsi.SenseError{Key: scsi.IllegalRequest, ASC: 0x24}).AppendFixed(nil)}
	ua := kernelReply{status: 2, sense: (&scsi.SenseError{Key: scsi.UnitAttention, ASC: 0x29}).AppendFixed(nil)}
	for _, c := range []struct {
		name     string
		page     func(pc byte, try int) kernelReply
		want     diskid.Identity
		wantFail string
	}{
		{"pages", func(pc byte, _ int) kernelReply {
			return kernelReply{data: map[byte][]byte{0x80: vpd80, 0x83: vpd83}[pc]}
		}, diskid.Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "SCSTDVM0", Designators: []string{"naa.5000c50015ea71ac"}}, ""},
		{"unit attention first", func(pc byte, try int) kernelReply {
			if try == 0 {
				return ua
			}
			return kernelReply{data: map[byte][]byte{0x80: vpd80, 0x83: vpd83}[pc]}
		}, diskid.Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "SCSTDVM0", Designators: []string{"naa.5000c50015ea71ac"}}, ""},
		{"no VPD pages", func(byte, int) kernelReply { return illegal }, diskid.Identity{Vendor: "QEMU", Product: "QEMU HARDDISK"}, ""},
		{"VPD 83h fails", func(pc byte, _ int) kernelReply {
			if pc == 0x83 {
				return kernelReply{host: didError}
			}
			return kernelReply{data: vpd80}
		}, diskid.Identity{}, "VPD 83h"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tries := map[byte]int{}
			k := &fakeKernel{reply: func(cdb, out []byte) kernelReply {
				switch {
				case cdb[0] == 0x12 && cdb[1]&1 == 1:
					r := c.page(cdb[2], tries[cdb[2]])
					tries[cdb[2]]++
					return r
				case cdb[0] == 0x12:
					return kernelReply{data: std}
				}
				return disk(0, 0)(cdb, out)
			}}
			d, err := openFake(t, k, Options{})
			if c.wantFail != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantFail) {
					t.Fatalf("open: %v, want a failure naming %s", err, c.wantFail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := d.Identity(); !got.Equal(c.want) {
				t.Errorf("identity %+v, want %+v", got, c.want)
			}
		})
	}
}
