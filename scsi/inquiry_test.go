package scsi

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestStandardInquiry(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{Name: "disk1", T10DevID: "disk1"})
	// INQUIRY, EVPD=0, page 0, allocation length 255
	r := f.exec(0, hx(t, "12 00 00 00ff 00"), nil)
	if r.Status != Good {
		t.Fatalf("INQUIRY: %s", senseOf(r))
	}
	b := r.Data
	checks := []struct {
		name      string
		got, want any
	}{
		{"length", len(b), 74},
		{"peripheral qualifier/type", b[0], byte(0x00)},
		{"RMB", b[1], byte(0x00)},
		{"version SPC-4", b[2], byte(0x06)},
		{"HISUP, response data format 2", b[3], byte(0x12)},
		{"additional length", int(b[4]), len(b) - 5},
		{"CMDQUE", b[7], byte(0x02)},
		{"vendor", string(b[8:16]), "SCSTD   "},
		{"product", string(b[16:32]), "disk1           "},
		{"revision", string(b[32:36]), inquiryRevision},
		{"version descriptor SPC-4", binary.BigEndian.Uint16(b[62:64]), uint16(versionSPC4)},
		{"version descriptor SBC-3", binary.BigEndian.Uint16(b[64:66]), uint16(versionSBC3)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestInquiryCDB(t *testing.T) {
	cases := []struct {
		name string
		cdb  string
		want string
		n    int // data-in length when GOOD
	}{
		{"standard, allocation 5", "12 00 00 0005 00", "GOOD", 5},
		{"standard, allocation 0", "12 00 00 0000 00", "GOOD", 0},
		{"EVPD=0 with page code", "12 00 80 00ff 00", want(invalidField(2, -1)), 0},
		{"reserved bit in byte 1", "12 02 00 00ff 00", want(invalidField(1, -1)), 0},
		{"supported pages", "12 01 00 00ff 00", "GOOD", 4 + 6},
		{"unit serial number", "12 01 80 00ff 00", "GOOD", 4 + 8},
		{"block limits", "12 01 b0 00ff 00", "GOOD", 64},
		{"block device characteristics", "12 01 b1 00ff 00", "GOOD", 64},
		{"logical block provisioning", "12 01 b2 00ff 00", "GOOD", 8},
		{"unsupported page", "12 01 c0 00ff 00", want(invalidField(2, -1)), 0},
		{"short CDB", "12 00 00", want(ErrInvalidFieldInCDB), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 64, DeviceConfig{})
			r := f.exec(0, hx(t, c.cdb), nil)
			if got := senseOf(r); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			if r.Status == Good && len(r.Data) != c.n {
				t.Fatalf("data-in %d bytes, want %d", len(r.Data), c.n)
			}
		})
	}
}

func TestVPDSupportedPagesSorted(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	r := f.exec(0, hx(t, "12 01 00 00ff 00"), nil)
	pages := r.Data[4:]
	for i := 1; i < len(pages); i++ {
		if pages[i] <= pages[i-1] {
			t.Fatalf("pages not ascending: % x", pages)
		}
	}
	for _, p := range pages {
		if r := f.exec(0, []byte{0x12, 0x01, p, 0x00, 0xff, 0x00}, nil); r.Status != Good {
			t.Errorf("page %02x listed but fails: %s", p, senseOf(r))
		}
	}
}

func TestInquiryUnmappedLUN(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	r := f.exec(3, hx(t, "12 00 00 00ff 00"), nil)
	if r.Status != Good || r.Data[0] != 0x7f {
		t.Fatalf("INQUIRY on LUN 3: %s, byte 0 %02x; want GOOD, 7Fh", senseOf(r), r.Data[0])
	}
	if r := f.exec(3, hx(t, "00 00000000 00"), nil); senseOf(r) != want(ErrLUNotSupported) {
		t.Fatalf("TUR on LUN 3: %s", senseOf(r))
	}
	// LUNValid false: the LUN could not be decoded.
	r = Execute(&Command{Nexus: f.nex, LUNs: f.lus, CDB: hx(t, "00 00000000 00")})
	if senseOf(r) != want(ErrLUNotSupported) {
		t.Fatalf("TUR on undecodable LUN: %s", senseOf(r))
	}
}

// designators splits a Device Identification page into its descriptors,
// keyed by association|type.
func designators(t *testing.T, page []byte) map[byte][]byte {
	t.Helper()
	m := map[byte][]byte{}
	if int(binary.BigEndian.Uint16(page[2:4])) != len(page)-4 {
		t.Fatalf("page length %d, data %d", binary.BigEndian.Uint16(page[2:4]), len(page)-4)
	}
	for d := page[4:]; len(d) > 0; {
		n := int(d[3])
		if 4+n > len(d) {
			t.Fatalf("descriptor overruns page")
		}
		m[d[1]&0x3f] = d[4 : 4+n]
		d = d[4+n:]
	}
	return m
}

func TestVPDDeviceIdentification(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{Name: "disk1", T10DevID: "abc"})
	f.nex.RelTgtPortID = 2
	r := f.exec(0, hx(t, "12 01 83 0400 00"), nil)
	if r.Status != Good {
		t.Fatalf("VPD 83h: %s", senseOf(r))
	}
	m := designators(t, r.Data)
	naa := m[assocLU|desigNAA]
	if len(naa) != 8 || naa[0]>>4 != 3 {
		t.Errorf("NAA designator % x, want 8 bytes of NAA 3h", naa)
	}
	if got := string(m[assocLU|desigT10Vendor]); got != "SCSTD   abc" {
		t.Errorf("T10 vendor ID %q", got)
	}
	if got := m[assocTargetPort|desigRelTgtPort]; !bytes.Equal(got, []byte{0, 0, 0, 2}) {
		t.Errorf("relative target port % x", got)
	}
	if got, ok := m[assocTargetPort|desigTgtPortGroup]; ok {
		// INQUIRY says TPGS=00b: no target port group to name.
		t.Errorf("target port group % x listed for a device in no device group", got)
	}
	name := m[assocTargetPort|desigSCSIName]
	if len(name)%4 != 0 || string(bytes.TrimRight(name, "\x00")) != "iqn.2026-11.org.example:t1,t,0x0001" {
		t.Errorf("target port name %q", name)
	}
	if got := string(bytes.TrimRight(m[assocTarget|desigSCSIName], "\x00")); got != "iqn.2026-11.org.example:t1" {
		t.Errorf("target name %q", got)
	}
	// Stable: a device made again from the same configuration has the
	// same NAA designator.
	again := NewDevice(DeviceConfig{Name: "disk1", T10DevID: "abc"}, nil)
	if !bytes.Equal(again.id.naa, f.dev.id.naa) {
		t.Errorf("NAA not stable: %x vs %x", again.id.naa, f.dev.id.naa)
	}
	other := NewDevice(DeviceConfig{Name: "disk1", T10DevID: "abd"}, nil)
	if bytes.Equal(other.id.naa, f.dev.id.naa) {
		t.Errorf("different t10_dev_id, same NAA")
	}
}

func TestVPDProvisioning(t *testing.T) {
	cfg := DeviceConfig{Name: "thin", BlockSize: 512}
	plain := NewDevice(cfg, newMem(1<<20))
	thin := NewDevice(cfg, unmapMem{newMem(1 << 20)})
	for _, c := range []struct {
		name  string
		dev   *Device
		unmap bool
	}{{"no unmapper", plain, false}, {"unmapper", thin, true}} {
		t.Run(c.name, func(t *testing.T) {
			m := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: c.dev}})
			run := func(cdb string) []byte {
				r := Execute(&Command{LUNs: m, LUNValid: true, CDB: hx(t, cdb)})
				if r.Status != Good {
					t.Fatalf("%s: %s", cdb, senseOf(r))
				}
				return r.Data
			}
			b2 := run("12 01 b2 00ff 00")
			rc16 := run("9e 10 0000000000000000 00000020 00 00")
			bl := run("12 01 b0 00ff 00")
			wantLBPU := c.unmap && supported(Unmap, 0)
			if got := b2[5]&0x80 != 0; got != wantLBPU {
				t.Errorf("LBPU %v, want %v", got, wantLBPU)
			}
			if got := rc16[14]&0x80 != 0; got != wantLBPU {
				t.Errorf("LBPME %v, want %v", got, wantLBPU)
			}
			maxUnmap := binary.BigEndian.Uint32(bl[20:24])
			if (maxUnmap != 0) != wantLBPU {
				t.Errorf("MAXIMUM UNMAP LBA COUNT %d with LBPU %v", maxUnmap, wantLBPU)
			}
			if got := binary.BigEndian.Uint32(bl[8:12]); got != maxTransferBytes/512 {
				t.Errorf("MAXIMUM TRANSFER LENGTH %d", got)
			}
		})
	}
}
