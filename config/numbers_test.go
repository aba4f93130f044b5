package config

import (
	"strings"
	"testing"
	"time"
)

// TestNumbersBounded holds the loader, and Format, to a prompt refusal of
// numbers that math/big would take seconds to read or print: each case
// took 4-15 s before the bounds.
func TestNumbersBounded(t *testing.T) {
	digits := strings.Repeat("7", 2_000_000)
	target := func(attrs string) string {
		return "target \"iqn.2026-11.org.example:a\" {\n" + attrs + "\n}\n"
	}
	for _, tc := range []struct {
		name, src, summary string
	}{
		{"2 million digits", target("  rel_tgt_id = " + digits), "Number too long"},
		{"2 million digits after a point", target("  rel_tgt_id = 0." + digits), "Number too long"},
		{"2 million digits in a fast block", "handler \"vdisk_nullio\" {\n  device \"d\" {\n    blocksize = " + digits + "\n  }\n}\n", "Number too long"},
		{"found by the fuzzer", target("  queued_commands = 1e999\n  rsp_timeout = -0\n  rel_tgt_id = 18446744073E09551617"), "Number out of range"},
		{"as a string", "handler \"vdisk_fileio\" {\n  device \"d\" {\n    filename = 1E2551617\n  }\n}\n", "Number out of range"},
		{"in a template", target("  rel_tgt_id = \"${1E2551617}\""), "Number out of range"},
		{"tiny", target("  rel_tgt_id = 1E-2551617"), "Number out of range"},
		{"made by arithmetic", target("  rel_tgt_id = \"${1E900 * 1E900 * 1E900}\""), "Number out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, diags := testLoader().Parse([]byte(tc.src), "scst.hcl")
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Parse took %v", took)
			}
			if !diags.HasErrors() || diags[0].Summary != tc.summary {
				t.Fatalf("diagnostics %v, want %q first", diags, tc.summary)
			}
			if len(diags[0].Detail) > 400 {
				t.Errorf("detail of %d bytes", len(diags[0].Detail))
			}
			if strings.Contains(tc.summary, "long") {
				start = time.Now()
				if _, fd := Format([]byte(tc.src), "scst.hcl"); !fd.HasErrors() || fd[0].Summary != tc.summary {
					t.Errorf("Format: %v", fd)
				}
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("Format took %v", took)
				}
			}
		})
	}
}

// TestNumbersWithinBounds: numbers up to 10^1000, and arithmetic on them,
// decode as before.
func TestNumbersWithinBounds(t *testing.T) {
	src := "iscsi {\n  portals = [\"127.0.0.1:3260\"]\n}\n" +
		"target \"iqn.2026-11.org.example:a\" {\n  queued_commands = 1E2 - 36\n  rel_tgt_id = (1E30 / 1E29) * -(-3)\n}\n"
	cfg, diags := testLoader().Parse([]byte(src), "scst.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if tg := cfg.Targets[0]; tg.QueuedCommands != 64 || tg.RelTgtID != 30 {
		t.Errorf("queued_commands %d, rel_tgt_id %d; want 64 and 30", tg.QueuedCommands, tg.RelTgtID)
	}
	// At the bounds: HCL's 512-bit arithmetic may leave these a little
	// off a whole number, but they are not out of range.
	for _, expr := range []string{"1E1000 / 1E999", "1 + 1E-999 - 1E-999", "-1E1000 * 1"} {
		src := "target \"iqn.2026-11.org.example:a\" {\n  rel_tgt_id = " + expr + "\n}\n"
		_, diags := testLoader().Parse([]byte(src), "scst.hcl")
		for _, d := range diags {
			if d.Summary == "Number out of range" {
				t.Errorf("%s: %v", expr, d)
			}
		}
	}
}

// TestNumbersReportedOnce: an out-of-range number is reported once, at
// itself, however deep the arithmetic around it.
func TestNumbersReportedOnce(t *testing.T) {
	for _, expr := range []string{"-1E2551617", "-(1E2551617)", "((1E2551617) + 1) * 2", "-(1E600 * 1E600) - 1"} {
		src := "target \"iqn.2026-11.org.example:a\" {\n  rel_tgt_id = " + expr + "\n}\n"
		_, diags := testLoader().Parse([]byte(src), "scst.hcl")
		if len(diags) != 1 || diags[0].Summary != "Number out of range" {
			t.Errorf("%s: %v", expr, diags)
		}
	}
}
