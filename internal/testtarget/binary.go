package testtarget

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// BinaryEnv names the environment variable that points at a prebuilt scstd
// binary; `make e2e` sets it to bin/scstd. When it is unset, the binary is
// built once per test binary.
const BinaryEnv = "SCSTD_BIN"

var build struct {
	once sync.Once
	path string
	err  error
	dir  string // temporary build directory, removed by Main
}

// Binary returns the path of the scstd binary under test: $SCSTD_BIN, or
// else ./cmd/scstd built once into a temporary directory.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			abs, err := filepath.Abs(p)
			if err == nil {
				_, err = os.Stat(abs)
			}
			build.path, build.err = abs, err
			return
		}
		dir, err := os.MkdirTemp("", "scstd-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		out := filepath.Join(dir, "scstd")
		cmd := exec.Command("go", "build", "-o", out, "github.com/scstd/scstd/cmd/scstd")
		if msg, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/scstd: %v\n%s", err, msg)
			return
		}
		build.path = out
	})
	if build.err != nil {
		t.Fatalf("testtarget: no scstd binary: %v", build.err)
	}
	return build.path
}

// Main runs the tests of m and then removes the binary that Binary built.
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testtarget.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}
