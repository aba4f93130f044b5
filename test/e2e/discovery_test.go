package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/testtarget"
)

// twoTargets serves t1 with one disk and t2 with two.
const twoTargets = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
  device "disk1" {
    filename = "{{.Dir}}/disk1.img"
    size     = "32MiB"
  }
}
handler "vdisk_nullio" {
  device "null0" { size = "1GiB" }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
}

target "iqn.2026-11.org.example:t2" {
  lun "0" { device = "disk1" }
  lun "1" { device = "null0" }
}
`

func TestDiscoveryListsEveryTargetAndLUN(t *testing.T) {
	requireTools(t, "iscsi-ls")
	tgt := testtarget.Start(t, twoTargets)

	out := mustRun(t, "iscsi-ls", "-s", tgt.URL())

	for _, want := range []string{
		"Target:" + iqnT1 + " Portal:" + tgt.Portal(),
		"Target:" + iqnT2 + " Portal:" + tgt.Portal(),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("iscsi-ls output lacks %q:\n%s", want, out)
		}
	}
	luns := parseLsLUNs(out)
	wantLUNs := map[string][]string{
		iqnT1: {"Lun:0 Type:DIRECT_ACCESS"},
		iqnT2: {"Lun:0 Type:DIRECT_ACCESS", "Lun:1 Type:DIRECT_ACCESS"},
	}
	for target, want := range wantLUNs {
		if got := luns[target]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("LUNs of %s = %q, want %q\n%s", target, got, want, out)
		}
	}
}

func TestReloadAddsALUNThatDiscoverySees(t *testing.T) {
	requireTools(t, "iscsi-ls", "iscsi-inq")
	tgt := testtarget.Start(t, oneDisk)

	r := tgt.Reconfigure(strings.Replace(oneDisk, `lun "0" { device = "disk0" }`,
		`lun "0" { device = "disk0" }
  lun "1" { device = "disk1" }`, 1) + `
handler "vdisk_nullio" {
  device "disk1" { size = "16MiB" }
}
`)
	if !r.OK {
		t.Fatalf("reload adding LUN 1 was rejected: %s\n%s", r.Error, r.Diagnostics)
	}

	out := mustRun(t, "iscsi-ls", "-s", tgt.URL())
	if got, want := fmt.Sprint(parseLsLUNs(out)[iqnT1]),
		"[Lun:0 Type:DIRECT_ACCESS Lun:1 Type:DIRECT_ACCESS]"; got != want {
		t.Errorf("LUNs after reload = %s, want %s\n%s", got, want, out)
	}
	mustRun(t, "iscsi-inq", tgt.LUNURL(iqnT1, 1))
}

func TestReloadWithErrorsKeepsServing(t *testing.T) {
	requireTools(t, "iscsi-inq")
	tgt := testtarget.Start(t, oneDisk)

	r := tgt.Reconfigure(strings.Replace(oneDisk, `device = "disk0"`, `device = "no_such_disk"`, 1))

	if r.OK {
		t.Fatalf("a reload referring to an unknown device was applied: %+v", r)
	}
	if !strings.Contains(r.Diagnostics+r.Error, "no_such_disk") {
		t.Errorf("the rejection does not name the unknown device: %q %q", r.Error, r.Diagnostics)
	}
	mustRun(t, "iscsi-inq", tgt.LUNURL(iqnT1, 0))
}

// parseLsLUNs returns "Lun:N Type:T" for each LUN line of `iscsi-ls -s`, per
// target. The "(Size:...)" part is left out: iscsi-ls rounds it down from the
// last LBA, so sizes are checked with READ CAPACITY instead.
func parseLsLUNs(out string) map[string][]string {
	luns := map[string][]string{}
	var target string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], "Target:"):
			target = strings.TrimPrefix(f[0], "Target:")
		case len(f) > 0 && strings.HasPrefix(f[0], "Lun:") && target != "":
			if len(f) > 2 {
				f = f[:2]
			}
			luns[target] = append(luns[target], strings.Join(f, " "))
		}
	}
	return luns
}

func TestParseLsLUNs(t *testing.T) {
	out := "Target:iqn.a Portal:127.0.0.1:3260,1\n" +
		"Lun:0    Type:DIRECT_ACCESS (Size:63M)\n" +
		"Target:iqn.b Portal:127.0.0.1:3260,1\n" +
		"Lun:0    Type:STORAGE_ARRAY_CONTROLLER\n" +
		"Lun:1    Type:DIRECT_ACCESS (Size:1G)\n"
	got := fmt.Sprint(parseLsLUNs(out))
	want := "map[iqn.a:[Lun:0 Type:DIRECT_ACCESS] iqn.b:[Lun:0 Type:STORAGE_ARRAY_CONTROLLER Lun:1 Type:DIRECT_ACCESS]]"
	if got != want {
		t.Errorf("parseLsLUNs = %s\nwant %s", got, want)
	}
}
