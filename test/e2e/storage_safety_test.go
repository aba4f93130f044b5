package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/testtarget"
)

// Storage a configuration must never export is a configuration error
// (file:line:col, the whole file rejected) for validate, run and reload.

// passwdLike is a small file that was never meant to be a disk: 1313
// bytes, as /etc/passwd was in the report.
var passwdLike = bytes.Repeat([]byte("user:x:1000:1000::/home/user:/bin/sh\n"), 36)[:1313]

// diagAt matches a diagnostic "name:line:col: error: summary".
func diagAt(name string, line int, summary string) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`%s:%d:\d+: error: %s`, regexp.QuoteMeta(name), line, regexp.QuoteMeta(summary)))
}

// lineOf returns the 1-based line of the first occurrence of s in text.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	i := strings.Index(text, s)
	if i < 0 {
		t.Fatalf("%q not in the configuration", s)
	}
	return 1 + strings.Count(text[:i], "\n")
}

// TestStorageShortFileRefused: a fileio device on an existing 1313-byte
// file with size = "1MiB" is refused by validate (saying what to do and
// that `scstd plan` tells whether a running daemon would grow it) and by
// run, which starts nothing and leaves the file as it was.
func TestStorageShortFileRefused(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "passwd")
	if err := os.WriteFile(victim, passwdLike, 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := testtarget.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "scstd.hcl")
	text := fmt.Sprintf(`iscsi { portals = ["127.0.0.1:%d"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = %q
    size     = "1MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
}
`, port, victim)
	writeFile(t, cfg, text)
	want := diagAt(cfg, lineOf(t, text, "size"), "Backing file smaller than size")

	out, code := testtarget.Run(t, "validate", cfg)
	if code != 1 || !want.MatchString(out) || !strings.Contains(out, "truncate -s 1048576") ||
		!strings.Contains(out, "drop size") || !strings.Contains(out, "scstd plan") {
		t.Errorf("scstd validate: exit %d, want 1 with %q saying to grow the file or drop size, and to check with scstd plan:\n%s", code, want, out)
	}
	out, code, _ = runBounded(t, 20*time.Second, "run", "-config", cfg, "-admin-socket", filepath.Join(dir, "a.sock"))
	if code != 1 || !want.MatchString(out) {
		t.Errorf("scstd run: exit %d, want 1 with %q:\n%s", code, want, out)
	}
	if got, err := os.ReadFile(victim); err != nil || !bytes.Equal(got, passwdLike) {
		t.Errorf("the existing file was changed: %d bytes (was %d), %v", len(got), len(passwdLike), err)
	}
}

// TestStorageConfigAsBackingFileRefused: a backing file that is the
// configuration file itself, or that lies in the configuration directory,
// is refused by validate and run (an initiator could otherwise write the
// next configuration), and by a reload, which changes nothing.
func TestStorageConfigAsBackingFileRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "scstd.hcl")
	text := `handler "vdisk_fileio" {
  device "disk0" {
    filename = "scstd.hcl"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
}
`
	writeFile(t, cfg, text)
	want := diagAt(cfg, 3, "Backing file is the configuration")
	out, code := testtarget.Run(t, "validate", cfg)
	if code != 1 || !want.MatchString(out) {
		t.Errorf("scstd validate: exit %d, want 1 with %q:\n%s", code, want, out)
	}
	out, code, _ = runBounded(t, 20*time.Second, "run", "-config", cfg, "-admin-socket", filepath.Join(dir, "a.sock"))
	if code != 1 || !want.MatchString(out) {
		t.Errorf("scstd run: exit %d, want 1 with %q:\n%s", code, want, out)
	}

	// A configuration directory: a backing file created inside it could
	// become configuration.
	confDir := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	inDir := strings.Replace(text, `filename = "scstd.hcl"`, `filename = "disk0.img"
    size     = "1MiB"`, 1)
	writeFile(t, filepath.Join(confDir, "10-disk.hcl"), inDir)
	want = diagAt(filepath.Join(confDir, "10-disk.hcl"), 3, "Backing file inside the configuration directory")
	out, code, _ = runBounded(t, 20*time.Second, "run", "-config", confDir, "-admin-socket", filepath.Join(dir, "b.sock"))
	if code != 1 || !want.MatchString(out) {
		t.Errorf("scstd run -config DIR: exit %d, want 1 with %q:\n%s", code, want, out)
	}
	if _, err := os.Stat(filepath.Join(confDir, "disk0.img")); err == nil {
		t.Error("the backing file was created inside the configuration directory")
	}

	// A reload of a running daemon.
	tgt := testtarget.Start(t, oneDisk)
	bad := strings.Replace(oneDisk, `filename = "{{.Dir}}/disk0.img"`, `filename = "{{.Dir}}/scstd.hcl"`, 1)
	r := tgt.Reconfigure(bad)
	rendered, _ := testtarget.Render(bad, tgt.Params())
	want = diagAt(tgt.ConfigPath(), lineOf(t, rendered, "filename"), "Backing file is the configuration")
	if r.OK || !want.MatchString(r.Diagnostics) {
		t.Errorf("reload with the configuration as backing file: ok=%v, want rejected with %q:\n%s%s", r.OK, want, r.Error, r.Diagnostics)
	}
	if st := daemonStatusOf(t, tgt); st.Engine.Generation != 1 {
		t.Errorf("generation %d after a rejected reload, want 1", st.Engine.Generation)
	}
}

// TestStorageOneFileTwoDevicesRefused: two devices on one file (here
// through a hard link, so the names differ) are refused on reload unless
// both are read-only.
func TestStorageOneFileTwoDevicesRefused(t *testing.T) {
	const twoDevices = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename  = "{{.Dir}}/disk0.img"
    size      = "64MiB"
    read_only = RO
  }
  device "alias" {
    filename  = "{{.Dir}}/alias.img"
    read_only = RO
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
  lun "1" { device = "alias" }
}
`
	tgt := testtarget.Start(t, oneDisk)
	if err := os.Link(tgt.Path("disk0.img"), tgt.Path("alias.img")); err != nil {
		t.Fatal(err)
	}
	rw := strings.ReplaceAll(twoDevices, "RO", "false")
	r := tgt.Reconfigure(rw)
	rendered, _ := testtarget.Render(rw, tgt.Params())
	want := diagAt(tgt.ConfigPath(), lineOf(t, rendered, "alias.img"), "Backing file used twice")
	if r.OK || !want.MatchString(r.Diagnostics) || !strings.Contains(r.Diagnostics, `device "disk0"`) {
		t.Errorf("reload with two devices on one file: ok=%v, want rejected with %q naming disk0:\n%s%s", r.OK, want, r.Error, r.Diagnostics)
	}
	out, code := testtarget.Run(t, "validate", tgt.ConfigPath())
	if code != 1 || !want.MatchString(out) {
		t.Errorf("scstd validate: exit %d, want 1 with %q:\n%s", code, want, out)
	}
	if r := tgt.Reconfigure(strings.ReplaceAll(twoDevices, "RO", "true")); !r.OK {
		t.Errorf("reload with two read-only devices on one file: %s\n%s", r.Error, r.Diagnostics)
	}
}

// TestStorageResizeOfServingDeviceAllowed: raising size grows the file of
// a device the daemon serves (a resize); validate, which asks no daemon,
// refuses it and says that `scstd plan` tells, and plan shows the resize.
func TestStorageResizeOfServingDeviceAllowed(t *testing.T) {
	tgt := testtarget.Start(t, oneDisk)
	grown := strings.Replace(oneDisk, `size     = "64MiB"`, `size     = "128MiB"`, 1)
	text, err := testtarget.Render(grown, tgt.Params())
	if err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(t.TempDir(), "next.hcl")
	writeFile(t, next, text)
	out, code := testtarget.Run(t, "validate", next)
	if code != 1 || !strings.Contains(out, "Backing file smaller than size") || !strings.Contains(out, "scstd plan") {
		t.Errorf("scstd validate of a resize: exit %d, want 1 pointing at scstd plan:\n%s", code, out)
	}
	out, code = testtarget.Run(t, "plan", "-config", next, "-admin-socket", tgt.AdminSocket())
	if code != 2 || !strings.Contains(out, "device.disk0") || !strings.Contains(out, "128MiB") {
		t.Errorf("scstd plan of a resize: exit %d, want 2 with the resize of disk0:\n%s", code, out)
	}
	if r := tgt.Reconfigure(grown); !r.OK || r.Changes != 1 {
		t.Fatalf("reload growing disk0: ok=%v changes=%d %s\n%s", r.OK, r.Changes, r.Error, r.Diagnostics)
	}
	if fi, err := os.Stat(tgt.Path("disk0.img")); err != nil || fi.Size() != 128<<20 {
		t.Errorf("disk0.img after the resize: %v, %v; want 128 MiB", fi, err)
	}
}
