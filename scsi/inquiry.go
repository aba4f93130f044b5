package scsi

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/fnv"
	"strings"
)

// Identity strings of standard INQUIRY data.
const (
	inquiryVendor   = "SCSTD"
	inquiryRevision = "0100"
)

// Vital product data pages (SPC-4 §7.8, SBC-3 §6.5).
const (
	vpdSupportedPages   = 0x00
	vpdUnitSerialNumber = 0x80
	vpdDeviceIdent      = 0x83
	vpdBlockLimits      = 0xb0
	vpdBlockDevChar     = 0xb1
	vpdLBProvisioning   = 0xb2
)

// Version descriptors (SPC-4 table 144).
const (
	versionSAM5  = 0x00a0
	versionISCSI = 0x0960
	versionSPC4  = 0x0460
	versionSBC3  = 0x04c0
	versionMMC6  = 0x04e0
)

// identity is what INQUIRY says about a device, computed once.
type identity struct {
	product [16]byte // PRODUCT IDENTIFICATION, from the device name
	usn     string   // unit serial number (VPD 80h)
	t10ID   string   // vendor specific part of the T10 vendor ID designator
	naa     []byte   // NAA designator (VPD 83h): 16 bytes of NAA 6h, or 8
}

// newIdentity derives a device's identity from its configuration. It is
// stable: the same name, t10_dev_id and NAA give the same designators
// across restarts, so initiators (multipath) recognise the device.
func newIdentity(cfg *DeviceConfig) identity {
	var id identity
	copy(id.product[:], padASCII(cfg.Name, 16))
	id.t10ID = asciiOnly(cfg.T10DevID)
	if id.t10ID == "" {
		id.t10ID = asciiOnly(cfg.Name)
	}
	legacy := LegacyNAA(id.t10ID)
	switch len(cfg.NAA) {
	case 8, 16:
		id.naa = append([]byte(nil), cfg.NAA...)
	default:
		id.naa = binary.BigEndian.AppendUint64(nil, legacy)
	}
	id.usn = asciiOnly(cfg.USN)
	if id.usn == "" {
		const hex = "0123456789abcdef"
		var b [8]byte
		for i := range b {
			b[i] = hex[(legacy>>(4*uint(i)))&0xf]
		}
		id.usn = string(b[:])
	}
	return id
}

// LegacyNAA is the locally assigned NAA designator (NAA 3h: four bits of
// NAA, 60 bits of the FNV-1a hash of the T10 vendor ID's vendor specific
// part) that scstd listed for every device before it listed an NAA IEEE
// Registered Extended designator. Pinned as naa_id, it gives a device its
// identity from before: the Linux kernel then ranks the T10 vendor ID
// designator first again (both rank lowest; the later one wins), and
// udev's scsi_id takes this one.
func LegacyNAA(t10ID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(t10ID))
	return 3<<60 | h.Sum64()&(1<<60-1)
}

// naaCompanyID is the IEEE COMPANY_ID field of the NAA 6h designators
// that DeriveNAA makes: 02-53-44, a locally administered value (the U/L
// bit of its first octet is set), not an IEEE assignment. A site with a
// company ID of its own pins naa_id with it.
const naaCompanyID = 0x025344

// DeriveNAA returns the NAA IEEE Registered Extended designator (NAA 6h,
// SPC-4 §7.8.6.6.5, 16 bytes) of a logical unit: the company ID above,
// then 100 bits of SHA-256 over the installation's random seed and the
// device's T10 vendor ID vendor specific part (t10_dev_id). The seed
// makes it unique across hosts (two installations that both name a
// device "disk0" give different designators); the T10 ID makes it
// unique within one, and stable across restarts and renames that keep
// t10_dev_id. The same LU exported by several hosts pins naa_id instead.
func DeriveNAA(seed []byte, t10ID string) [16]byte {
	h := sha256.New()
	h.Write(seed)
	h.Write([]byte{0})
	h.Write([]byte(asciiOnly(t10ID)))
	var sum [32]byte
	h.Sum(sum[:0])
	var naa [16]byte
	copy(naa[3:], sum[:13])
	naa[0] = 0x60 | naaCompanyID>>20
	naa[1] = naaCompanyID >> 12 & 0xff
	naa[2] = naaCompanyID >> 4 & 0xff
	naa[3] = naaCompanyID&0x0f<<4 | sum[0]&0x0f
	return naa
}

// asciiOnly keeps the printable ASCII characters of s (SPC-4 §4.4.1).
func asciiOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}

// padASCII returns s as n bytes of printable ASCII, space padded.
func padASCII(s string, n int) []byte {
	b := []byte(asciiOnly(s))
	if len(b) > n {
		b = b[:n]
	}
	for len(b) < n {
		b = append(b, ' ')
	}
	return b
}

// inquiry handles INQUIRY (SPC-4 §6.6).
//
//	byte 1   bit 0 EVPD
//	byte 2   PAGE CODE
//	byte 3-4 ALLOCATION LENGTH
func inquiry(t *task) ([]byte, error) {
	cdb := t.cdb()
	evpd := cdb[1]&0x01 != 0
	page := cdb[2]
	alloc := uint32(be16(cdb[3:5]))
	if cdb[1]&0xfe != 0 {
		return nil, invalidField(1, -1)
	}
	if !evpd {
		if page != 0 {
			return nil, invalidField(2, -1)
		}
		return allocLen(t.standardInquiry(), alloc), nil
	}
	if t.dev == nil {
		// SPC-4 §6.6.2: no logical unit; only standard data is defined.
		return nil, ErrLUNotSupported
	}
	var b []byte
	switch page {
	case vpdSupportedPages:
		b = t.vpdSupported()
	case vpdUnitSerialNumber:
		b = t.vpdSerial()
	case vpdDeviceIdent:
		b = t.vpdDeviceIdent()
	case vpdBlockLimits, vpdBlockDevChar, vpdLBProvisioning:
		if t.dev.cfg.Type != TypeDisk {
			return nil, invalidField(2, -1)
		}
		switch page {
		case vpdBlockLimits:
			b = t.vpdBlockLimits()
		case vpdBlockDevChar:
			b = t.vpdBlockDevChar()
		default:
			b = t.vpdLBProvisioning()
		}
	default:
		return nil, invalidField(2, -1)
	}
	return allocLen(b, alloc), nil
}

// standardInquiry builds standard INQUIRY data (SPC-4 §6.6.2), 74 bytes
// with eight version descriptors.
func (t *task) standardInquiry() []byte {
	b := t.dataIn(74)
	if t.dev == nil {
		// Peripheral qualifier 011b, device type 1Fh: no logical unit at
		// this LUN.
		b[0] = 0x7f
	} else {
		b[0] = byte(t.dev.cfg.Type) & 0x1f
		if t.dev.removable() {
			b[1] = 0x80 // RMB
		}
	}
	b[2] = 0x06        // VERSION: SPC-4
	b[3] = 0x10 | 0x02 // HISUP, RESPONSE DATA FORMAT 2
	b[4] = byte(len(b) - 5)
	if t.dev != nil && supported(ExtendedCopy, 0) {
		b[5] = 0x08 // 3PC
	}
	if t.dev != nil {
		b[5] |= t.dev.tpgs()
	}
	b[7] = 0x02 // CMDQUE
	copy(b[8:16], padASCII(inquiryVendor, 8))
	if t.dev != nil {
		copy(b[16:32], t.dev.id.product[:])
	} else {
		copy(b[16:32], padASCII("", 16))
	}
	copy(b[32:36], inquiryRevision)
	versions := [...]uint16{versionSAM5, versionISCSI, versionSPC4, versionSBC3}
	if t.dev != nil && t.dev.cfg.Type == TypeCDROM {
		versions[3] = versionMMC6
	}
	for i, v := range versions {
		binary.BigEndian.PutUint16(b[58+2*i:], v)
	}
	return b
}

// vpdHeader starts a VPD page of n payload bytes.
func (t *task) vpdHeader(page byte, n int) []byte {
	b := t.dataIn(4 + n)
	b[0] = byte(t.dev.cfg.Type) & 0x1f
	b[1] = page
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	return b
}

// vpdPages lists the VPD pages of the device, ascending.
func (t *task) vpdPages() []byte {
	if t.dev.cfg.Type == TypeDisk {
		return []byte{vpdSupportedPages, vpdUnitSerialNumber, vpdDeviceIdent,
			vpdBlockLimits, vpdBlockDevChar, vpdLBProvisioning}
	}
	return []byte{vpdSupportedPages, vpdUnitSerialNumber, vpdDeviceIdent}
}

// vpdSupported builds the Supported VPD Pages page (SPC-4 §7.8).
func (t *task) vpdSupported() []byte {
	pages := t.vpdPages()
	b := t.vpdHeader(vpdSupportedPages, len(pages))
	copy(b[4:], pages)
	return b
}

// vpdSerial builds the Unit Serial Number page (SPC-4 §7.8).
func (t *task) vpdSerial() []byte {
	usn := t.dev.id.usn
	b := t.vpdHeader(vpdUnitSerialNumber, len(usn))
	copy(b[4:], usn)
	return b
}

// Designator fields of the Device Identification page (SPC-4 §7.8.6).
const (
	codeSetBinary = 1
	codeSetASCII  = 2
	codeSetUTF8   = 3

	assocLU         = 0 << 4
	assocTargetPort = 1 << 4
	assocTarget     = 2 << 4

	desigT10Vendor    = 1
	desigNAA          = 3
	desigRelTgtPort   = 4
	desigTgtPortGroup = 5
	desigSCSIName     = 8

	protocolISCSI = 5
	piv           = 0x80
)

// appendDesignator appends one designation descriptor. Port designators
// (association other than the logical unit) carry the iSCSI protocol
// identifier with PIV set.
func appendDesignator(b []byte, codeSet, assoc, typ byte, id []byte) []byte {
	b0 := codeSet
	b1 := assoc | typ
	if assoc != assocLU {
		b0 |= protocolISCSI << 4
		b1 |= piv
	}
	return append(append(b, b0, b1, 0, byte(len(id))), id...)
}

// appendNameString appends a SCSI name string designator: UTF-8, null
// terminated and padded with nulls to a multiple of four bytes.
func appendNameString(b []byte, assoc byte, name string) []byte {
	n := (len(name) + 4) &^ 3
	if n > 252 {
		n = 252
		name = name[:n-1]
	}
	id := make([]byte, n)
	copy(id, name)
	return appendDesignator(b, codeSetUTF8, assoc, desigSCSIName, id)
}

// vpdDeviceIdent builds the Device Identification page (SPC-4 §7.8.6):
// the logical unit's NAA and T10 vendor ID designators, and, when the
// command came through a nexus, the relative target port, target port
// group (for a device in a device group) and SCSI name strings of the
// target port and target device. The NAA designator comes first: it is
// the one initiators take as the disk's name (see DeriveNAA).
func (t *task) vpdDeviceIdent() []byte {
	b := make([]byte, 4, 256)
	b[0] = byte(t.dev.cfg.Type) & 0x1f
	b[1] = vpdDeviceIdent
	b = appendDesignator(b, codeSetBinary, assocLU, desigNAA, t.dev.id.naa)
	t10 := append(padASCII(inquiryVendor, 8), t.dev.id.t10ID...)
	if len(t10) > 255 {
		t10 = t10[:255]
	}
	b = appendDesignator(b, codeSetASCII, assocLU, desigT10Vendor, t10)
	b = t.appendPortDesignators(b)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-4))
	return b
}

// appendPortDesignators appends the designators of the target port and
// target device the command came through (relative target port, target
// port group, SCSI name strings), when it came through a nexus.
func (t *task) appendPortDesignators(b []byte) []byte {
	n := t.cmd.Nexus
	if n == nil {
		return b
	}
	var port [4]byte
	binary.BigEndian.PutUint16(port[2:], n.RelTgtPortID)
	b = appendDesignator(b, codeSetBinary, assocTargetPort, desigRelTgtPort, port[:])
	if g := t.dev.portGroup(n.TargetName); g != nil {
		// The port's target port group, as REPORT TARGET PORT GROUPS
		// lists it (SPC-4 §7.8.6.8); none without ALUA.
		binary.BigEndian.PutUint16(port[2:], g.ID)
		b = appendDesignator(b, codeSetBinary, assocTargetPort, desigTgtPortGroup, port[:])
	}
	if n.TargetPort != "" {
		b = appendNameString(b, assocTargetPort, n.TargetPort)
	}
	if n.TargetName != "" {
		b = appendNameString(b, assocTarget, n.TargetName)
	}
	return b
}

// vpdBlockLimits builds the Block Limits page (SBC-3 §6.5.3), 3Ch bytes.
func (t *task) vpdBlockLimits() []byte {
	b := t.vpdHeader(vpdBlockLimits, 0x3c)
	bs := t.blockSize()
	if supported(CompareAndWrite, 0) {
		b[5] = maxCompareAndWriteBlocks
	}
	binary.BigEndian.PutUint16(b[6:8], uint16(t.physicalBlocks())) // OPTIMAL TRANSFER LENGTH GRANULARITY
	binary.BigEndian.PutUint32(b[8:12], maxTransferBlocks(bs))
	binary.BigEndian.PutUint32(b[12:16], optimalTransferBytes/bs)
	if t.unmapper() != nil && supported(Unmap, 0) {
		binary.BigEndian.PutUint32(b[20:24], maxUnmapLBACount)
		binary.BigEndian.PutUint32(b[24:28], maxUnmapDescriptors)
		binary.BigEndian.PutUint32(b[28:32], t.physicalBlocks()) // OPTIMAL UNMAP GRANULARITY
	}
	if supported(WriteSame16, 0) {
		binary.BigEndian.PutUint64(b[36:44], maxWriteSameBlocks)
	}
	if supported(WriteAtomic16, 0) {
		binary.BigEndian.PutUint32(b[44:48], maxAtomicTransferBytes/bs)
		binary.BigEndian.PutUint32(b[48:52], 1) // ATOMIC ALIGNMENT
		binary.BigEndian.PutUint32(b[52:56], 1) // ATOMIC TRANSFER LENGTH GRANULARITY
	}
	return b
}

// vpdBlockDevChar builds the Block Device Characteristics page (SBC-3
// §6.5.2): non-rotating medium, form factor not reported, and WABEREQ 01b
// when SANITIZE BLOCK ERASE is served: reads after it succeed (returning
// zeroes). WACEREQ stays 0: CRYPTO ERASE is not offered.
func (t *task) vpdBlockDevChar() []byte {
	b := t.vpdHeader(vpdBlockDevChar, 0x3c)
	binary.BigEndian.PutUint16(b[4:6], 1) // MEDIUM ROTATION RATE: non-rotating
	if supported(Sanitize, uint8(SanitizeBlockErase)) {
		b[7] = 0x40 // WABEREQ 01b
	}
	return b
}

// vpdLBProvisioning builds the Logical Block Provisioning page (SBC-3
// §6.5.4): thin provisioning with UNMAP and WRITE SAME(10/16) with UNMAP
// when the backend can deallocate and those commands exist.
func (t *task) vpdLBProvisioning() []byte {
	b := t.vpdHeader(vpdLBProvisioning, 4)
	if t.unmapper() != nil {
		if supported(Unmap, 0) {
			b[5] |= 0x80 // LBPU
		}
		if supported(WriteSame16, 0) {
			b[5] |= 0x40 // LBPWS
		}
		if supported(WriteSame10, 0) {
			b[5] |= 0x20 // LBPWS10
		}
		b[6] = 0x02 // PROVISIONING TYPE: thin
	}
	return b
}
