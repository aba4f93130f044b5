package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/testtarget"
)

// watchBusyConfig is A with LUN 0 on a backing file in the configuration's
// own directory (testtarget's {{.Dir}}, as the quickstart layout has it),
// and optionally LUN 1.
const watchBusyConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
}
handler "vdisk_nullio" {
  device "x1" {
    size = "101MiB"
  }
}

target "iqn.2026-11.org.example:reload-a" {
  lun "0" {
    device = "disk0"
  }
%s}
`

// watchReloadWithin is how long the file watch may take to apply an edit:
// its debounce is 300 ms.
const watchReloadWithin = 5 * time.Second

// TestReloadWatchBesideBusyBackingFile: the daemon watches the directory
// that holds its configuration. When a backing file in that same directory
// is being written by an initiator, an edit of the configuration (written
// by rename-over, with no SIGHUP) must still be applied by the watch
// within a few seconds: writes to other files in the directory must not
// keep postponing it.
func TestReloadWatchBesideBusyBackingFile(t *testing.T) {
	tgt := testtarget.Start(t, fmt.Sprintf(watchBusyConfig, ""))
	live, err := startLiveSession(tgt.Portal(), iqnA)
	if err != nil {
		t.Fatalf("live session: %v", err)
	}
	defer func() {
		if err := live.finish(); err != nil {
			t.Errorf("live session: %v", err)
		}
	}()
	if err := live.sync(20 * time.Second); err != nil {
		t.Fatal(err)
	}

	before, err := tgt.Admin().LastReload()
	if err != nil {
		t.Fatal(err)
	}
	text, err := testtarget.Render(fmt.Sprintf(watchBusyConfig, "  lun \"1\" {\n    device = \"x1\"\n  }\n"), tgt.Params())
	if err != nil {
		t.Fatal(err)
	}
	tmp := tgt.ConfigPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, tgt.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	for {
		r, err := tgt.Admin().LastReload()
		if err != nil {
			t.Fatal(err)
		}
		if r.Time.After(before.Time) {
			if !r.OK || r.Changes == 0 {
				t.Fatalf("the watch's reload: ok=%t changes=%d error=%q, want LUN 1 added", r.OK, r.Changes, r.Error)
			}
			t.Logf("the watch applied the edit %v after the rename, with %d load cycles running meanwhile",
				r.Time.Sub(written).Round(time.Millisecond), live.cycles.Load())
			break
		}
		if time.Since(written) > watchReloadWithin {
			cycles := live.cycles.Load()
			live.finish()
			stopped := time.Now()
			after := "and not within 3s after the writes stopped either"
			for time.Since(stopped) < 3*time.Second {
				if r, err := tgt.Admin().LastReload(); err == nil && r.Time.After(before.Time) {
					after = "but did " + r.Time.Sub(stopped).Round(time.Millisecond).String() +
						" after the writes stopped: every write to another file of the directory restarts the debounce"
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Fatalf("the file watch did not reload within %v of a rename-over of %s while %s/disk0.img was being written "+
				"(%d write/read-back cycles of the live session meanwhile), %s",
				watchReloadWithin, tgt.ConfigPath(), tgt.Dir(), cycles, after)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := live.sync(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if errs := live.ioErrors(); len(errs) > 0 {
		t.Errorf("I/O errors: %v", errs)
	}
}
