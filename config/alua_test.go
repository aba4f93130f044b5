package config

import (
	"reflect"
	"testing"
)

func TestDeviceGroupsDecode(t *testing.T) {
	l := testLoader()
	cfg, diags := l.Load("testdata/valid/alua.hcl")
	if diags.HasErrors() {
		t.Fatalf("diagnostics:\n%s", diagText(t, l, diags))
	}
	if cfg.StateDir != "/var/lib/scstd-test" {
		t.Errorf("state_dir %q", cfg.StateDir)
	}
	if got := cfg.Device("disk1").NAAID; got != "6001405abcdef0123456789abcdef012" {
		t.Errorf("naa_id of disk1 %q: want lower-case digits without the prefix", got)
	}
	if got := cfg.Device("disk2").NAAID; got != "3123456789abcdef" {
		t.Errorf("naa_id of disk2 %q", got)
	}
	if len(cfg.DeviceGroups) != 1 {
		t.Fatalf("device groups %v", cfg.DeviceGroups)
	}
	g := cfg.DeviceGroups[0]
	if g.Name != "dg1" || !g.Explicit || !reflect.DeepEqual(g.Devices, []string{"disk1", "disk2"}) || len(g.TargetGroups) != 2 {
		t.Fatalf("device group %+v", g)
	}
	local, remote := g.TargetGroups[0], g.TargetGroups[1]
	if local.Name != "local" || local.GroupID != 1 || local.State != StateActiveOptimized || !local.Preferred ||
		!reflect.DeepEqual(local.Targets, []string{"iqn.2026-11.org.example:a"}) {
		t.Errorf("local %+v", local)
	}
	if remote.GroupID != 2 || remote.State != StateStandby || remote.Preferred {
		t.Errorf("remote %+v", remote)
	}
}

func TestStateDirDefault(t *testing.T) {
	cfg, diags := Parse([]byte(`handler "vdisk_nullio" {
  device "d" { size = "1MiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "d" }
}
`), "/etc/scst/scst.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if cfg.StateDir != DefaultStateDir || cfg.Device("d").NAAID != "" || len(cfg.DeviceGroups) != 0 {
		t.Errorf("state_dir %q naa_id %q groups %v", cfg.StateDir, cfg.Device("d").NAAID, cfg.DeviceGroups)
	}
	rel, diags := Parse([]byte(`state_dir = "state"`), "/etc/scst/scst.hcl")
	if diags.HasErrors() || rel.StateDir != "/etc/scst/state" {
		t.Errorf("relative state_dir: %q %v", rel.StateDir, diags)
	}
}

func TestParseNAA(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"naa.6001405abcdef0123456789abcdef012", "6001405abcdef0123456789abcdef012"},
		{"0x3123456789ABCDEF", "3123456789abcdef"},
		{"5123456789abcdef", "5123456789abcdef"},
		{"2123456789abcdef", "2123456789abcdef"},
		{"6123456789abcdef", ""},                 // NAA 6h is 16 bytes
		{"3001405abcdef0123456789abcdef012", ""}, // NAA 3h is 8 bytes
		{"1123456789abcdef", ""},                 // NAA 1h
		{"naa.", ""},
		{"zz23456789abcdef", ""},
	} {
		got, err := ParseNAA(c.in)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("ParseNAA(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
