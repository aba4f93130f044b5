package reconcile

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/state"
	"github.com/scstd/scstd/scsi"
)

// aluaConfig exports null1 through targets a and b, in target groups
// "a" and "b" of device group dg1 with the given states.
func aluaConfig(stateA, stateB string) string {
	return `
handler "vdisk_nullio" {
  device "null1" { size = "1MiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
}
target "iqn.2026-11.org.example:b" {
  lun "0" { device = "null1" }
}
device_group "dg1" {
  devices  = ["null1"]
  explicit = true
  target_group "a" {
    group_id  = 1
    state     = "` + stateA + `"
    preferred = true
    targets   = ["iqn.2026-11.org.example:a"]
  }
  target_group "b" {
    group_id = 2
    state    = "` + stateB + `"
    targets  = ["iqn.2026-11.org.example:b"]
  }
}
`
}

// run executes a CDB through nexus n at LUN 0 of target's default map
// in the engine's snapshot and returns "GOOD" or the sense as
// "KEY asc=.. ascq=..".
func runCDB(t *testing.T, r *recorder, target string, n *scsi.Nexus, cdb string, out []byte) scsi.Result {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(cdb, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return scsi.Execute(&scsi.Command{Nexus: n, LUNs: r.snap.Targets[target].LUNs, LUN: 0, LUNValid: true,
		CDB: b, DataOut: out, ExpectedIn: 1 << 16})
}

func senseText(r scsi.Result) string {
	if r.Status != scsi.CheckCondition {
		return r.Status.String()
	}
	return (&scsi.SenseError{Key: scsi.SenseKey(r.Sense[2] & 0x0f), ASC: r.Sense[12], ASCQ: r.Sense[13]}).Error()
}

func TestALUAFailoverByReload(t *testing.T) {
	e, r := newTestEngine(t)
	apply(t, e, parse(t, aluaConfig("active/optimized", "standby")))
	r.login(iqnA, "iqn.x:host1")
	r.login(iqnB, "iqn.x:host1")
	na := scsi.NewNexus("iqn.x:host1,i,0x000000000001", iqnA, 1, r.snap.Targets[iqnA].RelTgtPortID)
	nb := scsi.NewNexus("iqn.x:host1,i,0x000000000002", iqnB, 1, r.snap.Targets[iqnB].RelTgtPortID)
	const tur, read = "00 00000000 00", "28 00 00000000 00 0001 00"
	runCDB(t, r, iqnA, na, tur, nil) // power on
	runCDB(t, r, iqnB, nb, tur, nil)
	if got := senseText(runCDB(t, r, iqnA, na, read, nil)); got != "GOOD" {
		t.Fatalf("READ through a: %s", got)
	}
	if got := senseText(runCDB(t, r, iqnB, nb, read, nil)); got != scsi.ErrALUAStandby.Error() {
		t.Fatalf("READ through b: %s", got)
	}

	// The failover: one edit, one reload. Hot for nobody, no session
	// dropped: a unit attention on each flipped path.
	res := apply(t, e, parse(t, aluaConfig("standby", "active/optimized")))
	if res.Plan.Impact() != UnitAttention || len(res.Plan.Changes) != 2 {
		t.Fatalf("plan:\n%s", res.Plan)
	}
	for _, c := range res.Plan.Changes {
		if c.Op != SetALUAState || len(c.Sessions) != 1 {
			t.Errorf("change %s %s reaches %v", c.Op, c.Addr, c.Sessions)
		}
	}
	if eff := r.take(); len(eff) != 0 {
		t.Errorf("effects for the iSCSI server (logouts, LUN changes): %+v", eff)
	}
	for _, c := range []struct {
		target string
		n      *scsi.Nexus
		first  string
		then   string
	}{
		{iqnA, na, "scsi: UNIT_ATTENTION asc=0x2a ascq=0x06", scsi.ErrALUAStandby.Error()},
		{iqnB, nb, "scsi: UNIT_ATTENTION asc=0x2a ascq=0x06", "GOOD"},
	} {
		if got := senseText(runCDB(t, r, c.target, c.n, read, nil)); got != c.first {
			t.Errorf("first READ through %s: %s, want %s", c.target, got, c.first)
		}
		if got := senseText(runCDB(t, r, c.target, c.n, read, nil)); got != c.then {
			t.Errorf("READ through %s: %s, want %s", c.target, got, c.then)
		}
	}
	// Status shows the groups with their states and ports.
	st := e.Status()
	if len(st.DeviceGroups) != 1 || len(st.DeviceGroups[0].TargetGroups) != 2 {
		t.Fatalf("status %+v", st.DeviceGroups)
	}
	a, b := st.DeviceGroups[0].TargetGroups[0], st.DeviceGroups[0].TargetGroups[1]
	if a.State != scsi.Standby || b.State != scsi.ActiveOptimized || len(a.Ports) != 1 || a.Ports[0] != r.snap.Targets[iqnA].RelTgtPortID {
		t.Errorf("status groups %+v %+v", a, b)
	}

	// SET TARGET PORT GROUPS through b: a back to active/optimized. The
	// status shows the state in force and the configured one.
	stpg := "a4 0a 00000000 00000008 00 00"
	if got := senseText(runCDB(t, r, iqnB, nb, stpg, []byte{0, 0, 0, 0, 0x00, 0, 0, 1})); got != "GOOD" {
		t.Fatalf("STPG: %s", got)
	}
	a = e.Status().DeviceGroups[0].TargetGroups[0]
	if a.State != scsi.ActiveOptimized || a.Configured != scsi.Standby {
		t.Errorf("after STPG: %+v", a)
	}
	// A reload of the same file keeps what STPG set (nothing changed).
	if res := apply(t, e, parse(t, aluaConfig("standby", "active/optimized"))); !res.Plan.Empty() {
		t.Errorf("plan of the same file:\n%s", res.Plan)
	}
	if a := e.Status().DeviceGroups[0].TargetGroups[0]; a.State != scsi.ActiveOptimized {
		t.Errorf("a reload undid STPG: %+v", a)
	}
}

func TestAPTPLAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := `
handler "vdisk_nullio" {
  device "null1" { size = "1MiB" }
  device "null2" { size = "1MiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
  lun "1" { device = "null2" }
}
`
	start := func() (*Engine, *recorder) {
		r := &recorder{}
		e := NewEngine(r, nil, Options{StateDir: dir, RetryInterval: -1, SizePollInterval: -1})
		t.Cleanup(func() { e.Close() })
		apply(t, e, parse(t, cfg))
		return e, r
	}
	e, r := start()
	n := scsi.NewNexus("iqn.x:host1,i,0x000000000001", iqnA, 1, 1)
	runCDB(t, r, iqnA, n, "00 00000000 00", nil)
	reg := make([]byte, 24)
	copy(reg[8:16], []byte{0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa})
	reg[20] = 0x01 // APTPL
	if got := senseText(runCDB(t, r, iqnA, n, "5f 00 00 0000 00000018 00", reg)); got != "GOOD" {
		t.Fatalf("REGISTER with APTPL: %s", got)
	}
	naa := e.running.Devices["null1"].NAA
	file := filepath.Join(dir, "pr", "naa."+naa+".json")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("PR file: %v", err)
	}
	if st := e.Status().Devices[0]; st.PersistentReservations == nil || !st.PersistentReservations.APTPL {
		t.Errorf("status %+v", st.PersistentReservations)
	}
	e.Close()

	// A restart: the same designator, the same registration.
	e2, r2 := start()
	if got := e2.running.Devices["null1"].NAA; got != naa {
		t.Errorf("NAA after a restart %s, want %s", got, naa)
	}
	pr := r2.snap.Targets[iqnA].LUNs.Lookup(0).Device.PRStatus()
	if len(pr.Registrations) != 1 || pr.Registrations[0].Key != 0xaaaaaaaaaaaaaaaa || !pr.APTPL {
		t.Errorf("restored %+v", pr)
	}
	e2.Close()

	// A corrupt file: moved aside, logged, the device serves without
	// persistent reservations, and the status says so.
	if err := os.WriteFile(file, []byte("{\"format\": \"scstd-persistent-res"), 0o640); err != nil {
		t.Fatal(err)
	}
	e3, r3 := start()
	d3 := r3.snap.Targets[iqnA].LUNs.Lookup(0).Device
	if d3.Offline() != nil {
		t.Errorf("device offline: %v", d3.Offline())
	}
	st := e3.Status().Devices[0]
	if st.PersistentReservations == nil || !strings.Contains(st.PersistentReservations.Error, "corrupt") || len(st.PersistentReservations.Registrations) != 0 {
		t.Errorf("status after a corrupt file: %+v", st.PersistentReservations)
	}
	if _, err := os.Stat(file + ".corrupt"); err != nil {
		t.Errorf("corrupt file not kept aside: %v", err)
	}

	// Register again; then a reload that removes the device from the
	// file removes its state, one that keeps it keeps it.
	n3 := scsi.NewNexus("iqn.x:host1,i,0x000000000001", iqnA, 1, 1)
	runCDB(t, r3, iqnA, n3, "00 00000000 00", nil)
	if got := senseText(runCDB(t, r3, iqnA, n3, "5f 00 00 0000 00000018 00", reg)); got != "GOOD" {
		t.Fatalf("REGISTER with APTPL: %s", got)
	}
	apply(t, e3, parse(t, strings.Replace(cfg, `  device "null2" { size = "1MiB" }`, `  device "null2" { size = "2MiB" }`, 1)))
	if _, err := os.Stat(file); err != nil {
		t.Errorf("a reload that keeps the device lost its state: %v", err)
	}
	res, err := e3.Apply(context.Background(), parse(t, `
handler "vdisk_nullio" {
  device "null2" { size = "1MiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "1" { device = "null2" }
}
`), ApplyOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("device removed, its PR file stays (%v); plan:\n%s", err, res.Plan)
	}
	if k := state.PRKey([]byte{0x60}, "vdisk_nullio", "x"); k != "naa.60" {
		t.Errorf("key %s", k)
	}
}

func TestStateDirKeptUntilRestart(t *testing.T) {
	first := filepath.Join(t.TempDir(), "first")
	r := &recorder{}
	e := NewEngine(r, nil, Options{RetryInterval: -1, SizePollInterval: -1})
	t.Cleanup(func() { e.Close() })
	cfg := `
state_dir = "%s"
handler "vdisk_nullio" {
  device "null1" { size = "1MiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
}
`
	apply(t, e, parse(t, strings.Replace(cfg, "%s", first, 1)))
	naa := e.running.Devices["null1"].NAA
	if fi, err := os.Stat(filepath.Join(first, "identity.seed")); err != nil || fi.Size() == 0 {
		t.Fatalf("seed in state_dir: %v", err)
	}
	second := filepath.Join(t.TempDir(), "second")
	res := apply(t, e, parse(t, strings.Replace(cfg, "%s", second, 1)))
	if !res.Plan.Empty() || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "applies at the next start") {
		t.Errorf("reload with another state_dir: plan %s, warnings %q", res.Plan, res.Warnings)
	}
	if e.Status().StateDir != first || e.running.Devices["null1"].NAA != naa {
		t.Errorf("state_dir %s, NAA %s: the running ones must stay", e.Status().StateDir, e.running.Devices["null1"].NAA)
	}
	if _, err := os.Stat(second); !os.IsNotExist(err) {
		t.Errorf("the new state_dir was created before a restart: %v", err)
	}
}

// TestPRListing: an added device looks its PR file up in one listing of
// the directory; a directory that cannot be listed lets every device try
// its file.
func TestPRListing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "naa.60.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &prListing{}
	for _, c := range []struct {
		path string
		want bool
	}{
		{filepath.Join(dir, "naa.60.json"), true},
		{filepath.Join(dir, "naa.61.json"), false},
	} {
		if got := l.mayHave(c.path); got != c.want {
			t.Errorf("mayHave(%s) = %t, want %t", c.path, got, c.want)
		}
	}
	gone := &prListing{}
	if !gone.mayHave(filepath.Join(dir, "missing", "naa.60.json")) {
		t.Error("a directory that cannot be listed must let the device try its file")
	}
}

// A corrupt PR file of a device a reload adds is moved aside when that
// reload commits, not when it is prepared: a refused reload leaves the
// state directory as it found it.
func TestRefusedReloadLeavesCorruptPRFile(t *testing.T) {
	dir := t.TempDir()
	const base = `
iscsi { portals = ["127.0.0.1:3260"] }
handler "vdisk_nullio" {
  device "null1" { size = "1MiB" }
%s}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
%s}
`
	without := fmt.Sprintf(base, "", "")
	with := fmt.Sprintf(base, "  device \"null2\" { size = \"1MiB\" }\n", "  lun \"1\" { device = \"null2\" }\n")
	r := &recorder{}
	e := NewEngine(r, nil, Options{StateDir: dir, RetryInterval: -1, SizePollInterval: -1})
	t.Cleanup(func() { e.Close() })
	apply(t, e, parse(t, with))
	file := filepath.Join(dir, "pr", "naa."+e.running.Devices["null2"].NAA+".json")
	apply(t, e, parse(t, without))

	corrupt := []byte(`{"format": "scstd-persistent-res`)
	if err := os.WriteFile(file, corrupt, 0o640); err != nil {
		t.Fatal(err)
	}
	r.portalErr = errors.New("address in use")
	moved := strings.Replace(with, "127.0.0.1:3260", "127.0.0.2:3260", 1)
	if _, err := e.Apply(context.Background(), parse(t, moved), ApplyOptions{}); err == nil {
		t.Fatal("a reload whose portal cannot bind was applied")
	}
	r.portalErr = nil
	if b, err := os.ReadFile(file); err != nil || string(b) != string(corrupt) {
		t.Fatalf("the PR file after a refused reload: %q %v", b, err)
	}
	if _, err := os.Stat(file + ".corrupt"); !os.IsNotExist(err) {
		t.Fatalf("a refused reload moved the corrupt PR file aside (%v)", err)
	}

	apply(t, e, parse(t, with))
	if b, err := os.ReadFile(file + ".corrupt"); err != nil || string(b) != string(corrupt) {
		t.Fatalf("the reload that commits did not move the file aside: %q %v", b, err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the corrupt PR file is still in place (%v)", err)
	}
	for _, d := range e.Status().Devices {
		if d.Name == "null2" && (d.PersistentReservations == nil || !strings.Contains(d.PersistentReservations.Error, "moved aside")) {
			t.Errorf("status of null2: %+v", d.PersistentReservations)
		}
	}
}
