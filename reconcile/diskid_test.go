package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/scstd/scstd/internal/diskid"
	"github.com/scstd/scstd/internal/state"
	"github.com/scstd/scstd/scsi"
)

// The identities of two disks a path may lead to.
var (
	diskA = diskid.Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "SCSTDVM0", Designators: []string{"naa.5000c50015ea71ac"}}
	diskB = diskid.Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "SCSTDVM1", Designators: []string{"vendor.SCSTDVM1"}}
)

// loseDisk makes the disk device sdb serves from report itself gone, as
// a hot-swapped disk does, through a command on LUN 1.
func loseDisk(t *testing.T, disks *fakeDisks, r *recorder) {
	t.Helper()
	all := disks.all()
	all[len(all)-1].gone.Store(true)
	if res := diskNexus(r, 1)(0, 0, 0, 0, 0, 0); !isNotReady(res) {
		t.Fatalf("command to a lost disk: %v %x", res.Status, res.Sense)
	}
}

// wantWrongDisk checks that sdb is offline, answers NOT READY, and that
// its status names both disks and the way to accept the one found.
func wantWrongDisk(t *testing.T, e *Engine, r *recorder, want, found diskid.Identity, accept string) {
	t.Helper()
	d := deviceStatus(t, e, "sdb")
	for _, s := range []string{"leads to another disk", "found " + found.String(), "exported " + want.String(), "remove " + accept} {
		if d.Online || !strings.Contains(d.Reason, s) {
			t.Errorf("status online %v, reason lacks %q:\n%s", d.Online, s, d.Reason)
		}
	}
	if res := diskNexus(r, 1)(0, 0, 0, 0, 0, 0); !isNotReady(res) {
		t.Errorf("TEST UNIT READY through the offline device: %v %x, want NOT READY", res.Status, res.Sense)
	}
}

// TestDevDiskIdentity: a dev_disk device records its disk's identity when
// it first opens; when its path later leads to another disk (after the
// disk was lost, by a reload's reopen, at a restart), the device stays
// offline and says which disk it wants, which it found and how to accept
// it; removing the record accepts the disk found, and a device removed
// from the configuration forgets its record.
func TestDevDiskIdentity(t *testing.T) {
	disks := newFakeDisks()
	disks.setID("/dev/sg1", diskA)
	var log lockedBuffer
	r := &recorder{}
	dir := t.TempDir()
	e := NewEngine(r, slog.New(slog.NewTextHandler(&log, nil)), Options{RetryInterval: -1, SizePollInterval: -1, OpenDisk: disks.open, StateDir: dir})
	t.Cleanup(func() { e.Close() })
	rec := state.DiskIDPath(dir, "sdb")
	apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	if !strings.Contains(log.String(), `msg="disk identity recorded" device=sdb disk="naa.5000c50015ea71ac (serial SCSTDVM0`) {
		t.Errorf("the log does not say what was recorded:\n%s", log.String())
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := diskid.DecodeRecord(b); err != nil || !got.Equal(diskA) || got.Device != "sdb" || got.Path != "/dev/sg1" {
		t.Fatalf("record %+v %v", got, err)
	}

	// The disk is swapped: the retry finds another disk at the path.
	loseDisk(t, disks, r)
	disks.setID("/dev/sg1", diskB)
	e.retryOffline()
	wantWrongDisk(t, e, r, diskA, diskB, rec)
	e.retryOffline()
	wantWrongDisk(t, e, r, diskA, diskB, rec)
	if n := len(disks.all()); n != 3 {
		t.Fatalf("%d opens, want 3", n)
	}
	for _, d := range disks.all()[1:] {
		if _, _, closes := d.closedAt(); closes != 1 {
			t.Errorf("the wrong disk was closed %d times, want 1", closes)
		}
	}
	if n := strings.Count(log.String(), "leads to another disk"); n != 1 {
		t.Errorf("the log says %d times that the path leads to another disk, want once for two retries:\n%s", n, log.String())
	}
	// A reload does not accept it either.
	if res := apply(t, e, parse(t, diskConfig("/dev/sg1", 30))); len(res.Offline) != 1 || !strings.Contains(res.Offline[0].Reason, "leads to another disk") {
		t.Errorf("reload: offline %+v", res.Offline)
	}
	// The right disk again at another path (the sg nodes renumbered,
	// the configuration follows): accepted.
	disks.setID("/dev/sg7", diskA)
	if res := apply(t, e, parse(t, diskConfig("/dev/sg7", 30))); len(res.Offline) != 0 {
		t.Fatalf("the recorded disk at a new path: offline %+v", res.Offline)
	}
	if res := diskNexus(r, 1)(0, 0, 0, 0, 0, 0); res.Status != scsi.Good {
		t.Fatalf("TEST UNIT READY: %v %x", res.Status, res.Sense)
	}

	// A restart finds the other disk at the path: offline at once.
	e.Close()
	disks.setID("/dev/sg7", diskB)
	e2, r2 := newDiskEngine(t, disks, Options{StateDir: dir})
	res := apply(t, e2, parse(t, diskConfig("/dev/sg7", 30)))
	if len(res.Offline) != 1 {
		t.Fatalf("restart with another disk: offline %+v", res.Offline)
	}
	wantWrongDisk(t, e2, r2, diskA, diskB, rec)

	// The documented step: remove the record; the next retry records
	// the disk found and serves it.
	if err := os.Remove(rec); err != nil {
		t.Fatal(err)
	}
	e2.retryOffline()
	if d := deviceStatus(t, e2, "sdb"); !d.Online || d.Reason != "" {
		t.Fatalf("after removing the record: %+v", d)
	}
	if b, _ := os.ReadFile(rec); !strings.Contains(string(b), "SCSTDVM1") {
		t.Errorf("the accepted disk is not recorded:\n%s", b)
	}

	// Removed from the configuration: the record goes; added back, the
	// device records whatever disk it finds.
	apply(t, e2, parse(t, nullOnly))
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Errorf("the record of a removed device: %v", err)
	}
	disks.setID("/dev/sg7", diskA)
	if res := apply(t, e2, parse(t, diskConfig("/dev/sg7", 30))); len(res.Offline) != 0 {
		t.Fatalf("added back: offline %+v", res.Offline)
	}
}

// lockedBuffer is a log the engine's goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// nullOnly is diskConfig without its dev_disk device.
const nullOnly = `
iscsi { portals = ["127.0.0.1:3260"] }
handler "vdisk_nullio" {
  device "null1" { size = "1GiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
}
`

// A corrupt record is moved aside and logged; the device stays offline
// until the copy is removed, since nothing vouches for the disk.
func TestDevDiskIdentityCorrupt(t *testing.T) {
	disks := newFakeDisks()
	dir := t.TempDir()
	rec := state.DiskIDPath(dir, "sdb")
	if _, err := state.Open(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, []byte(`{"format": "scstd-dev-disk-identity", "vers`), 0o640); err != nil {
		t.Fatal(err)
	}
	e, _ := newDiskEngine(t, disks, Options{StateDir: dir})
	res := apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	if len(res.Offline) != 1 || !strings.Contains(res.Offline[0].Reason, "remove "+rec+".corrupt") || !strings.Contains(res.Offline[0].Reason, "corrupt") {
		t.Fatalf("offline %+v", res.Offline)
	}
	if _, err := os.Stat(rec + ".corrupt"); err != nil {
		t.Fatalf("not moved aside: %v", err)
	}
	e.retryOffline()
	if d := deviceStatus(t, e, "sdb"); d.Online || !strings.Contains(d.Reason, "moved aside") {
		t.Fatalf("a retry accepted the disk without a record: %+v", d)
	}
	os.Remove(rec + ".corrupt")
	e.retryOffline()
	if d := deviceStatus(t, e, "sdb"); !d.Online {
		t.Fatalf("after removing the corrupt copy: %+v", d)
	}
}

// A reload refused after prepare found a corrupt record leaves it where
// it is; the reload that commits moves it aside.
func TestDevDiskRefusedReloadLeavesCorruptRecord(t *testing.T) {
	disks := newFakeDisks()
	e, r := newDiskEngine(t, disks, Options{})
	rec := state.DiskIDPath(e.opts.StateDir, "sdb")
	apply(t, e, parse(t, nullOnly))
	corrupt := []byte(`{"format": "scstd-dev-disk-identity", "vers`)
	if err := os.WriteFile(rec, corrupt, 0o640); err != nil {
		t.Fatal(err)
	}
	refuseAfterOpen(t, e, r, disks, diskConfig("/dev/sg1", 30))
	if b, err := os.ReadFile(rec); err != nil || string(b) != string(corrupt) {
		t.Fatalf("the record after a refused reload: %q %v", b, err)
	}
	if _, err := os.Stat(rec + ".corrupt"); !os.IsNotExist(err) {
		t.Fatalf("a refused reload moved the corrupt record aside (%v)", err)
	}
	res := apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	if len(res.Offline) != 1 || !strings.Contains(res.Offline[0].Reason, "remove "+rec+".corrupt") {
		t.Fatalf("offline %+v", res.Offline)
	}
	if b, err := os.ReadFile(rec + ".corrupt"); err != nil || string(b) != string(corrupt) {
		t.Fatalf("the reload that commits did not move the record aside: %q %v", b, err)
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Fatalf("the corrupt record is still in place (%v)", err)
	}
}

// The persistent reservations of a dev_disk device are its recorded
// disk's: restored at a restart with the same disk, dropped (state and
// file) when another disk is accepted.
func TestDevDiskIdentityKeepsPRWithItsDisk(t *testing.T) {
	disks := newFakeDisks()
	disks.setID("/dev/sg1", diskA)
	e, _ := newDiskEngine(t, disks, Options{})
	dir := e.opts.StateDir
	apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	e.Close()
	st, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	prFile := st.PR(state.PRKey(nil, "dev_disk", "sdb"), "sdb")
	saved := scsi.PRState{APTPL: true, Generation: 1, Registrations: []scsi.PRRegistration{
		{InitiatorPort: "iqn.x,i,0x1", TargetPort: iqnA + ",t,0x0001", Key: 0xabc, RelTgtPortID: 1}}}
	if err := prFile.Save(saved); err != nil {
		t.Fatal(err)
	}

	e2, _ := newDiskEngine(t, disks, Options{StateDir: dir})
	apply(t, e2, parse(t, diskConfig("/dev/sg1", 30)))
	if d := deviceStatus(t, e2, "sdb"); !d.Online || d.PersistentReservations == nil || len(d.PersistentReservations.Registrations) != 1 {
		t.Fatalf("restart with the same disk: %+v", d)
	}
	e2.Close()

	// Another disk, accepted by removing the record: no reservations.
	disks.setID("/dev/sg1", diskB)
	os.Remove(state.DiskIDPath(dir, "sdb"))
	e3, _ := newDiskEngine(t, disks, Options{StateDir: dir})
	apply(t, e3, parse(t, diskConfig("/dev/sg1", 30)))
	d := deviceStatus(t, e3, "sdb")
	if !d.Online || (d.PersistentReservations != nil && len(d.PersistentReservations.Registrations) > 0) {
		t.Fatalf("another disk accepted: %+v, PR %+v", d, d.PersistentReservations)
	}
	if _, err := os.Stat(prFile.Path()); !os.IsNotExist(err) {
		t.Errorf("the other disk's PR file: %v", err)
	}
}

// A renamed dev_disk device keeps its record under its new name.
func TestDevDiskIdentityRename(t *testing.T) {
	disks := newFakeDisks()
	disks.setID("/dev/sg1", diskA)
	e, _ := newDiskEngine(t, disks, Options{})
	dir := e.opts.StateDir
	apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	renamed := strings.ReplaceAll(diskConfig("/dev/sg1", 30), `"sdb"`, `"sdc"`)
	res := apply(t, e, parse(t, renamed))
	if len(res.Plan.Changes) == 0 || res.Plan.Changes[0].Op != RenameDevice {
		t.Fatalf("plan %v", res.Plan)
	}
	if _, err := os.Stat(state.DiskIDPath(dir, "sdb")); !os.IsNotExist(err) {
		t.Errorf("old record: %v", err)
	}
	b, err := os.ReadFile(state.DiskIDPath(dir, "sdc"))
	if r, derr := diskid.DecodeRecord(b); err != nil || derr != nil || !r.Equal(diskA) {
		t.Fatalf("record under the new name: %s %v %v", b, err, derr)
	}
}

// A renamed dev_disk device keeps its persistent reservations: their file,
// keyed by the device's name, moves with it, and a restart restores them
// under the new name.
func TestDevDiskRenameKeepsPR(t *testing.T) {
	disks := newFakeDisks()
	disks.setID("/dev/sg1", diskA)
	first, _ := newDiskEngine(t, disks, Options{})
	dir := first.opts.StateDir
	apply(t, first, parse(t, diskConfig("/dev/sg1", 30))) // records the disk
	first.Close()
	st, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	saved := scsi.PRState{APTPL: true, Generation: 1, Registrations: []scsi.PRRegistration{
		{InitiatorPort: "iqn.x,i,0x1", TargetPort: iqnA + ",t,0x0001", Key: 0xabc, RelTgtPortID: 1}}}
	oldFile := st.PR(state.PRKey(nil, "dev_disk", "sdb"), "sdb")
	if err := oldFile.Save(saved); err != nil {
		t.Fatal(err)
	}
	e, _ := newDiskEngine(t, disks, Options{StateDir: dir})
	apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	if d := deviceStatus(t, e, "sdb"); d.PersistentReservations == nil || len(d.PersistentReservations.Registrations) != 1 {
		t.Fatalf("before the rename: %+v", d.PersistentReservations)
	}
	renamed := strings.ReplaceAll(diskConfig("/dev/sg1", 30), `"sdb"`, `"sdc"`)
	apply(t, e, parse(t, renamed))
	newFile := st.PR(state.PRKey(nil, "dev_disk", "sdc"), "sdc")
	if _, err := os.Stat(oldFile.Path()); !os.IsNotExist(err) {
		t.Errorf("the old name's PR file after the rename: %v", err)
	}
	if got, ok, err := newFile.Load(); err != nil || !ok || len(got.Registrations) != 1 || got.Registrations[0].Key != 0xabc {
		t.Fatalf("the new name's PR file: %+v %v %v", got, ok, err)
	}
	e.Close()

	e2, _ := newDiskEngine(t, disks, Options{StateDir: dir})
	apply(t, e2, parse(t, renamed))
	if d := deviceStatus(t, e2, "sdc"); !d.Online || d.PersistentReservations == nil || len(d.PersistentReservations.Registrations) != 1 {
		t.Fatalf("restart after the rename: %+v", d)
	}
}

// A reload refused once prepare has opened a dev_disk device's disk (here
// its new portal cannot bind) records nothing: the state directory stays
// as it was, so that a reload that corrects the device's path records the
// disk then found. A renamed device's record does not follow it either.
func TestDevDiskRefusedReloadRecordsNothing(t *testing.T) {
	disks := newFakeDisks()
	disks.setID("/dev/sg1", diskB) // the wrong disk
	disks.setID("/dev/sg2", diskA)
	e, r := newDiskEngine(t, disks, Options{})
	dir := e.opts.StateDir
	sdb, sdc := state.DiskIDPath(dir, "sdb"), state.DiskIDPath(dir, "sdc")
	apply(t, e, parse(t, nullOnly))
	refused := func(cfg string) { refuseAfterOpen(t, e, r, disks, cfg) }
	wantRecord := func(path string, id diskid.Identity) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := diskid.DecodeRecord(b); err != nil || !got.Equal(id) {
			t.Fatalf("%s records %+v (%v), want %s", path, got, err, id)
		}
	}
	wantNone := func(path, what string) {
		t.Helper()
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("%s: %s is there (%v)", what, path, err)
		}
	}

	refused(diskConfig("/dev/sg1", 30))
	wantNone(sdb, "a refused reload adding a device")
	res := apply(t, e, parse(t, diskConfig("/dev/sg2", 30)))
	if len(res.Offline) != 0 {
		t.Fatalf("the corrected path: offline %+v", res.Offline)
	}
	wantRecord(sdb, diskA)

	// Renamed, with a new timeout: prepare reopens its disk.
	renamed := strings.ReplaceAll(diskConfig("/dev/sg2", 60), `"sdb"`, `"sdc"`)
	refused(renamed)
	wantNone(sdc, "a refused reload renaming a device")
	wantRecord(sdb, diskA)
	if res := apply(t, e, parse(t, renamed)); len(res.Offline) != 0 {
		t.Fatalf("the rename: offline %+v", res.Offline)
	}
	wantRecord(sdc, diskA)
	wantNone(sdb, "the rename")
}

// refuseAfterOpen applies cfg with its portal moved to one that cannot
// bind, which refuses the reload after prepare opened one disk.
func refuseAfterOpen(t *testing.T, e *Engine, r *recorder, disks *fakeDisks, cfg string) {
	t.Helper()
	opens := len(disks.all())
	r.portalErr = errors.New("address in use")
	defer func() { r.portalErr = nil }()
	cfg = strings.Replace(cfg, "127.0.0.1:3260", "127.0.0.2:3260", 1)
	if _, err := e.Apply(context.Background(), parse(t, cfg), ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "address in use") {
		t.Fatalf("reload with a portal that cannot bind: %v", err)
	}
	if len(disks.all()) != opens+1 {
		t.Fatalf("%d disks opened by the refused reload, want 1", len(disks.all())-opens)
	}
}

// An identity the state directory cannot keep is kept in memory, from the
// commit too: a refused reload keeps none, and the corrected one keeps
// the disk it then finds.
func TestDevDiskRefusedReloadKeepsNothingInMemory(t *testing.T) {
	disks := newFakeDisks()
	disks.setID("/dev/sg1", diskB) // the wrong disk
	disks.setID("/dev/sg2", diskA)
	e, r := newDiskEngine(t, disks, Options{})
	apply(t, e, parse(t, nullOnly))
	// dev_disk/ leads nowhere: no record there, and none can be saved.
	records := filepath.Dir(state.DiskIDPath(e.opts.StateDir, "sdb"))
	if err := os.Remove(records); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(t.TempDir(), "gone"), records); err != nil {
		t.Fatal(err)
	}

	refuseAfterOpen(t, e, r, disks, diskConfig("/dev/sg1", 30))
	if res := apply(t, e, parse(t, diskConfig("/dev/sg2", 30))); len(res.Offline) != 0 {
		t.Fatalf("the corrected path: offline %+v", res.Offline)
	}
	// The disk kept in memory is the corrected path's.
	res := apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	if len(res.Offline) != 1 || !strings.Contains(res.Offline[0].Reason, "exported "+diskA.String()+" (recorded in memory") {
		t.Fatalf("the wrong disk again: offline %+v", res.Offline)
	}
}
