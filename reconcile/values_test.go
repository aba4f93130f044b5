package reconcile

import (
	"testing"

	"github.com/scstd/scstd/vdisk"
)

// TestChangeValues: a change's old and new values read as the printed
// plan shows them, for each kind of change.
func TestChangeValues(t *testing.T) {
	null := Device{Handler: vdisk.NullIO, Size: 1 << 30, BlockSize: 512}
	file := Device{Handler: vdisk.FileIO, Filename: "/srv/a.img", BlockSize: 512}
	for _, tt := range []struct {
		name                  string
		c                     Change
		wantBefore, wantAfter string
	}{
		{"attribute", Change{Op: ResizeDevice, Attr: "size", Before: int64(1 << 30), After: int64(2 << 30)}, "1GiB", "2GiB"},
		{"log level set", Change{Op: SetGlobal, Attr: "log_level", Before: "", After: "debug"}, "(unset)", "debug"},
		{"metrics endpoint moved", Change{Op: SetGlobal, Attr: "metrics.listen", Before: "", After: "127.0.0.1:9470"}, "(none)", "127.0.0.1:9470"},
		{"string", Change{Op: SetTargetParam, Attr: "redirect", Before: "", After: "192.0.2.1:3260 temp"}, `""`, "192.0.2.1:3260 temp"},
		{"list", Change{Op: SetPortals, Attr: "portals", Before: []string{"a:1"}, After: []string{"a:1", "b:2"}}, `["a:1"]`, `["a:1", "b:2"]`},
		{"users by name", Change{Op: SetChapUsers, Attr: "incoming_user", Before: []User(nil), After: []User{{Name: "joe", Secret: secret("12charsecret")}}}, "[]", `["joe"]`},
		{"add", Change{Op: AddDevice, After: null}, "", `handler = "vdisk_nullio", size = 1GiB`},
		{"remove", Change{Op: RemoveLUN, Before: LUN{Device: "d", ReadOnly: true}}, `device = "d", read_only = true`, ""},
		{"replace", Change{Op: ReplaceDevice, Before: null, After: file}, `handler = "vdisk_nullio", size = 1GiB`, `handler = "vdisk_fileio", filename = "/srv/a.img"`},
		{"disc changed", Change{Op: ChangeMedium, Attr: "filename", Before: Medium{Filename: "/srv/a.iso", FileID: "8:1"}, After: Medium{Filename: "/srv/b.iso"}}, "/srv/a.iso", "/srv/b.iso"},
		{"disc taken out", Change{Op: ChangeMedium, Attr: "filename", Before: Medium{Filename: "/srv/a.iso"}, After: Medium{}}, "/srv/a.iso", "(no disc)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, a := tt.c.Values()
			if b != tt.wantBefore || a != tt.wantAfter {
				t.Errorf("Values() = %q, %q; want %q, %q", b, a, tt.wantBefore, tt.wantAfter)
			}
		})
	}
}
