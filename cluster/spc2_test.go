package cluster

import (
	"testing"
	"time"

	"github.com/scstd/scstd/internal/etcdtest"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// TestSPC2ReleaseStopsAtShutdown: the background commit of an SPC-2
// release (a session that ends while it holds RESERVE) stops retrying
// once the node has shut down, instead of trying for a minute against
// a store that is gone: the other gateways release what its ports held.
func TestSPC2ReleaseStopsAtShutdown(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.Options{})
	o := options(srv, "gw1")
	o.IDs = map[string]uint16{"gw1": 1}
	n, _ := join(t, o, "h")
	waitFor(t, 15*time.Second, "gw1 active", func() bool { return n.Status().PortState == stateActive })

	b, err := vdisk.Open(vdisk.Spec{Handler: vdisk.NullIO, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dev := scsi.NewDevice(scsi.DeviceConfig{Name: "a", Type: scsi.TypeDisk}, b)
	n.Attach([]byte{0x60, 0xa1}, "a", dev)
	waitFor(t, 5*time.Second, "the device loads its state", func() bool { _, ok := dev.SharedPRRevision(); return ok })
	luns := scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: dev}})
	nx := scsi.NewNexus("iqn.2026-11.org.example:i,i,0x1", "iqn.2026-11.org.example:t", 1, 1)
	run := func(cdb ...byte) scsi.Result {
		return scsi.Execute(&scsi.Command{Nexus: nx, LUNs: luns, LUN: 0, LUNValid: true, CDB: cdb})
	}
	run(0, 0, 0, 0, 0, 0) // the power-on unit attention
	if res := run(0x16, 0, 0, 0, 0, 0); res.Status != scsi.Good {
		t.Fatalf("RESERVE(6): status %v sense % x", res.Status, res.Sense)
	}

	n.Close()
	start := time.Now()
	nx.ReleaseReservations(20 * time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the release kept retrying for %v after the node shut down", took)
	}
}
