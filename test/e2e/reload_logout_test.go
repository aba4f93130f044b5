package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
)

// logoutConfig is A (LUN 0 under load) and, when the second %s is set, C;
// the first %s is the disruptive_changes policy.
const logoutConfig = `
disruptive_changes = %q

iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
}
handler "vdisk_nullio" {
  device "cdev" {
    size = "50MiB"
  }
}

target "iqn.2026-11.org.example:reload-a" {
  lun "0" {
    device = "disk0"
  }
}
%s`

const targetCBlock = `
target "iqn.2026-11.org.example:reload-c" {
  lun "0" {
    device = "cdev"
  }
}
`

// logoutGrace is reconcile.Options' LogoutGrace default: how long the
// sessions of a removed target have to log out before they are closed.
const logoutGrace = 5 * time.Second

// loginC logs a session in to C as initiator name.
func loginC(t *testing.T, portal, name string) *initiator.Conn {
	t.Helper()
	c, err := initiator.Dial(portal)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Login(initiator.Options{InitiatorName: name, TargetName: iqnC, MaxRecvDSL: 262144}); err != nil {
		c.Close()
		t.Fatalf("login to C: %v", err)
	}
	return c
}

// awaitLogoutRequest reads c until an Async Message asking for logout
// (event 1) arrives, and returns the seconds it allows (Parameter3).
func awaitLogoutRequest(c *initiator.Conn, within time.Duration) (uint16, error) {
	c.SetDeadline(time.Now().Add(within))
	for {
		p, err := c.ReadPDU()
		if err != nil {
			p.Release()
			return 0, fmt.Errorf("no Async Message within %v: %w", within, err)
		}
		if p.BHS.Opcode() != iscsi.OpAsyncMessage {
			p.Release()
			continue
		}
		var m iscsi.AsyncMessage
		err = m.Decode(&p.BHS)
		p.Release()
		if err != nil {
			return 0, err
		}
		if m.Event != iscsi.AsyncLogoutRequest {
			return 0, fmt.Errorf("Async Message %v, want %v", m.Event, iscsi.AsyncLogoutRequest)
		}
		return m.Parameter3, nil
	}
}

// TestReloadRemovingATargetLogsItsSessionsOut: removing target C by reload
// asks C's sessions to log out (Async Message event 1); one that does logs
// out cleanly, one that does not is closed after the grace period. With
// disruptive_changes = "refuse", the removal is refused (the session stays)
// unless `scstd reload -force`. Target A's live session sees none of it.
func TestReloadRemovingATargetLogsItsSessionsOut(t *testing.T) {
	tgt := testtarget.Start(t, fmt.Sprintf(logoutConfig, "allow", targetCBlock))
	live, err := startLiveSession(tgt.Portal(), iqnA)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := live.finish(); err != nil {
			t.Errorf("A's live session: %v", err)
		}
	}()
	if err := live.sync(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	_, eventIdx := live.eventsSince(0)

	t.Run("allow: a session that logs out when asked", func(t *testing.T) {
		c := loginC(t, tgt.Portal(), "iqn.2026-11.org.example:reload-c1")
		defer c.Close()
		if r := tgt.Reconfigure(fmt.Sprintf(logoutConfig, "allow", "")); !r.OK {
			t.Fatalf("reload removing C: %s\n%s", r.Error, r.Diagnostics)
		}
		secs, err := awaitLogoutRequest(c, 2*time.Second)
		if err != nil {
			t.Fatalf("C's session after C was removed: %v", err)
		}
		t.Logf("the target asks for logout within %d s", secs)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if rsp, err := c.Logout(); err != nil || rsp != iscsi.LogoutSuccess {
			t.Errorf("logout when asked: %v, %v", rsp, err)
		}
	})

	if r := tgt.Reconfigure(fmt.Sprintf(logoutConfig, "refuse", targetCBlock)); !r.OK {
		t.Fatalf("reload adding C back: %s\n%s", r.Error, r.Diagnostics)
	}

	t.Run("refuse, then -force: a session that does not log out", func(t *testing.T) {
		c := loginC(t, tgt.Portal(), "iqn.2026-11.org.example:reload-c2")
		defer c.Close()
		// Write the file without C; `scstd reload` must refuse it. The
		// file watch reloads it too, and is refused the same way.
		rewriteConfig(t, tgt, fmt.Sprintf(logoutConfig, "refuse", ""))
		out, code := testtarget.Run(t, "reload", "-admin-socket", tgt.AdminSocket())
		if code != 1 || !strings.Contains(out, iqnC) {
			t.Errorf("`scstd reload` removing C with disruptive_changes = \"refuse\": exit %d, want 1 naming %s\n%s", code, iqnC, out)
		}
		time.Sleep(600 * time.Millisecond) // let the watch's own (refused) reload pass
		if got, err := discover(tgt.URL()); err != nil || len(got) != 2 {
			t.Errorf("after the refused reload discovery lists %v (%v), want A and C", got, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.NOP([]byte("ping")); err != nil {
			t.Fatalf("C's session after the refused reload: %v", err)
		}

		out, code = testtarget.Run(t, "reload", "-force", "-admin-socket", tgt.AdminSocket())
		if code != 0 {
			t.Fatalf("`scstd reload -force`: exit %d\n%s", code, out)
		}
		forced := time.Now()
		if _, err := awaitLogoutRequest(c, 2*time.Second); err != nil {
			t.Fatalf("C's session after the forced removal: %v", err)
		}
		// Do not log out: the target must close the connection after the
		// grace period, and not much later.
		c.SetDeadline(time.Now().Add(logoutGrace + 5*time.Second))
		for {
			p, err := c.ReadPDU()
			p.Release()
			if err == nil {
				continue
			}
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				t.Errorf("C's session still open %v after the forced removal (grace %v)", time.Since(forced).Round(time.Second), logoutGrace)
			case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
				closed := time.Since(forced)
				t.Logf("C's session closed %v after the forced removal", closed.Round(100*time.Millisecond))
				if closed < logoutGrace-time.Second {
					t.Errorf("C's session closed %v after the removal, before the %v grace to log out", closed, logoutGrace)
				}
			default:
				t.Errorf("C's session: %v", err)
			}
			break
		}
	})

	if err := live.sync(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if events, _ := live.eventsSince(eventIdx); len(events) > 0 {
		t.Errorf("A's live session saw %v for changes of C", events)
	}
	if errs := live.ioErrors(); len(errs) > 0 {
		t.Errorf("A's live session: I/O errors %v", errs)
	}
}
