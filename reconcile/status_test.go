package reconcile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/scstd/scstd/vdisk"
)

func TestSizeDrift(t *testing.T) {
	for _, tt := range []struct {
		name               string
		h                  vdisk.Handler
		configured, served int64
		want               string
	}{
		{"no size", vdisk.FileIO, 0, 2 << 30, ""},
		{"as configured", vdisk.FileIO, 1 << 30, 1 << 30, ""},
		{"file larger", vdisk.FileIO, 1 << 30, 2 << 30,
			"size is 1GiB, the file holds 2GiB: serving 2GiB (a file is served whole; size never shrinks it)"},
		{"file shrank", vdisk.FileIO, 2 << 30, 1536 << 20,
			"size is 2GiB, the file holds 1536MiB: serving 1536MiB (the file shrank after it was opened)"},
		{"block device shrank", vdisk.BlockIO, 2 << 30, 1 << 30,
			"size is 2GiB, the device holds 1GiB: serving 1GiB (the device shrank)"},
		{"nullio", vdisk.NullIO, 1 << 30, 1 << 30, ""},
	} {
		if got := sizeDrift(tt.h, tt.configured, tt.served); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestStatusSizeDrift: a file larger than its device's size is served
// whole, and status says so beside both sizes.
func TestStatusSizeDrift(t *testing.T) {
	img := filepath.Join(t.TempDir(), "d.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 2<<20); err != nil {
		t.Fatal(err)
	}
	e, _ := newTestEngine(t)
	apply(t, e, parse(t, `handler "vdisk_fileio" {
  device "d" {
    filename = "`+img+`"
    size     = "1MiB"
  }
}`))
	d := e.Status().Devices[0]
	if d.Filename != img || d.Size != 2<<20 || d.ConfiguredSize != 1<<20 || !d.Online ||
		d.SizeDrift != "size is 1MiB, the file holds 2MiB: serving 2MiB (a file is served whole; size never shrinks it)" {
		t.Errorf("device status %+v", d)
	}
}
