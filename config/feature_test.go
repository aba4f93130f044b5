package config

import (
	"slices"
	"testing"
)

func TestUnsupported(t *testing.T) {
	l := testLoader()
	cfg, diags := l.Load("testdata/valid/design.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if d := cfg.Unsupported(func(Feature) bool { return true }); len(d) > 0 {
		t.Fatalf("an engine with every feature got %v", d)
	}
	// Each feature alone missing must produce at least one error, pointing
	// into the file.
	used := map[Feature]bool{}
	for _, f := range Features {
		d := cfg.Unsupported(func(g Feature) bool { return g != f })
		for _, diag := range d {
			if diag.Subject == nil || diag.Subject.Filename != "testdata/valid/design.hcl" {
				t.Errorf("%s: diagnostic without a subject in the file: %v", f, diag)
			}
		}
		used[f] = len(d) > 0
	}
	// design.hcl uses everything except a disabled iSCSI or target and
	// "refuse", and its per_portal_acl is false.
	for _, f := range Features {
		wantUsed := !slices.Contains([]Feature{FeatureDisabledISCSI, FeatureDisabledTarget, FeatureRefuse, FeaturePerPortalACL}, f)
		if used[f] != wantUsed {
			t.Errorf("feature %s: reported %v, want %v", f, used[f], wantUsed)
		}
	}
}

// TestUnsupportedDefaults checks that defaults never count as a use: a
// minimal file needs only the handler it names.
func TestUnsupportedDefaults(t *testing.T) {
	src := `
handler "vdisk_nullio" {
  device "n" {
    size = "1GiB"
  }
}
target "iqn.2026-11.org.example:t" {
  incoming_user "u" {
    secret = "twelve-bytes"
  }
  lun "0" {
    device = "n"
  }
}
`
	cfg, diags := testLoader().Parse([]byte(src), "min.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	d := cfg.Unsupported(func(f Feature) bool { return f == FeatureNullIO || f == FeatureCHAP })
	if len(d) > 0 {
		t.Fatalf("defaults reported as unsupported: %v", d)
	}
}
