package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
)

// accessRules are the access rules of the reload scenario's target rl.
type accessRules struct {
	secret     string   // alice's secret
	portals    []string // allowed_portals
	initiators []string // of group g, the only way to rl's LUN
}

// rlSecret1 and rlSecret2 are alice's secrets before and after the edit.
const rlSecret1, rlSecret2 = "rl-secret-one-01", "rl-secret-two-02"

func quoted(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// config renders rl with the rules.
func (r accessRules) config() string {
	return `
iscsi { ` + threePortals + ` }
handler "vdisk_fileio" {
  device "d" {
    filename = "{{.Dir}}/d.img"
    size     = "16MiB"
  }
}
target "iqn.2026-11.org.example:rl" {
  incoming_user "alice" { secret = "` + r.secret + `" }
  allowed_portals = [` + quoted(r.portals) + `]
  group "g" {
    initiators = [` + quoted(r.initiators) + `]
    lun "0" { device = "d" }
  }
}
`
}

// TestAccessReloadAffectsNextLoginOnly: a live session (logged in through
// 127.0.0.2 as alice with the first secret) keeps doing I/O while reloads
// change alice's secret, drop 127.0.0.2 from allowed_portals and change
// group g's initiators; each change refuses or admits the NEXT login.
func TestAccessReloadAffectsNextLoginOnly(t *testing.T) {
	rules := accessRules{secret: rlSecret1, portals: []string{"127.0.0.1", "127.0.0.2"},
		initiators: []string{org("live"), org("a")}}
	tgt := testtarget.Start(t, rules.config())
	rl := org("rl")
	p1, p2 := portalOn(tgt, "127.0.0.1"), portalOn(tgt, "127.0.0.2")

	live, err := goLogin(t, "", p2, initiator.Options{InitiatorName: org("live"), TargetName: rl,
		CHAP: &initiator.CHAP{Name: "alice", Secret: rlSecret1}})
	if err != nil {
		t.Fatalf("live session: %v", err)
	}
	ios := 0
	liveIO := func(when string) {
		t.Helper()
		for range 4 {
			ios++
			if err := writeRead(live, 0, uint32(ios), byte(ios)); err != nil {
				t.Fatalf("live session %s: %v", when, err)
			}
		}
	}
	liveIO("before the reloads")

	type attempt struct {
		via, initiator, secret string
		want                   iscsi.LoginStatus
	}
	check := func(when string, attempts []attempt) {
		t.Helper()
		for _, a := range attempts {
			_, err := goLogin(t, nextLoopback(), a.via, initiator.Options{InitiatorName: a.initiator, TargetName: rl,
				CHAP: &initiator.CHAP{Name: "alice", Secret: a.secret}})
			if st := statusOf(t, err); st != a.want {
				t.Errorf("%s: login of %s via %s with secret %s: %v, want %v", when, a.initiator, a.via, a.secret, st, a.want)
			}
		}
	}
	check("at start", []attempt{
		{p2, org("a"), rlSecret1, iscsi.LoginSuccess},
		{p1, org("a"), rlSecret1, iscsi.LoginSuccess},
		{p1, org("a"), rlSecret2, iscsi.LoginAuthFailed},
		{p1, org("b"), rlSecret1, iscsi.LoginNotFound},
		{portalOn(tgt, "127.0.0.3"), org("a"), rlSecret1, iscsi.LoginNotFound},
	})

	for _, step := range []struct {
		name     string
		change   func(r *accessRules)
		attempts []attempt
	}{
		{"alice's secret changed", func(r *accessRules) { r.secret = rlSecret2 }, []attempt{
			{p2, org("a"), rlSecret1, iscsi.LoginAuthFailed},
			{p2, org("a"), rlSecret2, iscsi.LoginSuccess},
		}},
		{"127.0.0.2 dropped from allowed_portals", func(r *accessRules) { r.portals = []string{"127.0.0.1"} }, []attempt{
			{p2, org("a"), rlSecret2, iscsi.LoginNotFound},
			{p1, org("a"), rlSecret2, iscsi.LoginSuccess},
		}},
		{"group g admits b instead of a", func(r *accessRules) { r.initiators = []string{org("live"), org("b")} }, []attempt{
			{p1, org("b"), rlSecret2, iscsi.LoginSuccess},
			{p1, org("a"), rlSecret2, iscsi.LoginNotFound},
		}},
	} {
		step.change(&rules)
		r := tgt.Reconfigure(rules.config())
		if !r.OK {
			t.Fatalf("%s: reload: %s\n%s", step.name, r.Error, r.Diagnostics)
		}
		check(step.name, step.attempts)
		liveIO("after: " + step.name)
		if _, err := live.NOP([]byte("still here")); err != nil {
			t.Fatalf("live session after %s: NOP: %v", step.name, err)
		}
	}
	t.Logf("the live session did %d write+read pairs across the reloads", ios)
}
