package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/testtarget"
)

// The command-line contract (cmd/scstd's command table, as `scstd help`
// and the manual pages print it), as users and scripts rely on it.

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	params := testtarget.Params{Portal: "127.0.0.1:3260", Host: "127.0.0.1", Port: 3260, Dir: dir}
	good, err := testtarget.Render(oneDisk, params)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(good, `device = "disk0"`, `device = "no_such_disk"`, 1)
	badLine := 1 + strings.Count(bad[:strings.Index(bad, "no_such_disk")], "\n")

	tests := []struct {
		name     string
		config   string
		wantExit int
		want     *regexp.Regexp
	}{
		{name: "valid", config: good, wantExit: 0, want: regexp.MustCompile(`valid`)},
		{name: "unknown device", config: bad, wantExit: 1, want: diagnosticAt(badLine)},
		{name: "syntax error", config: "target {", wantExit: 1, want: diagnosticAt(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name, "scstd.hcl")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			out, code := testtarget.Run(t, "validate", path)
			if code != tc.wantExit || !tc.want.MatchString(out) {
				t.Errorf("scstd validate: exit %d, want %d with %q in:\n%s", code, tc.wantExit, tc.want, out)
			}
		})
	}
}

// diagnosticAt matches a diagnostic that points at line of scstd.hcl: the
// contract's "file:line:col", or hcl's text writer's "on file line N".
func diagnosticAt(line int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`scstd\.hcl(:| line )%d\b`, line))
}

func TestVersion(t *testing.T) {
	out, code := testtarget.Run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "scstd ") {
		t.Errorf("scstd version: exit %d, output %q", code, out)
	}
}

func TestRunRefusesInvalidConfigAndStartsNothing(t *testing.T) {
	port, err := testtarget.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "scstd.hcl")
	config := fmt.Sprintf(`iscsi { portals = ["127.0.0.1:%d"] }
target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "missing" }
}
`, port)
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	out, code := testtarget.Run(t, "run", "-config", path, "-admin-socket", filepath.Join(dir, "a.sock"))

	if code != 1 || !diagnosticAt(3).MatchString(out) {
		t.Errorf("scstd run on an invalid file: exit %d, want 1 with a file:line diagnostic:\n%s", code, out)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Errorf("port %d accepts connections after a refused start", port)
	}
}

func TestStatusAndReloadOverAdminSocket(t *testing.T) {
	tgt := testtarget.Start(t, oneDisk)
	sock := tgt.AdminSocket()

	out, code := testtarget.Run(t, "status", "-json", "-admin-socket", sock)
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, iqnT1) || !strings.Contains(out, "disk0") {
		t.Errorf("scstd status -json: exit %d, want valid JSON naming %s and disk0:\n%s", code, iqnT1, out)
	}
	out, code = testtarget.Run(t, "reload", "-admin-socket", sock)
	if code != 0 {
		t.Errorf("scstd reload of an unchanged file: exit %d\n%s", code, out)
	}
}
