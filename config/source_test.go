package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// compareGolden compares got with testdata/<name>.golden after replacing
// dir (unless empty) with $DIR, or rewrites the golden file with -update.
func compareGolden(t *testing.T, name, dir, got string) {
	t.Helper()
	if dir != "" {
		got = strings.ReplaceAll(got, dir, "$DIR")
	}
	golden := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./config -update)", err)
	}
	if got != string(want) {
		t.Errorf("diagnostics differ from %s (run go test ./config -update after checking):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

// within runs f and fails the test when it does not return within d: a
// reader that blocks on a FIFO would hang the test otherwise.
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
	var zero T
	return zero
}

// TestReadSourcesRefuses: a configuration path that is not a regular file
// or a directory of regular *.hcl files, or that holds more than 16 MiB,
// is refused before it is read, with a diagnostic naming it; nothing
// blocks on a FIFO.
func TestReadSourcesRefuses(t *testing.T) {
	dir := t.TempDir()
	mkfifo := func(name string) {
		t.Helper()
		if err := syscall.Mkfifo(name, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sparse := func(name string, size int64) {
		t.Helper()
		if err := os.WriteFile(name, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(name, size); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		setup func(base string) string // returns the path to load
	}{
		{"fifo", func(base string) string {
			p := filepath.Join(base, "scst.hcl")
			mkfifo(p)
			return p
		}},
		{"dev_zero", func(string) string { return "/dev/zero" }},
		{"too_large", func(base string) string {
			p := filepath.Join(base, "scst.hcl")
			sparse(p, MaxConfigSize+1)
			return p
		}},
		{"dir_with_fifo", func(base string) string {
			writeTestFile(t, filepath.Join(base, "a.hcl"), "")
			mkfifo(filepath.Join(base, "b.hcl"))
			return base
		}},
		{"dir_too_large", func(base string) string {
			sparse(filepath.Join(base, "a.hcl"), 9<<20)
			sparse(filepath.Join(base, "b.hcl"), 9<<20)
			return base
		}},
		{"missing", func(base string) string { return filepath.Join(base, "nope.hcl") }},
		{"empty_dir", func(base string) string { return base }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join(dir, tt.name)
			if err := os.Mkdir(base, 0o755); err != nil {
				t.Fatal(err)
			}
			path := tt.setup(base)
			l := testLoader()
			within(t, 5*time.Second, "Load("+path+")", func() error {
				cfg, diags := l.Load(path)
				if cfg != nil || !diags.HasErrors() {
					t.Errorf("Load(%s) = %v, %v; want an error", path, cfg, diags)
				}
				var b bytes.Buffer
				l.WriteDiagnostics(&b, diags)
				if !strings.Contains(b.String(), path) {
					t.Errorf("the diagnostic does not name %s:\n%s", path, b.String())
				}
				compareGolden(t, "paths/"+tt.name, dir, b.String())
				return nil
			})
		})
	}
}

// TestFileFunctionFIFO: file() of a FIFO fails at once instead of waiting
// for a writer.
func TestFileFunctionFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := "target \"iqn.2026-11.org.example:t\" {\n  incoming_user \"u\" {\n    secret = file(\"secret\")\n  }\n}\n"
	l := testLoader()
	text := within(t, 5*time.Second, "file() of a FIFO", func() string {
		_, diags := l.Parse([]byte(src), filepath.Join(dir, "scst.hcl"))
		var b bytes.Buffer
		l.WriteDiagnostics(&b, diags)
		return b.String()
	})
	if !strings.Contains(text, "a named pipe, not a regular file") {
		t.Errorf("file() of a FIFO: want a diagnostic saying it is a named pipe, got:\n%s", text)
	}
}

// TestSources: the hash of one file is its plain SHA-256, a directory's
// hash covers names and contents, and zero-byte files are reported.
func TestSources(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "a.hcl"), "# a\n")
	writeTestFile(t, filepath.Join(dir, "b.hcl"), "")
	one, diags := ReadSources(filepath.Join(dir, "a.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// printf '# a\n' | sha256sum
	if got := one.Hash(); got != "fd99dedae7c3f7532f8a65d60f811a05dc9dc3e1c5936b0c554c98aafdad8c10" {
		t.Errorf("hash = %q", got)
	}
	all, diags := ReadSources(dir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if !all.Dir || len(all.Files) != 2 || all.Hash() == one.Hash() {
		t.Errorf("directory sources: %+v, hash %s", all, all.Hash())
	}
	if got := all.EmptyFiles(); len(got) != 1 || got[0] != filepath.Join(dir, "b.hcl") {
		t.Errorf("EmptyFiles = %q, want b.hcl", got)
	}
	if got := one.EmptyFiles(); len(got) != 0 {
		t.Errorf("EmptyFiles of a non-empty file = %q", got)
	}
}

func writeTestFile(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
