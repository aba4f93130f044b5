package main

import (
	"strings"
	"testing"
)

// TestValidateNoStorage: -no-storage passes a configuration whose backing
// files are missing, and still fails one with any other error, or whose
// backing path is the configuration itself by name.
func TestValidateNoStorage(t *testing.T) {
	const missing = `handler "vdisk_fileio" {
  device "d" {
    filename = "/nonexistent/scstd/d.img"
    size     = "1GiB"
  }
}
handler "vdisk_blockio" {
  device "b" {
    filename = "/dev/disk/by-id/nonexistent"
  }
}
target "iqn.2026-11.org.example:t1" {
  lun "0" {
    device = "d"
  }
  lun "1" {
    device = "b"
  }
}
`
	cfg := writeConfig(t, missing)
	code, _, stderr := runCLI(t, "validate", cfg)
	if code != 1 || !strings.Contains(stderr, "Directory missing") || !strings.Contains(stderr, "Backing file missing") {
		t.Errorf("validate: exit %d, want 1 with the missing storage\n%s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "validate", "-no-storage", cfg)
	if code != 0 || stderr != "" || !strings.Contains(stdout, "valid (2 device(s), 1 target(s)); backing files not checked (-no-storage)") {
		t.Errorf("validate -no-storage: exit %d\n%s%s", code, stdout, stderr)
	}
	// After the path, as flags may be.
	if code, _, stderr := runCLI(t, "validate", cfg, "-no-storage"); code != 0 {
		t.Errorf("validate PATH -no-storage: exit %d\n%s", code, stderr)
	}

	for name, src := range map[string]string{
		"reference":   strings.Replace(missing, `device = "b"`, `device = "c"`, 1),
		"secret":      missing + "target \"iqn.2026-11.org.example:t2\" {\n  incoming_user \"u\" {\n    secret = env(\"SCSTD_TEST_UNSET_SECRET\")\n  }\n}\n",
		"same path":   strings.Replace(missing, "/dev/disk/by-id/nonexistent", "/nonexistent/scstd/d.img", 1),
		"config file": strings.Replace(missing, "/nonexistent/scstd/d.img", "scst.hcl", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, "validate", "-no-storage", writeConfig(t, src)); code != 1 || !strings.Contains(stderr, "error:") {
				t.Errorf("exit %d, want 1 with a diagnostic\n%s", code, stderr)
			}
		})
	}
}
