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

// TestCheckStorageSafety: storage that must never be exported is refused
// with file:line:col diagnostics (golden files in testdata/storage), and
// what is safe passes.
func TestCheckStorageSafety(t *testing.T) {
	const target = "\ntarget \"iqn.2026-11.org.example:t\" {\n  lun \"0\" {\n    device = \"a\"\n  }\n}\n"
	// passwd is a file that was never meant to be a disk: 1313 bytes.
	passwd := strings.Repeat("x", 1313)
	tests := []struct {
		name string
		// files are created in the test's directory before loading;
		// links are symlinks (name → target).
		files map[string]string
		links map[string]string
		// config is written to scst.hcl, or with dir to conf/a.hcl and
		// the directory conf is loaded.
		config string
		dir    bool
		served Served
		// golden is false when no diagnostic is expected.
		golden bool
	}{
		{name: "config_file", golden: true, config: `handler "vdisk_fileio" {
  device "a" {
    filename = "scst.hcl"
  }
}` + target},
		{name: "config_dir", golden: true, dir: true, links: map[string]string{"confLink": "conf"}, config: `handler "vdisk_fileio" {
  device "a" {
    filename = "disk.img"
    size     = "1MiB"
  }
  device "b" {
    filename = "../confLink/sub/b.img"
    size     = "1MiB"
  }
}` + target},
		{name: "same_file", golden: true, files: map[string]string{"disk.img": strings.Repeat("\x00", 4096)},
			links: map[string]string{"alias.img": "disk.img"}, config: `handler "vdisk_fileio" {
  device "a" {
    filename = "disk.img"
  }
  device "b" {
    filename  = "alias.img"
    read_only = true
  }
  device "c" {
    filename = "new.img"
    size     = "1MiB"
  }
  device "d" {
    filename = "./new.img"
    size     = "1MiB"
  }
}` + target},
		{name: "same_file_read_only", files: map[string]string{"disk.iso": strings.Repeat("\x00", 4096)}, config: `handler "vdisk_fileio" {
  device "a" {
    filename  = "disk.iso"
    read_only = true
  }
}
handler "vcdrom" {
  device "b" {
    filename = "disk.iso"
  }
}` + target},
		{name: "short_file", golden: true, files: map[string]string{"passwd": passwd}, config: `handler "vdisk_fileio" {
  device "a" {
    filename = "passwd"
    size     = "1MiB"
  }
}` + target},
		{name: "short_file_daemon", golden: true, files: map[string]string{"passwd": passwd},
			served: Served{"other": "passwd"}, config: `handler "vdisk_fileio" {
  device "a" {
    filename = "passwd"
    size     = "1MiB"
  }
}` + target},
		{name: "resize_served", files: map[string]string{"disk.img": strings.Repeat("\x00", 4096)},
			served: Served{"a": "$DIR/disk.img"}, config: `handler "vdisk_fileio" {
  device "a" {
    filename = "disk.img"
    size     = "1MiB"
  }
}` + target},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				writeTestFile(t, filepath.Join(dir, name), content)
			}
			for name, to := range tt.links {
				if err := os.Symlink(to, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "scst.hcl")
			if tt.dir {
				path = filepath.Join(dir, "conf")
				if err := os.MkdirAll(filepath.Join(path, "sub"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeTestFile(t, filepath.Join(path, "a.hcl"), tt.config)
			} else {
				writeTestFile(t, path, tt.config)
			}
			served := Served(nil)
			if tt.served != nil {
				served = Served{}
				for name, f := range tt.served {
					served[name] = strings.ReplaceAll(f, "$DIR", dir)
				}
			}
			l := testLoader()
			cfg, diags := l.Load(path)
			if diags.HasErrors() {
				t.Fatal(diagText(t, l, diags))
			}
			diags = cfg.CheckStorageSafety(served)
			if !tt.golden {
				if len(diags) > 0 {
					t.Fatalf("unexpected diagnostics:\n%s", diagText(t, l, diags))
				}
				return
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a subject: %s", d.Summary)
				}
			}
			compareGolden(t, "storage/"+tt.name, dir, diagText(t, l, diags))
		})
	}
}
