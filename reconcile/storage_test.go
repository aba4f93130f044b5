package reconcile

import (
	"strings"
	"testing"

	"github.com/scstd/scstd/scsi"
)

const devDiskConfig = `
iscsi { portals = ["127.0.0.1:3260"] }
handler "dev_disk" {
  device "sdb" {
    path    = "/nonexistent/sg9"
    timeout = 30
  }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "sdb" }
}
`

// A dev_disk device whose disk is not there is offline, says why, and
// answers NOT READY; the rest of the configuration applies.
func TestDevDiskWithoutDiskIsOffline(t *testing.T) {
	e, r := newTestEngine(t)
	res := apply(t, e, parse(t, devDiskConfig))
	if len(res.Offline) != 1 || res.Offline[0].Name != "sdb" || !strings.Contains(res.Offline[0].Reason, "/nonexistent/sg9") {
		t.Fatalf("offline: %+v", res.Offline)
	}
	st := e.Status()
	if d := st.Devices[0]; d.Handler != "dev_disk" || d.Path != "/nonexistent/sg9" || d.Online {
		t.Errorf("status %+v", d)
	}
	lus := r.snap.Targets[iqnA].LUNs
	dev := lus.Lookup(0).Device
	if !dev.Config().Passthrough {
		t.Fatal("the dev_disk device is not a pass-through device")
	}
	n := scsi.NewNexus("iqn.1994-05.com.redhat:c,i,0x1", iqnA, 1, 1)
	var res2 scsi.Result
	for range 3 { // past the power-on unit attention
		res2 = scsi.Execute(&scsi.Command{Nexus: n, LUNs: lus, LUN: 0, LUNValid: true, CDB: make([]byte, 16)})
	}
	if res2.Status != scsi.CheckCondition || res2.Sense[2] != byte(scsi.NotReady) {
		t.Errorf("TEST UNIT READY: %v %x, want NOT READY", res2.Status, res2.Sense)
	}
}

// A new command timeout reopens the disk (hot); another disk replaces
// the device.
func TestDevDiskPlan(t *testing.T) {
	e, _ := newTestEngine(t)
	apply(t, e, parse(t, devDiskConfig))
	p, err := e.Plan(parse(t, strings.Replace(devDiskConfig, "timeout = 30", "timeout = 60", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Op != SetDeviceAttr || p.Changes[0].Impact != Hot {
		t.Errorf("timeout change: %v", p)
	}
	p, err = e.Plan(parse(t, strings.Replace(devDiskConfig, "/nonexistent/sg9", "/nonexistent/sg8", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Op != ReplaceDevice {
		t.Errorf("path change: %v", p)
	}
}
