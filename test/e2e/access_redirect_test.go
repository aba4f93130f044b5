package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
)

// TestAccessCHAPThrottle: the wrong guesses of a CHAP user's secret are
// checked at once up to a burst, then wait for the throttle (one per
// 7.5 s for addresses that failed); another address that never failed
// is not slowed down; each refusal is logged with the user and the
// counts but without the secret. (The hostile suite measures the
// throttle against parallel and rotating attackers.)
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
	for i := range 5 {
		st, d := login(from, bad)
		if st != iscsi.LoginAuthFailed {
			t.Fatalf("bad login %d: %v, want %v", i+1, st, iscsi.LoginAuthFailed)
		}
		took = append(took, d)
	}
	t.Logf("five failed logins from %s answered after %v", from, took)
	for i, d := range took[:4] {
		if d > time.Second {
			t.Errorf("failure %d took %v; the burst should cost nothing", i+1, d)
		}
	}
	if took[4] < 3*time.Second {
		t.Errorf("the fifth failure took %v: past the burst a guess must wait for the throttle", took[4])
	}

	// Another address that never failed is not slowed down.
	if st, d := login(other, good); st != iscsi.LoginSuccess || d > 500*time.Millisecond {
		t.Errorf("good login from %s: %v after %v, want success at once", other, st, d)
	}

	time.Sleep(100 * time.Millisecond)
	logs := tgt.Stderr()
	var refused []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "login refused") && strings.Contains(l, from) {
			refused = append(refused, l)
		}
	}
	if len(refused) != 5 {
		t.Fatalf("%d refused logins from %s logged, want 5:\n%s", len(refused), from, logs)
	}
	for i, l := range refused {
		want := fmt.Sprintf("failures_of_user=%d", i+1)
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
