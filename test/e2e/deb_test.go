package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// debEnv names a prebuilt package (`make e2e` builds one with `make deb`);
// without it the test builds its own with scripts/deb.sh.
const debEnv = "SCSTD_DEB"

// TestDebianPackage checks the package as dpkg sees it and installs it
// with dpkg into an empty root directory, not into this machine's /:
// dpkg --root with chrootless maintainer scripts (which then leave the
// host's systemd alone). The installed binary then runs chrooted into
// that root, where only the package's files exist: `scstd version` shows
// the package's version, and `scstd validate /etc/scst.hcl` passes with the
// storage check, so the default configuration works on a fresh host.
// Removing keeps the conffile, purging removes it, and neither touches a
// disk image in /var/lib/scstd.
func TestDebianPackage(t *testing.T) {
	requireTools(t, "dpkg", "dpkg-deb", "dpkg-query", "chroot")
	if os.Geteuid() != 0 {
		if os.Getenv(optionalEnv) == "1" {
			t.Skipf("dpkg --root and chroot need root; skipped because %s=1", optionalEnv)
		}
		t.Fatalf("dpkg --root and chroot need root (set %s=1 to skip)", optionalEnv)
	}
	deb := os.Getenv(debEnv)
	if deb == "" {
		deb = strings.TrimSpace(mustRun(t, "../../scripts/deb.sh", t.TempDir()))
	}
	version := debField(t, deb, "Version")

	// Metadata and contents.
	if got := debField(t, deb, "Package"); got != "scstd" {
		t.Errorf("Package: %q", got)
	}
	if got := debField(t, deb, "Depends"); got != "" {
		t.Errorf("Depends: %q; the binary is static and needs nothing", got)
	}
	control := t.TempDir()
	mustRun(t, "dpkg-deb", "--control", deb, control)
	if b, _ := os.ReadFile(filepath.Join(control, "conffiles")); strings.TrimSpace(string(b)) != "/etc/scst.hcl" {
		t.Errorf("conffiles: %q, want /etc/scst.hcl", b)
	}
	contents := mustRun(t, "dpkg-deb", "--contents", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/bin/scstd\n",
		"-rw-r--r-- root/root .* ./etc/scst.hcl\n",
		" ./lib/systemd/system/scstd.service\n",
		" ./usr/share/man/man8/scstd.8.gz\n",
		" ./usr/share/man/man8/scstd-import.8.gz\n",
		"drwxr-x--- root/root .* ./var/lib/scstd/\n",
		"drwx------ root/root .* ./etc/scst/chap/\n",
	} {
		if !regexp.MustCompile(want).MatchString(contents) {
			t.Errorf("the package lacks %q:\n%s", want, contents)
		}
	}

	// Install into an empty root.
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "var/lib/dpkg/status"), "")
	dpkg := func(args ...string) string {
		return mustRun(t, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
	}
	dpkg("--install", deb)
	if got := mustRun(t, "dpkg-query", "--root="+root, "--show", "--showformat=${Status} ${Version}", "scstd"); got != "install ok installed "+version {
		t.Errorf("dpkg-query: %q", got)
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/scstd.service"))
	if err != nil || !strings.Contains(string(unit), "ExecStart=/usr/bin/scstd run -config /etc/scst.hcl") {
		t.Errorf("installed unit: %v\n%s", err, unit)
	}

	out := mustRun(t, "chroot", root, "/usr/bin/scstd", "version")
	if !strings.HasPrefix(out, "scstd "+version+"\ncommit  ") {
		t.Errorf("scstd version in the installed root:\n%s", out)
	}
	if out := mustRun(t, "chroot", root, "/usr/bin/scstd", "validate", "/etc/scst.hcl"); !strings.Contains(out, "/etc/scst.hcl: valid (1 device(s), 1 target(s))") {
		t.Errorf("scstd validate /etc/scst.hcl in the installed root:\n%s", out)
	}
	if out := mustRun(t, "chroot", root, "/usr/bin/scstd", "fmt", "-check", "/etc/scst.hcl"); out != "" {
		t.Errorf("the default configuration is not in canonical format:\n%s", out)
	}

	// A disk image outlives removing and purging the package.
	image := filepath.Join(root, "var/lib/scstd/disk0.img")
	writeFile(t, image, "data")
	dpkg("--remove", "scstd")
	if _, err := os.Stat(filepath.Join(root, "etc/scst.hcl")); err != nil {
		t.Errorf("remove took the conffile: %v", err)
	}
	dpkg("--purge", "scstd")
	if _, err := os.Stat(filepath.Join(root, "etc/scst.hcl")); !os.IsNotExist(err) {
		t.Errorf("purge left /etc/scst.hcl: %v", err)
	}
	if b, err := os.ReadFile(image); err != nil || string(b) != "data" {
		t.Errorf("purge touched the disk image in /var/lib/scstd: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/scstd")); !os.IsNotExist(err) {
		t.Errorf("purge left the binary: %v", err)
	}
}

// debField returns a control field of the package ("" when absent).
func debField(t *testing.T, deb, field string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--field", deb, field).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --field %s %s: %v", deb, field, err)
	}
	return strings.TrimSpace(string(out))
}
