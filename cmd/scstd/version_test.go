package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, "version")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if code != 0 || len(lines) < 3 {
		t.Fatalf("scstd version: exit %d:\n%s", code, stdout)
	}
	if lines[0] != "scstd "+version || version == "" {
		t.Errorf("first line %q, want \"scstd %s\"", lines[0], version)
	}
	if !strings.HasPrefix(lines[1], "commit  ") {
		t.Errorf("second line %q, want the commit", lines[1])
	}
	if want := "go      " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH; lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
	}
	if code, _, _ := runCLI(t, "version", "extra"); code != 2 {
		t.Errorf("scstd version extra: exit %d, want 2", code)
	}
}

// TestVersionFromLinker: -ldflags -X values win over the build info.
func TestVersionFromLinker(t *testing.T) {
	defer func(v, c, m string) { version, commit, modified = v, c, m }(version, commit, modified)
	version, commit, modified = "1.2.3", "0123456789abcdef", "true"
	b := readBuildInfo()
	if b.version != "1.2.3" || b.commit != "0123456789abcdef" || !b.modified {
		t.Errorf("readBuildInfo = %+v, want the linker's values", b)
	}
}
