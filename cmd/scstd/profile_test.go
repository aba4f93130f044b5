package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStartProfilesWritesWhatTheEnvironmentAsks(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		envCPUProfile: filepath.Join(dir, "cpu.pprof"),
		envMemProfile: filepath.Join(dir, "mem.pprof"),
	}
	stop := startProfiles(discardLog, func(k string) string { return env[k] })
	stop()
	for _, path := range env {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() == 0 {
			t.Errorf("%s is empty", path)
		}
	}
}

func TestStartProfilesWithoutEnvironmentWritesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	startProfiles(discardLog, func(string) string { return "" })()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("wrote %d files", len(ents))
	}
}
