//go:build vm

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/vmtest"
)

// The dev_disk tests need a real SCSI disk, which this host has not: they
// boot a QEMU guest (internal/vmtest) with a virtio-scsi disk backed by a
// host file, run a static scstd inside it with that disk on the dev_disk
// handler, and reach it from the host through a forwarded loopback port.
// They take minutes under TCG, so they build only with the "vm" tag:
// `make test-vm` runs them (after `make test` in .ci/run).

// vmKernelEnv names the directory of the guest kernel (default
// .state/vm/kernel, written by `make vm-kernel`).
const vmKernelEnv = "SCSTD_VM_KERNEL"

const iqnPass = "iqn.2026-11.org.example:passthrough"

// passthroughConfig exports the guest's first SCSI disk, named by its
// SCSI address as SCST's add_device names it, and a read-only LUN of the
// second disk by its sg node.
const passthroughConfig = `
iscsi { portals = ["0.0.0.0:3260"] }

handler "dev_disk" {
  device "0:0:0:0" {
    timeout = 10
  }
  device "ro" {
    path = "0:0:1:0"
  }
}

target "iqn.2026-11.org.example:passthrough" {
  lun "0" { device = "0:0:0:0" }
  lun "1" {
    device    = "ro"
    read_only = true
  }
}
`

// passDiskSize is the size of the guest's disks.
const passDiskSize = 64 << 20

// passthroughVM is a booted guest serving passthroughConfig.
type passthroughVM struct {
	*vmtest.VM
	port  int
	disks []string
}

func (p *passthroughVM) url(lun int) string {
	return fmt.Sprintf("iscsi://127.0.0.1:%d/%s/%d", p.port, iqnPass, lun)
}

// repoRoot is the module's root directory (test/e2e/../..).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// vmAssets finds what the guest needs: a missing piece fails the test, or
// with SCSTD_E2E_OPTIONAL=1 skips it.
func vmAssets(t *testing.T) vmtest.Assets {
	t.Helper()
	dir := os.Getenv(vmKernelEnv)
	if dir == "" {
		dir = filepath.Join(repoRoot(t), ".state", "vm", "kernel")
	}
	a, err := vmtest.FindAssets(dir)
	if err != nil {
		if os.Getenv(optionalEnv) == "1" {
			t.Skipf("%v; skipped because %s=1", err, optionalEnv)
		}
		t.Fatalf("%v (make test-vm installs and fetches them; %s=1 skips)", err, optionalEnv)
	}
	return a
}

var staticBuild struct {
	once sync.Once
	path string
	err  error
}

// staticScstd builds scstd without cgo for the guest, once per test binary.
func staticScstd(t *testing.T) string {
	t.Helper()
	staticBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "scstd-static-")
		if err != nil {
			staticBuild.err = err
			return
		}
		afterAll = append(afterAll, func() { os.RemoveAll(dir) })
		out := filepath.Join(dir, "scstd")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/scstd")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			staticBuild.err = fmt.Errorf("go build: %v\n%s", err, msg)
			return
		}
		staticBuild.path = out
	})
	if staticBuild.err != nil {
		t.Fatal(staticBuild.err)
	}
	return staticBuild.path
}

// startPassthroughVM boots the guest with two 64 MiB disks (the second
// filled with 0x5a) and waits until scstd, serving passthroughConfig,
// answers through the forwarded port.
func startPassthroughVM(t *testing.T) *passthroughVM {
	t.Helper()
	return startDevDiskVM(t, passthroughConfig, "")
}

// startDevDiskVM is startPassthroughVM serving config, after the shell
// command before (if any) ran in the guest.
func startDevDiskVM(t *testing.T, config, before string) *passthroughVM {
	t.Helper()
	requireTools(t, "iscsi-inq", "iscsi-test-cu", "qemu-io")
	a := vmAssets(t)
	bin, err := os.ReadFile(staticScstd(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disks := []string{filepath.Join(dir, "disk0.img"), filepath.Join(dir, "disk1.img")}
	if err := os.WriteFile(disks[0], nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disks[0], passDiskSize); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(disks[1], bytes.Repeat([]byte{0x5a}, passDiskSize), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &passthroughVM{port: vmtest.FreePort(t), disks: disks}
	start := time.Now()
	p.VM = vmtest.Start(t, vmtest.Config{
		Assets:      a,
		Disks:       disks,
		DiskOptions: []string{",serial=SCSTDVM0,wwn=0x5000c50015ea71ac,dpofua=on", ",serial=SCSTDVM1"},
		Files: []vmtest.File{
			{Path: "/scstd", Data: bin, Mode: 0o755},
			{Path: "/etc/scst.hcl", Data: []byte(config), Mode: 0o644},
		},
		Start:     before + "exec /scstd run -config /etc/scst.hcl -admin-socket /run/scstd.sock >/tmp/scstd.log 2>&1",
		GuestPort: 3260,
		HostPort:  p.port,
	})
	// The forwarded port accepts at once (QEMU listens); scstd is up
	// when an INQUIRY goes through.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := run(t, 30*time.Second, "iscsi-inq", p.url(0))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := p.Run("cat /tmp/scstd.log", 30*time.Second)
			t.Fatalf("scstd in the guest does not answer: %v\n%s\nscstd log:\n%s", err, out, log)
		}
		time.Sleep(time.Second)
	}
	t.Logf("guest booted in %v, scstd answering after %v", p.Booted.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	return p
}

func TestDevDiskPassthrough(t *testing.T) {
	p := startPassthroughVM(t)

	t.Run("inquiry", func(t *testing.T) {
		// Standard INQUIRY is the disk's own: QEMU's.
		out := mustRun(t, "iscsi-inq", p.url(0))
		if !strings.Contains(out, "QEMU") || !strings.Contains(out, "QEMU HARDDISK") {
			t.Errorf("standard INQUIRY is not the guest disk's:\n%s", out)
		}
		// VPD 80h: the disk's serial; 83h: the disk's NAA, the
		// target's relative port.
		if out := mustRun(t, "iscsi-inq", "-e", "1", "-c", "128", p.url(0)); !strings.Contains(out, "SCSTDVM0") {
			t.Errorf("VPD 80h is not the disk's serial:\n%s", out)
		}
		// (iscsi-inq prints binary designators as text: look for the
		// types.)
		out = mustRun(t, "iscsi-inq", "-e", "1", "-c", "131", p.url(0))
		for _, want := range []string{"Designator Type:(3) NAA", "Designator:[SCSTDVM0]", "RELATIVE_TARGET_PORT",
			"Designator:[" + iqnPass + ",t,0x0001]"} {
			if strings.Count(out, want) != 1 {
				t.Errorf("VPD 83h has %d of %q, want 1:\n%s", strings.Count(out, want), want, out)
			}
		}
	})

	t.Run("qemu-io", func(t *testing.T) {
		// Write through the pass-through, read it back and verify,
		// and find it in the host file behind the guest's disk.
		out := mustRun(t, "qemu-io", "-f", "raw", "-c", "write -P 0xa5 1M 1M", "-c", "read -P 0xa5 1M 1M",
			"-c", "write -P 0x3c 8M 64k", "-c", "read -P 0x3c 8M 64k", "-c", "flush", p.url(0))
		if strings.Contains(out, "Pattern verification failed") || strings.Count(out, "wrote") != 2 || strings.Count(out, "read") != 2 {
			t.Fatalf("qemu-io:\n%s", out)
		}
		b, err := os.ReadFile(p.disks[0])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[1<<20:2<<20], bytes.Repeat([]byte{0xa5}, 1<<20)) || !bytes.Equal(b[8<<20:8<<20+64<<10], bytes.Repeat([]byte{0x3c}, 64<<10)) {
			t.Error("the data written through the pass-through is not in the disk's backing file")
		}
	})

	t.Run("read-only LUN", func(t *testing.T) {
		out := mustRun(t, "qemu-io", "-f", "raw", "-r", "-c", "read -P 0x5a 0 1M", p.url(1))
		if strings.Contains(out, "Pattern verification failed") {
			t.Fatalf("qemu-io read of LUN 1:\n%s", out)
		}
		out, err := run(t, toolTimeout, "qemu-io", "-f", "raw", "-c", "write -P 0x11 0 4k", p.url(1))
		if err == nil && !strings.Contains(out, "failed") {
			t.Errorf("a write to the read-only LUN succeeded:\n%s", out)
		}
		b, err := os.ReadFile(p.disks[1])
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != 0x5a {
			t.Error("the read-only LUN's disk was written")
		}
	})
}

// devDiskSuites are the iscsi-test-cu families run through the
// pass-through: the SCSI block commands and the iSCSI transport tests.
const devDiskSuites = "SCSI,iSCSI"

// devDiskPassedFloor is the least number of tests (skipped ones not
// counted) that must pass through the pass-through of QEMU's scsi-hd:
// the count measured when the test was written.
const devDiskPassedFloor = 124

// qemuDiskFailures are the tests that fail because of the disk behind the
// pass-through, QEMU 7.2's scsi-hd, and not because of scstd: they fail
// the same way for any initiator of that disk. Keyed by SUITE.TEST or
// SUITE (every test of the suite).
var qemuDiskFailures = map[string]string{
	"CompareAndWrite":          "scsi-hd lacks the command; virtio-scsi refuses its data-out (OVERRUN), seen as DID_ERROR",
	"ExtendedCopy":             "scsi-hd lacks the command; virtio-scsi refuses its data-out (OVERRUN), seen as DID_ERROR",
	"OrWrite":                  "scsi-hd lacks the command; virtio-scsi refuses its data-out (OVERRUN), seen as DID_ERROR",
	"WriteAtomic16":            "scsi-hd lacks the command; virtio-scsi refuses its data-out (OVERRUN), seen as DID_ERROR",
	"Verify10":                 "scsi-hd refuses VERIFY with BYTCHK=01b (INVALID FIELD IN CDB)",
	"Verify12":                 "scsi-hd refuses VERIFY with BYTCHK=01b (INVALID FIELD IN CDB)",
	"Verify16":                 "scsi-hd refuses VERIFY with BYTCHK=01b (INVALID FIELD IN CDB)",
	"Inquiry.BlockLimits":      "scsi-hd claims no SBC version in standard INQUIRY, and its MAXIMUM UNMAP LBA COUNT exceeds libiscsi's 1M",
	"ModeSense6.Control":       "scsi-hd has no control mode page",
	"ModeSense6.Control-SWP":   "scsi-hd has no control mode page",
	"WriteSame10.WriteProtect": "scsi-hd accepts WRPROTECT without protection information",
	"WriteSame16.WriteProtect": "scsi-hd accepts WRPROTECT without protection information",
	"WriteSame16.Unmap":        "libiscsi writes scsi-hd's MAXIMUM WRITE SAME LENGTH in blocks with one WRITE(16), beyond the 8 MiB transfer limit",
}

func qemuDiskFailure(c CUTest) (string, bool) {
	if why, ok := qemuDiskFailures[c.Suite+"."+c.Name]; ok {
		return why, true
	}
	why, ok := qemuDiskFailures[c.Suite]
	return why, ok
}

// TestDevDiskLibiscsi runs iscsi-test-cu's block and transport suites
// through the pass-through of QEMU's scsi-hd. Every failure fails the test
// but those of qemuDiskFailures.
func TestDevDiskLibiscsi(t *testing.T) {
	p := startPassthroughVM(t)
	var list []CUTest
	for _, c := range ParseCUList(mustRun(t, "iscsi-test-cu", "-l")) {
		if strings.Contains(","+devDiskSuites+",", ","+c.Family+",") {
			list = append(list, c)
		}
	}
	if len(list) == 0 {
		t.Fatalf("iscsi-test-cu lists no tests of %s", devDiskSuites)
	}
	start := time.Now()
	out, err := run(t, cuTimeout, "iscsi-test-cu", "--dataloss", "-t", devDiskSuites,
		"-i", initiatorFirst, "-I", initiatorSecond, p.url(0))
	saveReport(t, "devdisk-iscsi-test-cu.log", out)
	results, sum := ParseCURun(list, out)
	n := Totals(results)
	inScope := func(c CUTest) bool { _, q := qemuDiskFailure(c); return !q }
	report := FormatReport(results, inScope)
	saveReport(t, "devdisk-conformance.txt", report)
	t.Logf("iscsi-test-cu through dev_disk ran for %v (exit %v): %d passed, %d skipped, %d failed, %d not run\n%s",
		time.Since(start).Round(time.Second), err, n[Passed], n[Skipped], n[Failed], n[NotRun], report)
	if !sum.Found {
		t.Errorf("iscsi-test-cu ended without its summary (%v): the run was cut short", err)
	}
	if sum.Found && (n[Passed]+n[Skipped] != sum.Passed || n[Failed] != sum.Failed) {
		t.Errorf("parsed %d passed + %d skipped, %d failed; CUnit counted %d passed, %d failed", n[Passed], n[Skipped], n[Failed], sum.Passed, sum.Failed)
	}
	var bad []string
	for _, r := range results {
		why, known := qemuDiskFailure(r.CUTest)
		switch {
		case r.Outcome == Failed && known:
			t.Logf("failure of the disk, not of scstd: %s: %s", r, why)
		case r.Outcome == Failed || r.Outcome == NotRun:
			bad = append(bad, r.String()+" ("+r.Outcome.String()+"): "+r.Detail)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d iscsi-test-cu tests did not pass through dev_disk:\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
	if n[Passed] < devDiskPassedFloor {
		t.Errorf("%d tests passed (skipped ones not counted), fewer than the floor of %d", n[Passed], devDiskPassedFloor)
	}
}

// TestDevDiskDeviceLost takes the guest's disks away under scstd, as a
// failing or unplugged disk would, and brings them back: a deleted SCSI
// device (its sg node gone, SG_IO ENODEV) and one the SCSI mid layer set
// offline (DID_NO_CONNECT) take their dev_disk devices offline (NOT
// READY, LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED), and the
// engine's retries
// bring them online again when the disk returns, the first under a new
// sg node found through its SCSI address.
func TestDevDiskDeviceLost(t *testing.T) {
	p := startPassthroughVM(t)
	status := func() string {
		out, _ := p.Run("/scstd status -admin-socket /run/scstd.sock", 30*time.Second)
		return out
	}
	readOK := func(lun int) bool {
		out, err := run(t, toolTimeout, "qemu-io", "-f", "raw", "-r", "-c", "read 0 4k", p.url(lun))
		return err == nil && !strings.Contains(out, "failed") && strings.Contains(out, "read 4096/4096")
	}
	// libiscsi sends TEST UNIT READY after login: an offline device
	// fails it with NOT READY, LOGICAL UNIT NOT READY, MANUAL
	// INTERVENTION REQUIRED.
	notReady := func(lun int) bool {
		out, _ := run(t, toolTimeout, "iscsi-inq", p.url(lun))
		return strings.Contains(out, "NOT READY") && strings.Contains(out, "0x0403")
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 45s\nstatus:\n%s", what, status())
			}
			time.Sleep(2 * time.Second)
		}
	}
	if !readOK(0) || !readOK(1) {
		t.Fatal("the disks do not read before the test")
	}

	// Deleted: the sg node goes away, SG_IO answers ENODEV.
	if out, code := p.Run("echo 1 > /sys/bus/scsi/devices/0:0:0:0/delete", 30*time.Second); code != 0 {
		t.Fatalf("deleting 0:0:0:0 in the guest: %s", out)
	}
	if readOK(0) {
		t.Fatal("LUN 0 still reads after its disk was deleted")
	}
	waitFor("LUN 0 answers NOT READY", func() bool { return notReady(0) })
	if st := status(); !strings.Contains(st, "lost") && !strings.Contains(st, "no SCSI device") {
		t.Errorf("status does not say why 0:0:0:0 is offline:\n%s", st)
	}
	if !readOK(1) {
		t.Error("LUN 1 stopped reading when LUN 0's disk was deleted")
	}
	// Rescanned: the disk is back, under whatever sg node; the retries
	// find it by its SCSI address.
	if out, code := p.Run(`echo "- - -" > /sys/class/scsi_host/host0/scan`, time.Minute); code != 0 {
		t.Fatalf("rescanning in the guest: %s", out)
	}
	waitFor("LUN 0 reads again after the rescan", func() bool { return readOK(0) })

	// Offline in the mid layer: commands get DID_NO_CONNECT.
	if out, code := p.Run("echo offline > /sys/bus/scsi/devices/0:0:1:0/state", 30*time.Second); code != 0 {
		t.Fatalf("setting 0:0:1:0 offline: %s", out)
	}
	if readOK(1) {
		t.Fatal("LUN 1 still reads after its disk went offline")
	}
	waitFor("LUN 1 answers NOT READY", func() bool { return notReady(1) })
	if out, code := p.Run("echo running > /sys/bus/scsi/devices/0:0:1:0/state", 30*time.Second); code != 0 {
		t.Fatalf("setting 0:0:1:0 running: %s", out)
	}
	waitFor("LUN 1 reads again once its disk runs", func() bool { return readOK(1) })
}

// swapConfig exports the disk behind the device node /run/swapdisk,
// which the test points at one guest disk, then at the other.
const swapConfig = `
iscsi { portals = ["0.0.0.0:3260"] }

handler "dev_disk" {
  device "swap" {
    path = "/run/swapdisk"
  }
}

target "iqn.2026-11.org.example:passthrough" {
  lun "0" { device = "swap" }
}
`

// pointSwapDisk is the guest shell command that makes /run/swapdisk the
// sg node of the SCSI device at hctl, as a renumbered node would be.
func pointSwapDisk(hctl string) string {
	return fmt.Sprintf("rm -f /run/swapdisk; mknod /run/swapdisk c $(cat /sys/bus/scsi/devices/%s/scsi_generic/sg*/dev | tr : ' ')", hctl)
}

// TestDevDiskIdentity: a dev_disk device records the identity of the
// disk it first opened (state_dir/dev_disk/NAME.json). When its device
// node later leads to another disk (the first one deleted, the node
// remade for the second, as a hot-swap and a renumbering would), the
// engine's retry opens the other disk and keeps the device offline (NOT
// READY), and status, the log and validate name both disks and the step
// that accepts the new one; that step (removing the record) brings the
// device online on the new disk.
func TestDevDiskIdentity(t *testing.T) {
	p := startDevDiskVM(t, swapConfig, pointSwapDisk("0:0:0:0")+" && ")
	const record = "/var/lib/scstd/dev_disk/swap.json"
	status := func() string {
		out, _ := p.Run("/scstd status -admin-socket /run/scstd.sock", 30*time.Second)
		return out
	}
	read := func(pattern string) bool {
		out, err := run(t, toolTimeout, "qemu-io", "-f", "raw", "-r", "-c", "read -P "+pattern+" 0 4k", p.url(0))
		return err == nil && !strings.Contains(out, "failed") && strings.Contains(out, "read 4096/4096")
	}
	notReady := func() bool {
		out, _ := run(t, toolTimeout, "iscsi-inq", p.url(0))
		return strings.Contains(out, "NOT READY") && strings.Contains(out, "0x0403")
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				log, _ := p.Run("cat /tmp/scstd.log", 30*time.Second)
				t.Fatalf("%s: not after 45s\nstatus:\n%s\nlog:\n%s", what, status(), log)
			}
			time.Sleep(2 * time.Second)
		}
	}
	if !read("0") {
		t.Fatal("the first disk (zeros) does not read before the test")
	}
	if out, _ := p.Run("cat "+record, 30*time.Second); !strings.Contains(out, "naa.5000c50015ea71ac") || !strings.Contains(out, `"serial": "SCSTDVM0"`) {
		t.Fatalf("the first disk's identity is not recorded:\n%s", out)
	}

	// The first disk goes away and the node leads to the second.
	if out, code := p.Run(pointSwapDisk("0:0:1:0")+" && echo 1 > /sys/bus/scsi/devices/0:0:0:0/delete", 30*time.Second); code != 0 {
		t.Fatalf("swapping the disk in the guest: %s", out)
	}
	if read("0") {
		t.Fatal("LUN 0 still reads after its disk was deleted")
	}
	swapped := time.Now()
	waitFor("the retry finds the other disk", func() bool { return strings.Contains(status(), "leads to another disk") })
	t.Logf("the other disk refused %v after the swap", time.Since(swapped).Round(100*time.Millisecond))
	if !notReady() {
		t.Error("LUN 0 does not answer NOT READY while its node leads to another disk")
	}
	if read("0x5a") {
		t.Fatal("the other disk's data reads through LUN 0")
	}
	st := status()
	for _, want := range []string{"found vendor.SCSTDVM1 (serial SCSTDVM1", "exported naa.5000c50015ea71ac (serial SCSTDVM0", "remove " + record} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	if log, _ := p.Run("cat /tmp/scstd.log", 30*time.Second); strings.Count(log, "leads to another disk") != 1 {
		t.Errorf("the log says %d times that the device leads to another disk, want once:\n%s", strings.Count(log, "leads to another disk"), log)
	}
	if out, _ := p.Run("/scstd validate /etc/scst.hcl 2>&1", time.Minute); !strings.Contains(out, "Another disk") || !strings.Contains(out, "SCSTDVM1") {
		t.Errorf("validate does not warn of the other disk:\n%s", out)
	}

	// The documented step accepts the disk found: its data reads.
	if out, code := p.Run("rm "+record, 30*time.Second); code != 0 {
		t.Fatalf("removing the record: %s", out)
	}
	waitFor("LUN 0 reads the second disk once its record is removed", func() bool { return read("0x5a") })
	if out, _ := p.Run("cat "+record, 30*time.Second); !strings.Contains(out, `"serial": "SCSTDVM1"`) {
		t.Errorf("the accepted disk is not recorded:\n%s", out)
	}
}
