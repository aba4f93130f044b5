package e2e

import (
	"os"
	"strings"
	"testing"
)

// The recorded run in testdata is libiscsi 1.19's iscsi-test-cu against
// tgtd (Debian's tgt) on a 64 MiB LUN: a real output with skipped tests,
// failed tests with CUnit assertion lines, and log lines after a verdict.
func TestParseCURunAgreesWithCUnitSummary(t *testing.T) {
	list := ParseCUList(readTestdata(t, "iscsi-test-cu-list.txt"))
	results, sum := ParseCURun(list, readTestdata(t, "iscsi-test-cu-tgtd.txt"))

	if len(list) != 615 {
		t.Fatalf("listing has %d tests, want 615", len(list))
	}
	if !sum.Found || sum.Total != 615 || sum.Passed != 598 || sum.Failed != 17 {
		t.Fatalf("CUnit summary = %+v, want 615 tests, 598 passed, 17 failed", sum)
	}
	n := Totals(results)
	if len(results) != sum.Total || n[Passed]+n[Skipped] != sum.Passed || n[Failed] != sum.Failed || n[NotRun] != 0 {
		t.Errorf("parsed %d tests: %v; CUnit counted %+v", len(results), n, sum)
	}
	if n[Skipped] == 0 || n[Passed] == 0 {
		t.Errorf("parsed %v: want both passed and skipped tests", n)
	}

	want := []struct {
		test    string
		outcome Outcome
		detail  string
	}{
		{"ALL.CompareAndWrite.Simple", Skipped, "[SKIPPED] COMPAREANDWRITE is not implemented."},
		{"ALL.GetLBAStatus.BeyondEol", Failed, "test_get_lba_status_beyond_eol.c:38"},
		{"SCSI.GetLBAStatus.BeyondEol", Failed, "test_get_lba_status_beyond_eol.c:38"},
		{"ALL.Inquiry.Standard", Passed, ""},
		{"SCSI.Inquiry.Standard", Passed, ""},
		{"LINUX.Inquiry.Standard", Passed, ""},
		{"ALL.Reserve6.LUNReset", Passed, ""}, // "passed    [FAILED] ..." on one line
		{"iSCSI.iSCSIcmdsn.iSCSICmdSnTooHigh", Passed, ""},
		{"ALL.MultipathIO.Simple", Skipped, "Multipath unavailable"},
	}
	byName := map[string]CUResult{}
	for _, r := range results {
		byName[r.String()] = r
	}
	for _, w := range want {
		r, ok := byName[w.test]
		if !ok {
			t.Errorf("%s: not parsed", w.test)
			continue
		}
		if r.Outcome != w.outcome || !strings.Contains(r.Detail, w.detail) {
			t.Errorf("%s = %v %q, want %v with %q", w.test, r.Outcome, r.Detail, w.outcome, w.detail)
		}
	}
}

func TestParseCURunCutShort(t *testing.T) {
	list := ParseCUList("ALL\nALL.Read10\nALL.Read10.Simple\nALL.Read10.BeyondEol\nALL.Read10.ZeroBlocks\n" +
		"SCSI\nSCSI.Read10\nSCSI.Read10.Simple\n")
	out := "Suite: Read10\n" +
		"  Test: Simple ...passed\n" +
		"  Test: BeyondEol ...    [FAILED] READ10 successful but should have failed\n" +
		"FAILED\n" +
		"    1. test_read10_beyond_eol.c:60  - CU_ASSERT_EQUAL(ret,0)\n" +
		"  Test: ZeroBlocks ...    some log line\n" // the target died here

	results, sum := ParseCURun(list, out)

	want := map[string]Outcome{
		"ALL.Read10.Simple":     Passed,
		"ALL.Read10.BeyondEol":  Failed,
		"ALL.Read10.ZeroBlocks": NotRun,
		"SCSI.Read10.Simple":    NotRun,
	}
	if len(results) != len(want) {
		t.Fatalf("got %d results, want %d: %+v", len(results), len(want), results)
	}
	for _, r := range results {
		if r.Outcome != want[r.String()] {
			t.Errorf("%s = %v, want %v", r, r.Outcome, want[r.String()])
		}
	}
	if d := results[1].Detail; !strings.Contains(d, "[FAILED] READ10") || !strings.Contains(d, "test_read10_beyond_eol.c:60") {
		t.Errorf("detail of the failed test = %q", d)
	}
	if sum.Found {
		t.Errorf("summary found in a run that was cut short: %+v", sum)
	}
}

func TestFormatReport(t *testing.T) {
	results := []CUResult{
		{CUTest: CUTest{"SCSI", "Read10", "Simple"}, Outcome: Passed},
		{CUTest: CUTest{"SCSI", "Read10", "Dpo"}, Outcome: Skipped},
		{CUTest: CUTest{"SCSI", "Unmap", "Simple"}, Outcome: Failed, Detail: "[FAILED] UNMAP failed"},
		{CUTest: CUTest{"SCSI", "Read10", "BeyondEol"}, Outcome: Failed, Detail: "x.c:1"},
	}
	got := FormatReport(results, func(c CUTest) bool { return c.Suite == "Read10" })
	for _, want := range []string{
		"SCSI  Read10       1        1       1        0    yes",
		"SCSI   Unmap       0        0       1        0",
		"total: 4 tests: 1 passed, 1 skipped, 2 failed, 0 not run",
		"failed [gated] SCSI.Read10.BeyondEol\n        x.c:1\nfailed     SCSI.Unmap.Simple\n        [FAILED] UNMAP failed\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Passed: "passed", Skipped: "skipped", Failed: "failed", NotRun: "not run", 9: "Outcome(9)"} {
		if o.String() != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), o.String(), want)
		}
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSelectTests(t *testing.T) {
	list := ParseCUList(readTestdata(t, "iscsi-test-cu-list.txt"))
	tests := []struct {
		spec string
		want int
	}{
		{"SCSI.Read10", 6},
		{"SCSI.Read10.Simple", 1},
		{"SCSI.Read10,ALL.Read10", 12},
		{"iSCSI", 15},
		{"NoSuchFamily", 0},
	}
	for _, tc := range tests {
		if got := len(selectTests(list, tc.spec)); got != tc.want {
			t.Errorf("selectTests(%q) selected %d tests, want %d", tc.spec, got, tc.want)
		}
	}
}
