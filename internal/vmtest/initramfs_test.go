package vmtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The archive must be one that cpio reads back as written: busybox's cpio
// (the guest's own tool) lists and extracts it.
func TestWriteCPIO(t *testing.T) {
	bb := ""
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			bb = p
		}
	}
	if bb == "" {
		t.Skip("no busybox to read the archive back")
	}
	files := []File{
		{Path: "/init", Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		{Path: "/etc/scst.hcl", Data: []byte("odd length!"), Mode: 0o644},
		{Path: "/lib/modules/empty.ko", Data: nil},
	}
	var b bytes.Buffer
	if err := writeCPIO(&b, files); err != nil {
		t.Fatal(err)
	}
	if b.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", b.Len())
	}
	dir := t.TempDir()
	cmd := exec.Command(bb, "cpio", "-i", "-d")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(b.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio -i: %v\n%s", err, out)
	}
	for _, f := range files {
		p := filepath.Join(dir, strings.TrimPrefix(f.Path, "/"))
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s: %q, %v; want %q", f.Path, got, err, f.Data)
		}
		if fi, err := os.Stat(p); err == nil && f.Mode != 0 && fi.Mode().Perm() != f.Mode {
			t.Errorf("%s: mode %v, want %v", f.Path, fi.Mode().Perm(), f.Mode)
		}
	}
}
