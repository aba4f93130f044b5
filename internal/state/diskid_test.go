package state

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/diskid"
)

func TestDiskIDFile(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := d.DiskID("sdb")
	if f.Path() != DiskIDPath(d.Path(), "sdb") || !strings.HasSuffix(f.Path(), "/dev_disk/sdb.json") {
		t.Errorf("path %q", f.Path())
	}
	if _, ok, err := f.Load(); ok || err != nil {
		t.Fatalf("nothing recorded: ok %v err %v", ok, err)
	}
	r := diskid.Record{Device: "sdb", Path: "0:0:1:0", Identity: diskid.Identity{Vendor: "QEMU", Product: "QEMU HARDDISK", Serial: "S1"}}
	if err := f.Save(r); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := f.Load(); !ok || err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("loaded %+v %v %v, want %+v", got, ok, err, r)
	}

	// Corrupt: said so, left in place until moved aside; the aside
	// copy is found.
	if err := os.WriteFile(f.Path(), []byte(`{"format": "scstd-dev-disk-identity", "vers`), 0o640); err != nil {
		t.Fatal(err)
	}
	_, ok, err := f.Load()
	if ok || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt record: ok %v err %v", ok, err)
	}
	if _, there := f.Aside(); there {
		t.Fatal("reading a corrupt record moved it aside")
	}
	if _, ok, again := f.Load(); ok || !errors.Is(again, ErrCorrupt) {
		t.Fatalf("corrupt record read again: ok %v err %v", ok, again)
	}
	err = f.MoveAside(err)
	aside, there := f.Aside()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "moved aside to "+aside) || !there {
		t.Fatalf("moving aside: err %v aside %q %v", err, aside, there)
	}
	if _, ok, err := f.Load(); ok || err != nil {
		t.Fatalf("after moving aside: ok %v err %v", ok, err)
	}
	if err := f.Save(r); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, there := f.Aside(); there {
		t.Error("Remove left the corrupt copy")
	}
	if _, ok, err := f.Load(); ok || err != nil {
		t.Fatalf("after Remove: ok %v err %v", ok, err)
	}
	if err := f.Remove(); err != nil {
		t.Errorf("removing nothing: %v", err)
	}
}
