package config

import (
	"strings"
	"testing"
)

// TestCheckStorageNames: `validate -no-storage` keeps the safety rules a
// name alone decides (the configuration file or directory as a backing
// path, two devices naming one path) and looks at nothing on disk: files
// that exist here, symlinks, short files and block devices say nothing
// about the machine that will serve the configuration.
func TestCheckStorageNames(t *testing.T) {
	const target = "\ntarget \"iqn.2026-11.org.example:t\" {\n  lun \"0\" {\n    device = \"a\"\n  }\n}\n"
	tests := []struct {
		name   string
		files  map[string]string
		links  map[string]string
		config string
		dir    bool
		// want are the summaries expected, in order; none: no diagnostic.
		want []string
	}{
		{name: "config file", config: `handler "vdisk_fileio" {
  device "a" {
    filename = "scst.hcl"
  }
}` + target, want: []string{"Backing file is the configuration"}},
		{name: "config dir", dir: true, config: `handler "vdisk_fileio" {
  device "a" {
    filename = "disk.img"
    size     = "1MiB"
  }
  device "b" {
    filename = "/elsewhere/b.img"
    size     = "1MiB"
  }
}` + target, want: []string{"Backing file inside the configuration directory"}},
		{name: "same path", config: `handler "vdisk_fileio" {
  device "a" {
    filename = "/srv/disk.img"
  }
  device "b" {
    filename = "/srv/../srv/disk.img"
  }
  device "c" {
    filename  = "/srv/ro.iso"
    read_only = true
  }
}
handler "vcdrom" {
  device "d" {
    filename = "/srv/ro.iso"
  }
}` + target, want: []string{"Backing file used twice"}},
		// Same file under two names, and a short file: only the file
		// system could tell, and it is not asked.
		{name: "file system not asked", files: map[string]string{"disk.img": strings.Repeat("\x00", 4096), "passwd": "root:x:0:0"},
			links: map[string]string{"alias.img": "disk.img"}, config: `handler "vdisk_fileio" {
  device "a" {
    filename = "disk.img"
  }
  device "b" {
    filename = "alias.img"
  }
  device "c" {
    filename = "passwd"
    size     = "1MiB"
  }
  device "e" {
    filename = "/nonexistent/dir/e.img"
  }
}
handler "vdisk_blockio" {
  device "f" {
    filename = "/dev/null"
  }
}` + target},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, path := storageFixture(t, tt.files, tt.links, tt.config, tt.dir)
			l := testLoader()
			cfg, diags := l.Load(path)
			if diags.HasErrors() {
				t.Fatal(diagText(t, l, diags))
			}
			diags = cfg.CheckStorageNames()
			var got []string
			for _, d := range diags {
				got = append(got, d.Summary)
				if d.Subject == nil {
					t.Errorf("diagnostic without a subject: %s", d.Summary)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("diagnostics %q, want %q\n%s", got, tt.want, diagText(t, l, diags))
			}
		})
	}
}
