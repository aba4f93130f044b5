package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// recorder is a Server that records what the engine asks of it, with
// fake live sessions.
type recorder struct {
	mu        sync.Mutex
	gen       uint64
	snap      *iscsi.Snapshot
	portals   []string
	portalErr error
	sessions  []iscsi.SessionInfo
	// effects are those of the Commits since the last take.
	effects []iscsi.SessionEffect
}

func (r *recorder) Commit(s *iscsi.Snapshot, effects []iscsi.SessionEffect) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	s.Generation = r.gen
	r.snap = s
	r.effects = append(r.effects, effects...)
}

func (r *recorder) SetPortals(addrs []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.portalErr != nil {
		return r.portalErr
	}
	r.portals = slices.Clone(addrs)
	return nil
}

func (r *recorder) Sessions() []iscsi.SessionInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sessions)
}

// login adds a fake live session of initiator on target, on portal
// 127.0.0.1, and returns its identity.
func (r *recorder) login(target, initiator string) iscsi.SessionID {
	r.mu.Lock()
	defer r.mu.Unlock()
	tsih := uint16(len(r.sessions) + 1)
	r.sessions = append(r.sessions, iscsi.SessionInfo{Target: target, Initiator: initiator,
		ISID: fmt.Sprintf("%012x", tsih), TSIH: tsih, PortalIP: "127.0.0.1"})
	return r.sessions[len(r.sessions)-1].ID()
}

// take returns and clears the effects recorded.
func (r *recorder) take() []iscsi.SessionEffect {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.effects
	r.effects = nil
	return e
}

func parse(t testing.TB, src string) *config.Config {
	t.Helper()
	cfg, diags := config.Parse([]byte(src), filepath.Join(t.TempDir(), "scst.hcl"))
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	return cfg
}

// newTestEngine returns an engine with its background loops off (tests
// call retryOffline and pollSizes themselves).
func newTestEngine(t testing.TB) (*Engine, *recorder) {
	r := &recorder{}
	e := NewEngine(r, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1})
	t.Cleanup(func() { e.Close() })
	return e, r
}

func apply(t testing.TB, e *Engine, cfg *config.Config) *Result {
	t.Helper()
	res, err := e.Apply(context.Background(), cfg, ApplyOptions{})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

const twoTargets = `
iscsi { portals = ["127.0.0.1:3260"] }
handler "vdisk_nullio" {
  device "null1" { size = "1GiB" }
  device "null2" { size = "2GiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
}
target "iqn.2026-11.org.example:b" {
  lun "0" { device = "null2" }
  lun "1" { device = "null1" }
}
`

func TestApplyStartsEmptyEngine(t *testing.T) {
	e, r := newTestEngine(t)
	res := apply(t, e, parse(t, twoTargets))
	if res.Generation != 1 || len(res.Offline) != 0 {
		t.Fatalf("result %+v", res)
	}
	if !slices.Equal(r.portals, []string{"127.0.0.1:3260"}) {
		t.Errorf("portals %v", r.portals)
	}
	a, b := r.snap.Targets[iqnA], r.snap.Targets[iqnB]
	if a == nil || b == nil || !r.snap.Enabled {
		t.Fatalf("snapshot %+v", r.snap)
	}
	if a.LUNs.Len() != 1 || b.LUNs.Len() != 2 {
		t.Errorf("LUN maps: a %v, b %v", a.LUNs.LUNs(), b.LUNs.LUNs())
	}
	// Both targets map null1: the same device.
	if a.LUNs.Lookup(0).Device != b.LUNs.Lookup(1).Device {
		t.Error("one device, two scsi.Devices")
	}
	if got := a.LUNs.Lookup(0).Device.Size(); got != 1<<30 {
		t.Errorf("null1 size %d", got)
	}
	if a.TID == b.TID || a.RelTgtPortID == b.RelTgtPortID || a.RelTgtPortID == 0 {
		t.Errorf("ids: a %d/%d, b %d/%d", a.TID, a.RelTgtPortID, b.TID, b.RelTgtPortID)
	}
	if a.QueuedCommands != 32 || a.Params.MaxBurstLength == 0 || a.NopInInterval != 30*time.Second {
		t.Errorf("target params %+v", a)
	}
	// The same file again: nothing to do, nothing published.
	snap := r.snap
	res = apply(t, e, parse(t, twoTargets))
	if !res.Plan.Empty() || res.Generation != 1 || r.snap != snap {
		t.Errorf("same config: generation %d, plan:\n%s", res.Generation, res.Plan)
	}
	if ef := r.take(); ef != nil {
		t.Errorf("same config: effects %+v", ef)
	}
}

func TestApplyAddLUNTouchesOneTarget(t *testing.T) {
	e, r := newTestEngine(t)
	apply(t, e, parse(t, twoTargets))
	sa, _ := r.login(iqnA, "iqn.x:host1"), r.login(iqnB, "iqn.x:host1")
	before := r.snap
	dev := before.Targets[iqnA].LUNs.Lookup(0).Device
	cfg := strings.Replace(twoTargets, `lun "0" { device = "null1" }
}`, `lun "0" { device = "null1" }
  lun "5" { device = "null2" }
}`, 1)
	res := apply(t, e, parse(t, cfg))
	if got := res.Plan.String(); !strings.Contains(got, `+ target["iqn.2026-11.org.example:a"].lun[5]`) || len(res.Plan.Changes) != 1 {
		t.Fatalf("plan:\n%s", got)
	}
	after := r.snap
	if after.Targets[iqnB] != before.Targets[iqnB] {
		t.Error("untouched target b was rebuilt")
	}
	if after.Targets[iqnA].LUNs == before.Targets[iqnA].LUNs {
		t.Error("target a kept its old LUN map")
	}
	if after.Targets[iqnA].LUNs.Lookup(0).Device != dev {
		t.Error("unchanged device got a new scsi.Device")
	}
	// The session of target a is told of LUN 5; b's is not.
	if ef := r.take(); len(ef) != 1 || ef[0].Session != sa || !ef[0].LUNsChanged || !slices.Equal(ef[0].Added, []scsi.LUN{5}) {
		t.Errorf("effects %+v", ef)
	}
}

func TestApplyRemoveAndDisableTargets(t *testing.T) {
	e, r := newTestEngine(t)
	apply(t, e, parse(t, twoTargets))
	sa, sb := r.login(iqnA, "iqn.x:host1"), r.login(iqnB, "iqn.x:host1")
	cfg := strings.Replace(twoTargets, `target "iqn.2026-11.org.example:b" {`, `target "iqn.2026-11.org.example:b" {
  enabled = false`, 1)
	cfg = strings.Replace(cfg, `target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
}`, "", 1)
	res, err := e.Apply(context.Background(), parse(t, cfg), ApplyOptions{Force: true})
	if err != nil || res.Plan.Impact() != SessionDrop {
		t.Fatalf("plan impact %v, %v:\n%s", res.Plan.Impact(), err, res.Plan)
	}
	if _, ok := r.snap.Targets[iqnA]; ok {
		t.Error("removed target still published")
	}
	if r.snap.Targets[iqnB].Enabled {
		t.Error("disabled target published enabled")
	}
	if ef := r.take(); len(ef) != 2 || ef[0].Session != sa || !ef[0].Logout || ef[1].Session != sb || !ef[1].Logout {
		t.Errorf("effects %+v", ef)
	}
}

func TestApplyRefusesDisruptive(t *testing.T) {
	policy := func(p string) string { return "disruptive_changes = \"" + p + "\"\n" }
	withoutA := strings.Replace(twoTargets, `target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
}`, "", 1)
	for _, tc := range []struct {
		name            string
		running, next   string
		sessions, force bool
		refused         bool
	}{
		// The policy in force is the running configuration's, whatever
		// the new file says.
		{"running refuse, file allow", policy("refuse"), policy("allow"), true, false, true},
		{"running allow, file refuse", policy("allow"), policy("refuse"), true, false, false},
		{"default is refuse", "", "", true, false, true},
		{"forced", policy("refuse"), policy("refuse"), true, true, false},
		// Removing a target nobody is logged in to ends no session.
		{"no live session", policy("refuse"), policy("refuse"), false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, r := newTestEngine(t)
			apply(t, e, parse(t, tc.running+twoTargets))
			if tc.sessions {
				r.login(iqnA, "iqn.x:host1")
			}
			gen := r.snap.Generation
			res, err := e.Apply(context.Background(), parse(t, tc.next+withoutA), ApplyOptions{Force: tc.force})
			var de *DisruptiveError
			if !tc.refused {
				if err != nil || res.Generation != gen+1 {
					t.Fatalf("want applied: %v", err)
				}
				return
			}
			if !errors.As(err, &de) || len(de.Changes) != 1 || de.Changes[0].Addr != TargetAddr(iqnA) || len(de.Plan.Changes) != 2 {
				t.Fatalf("err = %v", err)
			}
			want := `target["iqn.2026-11.org.example:a"]    (session drop: sessions logged out)
    affects iqn.x:host1 (tsih 1): asked to log out`
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "-force") {
				t.Errorf("error does not say which session and why:\n%v", err)
			}
			if r.snap.Generation != gen {
				t.Fatal("a refused plan published a snapshot")
			}
			if p, _ := e.Plan(parse(t, twoTargets)); !p.Empty() {
				t.Fatalf("a refused plan changed the running model:\n%s", p)
			}
		})
	}
}

func TestApplyPortalFailureChangesNothing(t *testing.T) {
	e, r := newTestEngine(t)
	apply(t, e, parse(t, twoTargets))
	gen := r.snap.Generation
	r.portalErr = errors.New("address in use")
	cfg := strings.Replace(twoTargets, `127.0.0.1:3260`, `127.0.0.1:3261`, 1)
	cfg = strings.Replace(cfg, `device "null2" { size = "2GiB" }`, `device "null2" { size = "2GiB" }
  device "null3" { size = "3GiB" }`, 1)
	if _, err := e.Apply(context.Background(), parse(t, cfg), ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "address in use") {
		t.Fatalf("err = %v", err)
	}
	if r.snap.Generation != gen {
		t.Fatal("failed prepare published a snapshot")
	}
	p, _ := e.Plan(parse(t, cfg))
	if len(p.Changes) != 2 {
		t.Fatalf("running model changed; plan now:\n%s", p)
	}
	if st := e.Status(); len(st.Devices) != 2 {
		t.Errorf("devices after failed reload: %+v", st.Devices)
	}
}

func fileConfig(dir string, size string) string {
	return fmt.Sprintf(`
iscsi { portals = ["127.0.0.1:3260"] }
handler "vdisk_fileio" {
  device "disk1" {
    filename = %q
    %s
  }
}
handler "vdisk_nullio" {
  device "null1" { size = "1GiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "disk1" }
  lun "1" { device = "null1" }
}
`, filepath.Join(dir, "disk1.img"), size)
}

func TestMissingFileMakesDeviceOfflineThenOnline(t *testing.T) {
	dir := t.TempDir()
	e, r := newTestEngine(t)
	res := apply(t, e, parse(t, fileConfig(dir, "")))
	if len(res.Offline) != 1 || res.Offline[0].Name != "disk1" || res.Offline[0].Reason == "" {
		t.Fatalf("offline: %+v", res.Offline)
	}
	dev := r.snap.Targets[iqnA].LUNs.Lookup(0).Device
	if dev.Offline() == nil {
		t.Fatal("device with a missing file is online")
	}
	if r.snap.Targets[iqnA].LUNs.Lookup(1).Device.Offline() != nil {
		t.Fatal("the nullio device is offline too")
	}
	st := e.Status()
	if st.Devices[0].Name != "disk1" || st.Devices[0].Online || st.Devices[0].Reason == "" {
		t.Errorf("status %+v", st.Devices[0])
	}

	if err := os.WriteFile(filepath.Join(dir, "disk1.img"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	e.retryOffline()
	if err := dev.Offline(); err != nil {
		t.Fatalf("device still offline after its file appeared: %v", err)
	}
	if dev.Size() != 1<<20 {
		t.Errorf("size %d", dev.Size())
	}
	if st := e.Status(); !st.Devices[0].Online || st.Devices[0].Reason != "" || st.Devices[0].Size != 1<<20 {
		t.Errorf("status %+v", st.Devices[0])
	}
}

func TestOfflineDeviceRetriedOnApply(t *testing.T) {
	dir := t.TempDir()
	e, r := newTestEngine(t)
	apply(t, e, parse(t, fileConfig(dir, "")))
	if err := os.WriteFile(filepath.Join(dir, "disk1.img"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	res := apply(t, e, parse(t, fileConfig(dir, "")))
	if !res.Plan.Empty() || len(res.Offline) != 0 {
		t.Fatalf("plan %s, offline %+v", res.Plan, res.Offline)
	}
	if err := r.snap.Targets[iqnA].LUNs.Lookup(0).Device.Offline(); err != nil {
		t.Fatal(err)
	}
}

func TestGrowingFileRaisesCapacityChange(t *testing.T) {
	dir := t.TempDir()
	e, r := newTestEngine(t)
	apply(t, e, parse(t, fileConfig(dir, `size = "1MiB"`)))
	dev := r.snap.Targets[iqnA].LUNs.Lookup(0).Device
	if dev.Size() != 1<<20 {
		t.Fatalf("size %d", dev.Size())
	}
	// Grown behind the daemon's back: noticed by the poll.
	if err := os.Truncate(filepath.Join(dir, "disk1.img"), 2<<20); err != nil {
		t.Fatal(err)
	}
	e.pollSizes()
	if dev.Size() != 2<<20 {
		t.Fatalf("size after growth %d", dev.Size())
	}
	// Grown by the configuration: the file is extended, same device.
	res := apply(t, e, parse(t, fileConfig(dir, `size = "4MiB"`)))
	if len(res.Plan.Changes) != 1 || res.Plan.Changes[0].Op != ResizeDevice {
		t.Fatalf("plan:\n%s", res.Plan)
	}
	if got := r.snap.Targets[iqnA].LUNs.Lookup(0).Device; got != dev {
		t.Fatal("resize replaced the scsi.Device")
	}
	if dev.Size() != 4<<20 {
		t.Fatalf("size after resize %d", dev.Size())
	}
	fi, err := os.Stat(filepath.Join(dir, "disk1.img"))
	if err != nil || fi.Size() != 4<<20 {
		t.Fatalf("file: %v %v", fi, err)
	}
}

func TestDeviceAttrsAndReplace(t *testing.T) {
	dir := t.TempDir()
	e, r := newTestEngine(t)
	apply(t, e, parse(t, fileConfig(dir, `size = "1MiB"`)))
	host := r.login(iqnA, "iqn.x:host1")
	dev := r.snap.Targets[iqnA].LUNs.Lookup(0).Device
	lunMap := r.snap.Targets[iqnA].LUNs

	apply(t, e, parse(t, fileConfig(dir, `size = "1MiB"
    read_only = true
    write_through = true`)))
	if r.snap.Targets[iqnA].LUNs.Lookup(0).Device != dev || r.snap.Targets[iqnA].LUNs != lunMap {
		t.Fatal("attribute change rebuilt the device or LUN map")
	}
	if c := dev.Config(); !c.ReadOnly || !c.WriteThrough {
		t.Fatalf("config %+v", c)
	}
	if ef := r.take(); ef != nil {
		t.Errorf("attribute change told sessions %+v", ef)
	}

	// A new block size replaces the device: new scsi.Device, new LUN map,
	// the old device offline. The live session would read another disk:
	// a device swap, applied only when forced.
	cfg := parse(t, fileConfig(dir, `size = "1MiB"
    blocksize = 4096`))
	if _, err := e.Apply(context.Background(), cfg, ApplyOptions{}); !errors.As(err, new(*DisruptiveError)) {
		t.Fatalf("device swap under a live session: %v", err)
	}
	res, err := e.Apply(context.Background(), cfg, ApplyOptions{Force: true})
	if err != nil || res.Plan.Changes[0].Op != ReplaceDevice || res.Plan.Changes[0].Impact != DeviceSwap {
		t.Fatalf("plan (%v):\n%s", err, res.Plan)
	}
	nd := r.snap.Targets[iqnA].LUNs.Lookup(0).Device
	if nd == dev || nd.Config().BlockSize != 4096 || nd.Offline() != nil {
		t.Fatalf("replacement: %+v offline=%v", nd.Config(), nd.Offline())
	}
	if dev.Offline() == nil {
		t.Error("replaced device still online")
	}
	if ef := r.take(); len(ef) != 1 || ef[0].Session != host || !slices.Equal(ef[0].Swapped, []scsi.LUN{0}) || !ef[0].LUNsChanged {
		t.Errorf("effects %+v", ef)
	}
}

func TestStatusLists(t *testing.T) {
	e, _ := newTestEngine(t)
	apply(t, e, parse(t, twoTargets))
	st := e.Status()
	if st.Generation != 1 || len(st.Devices) != 2 || len(st.Targets) != 2 || st.DisruptiveChanges != "refuse" {
		t.Fatalf("status %+v", st)
	}
	b := st.Targets[1]
	if b.Name != iqnB || len(b.LUNs) != 2 {
		t.Fatalf("target b %+v", b)
	}
	// The LUN's counters are there, at zero: no command ran.
	if l := b.LUNs[1]; l.LUN != 1 || l.Device != "null1" || l.ReadOnly || l.IO == nil || l.IO.Commands.Total() != 0 {
		t.Errorf("target b lun 1 %+v", l)
	}
	if d := st.Devices[1]; d.Name != "null2" || d.Size != 2<<30 || !d.Online {
		t.Errorf("device %+v", d)
	}
}

func TestClosedEngine(t *testing.T) {
	e, _ := newTestEngine(t)
	apply(t, e, parse(t, twoTargets))
	dev := e.devices["null1"].dev
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if dev.Offline() == nil {
		t.Error("device online after Close")
	}
	if _, err := e.Apply(context.Background(), parse(t, twoTargets), ApplyOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close: %v", err)
	}
}

func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not in the configuration", old)
	}
	return strings.Replace(s, old, new, 1)
}

const groupConfig = `
iscsi { portals = ["127.0.0.1:3260"] }
handler "vdisk_nullio" {
  device "null1" { size = "1GiB" }
  device "null2" { size = "2GiB" }
}
target "iqn.2026-11.org.example:a" {
  queued_commands = 32
  allowed_portals = ["127.0.0.*"]
  lun "0" { device = "null1" }
  group "zeta" {
    initiators = ["iqn.z:*"]
    lun "0" { device = "null2" }
  }
  group "alpha" {
    initiators = ["iqn.a:*", "!iqn.a:guest"]
    lun "0" { device = "null1" }
    lun "1" { device = "null2" }
  }
}
`

func TestApplyGroupsAndAccess(t *testing.T) {
	e, r := newTestEngine(t)
	apply(t, e, parse(t, groupConfig))
	z, alpha := r.login(iqnA, "iqn.z:x"), r.login(iqnA, "iqn.a:host")
	a := r.snap.Targets[iqnA]
	if len(a.Access.Groups) != 2 || a.Access.Groups[0].Name != "alpha" || a.Access.Groups[1].Name != "zeta" {
		t.Fatalf("groups %+v", a.Access.Groups)
	}
	if !a.Access.Portals.Allows("127.0.0.1") || a.Access.Portals.Allows("10.0.0.1") {
		t.Errorf("access %+v", a.Access)
	}
	for _, tc := range []struct {
		initiator string
		luns      int
	}{{"iqn.a:host", 2}, {"iqn.a:guest", 1}, {"iqn.z:x", 1}, {"iqn.other:x", 1}} {
		if got := a.LUNsFor(tc.initiator, "127.0.0.1").Len(); got != tc.luns {
			t.Errorf("%s sees %d LUNs, want %d", tc.initiator, got, tc.luns)
		}
	}

	// Only the zeta group's LUNs change: the other maps are kept.
	res := apply(t, e, parse(t, replaceOnce(t, groupConfig, `initiators = ["iqn.z:*"]
    lun "0" { device = "null2" }`, `initiators = ["iqn.z:*"]
    lun "0" { device = "null2" }
    lun "3" { device = "null1" }`)))
	if len(res.Plan.Changes) != 1 || res.Plan.Changes[0].Addr != LUNAddr(iqnA, "zeta", 3) {
		t.Fatalf("plan:\n%s", res.Plan)
	}
	b := r.snap.Targets[iqnA]
	if b.LUNs != a.LUNs || b.Access.Groups[0].LUNs != a.Access.Groups[0].LUNs || b.Access.Groups[1].LUNs == a.Access.Groups[1].LUNs {
		t.Error("LUN maps: want default and alpha kept, zeta rebuilt")
	}
	// Only the session in zeta is told.
	if ef := r.take(); len(ef) != 1 || ef[0].Session != z || !slices.Equal(ef[0].Added, []scsi.LUN{3}) {
		t.Errorf("effects %+v (alpha's session %v)", ef, alpha)
	}

	// A parameter change rebuilds the target but keeps every map, and
	// notifies nobody.
	apply(t, e, parse(t, replaceOnce(t, replaceOnce(t, groupConfig, `initiators = ["iqn.z:*"]
    lun "0" { device = "null2" }`, `initiators = ["iqn.z:*"]
    lun "0" { device = "null2" }
    lun "3" { device = "null1" }`), "queued_commands = 32", "queued_commands = 64")))
	c := r.snap.Targets[iqnA]
	if c == b || c.QueuedCommands != 64 || c.LUNs != b.LUNs || c.Access.Groups[1].LUNs != b.Access.Groups[1].LUNs {
		t.Error("parameter change: want a new target with the same LUN maps")
	}
	if ef := r.take(); ef != nil {
		t.Errorf("parameter change: effects %+v", ef)
	}
}

// TestApplyTakesWhatValidateAccepts: the access rules are values the
// configuration decoded once, so a file validate accepts applies. (Before
// they were printed back to text and parsed again by another grammar in
// prepare, which refused, for one, a redirect to a host name with its
// trailing dot, or an IPv6 address with a zone, that validate had taken.)
func TestApplyTakesWhatValidateAccepts(t *testing.T) {
	e, r := newTestEngine(t)
	cfg := parse(t, replaceOnce(t, groupConfig, "queued_commands = 32", `queued_commands = 32
  redirect = "target2.example.org.:3261 perm"
  chap_algorithms = ["SHA-256", "MD5"]
  header_digest = ["CRC32C", "None"]
  incoming_user "joe" { secret = "joesecret123" }
  outgoing_user "jim" { secret = "jimsecret123" }`))
	apply(t, e, cfg)
	a := r.snap.Targets[iqnA]
	want := cfg.Target(iqnA)
	if a.Access.Redirect != want.Redirect || a.Access.Redirect.String() != "target2.example.org.:3261 perm" {
		t.Errorf("redirect %v, want %v", a.Access.Redirect, want.Redirect)
	}
	if !slices.Equal(a.Auth.Algorithms, want.CHAPAlgorithms) || !slices.Equal(a.Params.HeaderDigest, want.HeaderDigest) ||
		!slices.Equal(a.Access.Portals.Allowed, want.AllowedPortals) {
		t.Errorf("target %+v", a)
	}
	if len(a.Auth.Incoming) != 1 || a.Auth.Incoming[0].Name != "joe" || a.Auth.Outgoing == nil || a.Auth.Outgoing.Name != "jim" {
		t.Errorf("CHAP %v", a.Auth)
	}
}

func TestAccessOf(t *testing.T) {
	tg := defaultTarget()
	tg.AllowedPortals = access.MustPatterns("10.170.7?.*", "!10.170.77.2")
	tg.PerPortalACL = true
	tg.Redirect = mustRedirect("[2001:db8::1]:3261 perm")
	tg.Groups = map[string]*Group{
		"b": {Initiators: access.MustPatterns("iqn.b:*")},
		"a": {Initiators: access.MustPatterns("iqn.a:*", "!iqn.a:guest")},
	}
	luns := map[string]*scsi.LUNMap{"a": scsi.NewLUNMap(nil), "b": scsi.NewLUNMap(nil)}
	a := accessOf(tg, func(g string) *scsi.LUNMap { return luns[g] })
	if a.Redirect != tg.Redirect || !a.Portals.PerPortalACL || !slices.Equal(a.Portals.Allowed, tg.AllowedPortals) {
		t.Errorf("access %+v", a)
	}
	if len(a.Groups) != 2 || a.Groups[0].Name != "a" || a.Groups[1].Name != "b" {
		t.Fatalf("groups not in name order: %+v", a.Groups)
	}
	for _, g := range a.Groups {
		if g.LUNs != luns[g.Name] || !slices.Equal(g.Initiators, tg.Groups[g.Name].Initiators) {
			t.Errorf("group %+v", g)
		}
	}
	tg.IncomingUsers = []User{{Name: "joe", Secret: secret("joesecret123")}}
	tg.OutgoingUsers = []User{{Name: "jim", Secret: secret("jimsecret123")}}
	auth := authOf(tg.IncomingUsers, tg.OutgoingUsers, tg.CHAPAlgorithms)
	if len(auth.Incoming) != 1 || string(auth.Incoming[0].Secret) != "joesecret123" || auth.Outgoing == nil ||
		auth.Outgoing.Name != "jim" || !slices.Equal(auth.Algorithms, tg.CHAPAlgorithms) {
		t.Errorf("auth %v", auth)
	}
}

func TestFileReplacedOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "disk1.img")
	e, r := newTestEngine(t)
	apply(t, e, parse(t, fileConfig(dir, `size = "1MiB"`)))
	dev := r.snap.Targets[iqnA].LUNs.Lookup(0).Device
	if p, _ := e.Plan(parse(t, fileConfig(dir, `size = "1MiB"`))); !p.Empty() {
		t.Fatalf("unchanged file gives plan:\n%s", p)
	}

	// An editor-style replacement: a new file renamed over the old one.
	img := make([]byte, 2<<20)
	copy(img, "new image")
	if err := os.WriteFile(path+".tmp", img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	res := apply(t, e, parse(t, fileConfig(dir, `size = "1MiB"`)))
	if len(res.Plan.Changes) != 1 || res.Plan.Changes[0].Op != ReplaceDevice || !strings.Contains(res.Plan.String(), "backing file replaced on disk") {
		t.Fatalf("plan:\n%s", res.Plan)
	}
	nd := r.snap.Targets[iqnA].LUNs.Lookup(0).Device
	if nd == dev || nd.Size() != 2<<20 {
		t.Fatalf("device after replacement: same=%v size=%d", nd == dev, nd.Size())
	}
	buf := make([]byte, 9)
	if _, err := nd.Backend().ReadAt(buf, 0); err != nil || string(buf) != "new image" {
		t.Fatalf("reads %q, %v", buf, err)
	}
	if p, _ := e.Plan(parse(t, fileConfig(dir, `size = "1MiB"`))); !p.Empty() {
		t.Fatalf("plan after the replacement:\n%s", p)
	}

	// A file that vanishes does not take the serving device down.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if res := apply(t, e, parse(t, fileConfig(dir, `size = "1MiB"`))); !res.Plan.Empty() || nd.Offline() != nil {
		t.Fatalf("plan after removal:\n%s offline=%v", res.Plan, nd.Offline())
	}
}
