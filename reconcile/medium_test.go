package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// withDrive adds vcdrom "cd1" holding /srv/a.iso (FileID 8:1) at LUN 1
// of target b, where host2 (goldenSessions) sees it.
func withDrive(m *Model) {
	m.Devices["cd1"] = Device{Handler: vdisk.CDROM, Filename: "/srv/a.iso", FileID: "8:1", BlockSize: 2048,
		ReadOnly: true, Removable: true, T10DevID: "cd1", USN: "0c0d0001"}
	m.Targets[iqnB].LUNs[1] = LUN{Device: "cd1"}
}

// lockingSessions are goldenSessions with host2 holding cd1's disc in.
func lockingSessions() []Session {
	s := append([]Session(nil), goldenSessions...)
	s[1].Locks = []string{"cd1"}
	return s
}

// TestDiffMedium: a vcdrom whose disc changes keeps its device: one
// ChangeMedium, a unit attention for the sessions that see it, and a
// disruptive one for a session that locked the disc in.
func TestDiffMedium(t *testing.T) {
	const host2 = "iqn.1994-05.com.redhat:host2"
	for _, tc := range []struct {
		name     string
		change   func(m *Model)
		sessions []Session
		op       Op
		impact   Impact
		reason   string
		detail   string
	}{
		{"another disc", func(m *Model) { setDevice(m, "cd1", func(d *Device) { d.Filename, d.FileID = "/srv/b.iso", "" }) },
			goldenSessions, ChangeMedium, UnitAttention, reasonMediumChanged, `filename "/srv/a.iso" -> "/srv/b.iso"`},
		{"no disc", func(m *Model) { setDevice(m, "cd1", func(d *Device) { d.Filename, d.FileID = "", "" }) },
			goldenSessions, ChangeMedium, UnitAttention, reasonMediumChanged, `filename "/srv/a.iso" -> (no disc)`},
		{"the image replaced on disk", func(m *Model) { setDevice(m, "cd1", func(d *Device) { d.FileID = "8:2" }) },
			goldenSessions, ChangeMedium, UnitAttention, reasonMediumChanged, `filename "/srv/a.iso" (replaced on disk)`},
		{"another disc, locked in", func(m *Model) { setDevice(m, "cd1", func(d *Device) { d.Filename, d.FileID = "/srv/b.iso", "" }) },
			lockingSessions(), ChangeMedium, MediumLocked, reasonMediumLocked, `filename "/srv/a.iso" -> "/srv/b.iso"`},
		{"another disc, no session", func(m *Model) { setDevice(m, "cd1", func(d *Device) { d.Filename, d.FileID = "/srv/b.iso", "" }) },
			nil, ChangeMedium, Hot, "", `filename "/srv/a.iso" -> "/srv/b.iso"`},
		{"another handler: a new device", func(m *Model) {
			setDevice(m, "cd1", func(d *Device) { d.Handler, d.ReadOnly, d.Removable = vdisk.FileIO, false, false })
		}, lockingSessions(), ReplaceDevice, DeviceSwap, reasonSwap, ""},
		{"another identity: a new device", func(m *Model) { setDevice(m, "cd1", func(d *Device) { d.USN = "0c0d0002" }) },
			lockingSessions(), ReplaceDevice, IdentityChange, reasonSwap, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			running := baseModel()
			withDrive(&running)
			desired := cloneModel(running)
			tc.change(&desired)
			p := Diff(running, desired, tc.sessions)
			if len(p.Changes) != 1 {
				t.Fatalf("want one change:\n%s", p)
			}
			c := p.Changes[0]
			if c.Op != tc.op || c.Impact != tc.impact || c.Reason != tc.reason || c.Addr != DeviceAddr("cd1") {
				t.Errorf("got %s %s (%s: %s), want %s (%s: %s)", c.Op, c.Addr, c.Impact, c.Reason, tc.op, tc.impact, tc.reason)
			}
			if tc.detail != "" && c.detail() != tc.detail {
				t.Errorf("printed %q, want %q", c.detail(), tc.detail)
			}
			if len(tc.sessions) > 0 && (len(c.Sessions) != 1 || c.Sessions[0].Session.Initiator != host2) {
				t.Errorf("reaches %+v, want host2 alone", c.Sessions)
			}
			if got := running.apply(p); !modelsEqual(got, desired) {
				t.Errorf("applying the plan does not give the desired model:\n%s", p)
			}
			if (len(p.Disruptive()) > 0) != tc.impact.Disruptive() {
				t.Errorf("Disruptive() = %v for impact %s", p.Disruptive(), tc.impact)
			}
		})
	}
	// A vcdrom renamed along with a disc change is not a rename: the two
	// drives differ in what they hold.
	running := baseModel()
	withDrive(&running)
	desired := cloneModel(running)
	d := desired.Devices["cd1"]
	delete(desired.Devices, "cd1")
	d.Filename, d.FileID = "/srv/b.iso", ""
	desired.Devices["cd2"] = d
	desired.Targets[iqnB].LUNs[1] = LUN{Device: "cd2"}
	for _, c := range Diff(running, desired, nil).Changes {
		if c.Op == RenameDevice || c.Op == ChangeMedium {
			t.Errorf("a drive renamed with another disc: %s %s", c.Op, c.Addr)
		}
	}
}

// driveConfig is one vcdrom at LUN 0 of target a, its filename the %q.
const driveConfig = `
iscsi { portals = ["127.0.0.1:3260"] }
handler "vcdrom" {
  device "cd" { filename = %q }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "cd" }
}
`

// TestEngineDrive: an empty drive is online without storage; a reload
// that changes its filename changes the disc in the same scsi.Device
// (ChangeMedium), closing the old image once drained; a session that
// locked the disc in makes it refused unless forced.
func TestEngineDrive(t *testing.T) {
	dir := t.TempDir()
	isoA, isoB := filepath.Join(dir, "a.iso"), filepath.Join(dir, "b.iso")
	for i, f := range []string{isoA, isoB} {
		if err := os.WriteFile(f, make([]byte, (i+1)*4*2048), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := &countingOpener{}
	r := &recorder{}
	e := NewEngine(r, nil, Options{RetryInterval: -1, SizePollInterval: -1, Open: o.open})
	t.Cleanup(func() { e.Close() })
	cfg := func(file string) string { return fmt.Sprintf(driveConfig, file) }
	drive := func() *device {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.devices["cd"]
	}
	status := func() DeviceStatus {
		st := e.Status()
		if len(st.Devices) != 1 {
			t.Fatalf("status devices: %+v", st.Devices)
		}
		return st.Devices[0]
	}

	res := apply(t, e, parse(t, cfg("")))
	if n, _ := o.unclosed(); len(res.Offline) > 0 || n != 0 {
		t.Fatalf("an empty drive: offline %v, %d opens", res.Offline, n)
	}
	if ds := status(); !ds.Online || ds.Medium != "none" || ds.Reason != "" {
		t.Fatalf("status of an empty drive: %+v", ds)
	}
	dev := drive().dev
	if dev.Offline() != nil || dev.HasMedium() {
		t.Fatalf("the empty drive's device: offline %v, medium %v", dev.Offline(), dev.HasMedium())
	}
	e.retryOffline()
	if n, _ := o.unclosed(); n != 0 {
		t.Fatal("the empty drive was retried like an offline device")
	}

	for _, step := range []struct {
		file   string
		medium string
		size   int64
	}{{isoA, "loaded", 4 * 2048}, {isoB, "loaded", 8 * 2048}, {"", "none", 0}, {isoA, "loaded", 4 * 2048}} {
		res := apply(t, e, parse(t, cfg(step.file)))
		if len(res.Plan.Changes) != 1 || res.Plan.Changes[0].Op != ChangeMedium {
			t.Fatalf("to %q: plan\n%s", step.file, res.Plan)
		}
		if drive().dev != dev {
			t.Fatalf("to %q: the drive got another scsi.Device", step.file)
		}
		if ds := status(); !ds.Online || ds.Medium != step.medium || ds.Size != step.size || ds.Filename != step.file {
			t.Fatalf("to %q: status %+v", step.file, ds)
		}
	}
	// Three images opened (a, b, a again), the last still in the drive.
	if n, bad := o.unclosed(); n != 3 || bad != 1 {
		t.Fatalf("%d images opened, %d not closed once, want 3 and the one in the drive", n, bad)
	}

	// A session locks the disc in.
	n := scsi.NewNexus("iqn.x,i,0x1", iqnA, 1, 1)
	luns := scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: dev}})
	for _, cdb := range [][]byte{{0, 0, 0, 0, 0, 0}, {0x1e, 0, 0, 0, 1, 0}} {
		scsi.Execute(&scsi.Command{Nexus: n, LUNs: luns, LUNValid: true, CDB: cdb})
	}
	if !dev.PreventedBy(n) {
		t.Fatal("PREVENT ALLOW MEDIUM REMOVAL did not lock the disc in")
	}
	r.mu.Lock()
	r.sessions = []iscsi.SessionInfo{{Target: iqnA, Initiator: "iqn.x", ISID: "000000000001", TSIH: 1, PortalIP: "127.0.0.1", Nexus: n}}
	r.mu.Unlock()
	for _, file := range []string{isoB, ""} {
		_, err := e.Apply(context.Background(), parse(t, cfg(file)), ApplyOptions{})
		var de *DisruptiveError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "(medium locked: medium removal prevented)") {
			t.Fatalf("to %q with the disc locked in: %v", file, err)
		}
		if ds := status(); ds.Filename != isoA || !ds.MediumLocked {
			t.Fatalf("a refused change changed the drive: %+v", ds)
		}
	}
	res, err := e.Apply(context.Background(), parse(t, cfg(isoB)), ApplyOptions{Force: true})
	if err != nil || res.Plan.Changes[0].Impact != MediumLocked {
		t.Fatalf("forced: %v %+v", err, res)
	}
	if ds := status(); ds.Filename != isoB || ds.Medium != "loaded" || !ds.MediumLocked {
		t.Fatalf("forced: status %+v", ds)
	}
}
