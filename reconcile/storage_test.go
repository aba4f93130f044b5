package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// These tests hold the engine to what storage may do: hang, be slow, be
// renamed, be too small.

// fakeStorage opens backends for the engine: files under /hang block until
// unblock is closed, files under /slow open at once as a slowBackend, and
// everything else goes to vdisk.Open.
type fakeStorage struct {
	unblock chan struct{}
	opens   atomic.Int32 // opens of files under /hang
	mu      sync.Mutex
	slow    map[string]*slowBackend
	late    []*slowBackend // backends opened after their time limit
}

func newFakeStorage() *fakeStorage {
	return &fakeStorage{unblock: make(chan struct{}), slow: map[string]*slowBackend{}}
}

func (f *fakeStorage) open(s vdisk.Spec) (vdisk.Backend, error) {
	switch {
	case strings.HasPrefix(s.Filename, "/hang/"):
		f.opens.Add(1)
		<-f.unblock
		b := newSlowBackend()
		close(b.release)
		f.mu.Lock()
		f.late = append(f.late, b)
		f.mu.Unlock()
		return b, nil
	case strings.HasPrefix(s.Filename, "/slow/"):
		b := newSlowBackend()
		f.mu.Lock()
		f.slow[s.Filename] = b
		f.mu.Unlock()
		return b, nil
	}
	return vdisk.Open(s)
}

// slowBackend is 1 MiB whose reads wait for release, and which records
// when it was closed.
type slowBackend struct {
	reading chan struct{} // a read has started
	release chan struct{}
	mu      sync.Mutex
	readEnd time.Time
	closed  time.Time
}

func newSlowBackend() *slowBackend {
	return &slowBackend{reading: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *slowBackend) ReadAt(p []byte, off int64) (int, error) {
	b.reading <- struct{}{}
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed.IsZero() {
		return 0, errors.New("read after close")
	}
	clear(p)
	b.readEnd = time.Now()
	return len(p), nil
}

func (b *slowBackend) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }
func (b *slowBackend) Size() (int64, error)                     { return 1 << 20, nil }
func (b *slowBackend) Sync() error                              { return nil }
func (b *slowBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = time.Now()
	return nil
}

func (b *slowBackend) times() (readEnd, closed time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readEnd, b.closed
}

const storageConfig = `
iscsi { portals = ["127.0.0.1:3260"] }
handler "vdisk_nullio" {
  device "null1" { size = "1GiB" }
}
handler "vdisk_fileio" {
  device "far" { filename = %q }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
  lun "1" { device = "far" }
}
`

func TestHungOpenTakesOnlyItsDeviceOffline(t *testing.T) {
	fs := newFakeStorage()
	r := &recorder{}
	e := NewEngine(r, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1, OpenTimeout: 300 * time.Millisecond, Open: fs.open})
	defer e.Close()
	start := time.Now()
	res := apply(t, e, parse(t, fmt.Sprintf(storageConfig, "/hang/nfs/disk.img")))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Apply took %v with a hung open", took)
	}
	if len(res.Offline) != 1 || res.Offline[0].Name != "far" || !strings.Contains(res.Offline[0].Reason, "did not answer within 300ms") {
		t.Fatalf("offline %+v", res.Offline)
	}
	if d := r.snap.Targets[iqnA].LUNs.Lookup(0).Device; d.Offline() != nil {
		t.Fatalf("the other device is offline too: %v", d.Offline())
	}
	// While it hangs it is not tried again.
	e.retryOffline()
	res = apply(t, e, parse(t, fmt.Sprintf(storageConfig, "/hang/nfs/disk.img")))
	if n := fs.opens.Load(); n != 1 {
		t.Errorf("%d opens of the hung file", n)
	}
	if len(res.Offline) != 1 || !strings.Contains(res.Offline[0].Reason, "has not answered since") {
		t.Fatalf("offline %+v", res.Offline)
	}
	// Once it answers, what it opened late is closed, and the next retry
	// opens it again.
	close(fs.unblock)
	deadline := time.Now().Add(5 * time.Second)
	for {
		fs.mu.Lock()
		var closed bool
		if len(fs.late) == 1 {
			_, c := fs.late[0].times()
			closed = !c.IsZero()
		}
		fs.mu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backend opened after the time limit was not closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.retryOffline()
	if d := r.snap.Targets[iqnA].LUNs.Lookup(1).Device; d.Offline() != nil {
		t.Fatalf("still offline after the storage answered: %v", d.Offline())
	}
}

func TestNothingWaitsForAHungOpen(t *testing.T) {
	fs := newFakeStorage()
	defer close(fs.unblock)
	r := &recorder{}
	e := NewEngine(r, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1, OpenTimeout: time.Hour, Open: fs.open})
	apply(t, e, parse(t, fmt.Sprintf(storageConfig, "/nonexistent/x.img")))

	done := make(chan error, 1)
	cfg := parse(t, fmt.Sprintf(storageConfig, "/hang/nfs/disk.img"))
	go func() {
		_, err := e.Apply(context.Background(), cfg, ApplyOptions{})
		done <- err
	}()
	for fs.opens.Load() == 0 {
		select {
		case err := <-done:
			t.Fatalf("Apply returned before the open: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	quick := func(what string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s took %v while an open hangs", what, took)
		}
	}
	quick("Status", func() { e.Status() })
	quick("Plan", func() {
		if _, err := e.Plan(parse(t, twoTargets)); err != nil {
			t.Error(err)
		}
	})
	quick("Close", func() { e.Close() })
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Apply during Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Apply still waits for the hung open after Close")
	}
}

func TestRemovedDeviceDrainsByReference(t *testing.T) {
	fs := newFakeStorage()
	r := &recorder{}
	e := NewEngine(r, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1, Open: fs.open})
	defer e.Close()
	apply(t, e, parse(t, fmt.Sprintf(storageConfig, "/slow/busy.img")))
	luns := r.snap.Targets[iqnA].LUNs
	n := scsi.NewNexus("iqn.x,i,0x1", iqnA, 1, 1)
	exec := func(cdb ...byte) scsi.Result {
		return scsi.Execute(&scsi.Command{Nexus: n, LUNs: luns, LUN: 1, LUNValid: true, CDB: cdb, ExpectedIn: 512})
	}
	exec(0, 0, 0, 0, 0, 0) // POWER ON
	slow := fs.slow["/slow/busy.img"]

	// A READ is inside the backend when a reload removes the device.
	result := make(chan scsi.Result)
	go func() { result <- exec(0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0) }()
	<-slow.reading
	removed := strings.Replace(strings.Replace(fmt.Sprintf(storageConfig, "/slow/busy.img"), `lun "1" { device = "far" }`, "", 1),
		`device "far" { filename = "/slow/busy.img" }`, "", 1)
	if res := apply(t, e, parse(t, removed)); len(res.Plan.Changes) != 2 {
		t.Fatalf("plan:\n%s", res.Plan)
	}
	time.Sleep(200 * time.Millisecond)
	if _, closed := slow.times(); !closed.IsZero() {
		t.Fatal("storage closed while a command was reading it")
	}
	close(slow.release)
	if res := <-result; res.Status != scsi.Good {
		t.Fatalf("the READ across the reload: status %v sense % x", res.Status, res.Sense)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		readEnd, closed := slow.times()
		if !closed.IsZero() {
			if closed.Before(readEnd) {
				t.Fatal("closed before the read ended")
			}
			if d := closed.Sub(readEnd); d > time.Second {
				t.Errorf("closed %v after the last command, not right after it", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("storage not closed after its last command completed")
		}
		time.Sleep(time.Millisecond)
	}
}

// renameConfig is a fileio device called name on path, pinned to
// identity when pin is set, as LUN 0.
func renameConfig(path, name, pin string) string {
	return fmt.Sprintf(`
iscsi { portals = ["127.0.0.1:3260"] }
handler "vdisk_fileio" {
  device %q {
    filename = %q
    %s
  }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = %q }
}
`, name, path, pin, name)
}

func TestRenameWithLiveSession(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	e, r := newTestEngine(t)
	apply(t, e, parse(t, renameConfig(path, "d0", "")))
	host := r.login(iqnA, "iqn.x:host1")
	dev := r.snap.Targets[iqnA].LUNs.Lookup(0).Device
	cfg := dev.Config()

	// Renamed as it is: its serial number and designators change under
	// the session. Refused, and the plan says how to keep them.
	_, err := e.Apply(context.Background(), parse(t, renameConfig(path, "d1", "")), ApplyOptions{})
	var de *DisruptiveError
	if !errors.As(err, &de) || de.Changes[0].Impact != IdentityChange {
		t.Fatalf("rename: %v", err)
	}
	hint := fmt.Sprintf(`to keep it: set t10_dev_id = %q, usn = %q in device.d1`, cfg.T10DevID, cfg.USN)
	if !strings.Contains(err.Error(), hint) || !strings.Contains(err.Error(), "affects iqn.x:host1 (tsih 1) lun 0: d0 -> d1") {
		t.Fatalf("the refusal does not say how to keep the identity:\n%v", err)
	}

	// Pinned as it said: the device is renamed, nothing else.
	pin := fmt.Sprintf("t10_dev_id = %q\n    usn = %q", cfg.T10DevID, cfg.USN)
	res := apply(t, e, parse(t, renameConfig(path, "d1", pin)))
	if res.Plan.Impact() != Hot || res.Plan.Changes[0].Op != RenameDevice {
		t.Fatalf("pinned rename:\n%s", res.Plan)
	}
	if got := r.snap.Targets[iqnA].LUNs.Lookup(0).Device; got != dev || got.Offline() != nil {
		t.Fatalf("the renamed device is another scsi.Device (or offline: %v)", got.Offline())
	}
	if ef := r.take(); len(ef) != 0 {
		t.Errorf("effects of a pinned rename: %+v (session %v)", ef, host)
	}
	if st := e.Status(); len(st.Devices) != 1 || st.Devices[0].Name != "d1" || !st.Devices[0].Online {
		t.Errorf("status %+v", st.Devices)
	}
	if p, _ := e.Plan(parse(t, renameConfig(path, "d1", pin))); !p.Empty() {
		t.Errorf("plan after the rename:\n%s", p)
	}
}

func TestShortFileNotExtendedAtFirstOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "disk1.img")
	if err := os.WriteFile(path, []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, _ := newTestEngine(t)
	res := apply(t, e, parse(t, fileConfig(dir, `size = "1MiB"`)))
	if len(res.Offline) != 1 || !strings.Contains(res.Offline[0].Reason, "is not extended") {
		t.Fatalf("offline %+v", res.Offline)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 26 {
		t.Fatalf("the file was changed: %v %v", fi, err)
	}
	// Retried, still refused: it stays as it is.
	e.retryOffline()
	if fi, _ := os.Stat(path); fi.Size() != 26 {
		t.Fatalf("a retry extended the file to %d bytes", fi.Size())
	}
}
