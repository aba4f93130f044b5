package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// A reload you can trust: with a live session, a reload that would change
// what the session reads is refused (disruptive_changes defaults to
// "refuse") with a plan that names the session; forced, the session is
// told exactly what the plan printed; storage a reload retires is closed
// when its last command completes.

const (
	iqnTrust = "iqn.2026-11.org.example:trust"
	host1    = "iqn.2026-11.org.example:host1"
)

// trustConfig serves d0 and d1 (16 MiB each); LUN 0 of the target is the
// first %s, then the second %s is added inside the target block.
const trustConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "d0" {
    filename = "{{.Dir}}/d0.img"
    size     = "16MiB"
  }
  device "d1" {
    filename = "{{.Dir}}/d1.img"
    size     = "16MiB"
  }
}

target "iqn.2026-11.org.example:trust" {
  lun "0" { device = %q }
%s}
`

// rewriteConfig renders tpl and puts it in place of the daemon's
// configuration file (rename-over), without reloading: `scstd reload`
// or the file watch does.
func rewriteConfig(t *testing.T, tgt *testtarget.Target, tpl string) {
	t.Helper()
	text, err := testtarget.Render(tpl, tgt.Params())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tgt.ConfigPath()+".tmp", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tgt.ConfigPath()+".tmp", tgt.ConfigPath()); err != nil {
		t.Fatal(err)
	}
}

// session is a Go initiator session on LUN 0 of the trust target.
type session struct {
	t *testing.T
	c *initiator.Conn
}

func loginAs(t *testing.T, tgt *testtarget.Target, name string) *session {
	t.Helper()
	c, err := initiator.Dial(tgt.Portal())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := c.Login(initiator.Options{InitiatorName: name, TargetName: iqnTrust, MaxRecvDSL: 262144}); err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, c: c}
	if st, aa := s.tur(0); st != 2 || aa != [2]byte{0x29, 0x00} {
		t.Fatalf("first TEST UNIT READY: status %#x sense %x, want POWER ON", st, aa)
	}
	return s
}

// do runs a command on lun and fails the test on a transport error.
func (s *session) do(lun scsi.LUN, cdb, out []byte, readLen int) *initiator.Response {
	s.t.Helper()
	s.c.SetDeadline(time.Now().Add(30 * time.Second))
	rsp, err := s.c.Command(lun.Encode(), cdb, out, readLen)
	if err != nil {
		s.t.Fatalf("command %x: %v", cdb[0], err)
	}
	return rsp
}

// tur returns TEST UNIT READY's status and, for CHECK CONDITION, its ASC
// and ASCQ.
func (s *session) tur(lun scsi.LUN) (uint8, [2]byte) {
	s.t.Helper()
	rsp := s.do(lun, []byte{0, 0, 0, 0, 0, 0}, nil, 0)
	var aa [2]byte
	if len(rsp.Sense) >= 14 {
		aa = [2]byte{rsp.Sense[12], rsp.Sense[13]}
	}
	return rsp.Status, aa
}

// write fills block 0 of LUN 0 with b; read returns block 0.
func (s *session) write(b byte) {
	s.t.Helper()
	cdb := []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}
	if rsp := s.do(0, cdb, bytes.Repeat([]byte{b}, 512), 0); rsp.Status != 0 {
		s.t.Fatalf("WRITE: status %#x sense % x", rsp.Status, rsp.Sense)
	}
}

func (s *session) read() []byte {
	s.t.Helper()
	rsp := s.do(0, []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, nil, 512)
	if rsp.Status != 0 {
		s.t.Fatalf("READ: status %#x sense % x", rsp.Status, rsp.Sense)
	}
	return rsp.Data
}

// serial returns the unit serial number (VPD page 80h) of LUN 0.
func (s *session) serial() string {
	s.t.Helper()
	rsp := s.do(0, []byte{0x12, 0x01, 0x80, 0, 0xff, 0}, nil, 255)
	if rsp.Status != 0 || len(rsp.Data) < 4 {
		s.t.Fatalf("INQUIRY VPD 80h: status %#x", rsp.Status)
	}
	n := int(binary.BigEndian.Uint16(rsp.Data[2:4]))
	return strings.TrimSpace(string(rsp.Data[4 : 4+n]))
}

// lunMapOf returns the LUN map `scstd status -json` shows for the session
// of initiator.
func lunMapOf(t *testing.T, tgt *testtarget.Target, initiatorName string) string {
	t.Helper()
	for _, s := range liveSessions(t, tgt) {
		if s.Initiator == initiatorName {
			return s.LUNMap
		}
	}
	t.Fatalf("no session of %s in status", initiatorName)
	return ""
}

// TestReloadNeverSwapsADiskSilently: a session of host1 has written 0x11
// on LUN 0 (d0). A reload that would make LUN 0 reach d1 for it (a group
// added whose initiators cover host1; LUN 0's device changed) is refused:
// `scstd plan` and `scstd reload` say it is a device swap and which
// session it affects, and the session keeps reading d0. `scstd reload
// -force` applies it: the session gets INQUIRY DATA HAS CHANGED, then
// REPORTED LUNS DATA HAS CHANGED (never POWER ON), an Async Message, and
// then reads d1.
func TestReloadNeverSwapsADiskSilently(t *testing.T) {
	group := `  group "kvm-hosts" {
    initiators = ["` + host1 + `"]
    lun "0" { device = "d1" }
  }
`
	for _, tc := range []struct {
		name      string
		edited    string
		line      string // the plan line of the change
		lunMapNow string
	}{
		{"group added", fmt.Sprintf(trustConfig, "d0", group),
			`+ target["iqn.2026-11.org.example:trust"].group["kvm-hosts"]`, `group["kvm-hosts"]`},
		{"LUN device changed", fmt.Sprintf(trustConfig, "d1", ""),
			`~ target["iqn.2026-11.org.example:trust"].lun[0]  device "d0" -> "d1"`, "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt := testtarget.Start(t, fmt.Sprintf(trustConfig, "d0", ""))
			s := loginAs(t, tgt, host1)
			s.write(0x11)
			affects := fmt.Sprintf("affects %s (tsih %d) lun 0: d0 -> d1", host1, s.c.TSIH)
			if m := lunMapOf(t, tgt, host1); m != "default" {
				t.Errorf("status shows LUN map %q, want default", m)
			}

			rewriteConfig(t, tgt, tc.edited)
			out, code := testtarget.Run(t, "plan", "-config", tgt.ConfigPath(), "-admin-socket", tgt.AdminSocket())
			if code != 2 || !strings.Contains(out, tc.line) || !strings.Contains(out, "(device swap:") || !strings.Contains(out, affects) {
				t.Errorf("scstd plan: exit %d, want 2 with %q, a device swap and %q\n%s", code, tc.line, affects, out)
			}
			out, code = testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
			if code == 0 || !strings.Contains(out, affects) || !strings.Contains(out, "-force") {
				t.Errorf("scstd reload: exit %d, want a refusal naming %q\n%s", code, affects, out)
			}
			time.Sleep(600 * time.Millisecond) // the file watch's own reload, refused alike
			if st, aa := s.tur(0); st != 0 {
				t.Fatalf("TEST UNIT READY after the refused reload: status %#x sense %x", st, aa)
			}
			if got := s.read(); got[0] != 0x11 || got[511] != 0x11 {
				t.Fatalf("after the refused reload the session reads %#x, want d0's 0x11", got[0])
			}

			out, code = testtarget.Run(t, "reload", "-force", "-admin-socket", tgt.AdminSocket())
			if code != 0 || !strings.Contains(out, affects) {
				t.Fatalf("scstd reload -force: exit %d, want the plan with %q\n%s", code, affects, out)
			}
			s.c.Async = nil
			for _, want := range [][2]byte{{0x3f, 0x03}, {0x3f, 0x0e}} {
				if st, aa := s.tur(0); st != 2 || aa != want {
					t.Fatalf("TEST UNIT READY after the forced swap: status %#x sense %x, want %x", st, aa, want)
				}
			}
			if st, aa := s.tur(0); st != 0 {
				t.Fatalf("TEST UNIT READY: status %#x sense %x", st, aa)
			}
			if got := s.read(); got[0] != 0 || got[511] != 0 {
				t.Fatalf("after the forced swap the session reads %#x, want d1's zeroes", got[0])
			}
			if len(s.c.Async) == 0 || s.c.Async[0].Event != iscsi.AsyncSCSIEvent {
				t.Errorf("Async Messages %+v, want a SCSI event", s.c.Async)
			}
			if m := lunMapOf(t, tgt, host1); m != tc.lunMapNow {
				t.Errorf("status shows LUN map %q, want %q", m, tc.lunMapNow)
			}
		})
	}
}

// renameConfig is one fileio device named %s (on d0.img), with the pins
// of the second %s, as LUN 0.
const renameConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device %q {
    filename = "{{.Dir}}/d0.img"
    size     = "16MiB"
%s  }
}

target "iqn.2026-11.org.example:trust" {
  lun "0" { device = %[1]q }
}
`

// TestReloadRenameKeepsIdentityOnlyWhenPinned: renaming a device under a
// live session changes its serial number and designators: refused, and
// the plan says which usn and t10_dev_id to pin. Pinned as it says, with
// the same file, the rename applies without the session noticing: no
// unit attention, same serial, same data.
func TestReloadRenameKeepsIdentityOnlyWhenPinned(t *testing.T) {
	tgt := testtarget.Start(t, fmt.Sprintf(renameConfig, "d0", ""))
	s := loginAs(t, tgt, host1)
	s.write(0x22)
	serial := s.serial()

	rewriteConfig(t, tgt, fmt.Sprintf(renameConfig, "vol0", ""))
	out, code := testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
	hint := regexp.MustCompile(`to keep it: set t10_dev_id = ("[^"]*"), usn = ("[^"]*") in device\.vol0`).FindStringSubmatch(out)
	if code == 0 || !strings.Contains(out, "(identity change:") || hint == nil ||
		!strings.Contains(out, fmt.Sprintf("affects %s (tsih %d) lun 0: d0 -> vol0", host1, s.c.TSIH)) {
		t.Fatalf("scstd reload of an unpinned rename: exit %d, want a refusal that says how to pin\n%s", code, out)
	}
	if hint[2] != `"`+serial+`"` {
		t.Errorf("the plan pins usn %s, the session sees serial %q", hint[2], serial)
	}

	pins := fmt.Sprintf("    t10_dev_id = %s\n    usn        = %s\n", hint[1], hint[2])
	rewriteConfig(t, tgt, fmt.Sprintf(renameConfig, "vol0", pins))
	out, code = testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
	if code != 0 || !strings.Contains(out, `~ device.vol0`) || !strings.Contains(out, `name "d0" -> "vol0"`) {
		// The file watch may have applied it first: then the last
		// reload (and `plan`) says there is nothing left to do.
		if p, c := testtarget.Run(t, "plan", "-config", tgt.ConfigPath(), "-admin-socket", tgt.AdminSocket()); c != 0 {
			t.Fatalf("scstd reload of the pinned rename: exit %d\n%s\nplan now (exit %d):\n%s", code, out, c, p)
		}
	}
	if strings.Contains(out, "disruptive") {
		t.Errorf("the pinned rename is disruptive:\n%s", out)
	}
	if st, aa := s.tur(0); st != 0 {
		t.Fatalf("TEST UNIT READY after the pinned rename: status %#x sense %x", st, aa)
	}
	if got := s.serial(); got != serial {
		t.Errorf("serial after the pinned rename %q, was %q", got, serial)
	}
	if got := s.read(); got[0] != 0x22 {
		t.Errorf("after the pinned rename the session reads %#x, want 0x22", got[0])
	}
	if len(s.c.Async) != 0 {
		t.Errorf("Async Messages after the pinned rename: %+v", s.c.Async)
	}
}

// TestReloadTruncatedFileKeepsALiveSession: the configuration file is
// truncated after its handler block (it still parses, and would remove
// the target) under a live qemu-io session. With disruptive_changes left
// to its default, the reload is refused and the session keeps working.
func TestReloadTruncatedFileKeepsALiveSession(t *testing.T) {
	requireTools(t, "qemu-io")
	tgt := testtarget.Start(t, fmt.Sprintf(trustConfig, "d0", ""))
	q := startQemuSession(t, tgt.LUNURL(iqnTrust, 0))
	q.do("write -P 0x33 0 64k")
	if len(q.errs) > 0 {
		t.Fatalf("qemu-io write: %v", q.errs)
	}
	full := fmt.Sprintf(trustConfig, "d0", "")
	rewriteConfig(t, tgt, full[:strings.Index(full, "target ")])
	out, code := testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
	if code == 0 || !strings.Contains(out, "session drop") || !strings.Contains(out, "asked to log out") {
		t.Fatalf("scstd reload of the truncated file: exit %d, want a refusal\n%s", code, out)
	}
	time.Sleep(600 * time.Millisecond) // the file watch's own reload, refused alike
	q.do("read -P 0x33 0 64k")
	q.do("write -P 0x34 64k 64k")
	q.do("read -P 0x34 64k 64k")
	if len(q.errs) > 0 || q.ok != 4 {
		t.Fatalf("qemu-io after the refused reload: %d of 4 commands completed, errors %v", q.ok, q.errs)
	}
}

// sanitizeOverwrite is SANITIZE with service action OVERWRITE (SBC-3
// §5.30), not IMMED, and its parameter list: count passes of a 4-byte
// pattern.
func sanitizeOverwrite(count byte) (cdb, param []byte) {
	param = []byte{count, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef}
	return []byte{0x48, 0x01, 0, 0, 0, 0, 0, 0, byte(len(param)), 0}, param
}

// drainConfig is d0 as LUN 0 and, when the two %s hold it, the device busy
// as LUN 1.
const drainConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "d0" {
    filename = "{{.Dir}}/d0.img"
    size     = "16MiB"
  }
%s}

target "iqn.2026-11.org.example:trust" {
  lun "0" { device = "d0" }
%s}
`

var releasedLine = regexp.MustCompile(`time=(\S+) level=INFO msg="storage released" device=busy`)

// TestReloadReleasesStorageAfterItsLastCommand: a reload removes a device
// while a long command (SANITIZE OVERWRITE, some seconds) runs on it. The
// command completes with GOOD status on the storage it started on, and
// the storage is closed right after it completes: not before (the
// command would fail), not on a timer.
func TestReloadReleasesStorageAfterItsLastCommand(t *testing.T) {
	busy := `  device "busy" {
    filename      = "{{.Dir}}/busy.img"
    size          = "64MiB"
    write_through = true
  }
`
	tgt := testtarget.Start(t, fmt.Sprintf(drainConfig, busy, `  lun "1" { device = "busy" }`+"\n"))
	s := loginAs(t, tgt, host1)
	for range 4 {
		if st, _ := s.tur(1); st == 0 {
			break
		}
	}
	// Calibrate on a file already written: enough passes for about three
	// seconds.
	var pass time.Duration
	for range 2 {
		cdb, param := sanitizeOverwrite(2)
		start := time.Now()
		if rsp := s.do(1, cdb, param, 0); rsp.Status != 0 {
			t.Fatalf("SANITIZE: status %#x sense % x", rsp.Status, rsp.Sense)
		}
		pass = time.Since(start) / 2
	}
	count := byte(min(31, max(2, int(3*time.Second/max(pass, time.Millisecond)))))
	t.Logf("one pass over 64 MiB takes %v; sanitizing with %d passes", pass.Round(time.Millisecond), count)

	type outcome struct {
		rsp *initiator.Response
		at  time.Time
	}
	result := make(chan outcome, 1)
	cdb, param := sanitizeOverwrite(count)
	go func() {
		rsp, err := s.c.Command(scsi.LUN(1).Encode(), cdb, param, 0)
		if err != nil {
			t.Errorf("SANITIZE across the reload: %v", err)
		}
		result <- outcome{rsp, time.Now()}
	}()
	time.Sleep(min(pass/2, 100*time.Millisecond))
	rewriteConfig(t, tgt, fmt.Sprintf(drainConfig, "", ""))
	out, code := testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
	reloaded := time.Now()
	if code != 0 || !strings.Contains(out, "- device.busy") {
		t.Fatalf("scstd reload removing busy: exit %d\n%s", code, out)
	}
	r := <-result
	if r.rsp == nil || r.rsp.Status != 0 {
		t.Fatalf("the command in flight across the reload did not complete GOOD: %+v", r.rsp)
	}
	if r.at.Before(reloaded) {
		t.Fatalf("the command ended before the reload (%v): too short to test", reloaded.Sub(r.at))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := releasedLine.FindStringSubmatch(tgt.Stderr())
		if m != nil {
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("storage released %v after the reload, %v after the command's response",
				at.Sub(reloaded).Round(time.Millisecond), at.Sub(r.at).Round(time.Millisecond))
			if d := at.Sub(r.at); d > time.Second || d < -time.Second {
				t.Errorf("storage released %v from the end of its last command, want right after it", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"storage released\" for busy in the daemon's log:\n%s", tgt.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The removed LUN is gone for the session, LUN 0 works.
	if st, _ := s.tur(0); st != 2 {
		t.Errorf("LUN 0 after the removal: status %#x, want REPORTED LUNS DATA HAS CHANGED", st)
	}
	if st, _ := s.tur(0); st != 0 {
		t.Errorf("LUN 0: status %#x", st)
	}
}
