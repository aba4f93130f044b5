package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/testtarget"
)

// cuTimeout bounds one iscsi-test-cu run. Against a healthy target the whole
// suite takes about a minute; a target that stops answering makes libiscsi
// wait forever, and the run is then cut and its unfinished tests count as
// not run.
const cuTimeout = 20 * time.Minute

// passedFloor is the least number of tests (skipped ones not counted) the
// full iscsi-test-cu run must pass: the count measured when the run first
// worked (500 of 615 on 2026-11-25, with 86 skipped and 29 failed), raised
// as the target grows (535, 72 skipped, 8 failed, the same day). The goal is
// 560 of libiscsi 1.19's 615.
//
// With SANITIZE, the control page's SWP and a truthful LBPPB (2026-11-25,
// 256 MiB fileio, two portals, --allow-sanitize) three runs gave 583
// passed, 27 skipped and the 5 knownFailures. The skips: removable media
// 18 (PreventAllow, StartStopUnit.*: TestLibiscsiRemovableLUN runs them),
// not write-protected 3 (ReadOnly: TestLibiscsiReadOnlyLUN), and CRYPTO
// ERASE 6 (Sanitize.CryptoErase, and Sanitize.Readonly and .Reservations,
// which test OVERWRITE and BLOCK ERASE but log [SKIPPED] for CRYPTO ERASE).
// The bar is 560 of 615.
const passedFloor = 583

// knownFailures are the tests that fail against scstd for reasons outside
// it, each with the reason; they are reported, never counted as passed, and
// any other failure fails the run. Each family (SCSI, ALL, LINUX) runs its
// own copy.
var knownFailures = map[string]string{
	// libiscsi bug: the second loop unmaps LBAs [0, i) and asks GET LBA
	// STATUS at i+1, but expects the first descriptor to start at
	// i+LBPPB, which is i+1 only when LBPPB is 1. SBC-3 wants the
	// descriptor to start at the requested LBA, as scstd answers; with a
	// truthful LBPPB of 8 (4 KiB file system blocks) the check fails.
	"GetLBAStatus.UnmapSingle": "libiscsi expects LBA i+LBPPB where it asked for i+1",
	// The test sleeps 3 s after a SANITIZE OVERWRITE and expects it to be
	// still running then, and again after ABORT TASK, resets and a new
	// login; scstd overwrites 256 MiB (and flushes it) in less time, and
	// its ABORT TASK waits for the running SANITIZE to end, so no LUN
	// size makes the last check pass.
	"Sanitize.Reset": "the SANITIZE finishes before the test looks for SANITIZE IN PROGRESS",
}

// knownFailure reports whether c is one of knownFailures.
func knownFailure(c CUTest) bool {
	_, ok := knownFailures[c.Suite+"."+c.Name]
	return ok
}

// conformanceTarget is one 256 MiB fileio disk behind two portals
// (127.0.0.1 and 127.0.0.2, same port), so that iscsi-test-cu runs its
// multipath tests over two paths.
const conformanceTarget = `
iscsi { portals = ["{{.Portal}}", "127.0.0.2:{{slice .Portal 10}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "256MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
}
`

// secondPath returns the URL of the same LUN through the second portal.
func secondPath(url string) string {
	return strings.Replace(url, "iscsi://127.0.0.1:", "iscsi://127.0.0.2:", 1)
}

func TestLibiscsiConformance(t *testing.T) {
	requireTools(t, "iscsi-test-cu")
	list := ParseCUList(mustRun(t, "iscsi-test-cu", "-l"))
	if len(list) == 0 {
		t.Fatal("iscsi-test-cu -l listed no tests")
	}
	tgt := testtarget.Start(t, conformanceTarget)

	start := time.Now()
	// --allow-sanitize: libiscsi 1.19.0-3 (Debian) hangs at the second
	// Sanitize.BlockEraseReserved of a run against a target without
	// SANITIZE: the test swaps the transport's queue_pdu and restores it
	// only on success, so the next swap saves its own hook as the
	// original and spins forever (upstream fix cc3ddbf, 2019). scstd
	// answers those CDBs, so the hook is restored; a hang here is caught
	// by cuTimeout and fails the test as a cut-short run.
	url := tgt.LUNURL(iqnT1, 0)
	out, err := run(t, cuTimeout, "iscsi-test-cu", "--dataloss", "--allow-sanitize",
		"-i", initiatorFirst, "-I", initiatorSecond, url, secondPath(url))
	t.Logf("iscsi-test-cu ran for %v (exit: %v)", time.Since(start).Round(time.Second), err)

	// Every failure fails the run but knownFailures'.
	inScope := func(c CUTest) bool { return !knownFailure(c) }
	results, sum := ParseCURun(list, out)
	report := FormatReport(results, inScope)
	saveReport(t, "iscsi-test-cu.log", out)
	saveReport(t, "conformance.txt", report)
	t.Logf("libiscsi iscsi-test-cu results per suite:\n%s", report)

	n := Totals(results)
	if sum.Found && (n[Passed]+n[Skipped] != sum.Passed || n[Failed] != sum.Failed) {
		t.Errorf("parsed %d passed + %d skipped, %d failed; CUnit counted %d passed, %d failed: the output reader is wrong",
			n[Passed], n[Skipped], n[Failed], sum.Passed, sum.Failed)
	}
	if !sum.Found {
		t.Errorf("iscsi-test-cu ended without its summary (%v): the run was cut short", err)
	}
	t.Logf("main run: %d passed, %d skipped, %d failed, %d not run", n[Passed], n[Skipped], n[Failed], n[NotRun])
	var bad []string
	for _, r := range results {
		switch {
		case r.Outcome == Failed && knownFailure(r.CUTest):
			t.Logf("known failure %s: %s", r, knownFailures[r.Suite+"."+r.Name])
		case r.Outcome == Failed || r.Outcome == NotRun:
			bad = append(bad, r.String()+" ("+r.Outcome.String()+")")
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d iscsi-test-cu tests did not pass:\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
	if n[Passed] < passedFloor {
		t.Errorf("%d tests passed (skipped ones not counted), fewer than the floor of %d", n[Passed], passedFloor)
	}
}

// readOnlyTarget exports a read-only disk: iscsi-test-cu's ReadOnly suite
// skips itself unless MODE SENSE reports the medium write-protected.
const readOnlyTarget = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "ro0" {
    filename  = "{{.Dir}}/ro0.img"
    size      = "64MiB"
    read_only = true
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "ro0" }
}
`

func TestLibiscsiReadOnlyLUN(t *testing.T) {
	requireTools(t, "iscsi-test-cu")
	tgt := testtarget.New(t, readOnlyTarget)
	// A read-only device is not created: the backing file must exist.
	if err := os.WriteFile(tgt.Path("ro0.img"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(tgt.Path("ro0.img"), diskSize); err != nil {
		t.Fatal(err)
	}
	tgt.Start()

	list := ParseCUList(mustRun(t, "iscsi-test-cu", "-l"))
	var roList []CUTest
	for _, c := range list {
		if c.Family == "SCSI" && c.Suite == "ReadOnly" {
			roList = append(roList, c)
		}
	}
	if len(roList) == 0 {
		t.Fatal("iscsi-test-cu lists no SCSI.ReadOnly tests")
	}
	out, err := run(t, cuTimeout, "iscsi-test-cu", "--dataloss", "-t", "SCSI.ReadOnly",
		"-i", initiatorFirst, "-I", initiatorSecond, tgt.LUNURL(iqnT1, 0))
	results, sum := ParseCURun(roList, out)
	n := Totals(results)
	t.Logf("iscsi-test-cu -t SCSI.ReadOnly (exit: %v): %d passed, %d skipped, %d failed, %d not run\n%s", err,
		n[Passed], n[Skipped], n[Failed], n[NotRun], FormatReport(results, func(CUTest) bool { return true }))
	if !sum.Found {
		t.Errorf("iscsi-test-cu ended without its summary (%v): the run was cut short", err)
	}
	for _, r := range results {
		if r.Outcome != Passed {
			t.Errorf("%s on a read-only LUN: %v %s", r, r.Outcome, r.Detail)
		}
	}
}

// digestTests are run again with header digests required: every iSCSI test
// and the common SCSI reads and writes, so each PDU kind crosses the wire
// with a CRC32C header digest.
const digestTests = "iSCSI,SCSI.Inquiry,SCSI.Read10,SCSI.Read16,SCSI.Write10,SCSI.Write16,SCSI.WriteVerify10"

func TestLibiscsiWithHeaderDigest(t *testing.T) {
	requireTools(t, "iscsi-test-cu")
	// iscsi-test-cu offers HeaderDigest=None,CRC32C; the target accepts
	// only CRC32C, so every session of the run uses it.
	tgt := testtarget.Start(t, digestsRequired)
	list := selectTests(ParseCUList(mustRun(t, "iscsi-test-cu", "-l")), digestTests)
	if len(list) == 0 {
		t.Fatalf("iscsi-test-cu lists none of %s", digestTests)
	}

	out, err := run(t, cuTimeout, "iscsi-test-cu", "--dataloss", "-t", digestTests,
		"-i", initiatorFirst, "-I", initiatorSecond, tgt.LUNURL(iqnT1, 0))

	results, sum := ParseCURun(list, out)
	t.Logf("iscsi-test-cu -t %s with CRC32C header digests (exit: %v):\n%s", digestTests, err,
		FormatReport(results, func(CUTest) bool { return true }))
	if !sum.Found {
		t.Errorf("iscsi-test-cu ended without its summary: the run was cut short")
	}
	for _, r := range results {
		if r.Outcome == Failed || r.Outcome == NotRun {
			t.Errorf("%s with header digests: %v", r, r.Outcome)
		}
	}
}

// selectTests returns the tests of list that a -t spec (comma-separated
// FAMILY[.SUITE[.TEST]], no wildcards) selects.
func selectTests(list []CUTest, spec string) []CUTest {
	var out []CUTest
	for _, c := range list {
		for _, s := range strings.Split(spec, ",") {
			f := strings.Split(s, ".")
			if f[0] == c.Family && (len(f) < 2 || f[1] == c.Suite) && (len(f) < 3 || f[2] == c.Name) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// saveReport writes a conformance artefact to $SCSTD_E2E_REPORT_DIR (default
// the system's temporary directory), where CI logs or a developer find it.
func saveReport(t *testing.T, name, content string) {
	t.Helper()
	dir := os.Getenv("SCSTD_E2E_REPORT_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "scstd-e2e-"+name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Logf("cannot save %s: %v", path, err)
		return
	}
	t.Logf("saved %s", path)
}

// removableTarget exports a removable fileio disk: iscsi-test-cu's
// PreventAllow, StartStopUnit and NoMedia suites skip themselves unless
// INQUIRY reports RMB.
const removableTarget = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "rm0" {
    filename  = "{{.Dir}}/rm0.img"
    size      = "64MiB"
    removable = true
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "rm0" }
}
`

// removableTests are the suites that need removable media.
const removableTests = "SCSI.PreventAllow,SCSI.StartStopUnit,SCSI.NoMedia"

func TestLibiscsiRemovableLUN(t *testing.T) {
	requireTools(t, "iscsi-test-cu")
	tgt := testtarget.Start(t, removableTarget)
	list := selectTests(ParseCUList(mustRun(t, "iscsi-test-cu", "-l")), removableTests)
	if len(list) == 0 {
		t.Fatalf("iscsi-test-cu lists none of %s", removableTests)
	}
	out, err := run(t, cuTimeout, "iscsi-test-cu", "--dataloss", "-t", removableTests,
		"-i", initiatorFirst, "-I", initiatorSecond, tgt.LUNURL(iqnT1, 0))
	results, sum := ParseCURun(list, out)
	n := Totals(results)
	t.Logf("iscsi-test-cu -t %s on a removable LUN (exit: %v): %d passed, %d skipped, %d failed, %d not run\n%s",
		removableTests, err, n[Passed], n[Skipped], n[Failed], n[NotRun],
		FormatReport(results, func(CUTest) bool { return true }))
	if !sum.Found {
		t.Errorf("iscsi-test-cu ended without its summary (%v): the run was cut short", err)
	}
	for _, r := range results {
		if r.Outcome != Passed {
			t.Errorf("%s on a removable LUN: %v %s", r, r.Outcome, r.Detail)
		}
	}
}
