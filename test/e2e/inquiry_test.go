package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/testtarget"
)

// threeDevices serves LUNs of different sizes and block sizes.
const threeDevices = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename   = "{{.Dir}}/disk0.img"
    size       = "64MiB"
    t10_dev_id = "disk0-t10"
  }
  device "disk4k" {
    filename  = "{{.Dir}}/disk4k.img"
    size      = "48MiB"
    blocksize = 4096
  }
}
handler "vdisk_nullio" {
  device "null0" { size = "1TiB" }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
  lun "1" { device = "disk4k" }
  lun "2" { device = "null0" }
}
`

func TestStandardInquiry(t *testing.T) {
	requireTools(t, "iscsi-inq")
	tgt := testtarget.Start(t, threeDevices)

	out := mustRun(t, "iscsi-inq", tgt.LUNURL(iqnT1, 0))

	for _, want := range []string{
		"Peripheral Qualifier:CONNECTED",
		"Peripheral Device Type:DIRECT_ACCESS",
		"Removable:0",
		"CmdQue:1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("standard INQUIRY lacks %q:\n%s", want, out)
		}
	}
	for _, field := range []string{"Vendor", "Product", "Revision"} {
		if v := inqField(out, field); v == "" {
			t.Errorf("standard INQUIRY has an empty %s:\n%s", field, out)
		}
	}
}

func TestVPDPages(t *testing.T) {
	requireTools(t, "iscsi-inq")
	tgt := testtarget.Start(t, threeDevices)
	url := tgt.LUNURL(iqnT1, 0)

	supported := mustRun(t, "iscsi-inq", "-e", "1", "-c", "0", url)
	pages := map[int]bool{}
	for _, m := range regexp.MustCompile(`Page:0x([0-9a-f]{2})`).FindAllStringSubmatch(supported, -1) {
		n, _ := strconv.ParseUint(m[1], 16, 8)
		pages[int(n)] = true
	}
	// SPC-4 makes 00h, 80h (for SBC) and 83h mandatory; SBC-3 adds
	// Block Limits and Block Device Characteristics.
	for _, page := range []int{0x00, 0x80, 0x83, 0xb0, 0xb1} {
		if !pages[page] {
			t.Errorf("SUPPORTED VPD PAGES lacks 0x%02x:\n%s", page, supported)
		}
	}
	for page := range pages {
		t.Run(fmt.Sprintf("page_0x%02x", page), func(t *testing.T) {
			mustRun(t, "iscsi-inq", "-e", "1", "-c", strconv.Itoa(page), url)
		})
	}

	serial := mustRun(t, "iscsi-inq", "-e", "1", "-c", "128", url)
	if m := regexp.MustCompile(`Unit Serial Number:\[\s*(\S.*)\]`).FindStringSubmatch(serial); m == nil {
		t.Errorf("UNIT SERIAL NUMBER is empty:\n%s", serial)
	}
	ident := mustRun(t, "iscsi-inq", "-e", "1", "-c", "131", url)
	for _, want := range []string{"Association:(0) LOGICAL_UNIT", "Designator Type:(3) NAA", "Designator Type:(1) T10_VENDORT_ID", "disk0-t10"} {
		if !strings.Contains(ident, want) {
			t.Errorf("DEVICE IDENTIFICATION lacks %q:\n%s", want, ident)
		}
	}

	// Two LUNs must not claim the same identity: multipath would merge them.
	other := mustRun(t, "iscsi-inq", "-e", "1", "-c", "131", tgt.LUNURL(iqnT1, 1))
	if a, b := t10VendorID(ident), t10VendorID(other); a == "" || a == b {
		t.Errorf("LUN 0 and LUN 1 share the T10 vendor ID designator %q", a)
	}
}

func TestReadCapacity16ReportsConfiguredSize(t *testing.T) {
	requireTools(t, "iscsi-readcapacity16")
	tgt := testtarget.Start(t, threeDevices)

	tests := []struct {
		lun       int
		blockSize int
		size      int64
	}{
		{lun: 0, blockSize: 512, size: 64 << 20},
		{lun: 1, blockSize: 4096, size: 48 << 20},
		{lun: 2, blockSize: 512, size: 1 << 40},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("lun%d", tc.lun), func(t *testing.T) {
			out := mustRun(t, "iscsi-readcapacity16", tgt.LUNURL(iqnT1, tc.lun))
			want := []string{
				fmt.Sprintf("RETURNED LOGICAL BLOCK ADDRESS:%d", tc.size/int64(tc.blockSize)-1),
				fmt.Sprintf("LOGICAL BLOCK LENGTH IN BYTES:%d", tc.blockSize),
				fmt.Sprintf("Total size:%d", tc.size),
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("READ CAPACITY(16) lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// inqField returns the value of a "Field:value" line of iscsi-inq's output.
func inqField(out, field string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// t10VendorID returns the T10 vendor ID designator in an iscsi-inq page 0x83
// dump. (NAA designators are binary, and iscsi-inq prints them as C strings,
// cut at the first zero byte: useless for comparing.)
func t10VendorID(out string) string {
	i := strings.Index(out, "Designator Type:(1) T10_VENDORT_ID")
	if i < 0 {
		return ""
	}
	return inqField(out[i:], "Designator")
}
