package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scstd/scstd/scsi"
)

func TestOpenMakesDirAndSeed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "lib", "scstd")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o750 || !fi.IsDir() {
		t.Fatalf("state dir %v %v", fi, err)
	}
	if len(d.Seed()) != seedLen || bytes.Equal(d.Seed(), make([]byte, seedLen)) {
		t.Fatalf("seed % x", d.Seed())
	}
	again, err := Open(path)
	if err != nil || !bytes.Equal(again.Seed(), d.Seed()) {
		t.Fatalf("reopened: seed % x, %v; want % x", again.Seed(), err, d.Seed())
	}
	other, err := Open(filepath.Join(t.TempDir(), "other"))
	if err != nil || bytes.Equal(other.Seed(), d.Seed()) {
		t.Fatalf("two installations share a seed: %v", err)
	}
	entries, _ := os.ReadDir(path)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, seedFile), []byte("0123\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not 64 hex digits") {
		t.Errorf("short seed: %v", err)
	}
	if _, err := Open("var/lib/scstd"); err == nil {
		t.Error("relative state_dir accepted")
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(file); err == nil {
		t.Error("a file as state_dir accepted")
	}
}

func TestPRFileRoundTrip(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := PRKey([]byte{0x60, 0x25, 0x34, 0x4f}, "vdisk_fileio", "disk1")
	if key != "naa.6025344f" {
		t.Errorf("key %q", key)
	}
	if k := PRKey(nil, "dev_disk", "sdb"); k != "dev_disk.sdb" {
		t.Errorf("dev_disk key %q", k)
	}
	f := d.PR(key, "disk1")
	if _, ok, err := f.Load(); ok || err != nil {
		t.Fatalf("nothing saved: ok %v err %v", ok, err)
	}
	st := scsi.PRState{APTPL: true, Generation: 7, Registrations: []scsi.PRRegistration{
		{InitiatorPort: "iqn.1994-05.com.redhat:h1,i,0x23d000000001", TargetPort: "iqn.2026-11.org.example:a,t,0x0001", Key: 0xaaaaaaaaaaaaaaaa, RelTgtPortID: 1},
		{InitiatorPort: "iqn.1994-05.com.redhat:h2,i,0x23d000000001", TargetPort: "iqn.2026-11.org.example:a,t,0x0001", Key: 1, RelTgtPortID: 1},
	}, Reservation: &scsi.PRReservation{Type: scsi.PRWriteExclusiveRegOnly,
		InitiatorPort: "iqn.1994-05.com.redhat:h1,i,0x23d000000001", TargetPort: "iqn.2026-11.org.example:a,t,0x0001"}}
	if err := f.Save(st); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.Path())
	for _, s := range []string{`"format": "scstd-persistent-reservations"`, `"version": 1`, `"device": "disk1"`,
		`"key": "0xaaaaaaaaaaaaaaaa"`, `"type": "WRITE_EXCLUSIVE_REGISTRANTS_ONLY"`} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("file lacks %s:\n%s", s, b)
		}
	}
	got, ok, err := f.Load()
	if err != nil || !ok || !reflect.DeepEqual(got, st) {
		t.Fatalf("loaded %+v %v %v\nwant %+v", got, ok, err, st)
	}
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.Load(); ok || err != nil {
		t.Fatalf("after Remove: ok %v err %v", ok, err)
	}
	if err := f.Remove(); err != nil {
		t.Errorf("removing nothing: %v", err)
	}
}

func TestPRFileCorrupt(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, text string }{
		{"truncated", `{"format": "scstd-persistent-reservations", "vers`},
		{"other version", `{"format": "scstd-persistent-reservations", "version": 2}`},
		{"other format", `{"format": "x", "version": 1}`},
		{"bad key", `{"format": "scstd-persistent-reservations", "version": 1, "registrations": [{"key": "12"}]}`},
		{"bad type", `{"format": "scstd-persistent-reservations", "version": 1, "reservation": {"type": "EXCLUSIVE"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := d.PR("naa.60", "d")
			os.WriteFile(f.Path(), []byte(c.text), 0o640)
			_, ok, err := f.Load()
			if ok || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if b, rerr := os.ReadFile(f.Path()); rerr != nil || string(b) != c.text {
				t.Fatalf("Load changed the corrupt file: %q %v", b, rerr)
			}
			if err := f.MoveAside(err); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "moved aside") {
				t.Fatalf("MoveAside: %v", err)
			}
			if b, err := os.ReadFile(f.Path() + ".corrupt"); err != nil || string(b) != c.text {
				t.Errorf("not moved aside whole: %q %v", b, err)
			}
			if _, err := os.Stat(f.Path()); !os.IsNotExist(err) {
				t.Errorf("corrupt file still in place: %v", err)
			}
		})
	}
}

func FuzzDecodePR(f *testing.F) {
	f.Add([]byte(`{"format": "scstd-persistent-reservations", "version": 1, "aptpl": true, "generation": 3,
	  "registrations": [{"initiator_port": "iqn.a,i,0x1", "target_port": "iqn.t,t,0x0001", "key": "0xa", "rel_tgt_port_id": 1}],
	  "reservation": {"type": "WRITE_EXCLUSIVE", "initiator_port": "iqn.a,i,0x1", "target_port": "iqn.t,t,0x0001"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodePR(b)
		if err != nil {
			return
		}
		// Whatever decodes is given to a device, which takes it or
		// refuses it; it never panics.
		d := scsi.NewDevice(scsi.DeviceConfig{Name: "d"}, nil)
		d.RestorePR(st, nil)
	})
}
