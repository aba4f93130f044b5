package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestManPages: one page per visible command plus scstd.8, each with its
// synopsis and every flag, and groff finds nothing to warn about.
func TestManPages(t *testing.T) {
	pages := manPages(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	byName := map[string]string{}
	for _, p := range pages {
		byName[p.name] = p.text
	}
	main := byName["scstd.8"]
	if main == "" {
		t.Fatal("no scstd.8")
	}
	for _, c := range commands {
		page, ok := byName["scstd-"+c.name+".8"]
		if ok == c.hidden {
			t.Errorf("page for %s: %v, hidden %v", c.name, ok, c.hidden)
			continue
		}
		if c.hidden {
			continue
		}
		if !strings.Contains(main, ".BR scstd\\-"+c.name+" (8)") {
			t.Errorf("scstd.8 does not refer to scstd-%s(8)", c.name)
		}
		if !strings.Contains(page, ".TH SCSTD\\-"+strings.ToUpper(c.name)+" 8 \"2026-11-01\"") {
			t.Errorf("scstd-%s.8 header:\n%s", c.name, page)
		}
		newFlagSet(&c, &options{}).VisitAll(func(f *flag.Flag) {
			if !strings.Contains(page, "\\-"+strings.ReplaceAll(f.Name, "-", "\\-")) {
				t.Errorf("scstd-%s.8 does not describe -%s", c.name, f.Name)
			}
		})
	}

	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed; the pages are not rendered")
	}
	for _, p := range pages {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(p.text)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff on %s: %v\n%s", p.name, err, out)
		}
	}
}

func TestManCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man")
	if code, stdout, stderr := runCLI(t, "man", dir); code != 0 || !strings.Contains(stdout, "manual pages") {
		t.Fatalf("scstd man: exit %d\n%s%s", code, stdout, stderr)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.8"))
	if want := len(manPages(time.Now())); len(names) != want {
		t.Errorf("%d pages written, want %d", len(names), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "scstd-import.8")); err != nil {
		t.Error(err)
	}
}
