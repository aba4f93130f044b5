package reconcile

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/diskid"
	"github.com/scstd/scstd/scsi"
)

// These tests hold dev_disk devices to what the engine promises any
// storage: opened through the opener with its time limit, drained by
// reference, offline alone when missing or lost, retried.

// fakeDisk is a pass-through disk in memory. Commands answer GOOD, or
// wait for release while a disk is slow, or fail with ENODEV once it is
// gone.
type fakeDisk struct {
	path    string
	timeout time.Duration
	id      diskid.Identity
	passing chan struct{} // a command has entered Pass (slow disks)
	release chan struct{} // nil: not slow
	gone    atomic.Bool

	mu      sync.Mutex
	passEnd time.Time
	closes  int
	closed  time.Time
}

func (d *fakeDisk) Pass(c *scsi.PassCommand) error {
	if d.release != nil {
		d.passing <- struct{}{}
		<-d.release
	}
	if d.gone.Load() {
		return fmt.Errorf("sg: %w", syscall.ENODEV)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closes > 0 {
		return errors.New("pass after close")
	}
	c.Status = scsi.Good
	d.passEnd = time.Now()
	return nil
}

func (d *fakeDisk) Identity() diskid.Identity { return d.id }
func (d *fakeDisk) BlockSize() uint32         { return 512 }
func (d *fakeDisk) MaxTransfer() int          { return 1 << 20 }
func (d *fakeDisk) Size() (int64, error)      { return 1 << 20, nil }
func (d *fakeDisk) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closes++
	d.closed = time.Now()
	return nil
}

func (d *fakeDisk) closedAt() (passEnd, closed time.Time, closes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passEnd, d.closed, d.closes
}

// fakeDisks opens fakeDisks: paths under /dev/missing and those in
// missing do not exist, paths under /hang/ wait until unblock is closed,
// paths under /slow/ are slow disks; every disk opened is kept. A disk's
// identity is ids[path], else defaultID.
type fakeDisks struct {
	unblock chan struct{}
	mu      sync.Mutex
	missing map[string]bool
	ids     map[string]diskid.Identity
	opened  []*fakeDisk
}

// defaultID is the identity of a fake disk whose path has none in ids.
var defaultID = diskid.Identity{Vendor: "FAKE", Product: "DISK", Serial: "0"}

func newFakeDisks() *fakeDisks {
	return &fakeDisks{unblock: make(chan struct{}), missing: map[string]bool{}, ids: map[string]diskid.Identity{}}
}

// setID makes path lead to the disk id from the next open on.
func (f *fakeDisks) setID(path string, id diskid.Identity) {
	f.mu.Lock()
	f.ids[path] = id
	f.mu.Unlock()
}

func (f *fakeDisks) open(path string, timeout time.Duration) (scsi.Passthrough, error) {
	f.mu.Lock()
	missing := f.missing[path]
	id, ok := f.ids[path]
	f.mu.Unlock()
	if !ok {
		id = defaultID
	}
	switch {
	case missing || strings.HasPrefix(path, "/dev/missing"):
		return nil, fmt.Errorf("dev_disk %s: %w", path, fs.ErrNotExist)
	case strings.HasPrefix(path, "/hang/"):
		<-f.unblock
	}
	d := &fakeDisk{path: path, timeout: timeout, id: id}
	if strings.HasPrefix(path, "/slow/") {
		d.passing, d.release = make(chan struct{}, 16), make(chan struct{})
	}
	f.mu.Lock()
	f.opened = append(f.opened, d)
	f.mu.Unlock()
	return d, nil
}

// all returns the disks opened so far.
func (f *fakeDisks) all() []*fakeDisk {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeDisk(nil), f.opened...)
}

func newDiskEngine(t *testing.T, disks *fakeDisks, opts Options) (*Engine, *recorder) {
	t.Helper()
	r := &recorder{}
	opts.RetryInterval, opts.SizePollInterval, opts.OpenDisk = -1, -1, disks.open
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	e := NewEngine(r, nil, opts)
	t.Cleanup(func() { e.Close() })
	return e, r
}

// diskConfig serves a nullio device as LUN 0 and a dev_disk device on
// path, with timeout seconds per command, as LUN 1.
func diskConfig(path string, timeout int) string {
	return fmt.Sprintf(`
iscsi { portals = ["127.0.0.1:3260"] }
handler "vdisk_nullio" {
  device "null1" { size = "1GiB" }
}
handler "dev_disk" {
  device "sdb" {
    path    = %q
    timeout = %d
  }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
  lun "1" { device = "sdb" }
}
`, path, timeout)
}

// diskNexus returns a function that executes a CDB on LUN lun of target
// a as the engine publishes it now, past the nexus's POWER ON.
func diskNexus(r *recorder, lun scsi.LUN) func(cdb ...byte) scsi.Result {
	n := scsi.NewNexus("iqn.x,i,0x1", iqnA, 1, 1)
	exec := func(cdb ...byte) scsi.Result {
		return scsi.Execute(&scsi.Command{Nexus: n, LUNs: r.snap.Targets[iqnA].LUNs, LUN: lun, LUNValid: true, CDB: cdb})
	}
	exec(0, 0, 0, 0, 0, 0)
	return exec
}

func isNotReady(r scsi.Result) bool {
	return r.Status == scsi.CheckCondition && len(r.Sense) > 2 && r.Sense[2]&0x0f == byte(scsi.NotReady)
}

func deviceStatus(t *testing.T, e *Engine, name string) DeviceStatus {
	t.Helper()
	for _, d := range e.Status().Devices {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("device %s not in status", name)
	return DeviceStatus{}
}

// A dev_disk device whose disk is not there is offline, says why, and
// answers NOT READY; the rest of the configuration applies. (Through
// package sgio: the default opener.)
func TestDevDiskWithoutDiskIsOffline(t *testing.T) {
	e, r := newTestEngine(t)
	res := apply(t, e, parse(t, diskConfig("/nonexistent/sg9", 30)))
	if len(res.Offline) != 1 || res.Offline[0].Name != "sdb" || !strings.Contains(res.Offline[0].Reason, "/nonexistent/sg9") {
		t.Fatalf("offline: %+v", res.Offline)
	}
	if d := deviceStatus(t, e, "sdb"); d.Handler != "dev_disk" || d.Path != "/nonexistent/sg9" || d.Online {
		t.Errorf("status %+v", d)
	}
	if !r.snap.Targets[iqnA].LUNs.Lookup(1).Device.Config().Passthrough {
		t.Fatal("the dev_disk device is not a pass-through device")
	}
	if res := diskNexus(r, 1)(0, 0, 0, 0, 0, 0); !isNotReady(res) {
		t.Errorf("TEST UNIT READY: %v %x, want NOT READY", res.Status, res.Sense)
	}
	if res := diskNexus(r, 0)(0, 0, 0, 0, 0, 0); res.Status != scsi.Good {
		t.Errorf("the nullio device: %v %x", res.Status, res.Sense)
	}
}

// A new command timeout reopens the disk (hot); another disk replaces
// the device.
func TestDevDiskPlan(t *testing.T) {
	e, _ := newDiskEngine(t, newFakeDisks(), Options{})
	apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	p, err := e.Plan(parse(t, diskConfig("/dev/sg1", 60)))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Op != SetDeviceAttr || p.Changes[0].Impact != Hot || p.Changes[0].Reason != reasonDiskReopened {
		t.Errorf("timeout change: %v", p)
	}
	p, err = e.Plan(parse(t, diskConfig("/dev/sg2", 30)))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Op != ReplaceDevice {
		t.Errorf("path change: %v", p)
	}
}

// The disk is opened with its timeout and serves; a new timeout reopens
// it and the old one is closed, once.
func TestDevDiskReopenedWithNewTimeout(t *testing.T) {
	disks := newFakeDisks()
	e, r := newDiskEngine(t, disks, Options{})
	apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	exec := diskNexus(r, 1)
	if res := exec(0, 0, 0, 0, 0, 0); res.Status != scsi.Good {
		t.Fatalf("TEST UNIT READY: %v %x", res.Status, res.Sense)
	}
	if d := deviceStatus(t, e, "sdb"); !d.Online || d.Path != "/dev/sg1" || d.Size != 1<<20 {
		t.Errorf("status %+v", d)
	}
	dev := r.snap.Targets[iqnA].LUNs.Lookup(1).Device
	apply(t, e, parse(t, diskConfig("/dev/sg1", 60)))
	got := disks.all()
	if len(got) != 2 || got[0].timeout != 30*time.Second || got[1].timeout != 60*time.Second {
		t.Fatalf("disks opened: %+v", got)
	}
	if _, _, n := got[0].closedAt(); n != 1 {
		t.Errorf("the disk opened with the old timeout closed %d times", n)
	}
	if _, _, n := got[1].closedAt(); n != 0 {
		t.Errorf("the serving disk closed %d times", n)
	}
	if now := r.snap.Targets[iqnA].LUNs.Lookup(1).Device; now != dev {
		t.Error("a reopen replaced the scsi.Device")
	}
	if res := exec(0, 0, 0, 0, 0, 0); res.Status != scsi.Good {
		t.Fatalf("TEST UNIT READY after the reopen: %v %x", res.Status, res.Sense)
	}
}

// A command inside the disk holds it: the reload that reopens it closes
// the old disk only once that command has completed.
func TestDevDiskDrainsByReference(t *testing.T) {
	disks := newFakeDisks()
	e, r := newDiskEngine(t, disks, Options{})
	apply(t, e, parse(t, diskConfig("/slow/sg1", 30)))
	exec := diskNexus(r, 1)
	old := disks.all()[0]

	result := make(chan scsi.Result)
	go func() { result <- exec(0, 0, 0, 0, 0, 0) }()
	<-old.passing
	apply(t, e, parse(t, diskConfig("/slow/sg1", 60)))
	time.Sleep(200 * time.Millisecond)
	if _, closed, _ := old.closedAt(); !closed.IsZero() {
		t.Fatal("disk closed while a command was inside it")
	}
	close(old.release)
	if res := <-result; res.Status != scsi.Good {
		t.Fatalf("the command across the reload: %v %x", res.Status, res.Sense)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		passEnd, closed, n := old.closedAt()
		if n > 0 {
			if closed.Before(passEnd) || n != 1 {
				t.Fatalf("closed %d times, before the command ended", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("disk not closed after its last command completed")
		}
		time.Sleep(time.Millisecond)
	}
	close(disks.all()[1].release)
}

// A disk that reports itself gone takes only its device offline, status
// says so, and the retry reopens it; the lost disk is closed once.
func TestDevDiskLostIsReopened(t *testing.T) {
	disks := newFakeDisks()
	e, r := newDiskEngine(t, disks, Options{})
	apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	exec := diskNexus(r, 1)
	lost := disks.all()[0]
	lost.gone.Store(true)
	if res := exec(0, 0, 0, 0, 0, 0); !isNotReady(res) {
		t.Fatalf("command to a lost disk: %v %x", res.Status, res.Sense)
	}
	if d := deviceStatus(t, e, "sdb"); d.Online || !strings.Contains(d.Reason, "lost") {
		t.Errorf("status of a lost disk: %+v", d)
	}
	// A reload meanwhile lists it offline and reopens it.
	res := apply(t, e, parse(t, diskConfig("/dev/sg1", 30)))
	if len(res.Offline) != 0 {
		t.Errorf("offline after the reload: %+v", res.Offline)
	}
	if len(disks.all()) != 2 {
		t.Fatalf("%d opens; the reload did not reopen the lost disk", len(disks.all()))
	}
	if _, _, n := lost.closedAt(); n != 1 {
		t.Errorf("the lost disk closed %d times", n)
	}
	if res := exec(0, 0, 0, 0, 0, 0); res.Status != scsi.Good {
		t.Fatalf("after the reopen: %v %x", res.Status, res.Sense)
	}

	// Lost again, and this time the disk does not come back: the retry
	// leaves the device offline with the open's error and closes the
	// lost disk.
	second := disks.all()[1]
	second.gone.Store(true)
	disks.mu.Lock()
	disks.missing["/dev/sg1"] = true
	disks.mu.Unlock()
	if res := exec(0, 0, 0, 0, 0, 0); !isNotReady(res) {
		t.Fatalf("command to a lost disk: %v %x", res.Status, res.Sense)
	}
	e.retryOffline()
	if d := deviceStatus(t, e, "sdb"); d.Online || !strings.Contains(d.Reason, "dev_disk /dev/sg1: file does not exist") {
		t.Errorf("status %+v", d)
	}
	if _, _, n := second.closedAt(); n != 1 {
		t.Errorf("the lost disk closed %d times", n)
	}
	if res := exec(0, 0, 0, 0, 0, 0); !isNotReady(res) {
		t.Fatalf("command while the disk is missing: %v %x", res.Status, res.Sense)
	}
}

// A disk whose open hangs makes only its device offline, within the
// opener's time limit, and is not tried again while it hangs.
func TestDevDiskHungOpen(t *testing.T) {
	disks := newFakeDisks()
	e, r := newDiskEngine(t, disks, Options{OpenTimeout: 300 * time.Millisecond})
	start := time.Now()
	res := apply(t, e, parse(t, diskConfig("/hang/sg1", 30)))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Apply took %v with a hung open", took)
	}
	if len(res.Offline) != 1 || res.Offline[0].Name != "sdb" || !strings.Contains(res.Offline[0].Reason, "/hang/sg1 did not answer within 300ms") {
		t.Fatalf("offline %+v", res.Offline)
	}
	if res := diskNexus(r, 0)(0, 0, 0, 0, 0, 0); res.Status != scsi.Good {
		t.Errorf("the nullio device: %v %x", res.Status, res.Sense)
	}
	e.retryOffline()
	if d := deviceStatus(t, e, "sdb"); !strings.Contains(d.Reason, "has not answered since") {
		t.Errorf("status while the open hangs: %+v", d)
	}
	close(disks.unblock)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := disks.all(); len(got) == 1 {
			if _, _, n := got[0].closedAt(); n == 1 {
				break // opened late, and closed
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the disk opened after the time limit was not closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.retryOffline()
	if d := deviceStatus(t, e, "sdb"); !d.Online {
		t.Errorf("still offline after the disk answered: %+v", d)
	}
}
