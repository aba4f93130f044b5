package e2e

import (
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/isns"
	"github.com/scstd/scstd/internal/isnsd"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
)

// startISNSD starts an isnsd for one test (see internal/isnsd).
func startISNSD(t *testing.T) *isnsd.Server {
	t.Helper()
	requireTools(t, "isnsd", "isnsadm")
	return isnsd.Start(t)
}

// waitForISNS polls `isnsadm --list what` until ok accepts its output and
// returns how long that took.
func waitForISNS(t *testing.T, d *isnsd.Server, what, desc string, ok func(out string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var out string
	for time.Since(start) < 15*time.Second {
		var err error
		out, err = d.TryAdm("--list", what)
		if err == nil && ok(out) {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("iSNS server: %s not seen within 15s; isnsadm --list %s:\n%s", desc, what, out)
	return 0
}

const (
	iqnT3 = "iqn.2026-11.org.example:t3"

	isnsHost1 = "iqn.2026-11.org.example:isns-host1"
	isnsHost2 = "iqn.2026-11.org.example:isns-host2"
	isnsHost3 = "iqn.2026-11.org.example:isns-host3"
)

// isnsConfig serves t1 and t2 (or t1 and t3 with t3) and registers with
// the iSNS server at ISNS, with access control.
func isnsConfig(isnsAddr string, t3 bool) string {
	second := iqnT2
	if t3 {
		second = iqnT3
	}
	return `
iscsi {
  portals = ["{{.Portal}}"]
  isns_server "` + isnsAddr + `" { access_control = true }
}

handler "vdisk_nullio" {
  device "null0" { size = "16MiB" }
  device "null1" { size = "16MiB" }
}

target "` + iqnT1 + `" {
  lun "0" { device = "null0" }
}

target "` + second + `" {
  lun "0" { device = "null1" }
}
`
}

// TestAccessISNSRegistration runs the daemon against a real isnsd: the
// daemon registers its entity, portal and targets at start, follows a
// reload that swaps a target, and deregisters when it stops. (No
// discovery domain is made here: isnsadm sees only the nodes of its own
// discovery domains, the default one here.)
func TestAccessISNSRegistration(t *testing.T) {
	d := startISNSD(t)
	tgt := testtarget.Start(t, isnsConfig(d.Addr, false))
	_, port, _ := net.SplitHostPort(tgt.Portal())

	took := waitForISNS(t, d, "nodes", "t1 and t2 registered", func(out string) bool {
		return strings.Contains(out, iqnT1) && strings.Contains(out, iqnT2)
	})
	t.Logf("registration seen %v after the daemon accepted connections", took)
	if out := d.Adm(t, "--list", "entities"); !strings.Contains(out, "scstd:") {
		t.Errorf("the daemon's entity (scstd:<host>) is not registered:\n%s", out)
	}
	if out := d.Adm(t, "--list", "portals"); !strings.Contains(out, "127.0.0.1") || !strings.Contains(out, port) {
		t.Errorf("portal %s is not registered:\n%s", tgt.Portal(), out)
	}

	// scstd status -json shows the registration.
	out, code := testtarget.Run(t, "status", "-json", "-admin-socket", tgt.AdminSocket())
	var st struct {
		Engine struct {
			ISNS []isns.State `json:"isns"`
		} `json:"engine"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("scstd status -json: exit %d, %v\n%s", code, err, out)
	}
	if got := st.Engine.ISNS; len(got) != 1 || got[0].Server != d.Addr || !got[0].AccessControl ||
		!slices.Equal(got[0].Registered, []string{iqnT1, iqnT2}) || got[0].Error != "" {
		t.Errorf("status shows iSNS %+v, want %s with access control holding t1 and t2", got, d.Addr)
	}

	// A reload that replaces t2 by t3 updates the registration.
	if r := tgt.Reconfigure(isnsConfig(d.Addr, true)); !r.OK {
		t.Fatalf("reload: %s\n%s", r.Error, r.Diagnostics)
	}
	took = waitForISNS(t, d, "nodes", "t3 registered and t2 gone after the reload", func(out string) bool {
		return strings.Contains(out, iqnT1) && strings.Contains(out, iqnT3) && !strings.Contains(out, iqnT2)
	})
	t.Logf("reload seen by the iSNS server after %v", took)

	// Stopping the daemon deregisters its entity and targets.
	tgt.Stop()
	waitForISNS(t, d, "nodes", "the daemon's targets deregistered after it stopped", func(out string) bool {
		return !strings.Contains(out, iqnT1) && !strings.Contains(out, iqnT3)
	})
	if out := d.Adm(t, "--list", "entities"); strings.Contains(out, "scstd:") {
		t.Errorf("the daemon's entity is still registered after it stopped:\n%s", out)
	}
}

// TestAccessISNSAccessControl: with access_control = true, SendTargets
// lists, and logins admit, only the targets that isnsd places in a
// discovery domain with the initiator.
func TestAccessISNSAccessControl(t *testing.T) {
	requireTools(t, "iscsi-ls", "iscsi-inq")
	d := startISNSD(t)
	tgt := testtarget.Start(t, isnsConfig(d.Addr, false))
	waitForISNS(t, d, "nodes", "t1 and t2 registered", func(out string) bool {
		return strings.Contains(out, iqnT1) && strings.Contains(out, iqnT2)
	})

	// Discovery domains: host1 with t1, host2 with t2; host3 is
	// registered but in none (so only in the default domain, which holds
	// neither target); an unregistered initiator is in no domain at all.
	d.Adm(t, "--register", "entity=hosts", "initiator,iscsi-name="+isnsHost1,
		"initiator,iscsi-name="+isnsHost2, "initiator,iscsi-name="+isnsHost3)
	d.Adm(t, "--dd-register", "dd-name=dd1", "dd-member-name="+iqnT1, "dd-member-name="+isnsHost1)
	d.Adm(t, "--dd-register", "dd-name=dd2", "dd-member-name="+iqnT2, "dd-member-name="+isnsHost2)

	const unregistered = "iqn.2026-11.org.example:isns-stranger"
	for _, c := range []struct {
		initiator string
		sees      []string
	}{
		{isnsHost1, []string{iqnT1}},
		{isnsHost2, []string{iqnT2}},
		{isnsHost3, nil},
		{unregistered, nil},
	} {
		t.Run(c.initiator, func(t *testing.T) {
			out := mustRun(t, "iscsi-ls", "-i", c.initiator, tgt.URL())
			for _, target := range []string{iqnT1, iqnT2} {
				want := contains(c.sees, target)
				if got := strings.Contains(out, "Target:"+target+" "); got != want {
					t.Errorf("SendTargets for %s lists %s: %v, want %v\n%s", c.initiator, target, got, want, out)
				}
				_, err := run(t, toolTimeout, "iscsi-inq", "-i", c.initiator, tgt.LUNURL(target, 0))
				if (err == nil) != want {
					t.Errorf("iscsi-inq as %s on %s succeeded: %v, want %v", c.initiator, target, err == nil, want)
				}
				if !want {
					if st := loginStatus(t, tgt.Portal(), c.initiator, target, nil); st != iscsi.LoginNotFound {
						t.Errorf("login of %s to %s: status %v, want %v", c.initiator, target, st, iscsi.LoginNotFound)
					}
				}
			}
		})
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// loginStatus logs in to target as initiator with the Go initiator (CHAP
// with chap when non-nil) and returns the login status (LoginSuccess after
// a completed login, which it logs out of).
func loginStatus(t *testing.T, portal, initiatorName, target string, chap *initiator.CHAP) iscsi.LoginStatus {
	t.Helper()
	c, err := initiator.Dial(portal)
	if err != nil {
		t.Fatalf("dialing %s: %v", portal, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	err = c.Login(initiator.Options{InitiatorName: initiatorName, TargetName: target, CHAP: chap})
	var le *initiator.LoginError
	switch {
	case err == nil:
		c.Logout()
		return iscsi.LoginSuccess
	case errors.As(err, &le):
		return le.Status
	default:
		t.Fatalf("login of %s to %q: %v", initiatorName, target, err)
		return 0
	}
}
