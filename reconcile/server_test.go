package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/iscsi"
)

// These tests run the engine against a real iscsi.Server on a loopback
// port and look at it with libiscsi's command-line tools.

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	srv := iscsi.NewServer(nil)
	if err := srv.SetPortals([]string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	addr := srv.Portals()[0].String()
	srv.Shutdown(context.Background())
	return addr
}

func runTool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

func serverConfig(portal, dir, extra string) string {
	return fmt.Sprintf(`
iscsi { portals = [%q] }
handler "vdisk_nullio" {
  device "null1" { size = "64MiB" }
}
handler "vdisk_fileio" {
  device "disk1" {
    filename = %q
    size     = "8MiB"
  }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
%s
}
`, portal, filepath.Join(dir, "disk1.img"), extra)
}

func TestServerReloads(t *testing.T) {
	inq := needTool(t, "iscsi-inq")
	ls := needTool(t, "iscsi-ls")
	readcap := needTool(t, "iscsi-readcapacity16")
	portal := freePort(t)
	dir := t.TempDir()
	srv := iscsi.NewServer(slog.New(slog.DiscardHandler))
	defer srv.Shutdown(context.Background())
	e := NewEngine(srv, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1, LogoutGrace: 100 * time.Millisecond})
	defer e.Close()

	apply(t, e, parse(t, serverConfig(portal, dir, "")))
	url := "iscsi://" + portal + "/" + iqnA + "/0"
	if out, err := runTool(t, inq, url); err != nil {
		t.Fatalf("iscsi-inq: %v\n%s", err, out)
	}
	out, err := runTool(t, readcap, url)
	if err != nil || !strings.Contains(out, "Total size:67108864") {
		t.Fatalf("readcapacity16: %v\n%s", err, out)
	}

	// Add a LUN: discovery lists it.
	res := apply(t, e, parse(t, serverConfig(portal, dir, `  lun "1" { device = "disk1" }`)))
	if len(res.Plan.Changes) != 1 {
		t.Fatalf("plan:\n%s", res.Plan)
	}
	out, err = runTool(t, ls, "-s", "iscsi://"+portal)
	if err != nil || !strings.Contains(out, "Lun:1") {
		t.Fatalf("iscsi-ls after adding LUN 1: %v\n%s", err, out)
	}
	if out, err := runTool(t, readcap, "iscsi://"+portal+"/"+iqnA+"/1"); err != nil || !strings.Contains(out, "Total size:8388608") {
		t.Fatalf("readcapacity16 LUN 1: %v\n%s", err, out)
	}

	// CHAP: the policy reaches the server; a login without the secret
	// fails, one with it succeeds.
	chap := `  lun "1" { device = "disk1" }
  incoming_user "joe" { secret = "xyzsecret123" }`
	apply(t, e, parse(t, serverConfig(portal, dir, chap)))
	if a := srv.Snapshot().Targets[iqnA].Auth; len(a.Incoming) != 1 || a.Incoming[0].Name != "joe" || string(a.Incoming[0].Secret) != "xyzsecret123" {
		t.Fatalf("published CHAP policy %v", a.Incoming)
	}
	if out, err := runTool(t, inq, url); err == nil {
		t.Fatalf("login without CHAP succeeded:\n%s", out)
	}
	if out, err := runTool(t, inq, "iscsi://joe%xyzsecret123@"+portal+"/"+iqnA+"/0"); err != nil {
		t.Fatalf("login with CHAP: %v\n%s", err, out)
	}
	// Back to no CHAP for the rest.
	apply(t, e, parse(t, serverConfig(portal, dir, `  lun "1" { device = "disk1" }`)))

	// The backing file grows behind our back: READ CAPACITY sees it
	// after the poll.
	if err := os.Truncate(filepath.Join(dir, "disk1.img"), 16<<20); err != nil {
		t.Fatal(err)
	}
	e.pollSizes()
	if out, err := runTool(t, readcap, "iscsi://"+portal+"/"+iqnA+"/1"); err != nil || !strings.Contains(out, "Total size:16777216") {
		t.Fatalf("readcapacity16 after growth: %v\n%s", err, out)
	}
	if st := e.Status(); st.Generation == 0 || len(st.Devices) != 2 {
		t.Errorf("status %+v", st)
	}

	// An initiator group sees its own LUNs; everyone else the target's.
	apply(t, e, parse(t, serverConfig(portal, dir, `  lun "1" { device = "disk1" }
  group "special" {
    initiators = ["iqn.2026-11.org.example:special*"]
    lun "5" { device = "disk1" }
  }`)))
	out, err = runTool(t, ls, "-s", "-i", "iqn.2026-11.org.example:special1", "iscsi://"+portal)
	if err != nil || !strings.Contains(out, "Lun:5") || strings.Contains(out, "Lun:0") {
		t.Fatalf("iscsi-ls as a group member: %v\n%s", err, out)
	}
	out, err = runTool(t, ls, "-s", "iscsi://"+portal)
	if err != nil || strings.Contains(out, "Lun:5") || !strings.Contains(out, "Lun:0") {
		t.Fatalf("iscsi-ls as anyone else: %v\n%s", err, out)
	}

	// A CD-ROM image.
	iso := filepath.Join(dir, "install.iso")
	if err := os.WriteFile(iso, make([]byte, 2048*100), 0o644); err != nil {
		t.Fatal(err)
	}
	apply(t, e, parse(t, serverConfig(portal, dir, `  lun "1" { device = "disk1" }
  lun "3" { device = "cd1" }
}
handler "vcdrom" {
  device "cd1" { filename = "`+iso+`" }`)))
	if out, err := runTool(t, inq, "iscsi://"+portal+"/"+iqnA+"/3"); err != nil || !strings.Contains(out, "MMC") {
		t.Fatalf("iscsi-inq on the CD-ROM: %v\n%s", err, out)
	}

	// A device whose file is missing: its LUN answers NOT READY, the rest
	// serves; once the file appears the retry brings it online.
	missing := filepath.Join(dir, "later", "disk2.img")
	res = apply(t, e, parse(t, serverConfig(portal, dir, `  lun "1" { device = "disk1" }
  lun "2" { device = "disk2" }
}
handler "vdisk_fileio" {
  device "disk2" { filename = "`+missing+`" }`)))
	if len(res.Offline) != 1 || res.Offline[0].Name != "disk2" {
		t.Fatalf("offline %+v", res.Offline)
	}
	url2 := "iscsi://" + portal + "/" + iqnA + "/2"
	if out, err := runTool(t, readcap, url2); err == nil || !strings.Contains(out, "NOT READY") {
		t.Fatalf("readcapacity16 on the offline LUN: %v\n%s", err, out)
	}
	if out, err := runTool(t, readcap, url); err != nil {
		t.Fatalf("readcapacity16 on LUN 0 while LUN 2 is offline: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Dir(missing), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(missing, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	e.retryOffline()
	if out, err := runTool(t, readcap, url2); err != nil || !strings.Contains(out, "Total size:1048576") {
		t.Fatalf("readcapacity16 once the file is there: %v\n%s", err, out)
	}
}
