package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckStorage(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("exists.img", 4096)
	write("empty.img", 0)
	write("odd.img", 1000)
	write("cd.iso", 2048)
	tests := []struct {
		name    string
		device  string
		wantErr string
	}{
		{name: "existing file", device: `handler "vdisk_fileio" { 
  device "d" {
    filename = "exists.img"
  }
}`},
		{name: "missing file with size", device: `handler "vdisk_fileio" {
  device "d" {
    filename = "new.img"
    size     = "1MiB"
  }
}`},
		{name: "missing file without size", device: `handler "vdisk_fileio" {
  device "d" {
    filename = "new.img"
  }
}`, wantErr: "no size to create it"},
		{name: "missing directory", device: `handler "vdisk_fileio" {
  device "d" {
    filename = "nodir/new.img"
    size     = "1MiB"
  }
}`, wantErr: "directory"},
		{name: "empty file without size", device: `handler "vdisk_fileio" {
  device "d" {
    filename = "empty.img"
  }
}`, wantErr: "is empty"},
		{name: "unaligned file", device: `handler "vdisk_fileio" {
  device "d" {
    filename = "odd.img"
  }
}`, wantErr: "not a multiple"},
		{name: "directory as file", device: `handler "vdisk_fileio" {
  device "d" {
    filename = "."
  }
}`, wantErr: "a directory"},
		{name: "regular file as block device", device: `handler "vdisk_blockio" {
  device "d" {
    filename = "exists.img"
  }
}`, wantErr: "not a block device"},
		{name: "missing block device", device: `handler "vdisk_blockio" {
  device "d" {
    filename = "/dev/scstd-test-missing"
  }
}`, wantErr: "does not exist"},
		{name: "cdrom image", device: `handler "vcdrom" {
  device "d" {
    filename = "cd.iso"
  }
}`},
		{name: "nullio has no file", device: `handler "vdisk_nullio" {
  device "d" {
    size = "1MiB"
  }
}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := fmt.Sprintf("%s\ntarget \"iqn.2026-11.org.example:t\" {\n  lun \"0\" {\n    device = \"d\"\n  }\n}\n", tt.device)
			cfg, diags := testLoader().Parse([]byte(src), filepath.Join(dir, "scst.hcl"))
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			d := cfg.CheckStorage()
			if tt.wantErr == "" {
				if len(d) > 0 {
					t.Fatalf("CheckStorage: %v", d)
				}
				return
			}
			if len(d) != 1 || !strings.Contains(d[0].Detail, tt.wantErr) || d[0].Subject == nil {
				t.Fatalf("CheckStorage = %v; want one error containing %q", d, tt.wantErr)
			}
			if d[0].Subject.Start.Line != 3 {
				t.Errorf("subject %v does not point at the filename line", d[0].Subject)
			}
		})
	}
}
