package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/scstd/scstd/internal/diskid"
)

// fakeSCSIHost builds, under dir, a sysfs tree and device nodes for one
// SCSI disk at 0:0:1:0 (sg node dev/sg5, block device dev/sdb with
// partition dev/sdb1), a SCSI device at 0:0:2:0 with no sg node, and a
// character device that is no SCSI device's (dev/zero); it points
// sysfsRoot at the tree for the test. The sg node has the device number
// of /dev/null, so that it opens on any Linux host.
func fakeSCSIHost(t *testing.T, dir string) {
	t.Helper()
	sys := filepath.Join(dir, "sys")
	disk := filepath.Join(sys, "devices/pci0000:00/host0/target0:0:1/0:0:1:0")
	nosg := filepath.Join(sys, "devices/pci0000:00/host0/target0:0:2/0:0:2:0")
	sg := filepath.Join(disk, "scsi_generic/sg5")
	sdb := filepath.Join(disk, "block/sdb")
	sdb1 := filepath.Join(sdb, "sdb1")
	zero := filepath.Join(sys, "devices/virtual/mem/zero")
	for _, d := range []string{sg, sdb1, nosg, zero, filepath.Join(sys, "dev/char"), filepath.Join(sys, "dev/block"), filepath.Join(sys, "bus/scsi/devices"), filepath.Join(dir, "dev")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeTestFile(t, filepath.Join(sdb1, "partition"), "1\n")
	links := map[string]string{
		filepath.Join(sg, "device"):                    disk,
		filepath.Join(sdb, "device"):                   disk,
		filepath.Join(sys, "dev/char/1:3"):             sg,
		filepath.Join(sys, "dev/char/1:5"):             zero,
		filepath.Join(sys, "dev/block/8:16"):           sdb,
		filepath.Join(sys, "dev/block/8:17"):           sdb1,
		filepath.Join(sys, "bus/scsi/devices/0:0:1:0"): disk,
		filepath.Join(sys, "bus/scsi/devices/0:0:2:0"): nosg,
	}
	for name, to := range links {
		if err := os.Symlink(to, name); err != nil {
			t.Fatal(err)
		}
	}
	nodes := []struct {
		name         string
		mode         uint32
		major, minor int
	}{
		{"sg5", syscall.S_IFCHR, 1, 3},
		{"zero", syscall.S_IFCHR, 1, 5},
		{"sdb", syscall.S_IFBLK, 8, 16},
		{"sdb1", syscall.S_IFBLK, 8, 17},
	}
	for _, n := range nodes {
		if err := syscall.Mknod(filepath.Join(dir, "dev", n.name), n.mode|0o600, n.major<<8|n.minor); err != nil {
			if errors.Is(err, syscall.EPERM) {
				t.Skipf("device nodes cannot be made here: %v", err)
			}
			t.Fatal(err)
		}
	}
	old := sysfsRoot
	sysfsRoot = sys
	t.Cleanup(func() { sysfsRoot = old })
}

// TestDevDiskStorageChecks: `validate` says where a dev_disk disk is
// missing or is no SCSI disk (golden storage/devdisk), and the storage
// safety checks refuse one disk behind two devices, by any of its names
// (golden storage/devdisk_same_disk).
func TestDevDiskStorageChecks(t *testing.T) {
	dir := t.TempDir()
	fakeSCSIHost(t, dir)
	writeTestFile(t, filepath.Join(dir, "file.img"), strings.Repeat("\x00", 4096))
	const target = "\ntarget \"iqn.2026-11.org.example:t\" {\n  lun \"0\" {\n    device = \"sg\"\n  }\n}\n"
	load := func(t *testing.T, src string) (*Config, *Loader) {
		t.Helper()
		path := filepath.Join(dir, "scst.hcl")
		writeTestFile(t, path, strings.ReplaceAll(src, "$DIR", dir)+target)
		l := testLoader()
		cfg, diags := l.Load(path)
		if diags.HasErrors() {
			t.Fatal(diagText(t, l, diags))
		}
		return cfg, l
	}

	t.Run("exists", func(t *testing.T) {
		cfg, l := load(t, `handler "dev_disk" {
  device "sg" {
    path = "$DIR/dev/sg5"
  }
  device "0:0:1:0" {}
  device "missing" {
    path = "$DIR/dev/sg9"
  }
  device "file" {
    path = "$DIR/file.img"
  }
  device "zero" {
    path = "$DIR/dev/zero"
  }
  device "0:0:2:0" {}
  device "0:0:9:0" {}
}`)
		diags := cfg.CheckStorage()
		for _, d := range diags {
			if d.Subject == nil {
				t.Errorf("diagnostic without a subject: %s", d.Summary)
			}
		}
		compareGolden(t, "storage/devdisk", dir, fixedCarets(diagText(t, l, diags)))
	})

	t.Run("same_disk", func(t *testing.T) {
		cfg, l := load(t, `handler "dev_disk" {
  device "sg" {
    path = "$DIR/dev/sg5"
  }
  device "0:0:1:0" {}
}
handler "vdisk_blockio" {
  device "part" {
    filename = "$DIR/dev/sdb1"
  }
  device "whole" {
    filename = "$DIR/dev/sdb"
  }
}`)
		compareGolden(t, "storage/devdisk_same_disk", dir, fixedCarets(diagText(t, l, cfg.CheckStorageSafety(nil))))
	})

	t.Run("identity", func(t *testing.T) {
		// The disk at 0:0:1:0 as sysfs tells it; records in the state
		// directory: sg's names another disk, 0:0:1:0's this one,
		// sdb's is corrupt, and "new" has none.
		disk := filepath.Join(dir, "sys/devices/pci0000:00/host0/target0:0:1/0:0:1:0")
		writeTestFile(t, filepath.Join(disk, "vendor"), "QEMU    \n")
		writeTestFile(t, filepath.Join(disk, "model"), "QEMU HARDDISK   \n")
		writeTestFile(t, filepath.Join(disk, "vpd_pg80"), "\x00\x80\x00\x08SCSTDVM1")
		state := filepath.Join(dir, "state")
		this := diskid.Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "SCSTDVM1"}
		other := diskid.Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "SCSTDVM0", Designators: []string{"naa.5000c50015ea71ac"}}
		if err := os.MkdirAll(filepath.Join(state, "dev_disk"), 0o750); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, diskid.RecordPath(state, "sg"), string(diskid.Record{Device: "sg", Identity: other}.Encode()))
		writeTestFile(t, diskid.RecordPath(state, "0:0:1:0"), string(diskid.Record{Device: "0:0:1:0", Identity: this}.Encode()))
		writeTestFile(t, diskid.RecordPath(state, "sdb"), `{"format": "scstd-dev-disk-identity", "ver`)
		cfg, l := load(t, `state_dir = "$DIR/state"
handler "dev_disk" {
  device "sg" {
    path = "$DIR/dev/sg5"
  }
  device "0:0:1:0" {}
  device "sdb" {
    path = "$DIR/dev/sdb"
  }
  device "new" {
    path = "$DIR/dev/sdb1"
  }
}`)
		compareGolden(t, "storage/devdisk_identity", dir, fixedCarets(diagText(t, l, cfg.CheckStorage())))
	})

	t.Run("read_only", func(t *testing.T) {
		// A disk passed through read-only and served read-only by a
		// vdisk_blockio device on a partition: nothing can change the data.
		cfg, l := load(t, `handler "dev_disk" {
  device "sg" {
    path      = "$DIR/dev/sg5"
    read_only = true
  }
}
handler "vdisk_blockio" {
  device "part" {
    filename  = "$DIR/dev/sdb1"
    read_only = true
  }
}`)
		if diags := cfg.CheckStorageSafety(nil); len(diags) > 0 {
			t.Errorf("safety: %s", diagText(t, l, diags))
		}
	})
}

// carets underline a range of the source; the paths here hold the test's
// temporary directory, whose length varies, so goldens get four.
var carets = regexp.MustCompile(`\^{2,}`)

func fixedCarets(s string) string { return carets.ReplaceAllString(s, "^^^^") }
