package diskid

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// inquiry is standard INQUIRY data with vendor and product.
func inquiry(vendor, product string) []byte {
	b := make([]byte, 36)
	copy(b[8:16], pad(vendor, 8))
	copy(b[16:32], pad(product, 16))
	copy(b[32:36], "2.5+")
	return b
}

// vpdPage is a VPD page with code pc and body.
func vpdPage(pc byte, body ...byte) []byte {
	return append([]byte{0, pc, byte(len(body) >> 8), byte(len(body))}, body...)
}

// desc is a designation descriptor.
func desc(codeSet, assoc, typ byte, d ...byte) []byte {
	return append([]byte{codeSet, assoc<<4 | typ, 0, byte(len(d))}, d...)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestFromPages(t *testing.T) {
	// QEMU's scsi-hd with serial and wwn: a vendor-specific designator
	// holding the serial, the NAA, and a target port designator.
	qemu83 := vpdPage(0x83, cat(
		desc(2, 0, 0, []byte("SCSTDVM0")...),
		desc(1, 0, 3, 0x50, 0x00, 0xc5, 0x00, 0x15, 0xea, 0x71, 0xac),
		desc(1, 1, 4, 0, 0, 0, 1), // relative target port: not the LU's
		desc(1, 0, 6, 0, 0, 0, 7), // LU group: left out
	)...)
	for _, c := range []struct {
		name               string
		inq, vpd80, vpd83  []byte
		want               Identity
		primary, formatted string
		weak               bool
	}{
		{
			name: "qemu scsi-hd", inq: inquiry("QEMU", "QEMU HARDDISK"), vpd80: vpdPage(0x80, []byte("SCSTDVM0  ")...), vpd83: qemu83,
			want:    Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "SCSTDVM0", Designators: []string{"naa.5000c50015ea71ac", "vendor.SCSTDVM0"}},
			primary: "naa.5000c50015ea71ac", formatted: "naa.5000c50015ea71ac (serial SCSTDVM0, QEMU QEMU HARDDISK)",
		},
		{
			name: "eui t10 name uuid md5", inq: inquiry("ACME", "X"),
			vpd83: vpdPage(0x83, cat(desc(2, 0, 1, []byte("ACME    X 123 ")...), desc(1, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8),
				desc(3, 0, 8, []byte("iqn.x\x00\x00\x00")...), desc(1, 0, 0xa, 0x10, 0xab), desc(1, 0, 7, 0xff))...),
			want: Identity{Vendor: "ACME", Product: "X", Designators: []string{"eui.0102030405060708", "md5.ff", "name.iqn.x",
				"t10.ACME    X 123", "uuid.10ab"}},
			primary: "eui.0102030405060708", formatted: "eui.0102030405060708 (ACME X)",
		},
		{
			name: "no VPD pages", inq: inquiry("OLD", "DISK"),
			want: Identity{Vendor: "OLD", Product: "DISK"}, formatted: "(OLD DISK)", weak: true,
		},
		{
			name: "wrong page codes", inq: inquiry("OLD", "DISK"), vpd80: vpdPage(0x83, 'x'), vpd83: vpdPage(0x80, 'y'),
			want: Identity{Vendor: "OLD", Product: "DISK"}, formatted: "(OLD DISK)", weak: true,
		},
		{
			// A page cut short: the whole descriptors are kept, the
			// torn one is not.
			name: "truncated 83h", inq: inquiry("T", "P"), vpd83: qemu83[:4+12+8],
			want: Identity{Vendor: "T", Product: "P", Designators: []string{"vendor.SCSTDVM0"}}, primary: "vendor.SCSTDVM0",
			formatted: "vendor.SCSTDVM0 (T P)",
		},
		{
			name: "non-printable serial", inq: inquiry("T", "P"), vpd80: vpdPage(0x80, 'a', 0x01, 'b', 0),
			want: Identity{Vendor: "T", Product: "P", Serial: "a?b"}, formatted: "(serial a?b, T P)",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := FromPages(c.inq, c.vpd80, c.vpd83)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v\nwant %#v", got, c.want)
			}
			if got.Primary() != c.primary || got.String() != c.formatted || got.Weak() != c.weak {
				t.Errorf("Primary %q String %q Weak %v; want %q %q %v", got.Primary(), got.String(), got.Weak(), c.primary, c.formatted, c.weak)
			}
			if !got.Equal(c.want) {
				t.Error("not Equal to itself")
			}
		})
	}
}

func TestEqual(t *testing.T) {
	a := Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "S0", Designators: []string{"naa.50", "vendor.S0"}}
	for _, c := range []struct {
		name string
		b    Identity
	}{
		{"serial", Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "S1", Designators: []string{"naa.50", "vendor.S0"}}},
		{"designator", Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "S0", Designators: []string{"naa.51", "vendor.S0"}}},
		{"one designator less", Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "S0", Designators: []string{"naa.50"}}},
		{"product", Identity{Vendor: "QEMU", Product: "QEMU CD-ROM", Serial: "S0", Designators: []string{"naa.50", "vendor.S0"}}},
	} {
		if a.Equal(c.b) || c.b.Equal(a) {
			t.Errorf("%s differs, yet Equal", c.name)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := Record{Device: "sdb", Path: "0:0:1:0", Identity: Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "S0",
		Designators: []string{"naa.5000c50015ea71ac", "vendor.S0"}}}
	b := r.Encode()
	for _, s := range []string{`"format": "scstd-dev-disk-identity"`, `"version": 1`, `"device": "sdb"`, `"naa.5000c50015ea71ac"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("record lacks %s:\n%s", s, b)
		}
	}
	got, err := DecodeRecord(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, r)
	}
	for _, bad := range []string{
		"", "{", `{"format": "scstd-persistent-reservations", "version": 1, "vendor": "Q"}`,
		`{"format": "scstd-dev-disk-identity", "version": 2, "vendor": "Q"}`,
		`{"format": "scstd-dev-disk-identity", "version": 1}`,
		`{"format": "scstd-dev-disk-identity", "version": 1, "vendor": "Q", "designators": "naa.5"}`,
	} {
		if _, err := DecodeRecord([]byte(bad)); err == nil {
			t.Errorf("DecodeRecord(%q) accepted", bad)
		}
	}
}

// TestFromSysfs: the identity sysfs gives of a disk is the one its pages
// give (validate compares the first with what the engine recorded from
// the second).
func TestFromSysfs(t *testing.T) {
	dir := t.TempDir()
	vpd80 := vpdPage(0x80, []byte("SCSTDVM0")...)
	vpd83 := vpdPage(0x83, cat(desc(2, 0, 0, []byte("SCSTDVM0")...), desc(1, 0, 3, 0x50, 0, 0xc5, 0, 0x15, 0xea, 0x71, 0xac))...)
	for name, data := range map[string][]byte{"vendor": []byte("QEMU    \n"), "model": []byte("QEMU HARDDISK   \n"), "vpd_pg80": vpd80, "vpd_pg83": vpd83} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := FromSysfs(dir)
	want := FromPages(inquiry("QEMU", "QEMU HARDDISK"), vpd80, vpd83)
	if err != nil || !got.Equal(want) || !got.HasVPD80 || !got.HasVPD83 || !got.Compare(Identity{}).Equal(want) {
		t.Fatalf("FromSysfs %+v, %v; FromPages %+v", got, err, want)
	}
	// Without the kernel's copies of the VPD pages, what they hold is
	// the record's.
	os.Remove(filepath.Join(dir, "vpd_pg80"))
	os.Remove(filepath.Join(dir, "vpd_pg83"))
	got, err = FromSysfs(dir)
	if err != nil || got.HasVPD80 || got.HasVPD83 || !got.Compare(want).Equal(want) {
		t.Fatalf("FromSysfs without VPD pages %+v, %v", got, err)
	}
	if got.Compare(Identity{Vendor: "OTHER"}).Equal(Identity{Vendor: "OTHER"}) {
		t.Error("another vendor compares equal")
	}
	if _, err := FromSysfs(filepath.Join(dir, "none")); err == nil {
		t.Error("FromSysfs of no device: no error")
	}
	// A copy that cannot be read is an error, not a page the disk has not.
	if err := os.Mkdir(filepath.Join(dir, "vpd_pg83"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := FromSysfs(dir); err == nil {
		t.Error("an unreadable vpd_pg83: no error")
	}
}

// FuzzFromPages: pages from a disk are untrusted bytes.
func FuzzFromPages(f *testing.F) {
	f.Add(inquiry("QEMU", "QEMU HARDDISK"), vpdPage(0x80, 'S'), vpdPage(0x83, desc(1, 0, 3, 0x50, 1)...))
	f.Add([]byte{}, []byte{0, 0x80, 0xff, 0xff}, []byte{0, 0x83, 0, 8, 1, 3, 0, 200})
	f.Fuzz(func(t *testing.T, inq, vpd80, vpd83 []byte) {
		id := FromPages(inq, vpd80, vpd83)
		if !id.Equal(id) {
			t.Fatal("not Equal to itself")
		}
		_ = id.String()
	})
}

// FuzzDecodeRecord: a record file is read back from disk.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(Record{Device: "d", Identity: Identity{Vendor: "V", Designators: []string{"naa.1"}}}.Encode())
	f.Add([]byte(`{"format": "scstd-dev-disk-identity", "version": 1, "vendor": "Q"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		again, err := DecodeRecord(r.Encode())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip: %+v %v, want %+v", again, err, r)
		}
	})
}
