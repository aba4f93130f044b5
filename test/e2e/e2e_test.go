// Package e2e drives the real scstd binary with the initiators storage
// administrators use: libiscsi's command-line tools and qemu. Each test
// starts its own daemon on an ephemeral loopback port (internal/testtarget)
// and reads as the scenario it checks.
//
// The tools come from the Debian packages libiscsi-bin, qemu-utils and
// qemu-block-extra (`make deps`). A missing tool fails the test, since
// `make test` installs them; with SCSTD_E2E_OPTIONAL=1 it skips instead.
package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/testtarget"
)

func TestMain(m *testing.M) {
	code := testtarget.Main(m)
	for _, f := range afterAll {
		f()
	}
	os.Exit(code)
}

// afterAll runs once every test is done: the clean-up of what tests
// share (the guest's static build).
var afterAll []func()

// Names used by the scenarios.
const (
	iqnT1 = "iqn.2026-11.org.example:t1"
	iqnT2 = "iqn.2026-11.org.example:t2"

	// initiatorFirst and initiatorSecond are the names iscsi-test-cu
	// logs in with (-i, -I); the two-nexus tests need both.
	initiatorFirst  = "iqn.2026-11.org.example:first"
	initiatorSecond = "iqn.2026-11.org.example:second"

	diskSize = 64 << 20
)

// oneDisk is one 64 MiB fileio disk as LUN 0 of t1.
const oneDisk = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
}
`

// optionalEnv makes missing tools skip tests instead of failing them.
const optionalEnv = "SCSTD_E2E_OPTIONAL"

// requireTools fails the test (or, with SCSTD_E2E_OPTIONAL=1, skips it) when
// one of the named programs is not installed.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv(optionalEnv) == "1" {
				t.Skipf("%s is not installed (make deps installs it); skipped because %s=1", name, optionalEnv)
			}
			t.Fatalf("%s is not installed: run `make deps` (or set %s=1 to skip the tests that need it)", name, optionalEnv)
		}
	}
}

// writeFile writes s to name, readable by the owner only.
func writeFile(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// toolTimeout bounds one run of a short tool (iscsi-ls, iscsi-inq, qemu-io).
const toolTimeout = 2 * time.Minute

// run runs a tool and returns its combined output and error; a tool that
// exits non-zero returns an *exec.ExitError. It logs the command line.
func run(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t.Logf("$ %s %s", name, strings.Join(args, " "))
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), errors.New(name + " timed out after " + timeout.String())
	}
	return string(out), err
}

// mustRun runs a tool and fails the test unless it exits 0.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, toolTimeout, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}
