package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
)

// TestAccessCHAPThrottle: failed logins from one address are answered
// later and later (0, then 1 s, then 2 s), other addresses are not
// slowed down, a successful login clears the count, and each failure is
// logged with the user and count but without the secret.
func TestAccessCHAPThrottle(t *testing.T) {
	tgt := startCHAPTarget(t)
	bad := &initiator.CHAP{Name: "alice", Secret: wrongSecret}
	good := &initiator.CHAP{Name: "alice", Secret: aliceSecret}
	login := func(from string, chap *initiator.CHAP) (iscsi.LoginStatus, time.Duration) {
		start := time.Now()
		_, err := goLogin(t, from, tgt.Portal(), initiator.Options{TargetName: org("c1"), CHAP: chap})
		return statusOf(t, err), time.Since(start)
	}
	const from, other = "127.0.0.5", "127.0.0.6"
	var took []time.Duration
	for i := range 3 {
		st, d := login(from, bad)
		if st != iscsi.LoginAuthFailed {
			t.Fatalf("bad login %d: %v, want %v", i+1, st, iscsi.LoginAuthFailed)
		}
		took = append(took, d)
	}
	t.Logf("three failed logins from %s answered after %v", from, took)
	if took[0] > 500*time.Millisecond {
		t.Errorf("the first failure took %v; it should cost nothing", took[0])
	}
	if took[1] < took[0]+800*time.Millisecond {
		t.Errorf("the second failure took %v, not measurably (≥0.8 s) longer than the first (%v)", took[1], took[0])
	}
	if took[2] < took[1]+800*time.Millisecond {
		t.Errorf("the third failure took %v, not measurably longer than the second (%v): the delay must grow", took[2], took[1])
	}

	// Another address is not slowed down.
	if st, d := login(other, good); st != iscsi.LoginSuccess || d > 500*time.Millisecond {
		t.Errorf("good login from %s: %v after %v, want success at once", other, st, d)
	}
	// A good login from the throttled address succeeds and clears its
	// count: the next failure costs nothing again.
	if st, d := login(from, good); st != iscsi.LoginSuccess {
		t.Errorf("good login from %s: %v after %v", from, st, d)
	}
	if st, d := login(from, bad); st != iscsi.LoginAuthFailed || d > 500*time.Millisecond {
		t.Errorf("a failure after a successful login: %v after %v, want %v at once", st, d, iscsi.LoginAuthFailed)
	}

	time.Sleep(100 * time.Millisecond)
	logs := tgt.Stderr()
	var refused []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "login refused") && strings.Contains(l, from) {
			refused = append(refused, l)
		}
	}
	if len(refused) != 4 {
		t.Fatalf("%d refused logins from %s logged, want 4:\n%s", len(refused), from, logs)
	}
	for i, want := range []string{"failures=1", "failures=2", "failures=3", "failures=1"} {
		l := refused[i]
		if !strings.Contains(l, want) || !strings.Contains(l, "chap_user=alice") {
			t.Errorf("log line %d lacks %s or chap_user=alice: %s", i+1, want, l)
		}
		if strings.Contains(l, wrongSecret) || strings.Contains(l, aliceSecret) {
			t.Errorf("log line shows a secret: %s", l)
		}
	}
}

// rd is the redirected target's name; real serves it on a second daemon.
var rd = org("rd")

// realRD serves rd (48 MiB, no CHAP) on another daemon, where the first
// one redirects to.
const realRD = `
iscsi { portals = ["{{.Portal}}"] }
handler "vdisk_nullio" {
  device "big" { size = "48MiB" }
}
target "iqn.2026-11.org.example:rd" {
  lun "0" { device = "big" }
}
`

// redirectConfig: rd (which needs CHAP here) moved temporarily to the
// second daemon at REAL, rp permanently to 127.0.0.3, r6 to an IPv6
// address; stay is not redirected.
const redirectConfig = `
iscsi { ` + threePortals + ` }
handler "vdisk_nullio" {
  device "n1" { size = "16MiB" }
  device "n2" { size = "16MiB" }
  device "n3" { size = "16MiB" }
  device "n4" { size = "16MiB" }
}
target "iqn.2026-11.org.example:rd" {
  redirect = "REAL temp"
  incoming_user "alice" { secret = "` + aliceSecret + `" }
  lun "0" { device = "n1" }
}
target "iqn.2026-11.org.example:rp" {
  redirect = "127.0.0.3:{{.Port}} perm"
  lun "0" { device = "n2" }
}
target "iqn.2026-11.org.example:r6" {
  redirect = "[::1]:3261 temp"
  lun "0" { device = "n3" }
}
target "iqn.2026-11.org.example:stay" {
  lun "0" { device = "n4" }
}
`

// TestAccessRedirect: redirected targets answer normal-session logins
// with 0101h/0102h and TargetAddress before any security negotiation
// (rd needs CHAP, a login without it is still redirected); libiscsi
// follows the redirection to the daemon that serves the target; discovery
// sessions are not redirected and still list the targets.
func TestAccessRedirect(t *testing.T) {
	requireTools(t, "iscsi-ls", "iscsi-readcapacity16")
	real := testtarget.Start(t, realRD)
	tgt := testtarget.Start(t, strings.Replace(redirectConfig, "REAL", real.Portal(), 1))
	p3 := portalOn(tgt, "127.0.0.3")
	for _, c := range []struct {
		target  string
		status  iscsi.LoginStatus
		address string
	}{
		{rd, iscsi.LoginTargetMovedTemp, real.Portal()},
		{org("rp"), iscsi.LoginTargetMovedPerm, p3},
		{org("r6"), iscsi.LoginTargetMovedTemp, "[::1]:3261"},
		{org("stay"), iscsi.LoginSuccess, ""},
	} {
		for _, via := range []string{tgt.Portal(), p3} {
			t.Run(c.target+" via "+via, func(t *testing.T) {
				_, err := goLogin(t, "", via, initiator.Options{TargetName: c.target})
				if st := statusOf(t, err); st != c.status {
					t.Fatalf("login: %v, want %v", st, c.status)
				}
				if c.address == "" {
					return
				}
				le := err.(*initiator.LoginError)
				if got, _ := le.Keys.Get("TargetAddress"); got != c.address {
					t.Errorf("TargetAddress=%q, want %q (keys %v)", got, c.address, le.Keys)
				}
			})
		}
	}

	// libiscsi follows the temporary redirection of rd to the second
	// daemon's 48 MiB LUN.
	out := mustRun(t, "iscsi-readcapacity16", "-s", tgt.LUNURL(rd, 0))
	if strings.TrimSpace(out) != "50331648" {
		t.Errorf("iscsi-readcapacity16 -s via the redirection: %q, want the real rd's 50331648 bytes", out)
	}

	// Discovery is not redirected.
	out = mustRun(t, "iscsi-ls", tgt.URL())
	for _, name := range []string{rd, org("rp"), org("r6"), org("stay")} {
		if !strings.Contains(out, "Target:"+name+" ") {
			t.Errorf("discovery does not list %s:\n%s", name, out)
		}
	}
}
