package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "scst.hcl")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const validConfig = `iscsi {
  portals = ["127.0.0.1:3260"]
}

handler "vdisk_nullio" {
  device "null0" {
    size = "1GiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" {
    device = "null0"
  }
}
`

func TestCLI(t *testing.T) {
	tests := []struct {
		name       string
		args       func(cfg string) []string
		config     string
		empty      bool // write an empty configuration file
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no command prints usage", args: func(string) []string { return nil },
			wantCode: 2, wantStderr: "usage: scstd COMMAND"},
		{name: "unknown command", args: func(string) []string { return []string{"frobnicate"} },
			wantCode: 2, wantStderr: `unknown command "frobnicate"`},
		{name: "version", args: func(string) []string { return []string{"version"} },
			wantCode: 0, wantStdout: "scstd "},
		{name: "validate a valid file", config: validConfig,
			args: func(c string) []string { return []string{"validate", c} }, wantCode: 0, wantStdout: "valid (1 device(s), 1 target(s))"},
		{name: "validate reports file, line and column", config: strings.Replace(validConfig, `device = "null0"`, `device = "nope"`, 1),
			args: func(c string) []string { return []string{"validate", c} }, wantCode: 1, wantStderr: "scst.hcl:13:5: error: Unknown device"},
		{name: "validate a missing file", args: func(string) []string { return []string{"validate", "/nonexistent/scst.hcl"} },
			wantCode: 1, wantStderr: "/nonexistent/scst.hcl"},
		{name: "validate takes one path", args: func(string) []string { return []string{"validate", "a", "b"} },
			wantCode: 2, wantStderr: "usage: scstd validate"},
		{name: "fmt -check on a formatted file", config: validConfig,
			args: func(c string) []string { return []string{"fmt", "-check", c} }, wantCode: 0},
		{name: "fmt -check on an unformatted file", config: strings.Replace(validConfig, `device = "null0"`, `device     =    "null0"`, 1),
			args: func(c string) []string { return []string{"fmt", "-check", c} }, wantCode: 1, wantStdout: "scst.hcl"},
		{name: "validate an empty file", empty: true,
			args: func(c string) []string { return []string{"validate", c} }, wantCode: 1,
			wantStderr: "scst.hcl:1:1: warning: Empty configuration file"},
		{name: "validate a device", args: func(string) []string { return []string{"validate", "/dev/zero"} },
			wantCode: 1, wantStderr: "/dev/zero is a character device"},
		{name: "plan a device", args: func(string) []string {
			return []string{"plan", "-config", "/dev/zero", "-admin-socket", "/nonexistent/scstd.sock"}
		}, wantCode: 1, wantStderr: "/dev/zero is a character device"},
		{name: "fmt a device", args: func(string) []string { return []string{"fmt", "/dev/zero"} },
			wantCode: 1, wantStderr: "/dev/zero is a character device"},
		{name: "reload without a daemon", args: func(string) []string {
			return []string{"reload", "-admin-socket", "/nonexistent/scstd.sock"}
		}, wantCode: 1, wantStderr: "cannot reach the daemon"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ""
			if tc.config != "" || tc.empty {
				cfg = writeConfig(t, tc.config)
			}
			code, stdout, stderr := runCLI(t, tc.args(cfg)...)
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout, tc.wantStdout)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tc.wantStderr)
			}
		})
	}
}

func TestFmtRewritesInPlace(t *testing.T) {
	cfg := writeConfig(t, strings.Replace(validConfig, `size = "1GiB"`, `size   = "1GiB"`, 1))
	if code, _, stderr := runCLI(t, "fmt", cfg); code != 0 {
		t.Fatalf("fmt: exit %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(cfg)
	if string(got) != validConfig {
		t.Errorf("formatted file:\n%s\nwant:\n%s", got, validConfig)
	}
	if code, _, _ := runCLI(t, "fmt", "-check", cfg); code != 0 {
		t.Errorf("fmt -check after fmt: exit %d", code)
	}
}

// TestFmtKeepsSymlink: fmt on a configuration reached through a symbolic
// link (/etc/scst.hcl -> a file a deployment tool manages) rewrites the file
// the link leads to and leaves the link, and the file's mode, as they were.
func TestFmtKeepsSymlink(t *testing.T) {
	real := writeConfig(t, strings.Replace(validConfig, `size = "1GiB"`, `size   = "1GiB"`, 1))
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "scst.hcl")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "fmt", link); code != 0 {
		t.Fatalf("fmt: exit %d: %s", code, stderr)
	}
	if dest, err := os.Readlink(link); err != nil || dest != real {
		t.Errorf("after fmt the link leads to %q (%v), want %q", dest, err, real)
	}
	got, _ := os.ReadFile(real)
	if string(got) != validConfig {
		t.Errorf("formatted file:\n%s\nwant:\n%s", got, validConfig)
	}
	if st, err := os.Stat(real); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("the formatted file's mode: %v (%v), want 0640", st.Mode(), err)
	}
}
