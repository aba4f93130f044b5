package config

import "testing"

// TestVCDROMDevices: a vcdrom takes filename = "" (or none) as an empty
// drive and blocksize = 2048, read-only and removable always.
func TestVCDROMDevices(t *testing.T) {
	l := testLoader()
	cfg, diags := l.Load("testdata/valid/vcdrom.hcl")
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diagText(t, l, diags))
	}
	want := map[string]string{"cd-iso": "/srv/iso/install.iso", "cd-empty": "", "cd-none": ""}
	for _, d := range cfg.Devices {
		f, ok := want[d.Name]
		if !ok {
			t.Errorf("unexpected device %s", d.Name)
			continue
		}
		if d.Handler != HandlerCDROM || d.Filename != f || d.BlockSize != 2048 || !d.ReadOnly || !d.Removable {
			t.Errorf("%s: %+v", d.Name, d)
		}
		delete(want, d.Name)
	}
	if len(want) > 0 {
		t.Errorf("devices missing: %v", want)
	}
}
