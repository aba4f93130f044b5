package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/testtarget"
)

// offlineConfig maps disk0 as LUN 0 and, as LUN 1, a device whose backing
// file (named by %s) has no size attribute: when the file is missing the
// device can only be offline.
const offlineConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
  device "flaky" {
    filename = "{{.Dir}}/%s"
  }
}

target "iqn.2026-11.org.example:reload-a" {
  lun "0" {
    device = "disk0"
  }
  lun "1" {
    device = "flaky"
  }
}
`

// TestReloadedOfflineDeviceSurvivesRestart: the reload model (README, "A
// short tour") says storage that cannot be opened is not a config error —
// that device alone goes offline and everything else applies. A reload honours this; a restart of the
// daemon on the very configuration it runs must too: the daemon starts,
// LUN 0 serves, LUN 1 answers NOT READY.
func TestReloadedOfflineDeviceSurvivesRestart(t *testing.T) {
	tgt := testtarget.New(t, fmt.Sprintf(offlineConfig, "flaky.img"))
	if err := os.WriteFile(tgt.Path("flaky.img"), bytesOf(0x6b, flakySize), 0o644); err != nil {
		t.Fatal(err)
	}
	tgt.Start()

	// The device moves to a file that does not exist: the reload applies
	// and flaky goes offline.
	r := tgt.Reconfigure(fmt.Sprintf(offlineConfig, "missing.img"))
	if !r.OK {
		t.Fatalf("reload with a missing backing file: %s\n%s", r.Error, r.Diagnostics)
	}
	checkOffline := func(when string) {
		t.Helper()
		raw, err := tgt.Admin().Status()
		if err != nil {
			t.Fatal(err)
		}
		var st daemonStatus
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		d, ok := st.device("flaky")
		if !ok || d.Online || !strings.Contains(d.Reason, "missing.img") {
			t.Errorf("%s: status shows flaky %+v, want offline with a reason naming missing.img", when, d)
		}
		v, err := probe(tgt.Portal(), iqnA)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if lv := v.luns[0]; lv.notReady || lv.capacity != 64*mib {
			t.Errorf("%s: LUN 0 %+v, want ready with %d bytes", when, lv, 64*mib)
		}
		if lv, ok := v.luns[1]; !ok || !lv.notReady || lv.notReadySense.key != senseKeyNotReady {
			t.Errorf("%s: LUN 1 %+v (listed %t), want listed and NOT READY", when, lv, ok)
		}
	}
	checkOffline("after the reload")

	tgt.Restart()
	checkOffline("after a restart on the same configuration")
}
