package reconcile

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenSessions are the live sessions golden plans are made with: one
// on each target of baseModel, and a Windows host on target a that the
// "special" group of some cases takes in.
var goldenSessions = []Session{
	{SessionID: iscsi.SessionID{Target: iqnA, Initiator: "iqn.1994-05.com.redhat:host1", ISID: "400001370000", TSIH: 3}, PortalIP: "192.0.2.1"},
	{SessionID: iscsi.SessionID{Target: iqnB, Initiator: "iqn.1994-05.com.redhat:host2", ISID: "400001370000", TSIH: 4}, PortalIP: "192.0.2.1"},
	{SessionID: iscsi.SessionID{Target: iqnA, Initiator: "iqn.1991-05.com.microsoft:win1", ISID: "400001370001", TSIH: 5}, PortalIP: "192.0.2.2"},
}

// goldenCases change a copy of baseModel; each golden file holds the
// printed plan from baseModel to the changed model, with goldenSessions
// live (with none for the cases named *_no_sessions).
var goldenCases = []struct {
	name string
	// before, when set, changes baseModel into the running model.
	before func(m *Model)
	change func(m *Model)
}{
	{"unchanged", nil, func(m *Model) {}},
	{"log_level", nil, func(m *Model) { m.ISCSI.LogLevel = "debug" }},
	{"log_level_unset", func(m *Model) { m.ISCSI.LogLevel = "warn" }, func(m *Model) { m.ISCSI.LogLevel = "" }},
	{"metrics_on", nil, func(m *Model) { m.ISCSI.MetricsListen = "127.0.0.1:9470" }},
	{"metrics_off", func(m *Model) { m.ISCSI.MetricsListen = "127.0.0.1:9470" }, func(m *Model) { m.ISCSI.MetricsListen = "" }},
	// A planned failover: one edit, one reload, no session dropped; each
	// path that flips gets the unit attention, the others nothing.
	{"alua_failover", withDeviceGroup, func(m *Model) {
		m.DeviceGroups["dg1"].TargetGroups["a"].State = scsi.Standby
		m.DeviceGroups["dg1"].TargetGroups["b"].State = scsi.ActiveOptimized
	}},
	{"alua_one_path", withDeviceGroup, func(m *Model) { m.DeviceGroups["dg1"].TargetGroups["b"].State = scsi.Unavailable }},
	{"alua_add_device_group", nil, func(m *Model) { withDeviceGroup(m) }},
	{"alua_remove_device_group", withDeviceGroup, func(m *Model) { delete(m.DeviceGroups, "dg1") }},
	{"alua_explicit_and_members", withDeviceGroup, func(m *Model) {
		m.DeviceGroups["dg1"].Explicit = true
		m.DeviceGroups["dg1"].Devices = []string{"disk1", "null1"}
		m.DeviceGroups["dg1"].TargetGroups["a"].GroupID = 3
	}},
	// naa_id pinned to another value under a live session.
	{"naa_id_changed", func(m *Model) {
		setDevice(m, "null1", func(d *Device) { d.NAA = "60253447f15d8c16b1e2db9dc54b3c0a" })
	}, func(m *Model) {
		setDevice(m, "null1", func(d *Device) { d.NAA = "3123456789abcdef" })
	}},
	{"add_device", nil, func(m *Model) {
		m.Devices["disk2"] = Device{Handler: vdisk.FileIO, Filename: "/var/lib/scst/disk2.img", Size: 10 << 30, BlockSize: 512, T10DevID: "disk2", USN: "00000002"}
	}},
	{"remove_device", nil, func(m *Model) { delete(m.Devices, "spare") }},
	{"resize_grow", nil, func(m *Model) { setDevice(m, "disk1", func(d *Device) { d.Size = 2 << 30 }) }},
	{"resize_file_shrink", nil, func(m *Model) { setDevice(m, "disk1", func(d *Device) { d.Size = 512 << 20 }) }},
	{"resize_nullio", nil, func(m *Model) { setDevice(m, "null1", func(d *Device) { d.Size = 1 << 39 }) }},
	{"resize_unmapped", nil, func(m *Model) { setDevice(m, "spare", func(d *Device) { d.Size = 100 << 30 }) }},
	{"device_attrs", nil, func(m *Model) {
		setDevice(m, "disk1", func(d *Device) { d.ReadOnly, d.WriteThrough, d.NVCache, d.ODirect = true, true, true, true })
	}},
	{"replace_device", nil, func(m *Model) {
		setDevice(m, "disk1", func(d *Device) { d.Filename, d.BlockSize = "/srv/new.img", 4096 })
	}},
	{"file_replaced_on_disk", func(m *Model) { setDevice(m, "disk1", func(d *Device) { d.FileID = "2049:100" }) },
		func(m *Model) { setDevice(m, "disk1", func(d *Device) { d.FileID = "2049:200" }) }},
	{"replace_unmapped_device", nil, func(m *Model) {
		setDevice(m, "spare", func(d *Device) { d.Handler, d.Filename, d.Size = vdisk.NullIO, "", 1<<30 })
	}},
	{"add_target", nil, func(m *Model) {
		t := defaultTarget()
		t.LUNs = map[scsi.LUN]LUN{0: {Device: "spare"}, 300: {Device: "null1", ReadOnly: true}}
		m.Targets[iqnC] = t
	}},
	{"remove_target", nil, func(m *Model) { delete(m.Targets, iqnB) }},
	{"remove_disabled_target", func(m *Model) { m.Targets[iqnB].Enabled = false }, func(m *Model) { delete(m.Targets, iqnB) }},
	{"disabled_target_luns", func(m *Model) { m.Targets[iqnB].Enabled = false }, func(m *Model) {
		m.Targets[iqnB].LUNs[1] = LUN{Device: "disk1"}
		m.Targets[iqnB].QueuedCommands = 64
	}},
	{"enable_target", func(m *Model) { m.Targets[iqnB].Enabled = false }, func(m *Model) { m.Targets[iqnB].Enabled = true }},
	{"disable_target", nil, func(m *Model) { m.Targets[iqnA].Enabled = false }},
	{"add_lun", nil, func(m *Model) { m.Targets[iqnA].LUNs[3] = LUN{Device: "spare"} }},
	{"remove_lun", nil, func(m *Model) { delete(m.Targets[iqnA].LUNs, 1) }},
	{"change_lun", nil, func(m *Model) {
		m.Targets[iqnA].LUNs[0] = LUN{Device: "spare"}
		m.Targets[iqnA].LUNs[1] = LUN{Device: "null1", ReadOnly: true}
	}},
	{"target_params", nil, func(m *Model) {
		t := m.Targets[iqnA]
		t.HeaderDigest = []access.Digest{access.DigestCRC32C, access.DigestNone}
		t.MaxBurstLength = 262144
		t.QueuedCommands = 128
		t.NopInInterval = Duration(10 * time.Second)
		t.Redirect = mustRedirect("192.0.2.20:3260 temp")
	}},
	{"portals", nil, func(m *Model) {
		m.ISCSI.Portals = hostPorts("127.0.0.1:3260", "[::1]:3260")
		m.ISCSI.Enabled = false
	}},
	{"connection_caps", nil, func(m *Model) {
		m.ISCSI.MaxConnections = 1024
		m.ISCSI.MaxConnectionsPerAddress = 16
		m.ISCSI.LoginTimeout = Duration(5 * time.Second)
		m.ISCSI.DiscoveryIdleTimeout = Duration(10 * time.Second)
		m.Targets[iqnA].MaxSessions = 8
	}},
	{"chap_users", nil, func(m *Model) {
		m.Targets[iqnA].IncomingUsers = []User{{Name: "joe", Secret: secret("12charsecret")}}
		m.ISCSI.OutgoingUsers = []User{{Name: "jack", Secret: secret("othersecret12")}}
	}},
	{"groups", nil, func(m *Model) {
		m.Targets[iqnA].Groups = map[string]*Group{
			"special": {Initiators: access.MustPatterns("iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest"), LUNs: map[scsi.LUN]LUN{0: {Device: "spare", ReadOnly: true}}},
		}
	}},
	{"mixed", nil, func(m *Model) {
		m.Devices["disk2"] = Device{Handler: vdisk.NullIO, Size: 1 << 30, BlockSize: 512, T10DevID: "disk2", USN: "00000002"}
		delete(m.Devices, "spare")
		setDevice(m, "disk1", func(d *Device) { d.Size = 4 << 30 })
		t := defaultTarget()
		t.LUNs = map[scsi.LUN]LUN{0: {Device: "disk2"}}
		m.Targets[iqnC] = t
		delete(m.Targets, iqnB)
		m.Targets[iqnA].LUNs[2] = LUN{Device: "disk2"}
		delete(m.Targets[iqnA].LUNs, 1)
	}},
	{"mixed_no_sessions", nil, func(m *Model) {
		m.Devices["disk2"] = Device{Handler: vdisk.NullIO, Size: 1 << 30, BlockSize: 512, T10DevID: "disk2", USN: "00000002"}
		setDevice(m, "disk1", func(d *Device) { d.Size = 4 << 30 })
		delete(m.Targets, iqnB)
		m.Targets[iqnA].LUNs[2] = LUN{Device: "disk2"}
	}},
	// The scenario: a group added whose initiators cover a live
	// session, mapping the LUN it uses to another device.
	{"group_swaps_live_lun", nil, func(m *Model) {
		m.Targets[iqnA].Groups = map[string]*Group{
			"kvm-hosts": {Initiators: access.MustPatterns("iqn.1994-05.com.redhat:host1"), LUNs: map[scsi.LUN]LUN{0: {Device: "spare"}, 1: {Device: "null1"}}},
		}
	}},
	// A group added that maps the same devices at the same LUNs, plus
	// one: the session only gains a LUN.
	{"group_adds_lun", nil, func(m *Model) {
		m.Targets[iqnA].Groups = map[string]*Group{
			"kvm-hosts": {Initiators: access.MustPatterns("iqn.1994-05.com.redhat:host1"), LUNs: map[scsi.LUN]LUN{0: {Device: "disk1"}, 1: {Device: "null1"}, 2: {Device: "spare"}}},
		}
	}},
	// A group's initiators change so that a live session moves back to
	// the target's LUNs; a session in the other group is not reached.
	{"group_initiators_move", func(m *Model) {
		m.Targets[iqnA].Groups = map[string]*Group{
			"kvm-hosts": {Initiators: access.MustPatterns("iqn.1994-05.com.redhat:*"), LUNs: map[scsi.LUN]LUN{0: {Device: "spare"}}},
			"windows":   {Initiators: access.MustPatterns("iqn.1991-05.com.microsoft:*"), LUNs: map[scsi.LUN]LUN{0: {Device: "null1"}}},
		}
	}, func(m *Model) {
		m.Targets[iqnA].Groups["kvm-hosts"].Initiators = access.MustPatterns("iqn.1994-05.com.redhat:host9")
		m.Targets[iqnA].Groups["windows"].LUNs[1] = LUN{Device: "spare"}
	}},
	// per_portal_acl: groups match "name#portal_ip", so a live session
	// moves.
	{"per_portal_acl", func(m *Model) {
		m.Targets[iqnA].Groups = map[string]*Group{
			"kvm-hosts": {Initiators: access.MustPatterns("iqn.1994-05.com.redhat:host1"), LUNs: map[scsi.LUN]LUN{0: {Device: "disk1"}}},
		}
	}, func(m *Model) { m.Targets[iqnA].PerPortalACL = true }},
	// A rename without pinning: same file, new identity.
	{"rename_device", func(m *Model) { setDevice(m, "disk1", func(d *Device) { d.FileID = "2049:100" }) }, func(m *Model) {
		d := m.Devices["disk1"]
		delete(m.Devices, "disk1")
		d.T10DevID, d.USN = "vol1", "5c0d0a11"
		m.Devices["vol1"] = d
		m.Targets[iqnA].LUNs[0] = LUN{Device: "vol1"}
	}},
	// The same rename with usn and t10_dev_id pinned to the old values:
	// the device is kept under its new name, no session notices.
	{"rename_device_pinned", func(m *Model) { setDevice(m, "disk1", func(d *Device) { d.FileID = "2049:100" }) }, func(m *Model) {
		d := m.Devices["disk1"]
		delete(m.Devices, "disk1")
		m.Devices["vol1"] = d
		m.Targets[iqnA].LUNs[0] = LUN{Device: "vol1"}
	}},
	// usn changed in place under a live session.
	{"identity_changed", nil, func(m *Model) { setDevice(m, "null1", func(d *Device) { d.USN = "99999999" }) }},
	// A vcdrom's disc changed, taken out, and changed under a session
	// that locked it in (sessions: lockingSessions).
	{"change_medium", withDrive, func(m *Model) { setDevice(m, "cd1", func(d *Device) { d.Filename, d.FileID = "/srv/b.iso", "" }) }},
	{"eject_medium", withDrive, func(m *Model) { setDevice(m, "cd1", func(d *Device) { d.Filename, d.FileID = "", "" }) }},
	{"change_medium_locked", withDrive, func(m *Model) { setDevice(m, "cd1", func(d *Device) { d.Filename, d.FileID = "/srv/b.iso", "" }) }},
}

// withDeviceGroup puts null1 in a device group whose target group "a"
// (active/optimized, preferred) holds target a and "b" (standby) target b.
func withDeviceGroup(m *Model) {
	m.DeviceGroups = map[string]*DeviceGroup{"dg1": {Devices: []string{"null1"}, TargetGroups: map[string]*TargetGroup{
		"a": {GroupID: 1, State: scsi.ActiveOptimized, Preferred: true, Targets: []string{iqnA}},
		"b": {GroupID: 2, State: scsi.Standby, Targets: []string{iqnB}},
	}}}
}

func setDevice(m *Model, name string, f func(d *Device)) {
	d := m.Devices[name]
	f(&d)
	m.Devices[name] = d
}

func TestGoldenPlans(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			running := baseModel()
			if tc.before != nil {
				tc.before(&running)
			}
			desired := cloneModel(running)
			tc.change(&desired)
			live := goldenSessions
			switch {
			case strings.HasSuffix(tc.name, "_no_sessions"):
				live = nil
			case strings.HasSuffix(tc.name, "_locked"):
				live = lockingSessions()
			}
			p := Diff(running, desired, live)
			got := p.String()
			compareGoldenPlan(t, tc.name, got)
			if tc.name == "unchanged" != p.Empty() {
				t.Errorf("Empty() = %v", p.Empty())
			}
			if !modelsEqual(running.apply(p), desired) {
				t.Errorf("applying the plan does not give the desired model")
			}
			if _, err := json.Marshal(p); err != nil {
				t.Errorf("plan does not marshal: %v", err)
			}
		})
	}
}

func TestPlanJSON(t *testing.T) {
	running := baseModel()
	desired := cloneModel(running)
	setDevice(&desired, "disk1", func(d *Device) { d.Size = 2 << 30 })
	desired.Targets[iqnA].IncomingUsers = []User{{Name: "joe", Secret: secret("verysecret123")}}
	b, err := json.Marshal(Diff(running, desired, goldenSessions[:1]))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		`"op":"ResizeDevice"`, `"address":"device.disk1"`, `"attribute":"size"`,
		`"before":1073741824`, `"after":2147483648`, `"impact":"unit-attention"`,
		`"reason":"capacity changed"`, `"address":"target[\"iqn.2026-11.org.example:a\"]"`,
		`"sessions":[{"session":{"target":"iqn.2026-11.org.example:a","initiator":"iqn.1994-05.com.redhat:host1","isid":"400001370000","tsih":3},"impact":"unit-attention","luns":[{"lun":0,"kind":"device-event","before":"disk1","after":"disk1"}]}]`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "verysecret123") {
		t.Errorf("JSON shows a CHAP secret:\n%s", s)
	}
}

func TestSecretChangePrintsNoSecret(t *testing.T) {
	running := baseModel()
	running.Targets[iqnA].IncomingUsers = []User{{Name: "joe", Secret: secret("firstsecret1")}}
	desired := cloneModel(running)
	desired.Targets[iqnA].IncomingUsers = []User{{Name: "joe", Secret: secret("secondsecret")}}
	p := Diff(running, desired, nil)
	got := p.String()
	want := "~ target[\"iqn.2026-11.org.example:a\"]  incoming_user  (next login: secret changed)\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAddrString(t *testing.T) {
	for _, tc := range []struct {
		addr Addr
		want string
	}{
		{GlobalAddr, "iscsi"},
		{DeviceAddr("disk1"), "device.disk1"},
		{DeviceAddr("my disk"), `device["my disk"]`},
		{DeviceAddr("2disk"), `device["2disk"]`},
		{TargetAddr(iqnA), `target["iqn.2026-11.org.example:a"]`},
		{LUNAddr(iqnA, "", 3), `target["iqn.2026-11.org.example:a"].lun[3]`},
		{GroupAddr(iqnA, "g"), `target["iqn.2026-11.org.example:a"].group["g"]`},
		{LUNAddr(iqnA, "g", 16383), `target["iqn.2026-11.org.example:a"].group["g"].lun[16383]`},
	} {
		if got := tc.addr.String(); got != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.addr, got, tc.want)
		}
	}
}

func TestEnumStrings(t *testing.T) {
	for op := AddDevice; op <= SetGlobal; op++ {
		if strings.HasPrefix(op.String(), "Op(") {
			t.Errorf("op %d has no name", op)
		}
	}
	if got := Op(200).String(); got != "Op(200)" {
		t.Errorf("unknown op prints %q", got)
	}
	for i, want := range []string{"hot", "next-login", "unit-attention", "medium-locked", "identity-change", "device-swap", "session-drop", "Impact(7)"} {
		if got := Impact(i).String(); got != want {
			t.Errorf("Impact(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "(file size)"}, {512, "512"}, {1024, "1KiB"}, {1536, "1536"},
		{10 << 30, "10GiB"}, {1 << 40, "1TiB"}, {3 << 50, "3PiB"}, {1<<30 + 512, "1073742336"},
	} {
		if got := formatSize(tc.n); got != tc.want {
			t.Errorf("formatSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestPlanSummaryAndImpact(t *testing.T) {
	running := baseModel()
	desired := cloneModel(running)
	desired.Devices["disk2"] = Device{Handler: vdisk.NullIO, Size: 1 << 30, BlockSize: 512}
	setDevice(&desired, "disk1", func(d *Device) { d.Filename = "/srv/other.img" })
	setDevice(&desired, "null1", func(d *Device) { d.Size = 2 << 40 })
	delete(desired.Targets, iqnB)
	p := Diff(running, desired, goldenSessions)
	if got, want := p.Summary(), "1 to add, 1 to change, 1 to replace, 2 to remove"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if p.Impact() != SessionDrop {
		t.Errorf("Impact() = %v", p.Impact())
	}
	// The file under LUN 0 of two live sessions changes, and target b's
	// session is logged out.
	if d := p.Disruptive(); len(d) != 2 || d[0].Op != ReplaceDevice || d[0].Impact != DeviceSwap || d[1].Op != RemoveTarget {
		t.Errorf("Disruptive() = %+v", d)
	}
	if d := Diff(running, desired, nil).Disruptive(); len(d) != 0 {
		t.Errorf("Disruptive() without live sessions = %+v", d)
	}
	if (Plan{}).Impact() != Hot || (Plan{}).String() != "" {
		t.Error("empty plan")
	}
}

// compareGoldenPlan compares a printed plan with testdata/NAME.golden
// (written by go test -update).
func compareGoldenPlan(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("plan differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}
