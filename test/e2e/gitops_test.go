package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/testtarget"
)

// gitopsDir is the GitOps example: a repository whose CI gate is check.sh.
const gitopsDir = "../../examples/gitops"

// ciRunner is a CI runner as the GitOps example meets it: a checkout of
// the example's files, scstd on PATH, and none of the storage the
// configuration names. It runs commands in a mount namespace of their own
// (unshare --mount) where an empty tmpfs covers the directory above each
// backing file's directory, so that the backing files and their
// directories are missing whatever this machine holds there; nothing
// outside the namespace sees the tmpfs.
type ciRunner struct {
	checkout string
	path     string   // PATH with scstd first
	hide     []string // directories covered by a tmpfs
}

func newCIRunner(t *testing.T) *ciRunner {
	t.Helper()
	requireTools(t, "unshare", "mount")
	if os.Geteuid() != 0 {
		if os.Getenv(optionalEnv) == "1" {
			t.Skipf("a mount namespace needs root; skipped because %s=1", optionalEnv)
		}
		t.Fatalf("a mount namespace needs root (set %s=1 to skip)", optionalEnv)
	}
	r := &ciRunner{checkout: filepath.Join(t.TempDir(), "repo")}
	if err := os.CopyFS(r.checkout, os.DirFS(gitopsDir)); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(testtarget.Binary(t), filepath.Join(bin, "scstd")); err != nil {
		t.Fatal(err)
	}
	r.path = bin + ":" + os.Getenv("PATH")
	cfg, diags := exampleLoader().Load(filepath.Join(gitopsDir, "scstd.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, d := range cfg.Devices {
		if d.Filename == "" {
			continue
		}
		above := filepath.Dir(filepath.Dir(d.Filename))
		if above == "/" || strings.HasPrefix(r.checkout, above+"/") || strings.HasPrefix(bin, above+"/") {
			t.Fatalf("cannot hide %s from the runner without hiding the runner itself", d.Filename)
		}
		if !slices.Contains(r.hide, above) {
			r.hide = append(r.hide, above)
		}
	}
	if len(r.hide) == 0 {
		t.Fatal("the GitOps example names no backing file: nothing for -no-storage to leave alone")
	}
	return r
}

// run runs the shell command line cmd in the checkout, as a CI step does,
// and returns its output and exit status.
func (r *ciRunner) run(t *testing.T, cmd string) (string, int) {
	t.Helper()
	script := `for d in "$@"; do mount -t tmpfs -o size=1m,mode=0755 ci-runner "$d" || exit 99; done; cd "$CHECKOUT" && ` + cmd
	c := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh"}, r.hide...)...)
	c.Env = append(os.Environ(), "PATH="+r.path, "CHECKOUT="+r.checkout)
	t.Logf("$ %s   (in %s, without %s)", cmd, r.checkout, strings.Join(r.hide, ", "))
	out, err := c.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		if exit.ExitCode() == 99 {
			t.Fatalf("mounting the runner's tmpfs failed:\n%s", out)
		}
		return string(out), exit.ExitCode()
	}
	t.Fatalf("%s: %v\n%s", cmd, err, out)
	return "", 0
}

// TestGitOpsCIGate runs the GitOps example's CI gate as the example writes
// it (README's workflow runs ./check.sh) on a runner without the storage:
// the example passes; a plain `scstd validate` there fails, which is why
// the gate needs -no-storage; a change with an error and an unformatted
// change are stopped.
func TestGitOpsCIGate(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(gitopsDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	workflow := regexp.MustCompile("(?s)```yaml\n(# .github/workflows/.*?)```").FindSubmatch(readme)
	if workflow == nil {
		t.Fatal("the README has no CI workflow (a ```yaml block starting with # .github/workflows/)")
	}
	var steps []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- run: (.*)$`).FindAllSubmatch(workflow[1], -1) {
		steps = append(steps, string(m[1]))
	}
	if len(steps) == 0 || steps[len(steps)-1] != "./check.sh" {
		t.Fatalf("the workflow's last step is not ./check.sh: %q", steps)
	}
	gate := steps[len(steps)-1]

	r := newCIRunner(t)
	if out, code := r.run(t, "scstd validate scstd.hcl"); code != 1 || !strings.Contains(out, "Directory missing") {
		t.Fatalf("plain validate on the runner: exit %d, want 1 for the missing storage (is the storage hidden?)\n%s", code, out)
	}
	out, code := r.run(t, gate)
	if code != 0 || !strings.Contains(out, "valid (1 device(s), 1 target(s)); backing files not checked (-no-storage)") {
		t.Fatalf("%s on the runner: exit %d, want 0\n%s", gate, code, out)
	}

	good, err := os.ReadFile(filepath.Join(r.checkout, "scstd.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, from, to string
		want           *regexp.Regexp
	}{
		{"unknown device", `device = "vm-images"`, `device = "vm-image"`,
			regexp.MustCompile(`scstd\.hcl:\d+:\d+: error: `)},
		{"unformatted", `queued_commands = 64`, `queued_commands    =   64`,
			regexp.MustCompile(`(?m)^\./scstd\.hcl$|^scstd\.hcl$`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			changed := strings.Replace(string(good), tt.from, tt.to, 1)
			if changed == string(good) {
				t.Fatalf("%q is not in the example", tt.from)
			}
			if err := os.WriteFile(filepath.Join(r.checkout, "scstd.hcl"), []byte(changed), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.WriteFile(filepath.Join(r.checkout, "scstd.hcl"), good, 0o644) })
			if out, code := r.run(t, gate); code == 0 || !tt.want.MatchString(out) {
				t.Errorf("%s: exit %d, want non-zero and %s\n%s", gate, code, tt.want, out)
			}
		})
	}
}
