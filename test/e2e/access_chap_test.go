package e2e

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
)

// Secrets of the CHAP scenario. Each is distinct, so that finding one in
// an output names the leak.
const (
	aliceSecret     = "alice-file-secret-01" // file()
	aliceSecret2    = "alice-file-secret-99" // file() after an edit
	bobSecret       = "bob-env-secret-0005"  // env()
	c1OutSecret     = "c1-out-secret-003"
	carolSecret     = "carol-secret-0004"
	discoSecret     = "disco-secret-0001"
	discoOutSecret  = "disco-out-secret-02"
	wrongSecret     = "wrong-secret-00077"
	wrongOutSecret  = "c1-out-wrong-0033"
	bobSecretEnvVar = "SCSTD_E2E_BOB_SECRET"
)

// chapConfig: discovery needs CHAP (disco, mutual disco-out); c1 admits
// alice (secret from a file) or bob (secret from the environment) and
// answers mutual CHAP as c1-out; c2 admits carol with SHA-256 or MD5
// only; open has no CHAP.
const chapConfig = `
iscsi {
  portals = ["{{.Portal}}"]
  incoming_user "disco" { secret = "` + discoSecret + `" }
  outgoing_user "disco-out" { secret = "` + discoOutSecret + `" }
}

handler "vdisk_fileio" {
  device "n1" {
    filename = "{{.Dir}}/n1.img"
    size     = "16MiB"
  }
}

handler "vdisk_nullio" {
  device "n2" { size = "16MiB" }
  device "n3" { size = "16MiB" }
}

target "iqn.2026-11.org.example:c1" {
  incoming_user "alice" { secret = file("alice.secret") }
  incoming_user "bob" { secret = env("` + bobSecretEnvVar + `") }
  outgoing_user "c1-out" { secret = "` + c1OutSecret + `" }
  lun "0" { device = "n1" }
}

target "iqn.2026-11.org.example:c2" {
  incoming_user "carol" { secret = "` + carolSecret + `" }
  chap_algorithms = ["SHA-256", "MD5"]
  lun "0" { device = "n2" }
}

target "iqn.2026-11.org.example:open" {
  lun "0" { device = "n3" }
}
`

// startCHAPTarget writes alice's secret file, sets bob's variable and
// starts the daemon on chapConfig.
func startCHAPTarget(t *testing.T) *testtarget.Target {
	t.Helper()
	t.Setenv(bobSecretEnvVar, bobSecret)
	tgt := testtarget.New(t, chapConfig)
	writeFile(t, tgt.Path("alice.secret"), aliceSecret+"\n")
	tgt.Start()
	return tgt
}

// chapURL is an iscsi:// URL with CHAP credentials (and mutual CHAP
// credentials of the target when tuser is set). path is "" for discovery
// or "/target/lun".
func chapURL(portal, user, secret, path, tuser, tsecret string) string {
	u := "iscsi://"
	if user != "" {
		u += user + "%" + secret + "@"
	}
	u += portal + path
	if tuser != "" {
		u += "?target_user=" + tuser + "&target_password=" + tsecret
	}
	return u
}

// TestAccessCHAPLibiscsi: CHAP with libiscsi's tools, for normal and
// discovery sessions, one-way and mutual.
func TestAccessCHAPLibiscsi(t *testing.T) {
	requireTools(t, "iscsi-inq", "iscsi-ls")
	tgt := startCHAPTarget(t)
	p := tgt.Portal()
	c1 := "/" + org("c1") + "/0"
	// A CHAP-authenticated login clears the address's failed-login count,
	// so that the refusals below are not slowed down by each other.
	forgive := func(t *testing.T) {
		t.Helper()
		_, err := goLogin(t, "", p, initiator.Options{TargetName: org("c1"), CHAP: &initiator.CHAP{Name: "alice", Secret: aliceSecret}})
		if err != nil {
			t.Fatalf("alice's login: %v", err)
		}
	}
	for _, c := range []struct {
		name, tool, url string
		ok              bool
	}{
		{"alice, secret from file()", "iscsi-inq", chapURL(p, "alice", aliceSecret, c1, "", ""), true},
		{"bob, secret from env()", "iscsi-inq", chapURL(p, "bob", bobSecret, c1, "", ""), true},
		{"wrong secret", "iscsi-inq", chapURL(p, "alice", wrongSecret, c1, "", ""), false},
		{"another target's user", "iscsi-inq", chapURL(p, "carol", carolSecret, c1, "", ""), false},
		{"no CHAP (AuthMethod=None)", "iscsi-inq", chapURL(p, "", "", c1, "", ""), false},
		{"mutual", "iscsi-inq", chapURL(p, "alice", aliceSecret, c1, "c1-out", c1OutSecret), true},
		{"mutual, target fails", "iscsi-inq", chapURL(p, "alice", aliceSecret, c1, "c1-out", wrongOutSecret), false},
		{"target without CHAP", "iscsi-inq", chapURL(p, "", "", "/"+org("open")+"/0", "", ""), true},
		{"discovery", "iscsi-ls", chapURL(p, "disco", discoSecret, "", "", ""), true},
		{"discovery, wrong secret", "iscsi-ls", chapURL(p, "disco", wrongSecret, "", "", ""), false},
		{"discovery without CHAP", "iscsi-ls", chapURL(p, "", "", "", "", ""), false},
		{"discovery, mutual", "iscsi-ls", chapURL(p, "disco", discoSecret, "", "disco-out", discoOutSecret), true},
		{"discovery, mutual, target fails", "iscsi-ls", chapURL(p, "disco", discoSecret, "", "disco-out", wrongOutSecret), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := run(t, toolTimeout, c.tool, c.url)
			if (err == nil) != c.ok {
				t.Errorf("%s succeeded: %v, want %v\n%s", c.tool, err == nil, c.ok, out)
			}
			if c.ok && c.tool == "iscsi-ls" && !strings.Contains(out, "Target:"+org("c1")+" ") {
				t.Errorf("discovery does not list c1:\n%s", out)
			}
			if c.ok && c.tool == "iscsi-inq" && !strings.Contains(out, "DIRECT_ACCESS") {
				t.Errorf("iscsi-inq:\n%s", out)
			}
			if !c.ok {
				forgive(t)
			}
		})
	}
	assertNoSecrets(t, tgt)
}

// TestAccessCHAPGo: the Go initiator's CHAP: the strongest algorithm both
// sides allow wins, a reflected challenge and a login without CHAP are
// refused with 0201h, users are per target, mutual CHAP authenticates the
// target.
func TestAccessCHAPGo(t *testing.T) {
	tgt := startCHAPTarget(t)
	alice := func(algs ...access.CHAPAlgorithm) *initiator.CHAP {
		return &initiator.CHAP{Algorithms: algs, Name: "alice", Secret: aliceSecret}
	}
	carol := func(algs ...access.CHAPAlgorithm) *initiator.CHAP {
		return &initiator.CHAP{Algorithms: algs, Name: "carol", Secret: carolSecret}
	}
	for _, c := range []struct {
		name    string
		target  string // "" for discovery
		chap    *initiator.CHAP
		wantAlg access.CHAPAlgorithm // on success
		status  iscsi.LoginStatus
		err     error // a failure on the initiator's side
	}{
		{"every algorithm offered: SHA3-256", org("c1"), alice(), access.CHAPSHA3256, iscsi.LoginSuccess, nil},
		{"SHA-256 and MD5 offered: SHA-256", org("c1"), alice(access.CHAPMD5, access.CHAPSHA256), access.CHAPSHA256, iscsi.LoginSuccess, nil},
		{"SHA-1 only", org("c1"), alice(access.CHAPSHA1), access.CHAPSHA1, iscsi.LoginSuccess, nil},
		{"chap_algorithms SHA-256, MD5: SHA-256", org("c2"), carol(), access.CHAPSHA256, iscsi.LoginSuccess, nil},
		{"chap_algorithms SHA-256, MD5: MD5", org("c2"), carol(access.CHAPSHA1, access.CHAPMD5), access.CHAPMD5, iscsi.LoginSuccess, nil},
		{"chap_algorithms SHA-256, MD5: SHA3-256 only", org("c2"), carol(access.CHAPSHA3256), 0, iscsi.LoginAuthFailed, nil},
		{"mutual", org("c1"), &initiator.CHAP{Name: "bob", Secret: bobSecret, TargetName: "c1-out", TargetSecret: c1OutSecret},
			access.CHAPSHA3256, iscsi.LoginSuccess, nil},
		{"mutual with the wrong target secret", org("c1"), &initiator.CHAP{Name: "bob", Secret: bobSecret, TargetSecret: wrongOutSecret},
			0, 0, initiator.ErrTargetAuth},
		{"reflected challenge", org("c1"), &initiator.CHAP{Name: "alice", Secret: aliceSecret, Reflect: true},
			0, iscsi.LoginAuthFailed, nil},
		{"AuthMethod=None", org("c1"), nil, 0, iscsi.LoginAuthFailed, nil},
		{"another target's user", org("c1"), carol(), 0, iscsi.LoginAuthFailed, nil},
		{"wrong secret", org("c1"), &initiator.CHAP{Name: "alice", Secret: wrongSecret}, 0, iscsi.LoginAuthFailed, nil},
		{"discovery, SHA-256", "", &initiator.CHAP{Algorithms: []access.CHAPAlgorithm{access.CHAPSHA256}, Name: "disco", Secret: discoSecret},
			access.CHAPSHA256, iscsi.LoginSuccess, nil},
		{"discovery, mutual SHA3-256", "", &initiator.CHAP{Name: "disco", Secret: discoSecret, TargetName: "disco-out",
			TargetSecret: discoOutSecret}, access.CHAPSHA3256, iscsi.LoginSuccess, nil},
		{"discovery, reflected challenge", "", &initiator.CHAP{Name: "disco", Secret: discoSecret, Reflect: true},
			0, iscsi.LoginAuthFailed, nil},
		{"discovery, AuthMethod=None", "", nil, 0, iscsi.LoginAuthFailed, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Each case from its own source address: the failed-login
			// throttle keys on it, and this test is not about delays.
			conn, err := goLogin(t, nextLoopback(), tgt.Portal(), initiator.Options{TargetName: c.target, CHAP: c.chap})
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("login: %v, want %v", err, c.err)
				}
				return
			}
			if st := statusOf(t, err); st != c.status {
				t.Fatalf("login: %v, want %v", st, c.status)
			}
			if c.status != iscsi.LoginSuccess {
				return
			}
			if conn.CHAPAlgorithm != c.wantAlg {
				t.Errorf("CHAP algorithm %v, want %v", conn.CHAPAlgorithm, c.wantAlg)
			}
			if c.target == "" {
				ts, err := conn.SendTargets("All")
				if err != nil || len(ts) != 3 {
					t.Errorf("SendTargets after discovery CHAP: %v %v", ts, err)
				}
				return
			}
			if got := reportLUNs(t, conn); len(got) != 1 {
				t.Errorf("REPORT LUNS after CHAP login: %v", got)
			}
		})
	}
	assertNoSecrets(t, tgt)
}

// loopbackNext counts the source addresses nextLoopback handed out.
var loopbackNext = 0

// nextLoopback returns a loopback source address (127.0.1.x) that no
// recent login used.
func nextLoopback() string {
	loopbackNext++
	return "127.0.1." + strconv.Itoa(1+loopbackNext%250)
}

// allSecrets are every secret the CHAP scenario uses, right or wrong.
var allSecrets = []string{aliceSecret, aliceSecret2, bobSecret, c1OutSecret, carolSecret, discoSecret, discoOutSecret,
	wrongSecret, wrongOutSecret}

// assertNoSecrets checks that no secret shows in the daemon's stderr,
// `scstd status -json`, `scstd plan` (after alice's secret file changed,
// so that the plan has a secret change to report) or the diagnostics of
// `scstd validate` about a secret.
func assertNoSecrets(t *testing.T, tgt *testtarget.Target) {
	t.Helper()
	leaks := func(what, out string) {
		t.Helper()
		for _, s := range allSecrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows the secret %q:\n%s", what, s, out)
			}
		}
	}
	status, code := testtarget.Run(t, "status", "-json", "-admin-socket", tgt.AdminSocket())
	if code != 0 || !strings.Contains(status, org("c1")) {
		t.Errorf("scstd status -json: exit %d\n%s", code, status)
	}
	leaks("scstd status -json", status)

	writeFile(t, tgt.Path("alice.secret"), aliceSecret2)
	plan, code := testtarget.Run(t, "plan", "-config", tgt.ConfigPath(), "-admin-socket", tgt.AdminSocket())
	if code != 2 || (!strings.Contains(plan, "alice") && !strings.Contains(plan, "incoming_user")) {
		t.Errorf("scstd plan after a secret change: exit %d (want 2, a change naming the user)\n%s", code, plan)
	}
	leaks("scstd plan", plan)
	writeFile(t, tgt.Path("alice.secret"), aliceSecret)

	// A secret too short, from a file: the diagnostic names the user.
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	writeFile(t, filepath.Join(filepath.Dir(bad), "short.secret"), "short-07")
	writeFile(t, bad, strings.Replace(chapConfig, `file("alice.secret")`, `file("short.secret")`, 1))
	diag, code := testtarget.Run(t, "validate", bad)
	if code != 1 || !strings.Contains(diag, "alice") {
		t.Errorf("scstd validate with a short secret: exit %d, want 1 and a diagnostic naming alice\n%s", code, diag)
	}
	if strings.Contains(diag, "short-07") {
		t.Errorf("scstd validate shows the short secret:\n%s", diag)
	}
	leaks("scstd validate", diag)

	// Give the daemon a moment to log the last refusals.
	time.Sleep(100 * time.Millisecond)
	logs := tgt.Stderr()
	if !strings.Contains(logs, "login refused") {
		t.Errorf("the daemon logged no refused login:\n%s", logs)
	}
	leaks("the daemon's stderr", logs)
}

// TestAccessCHAPQemu: qemu's iSCSI block driver writes and reads through
// a CHAP login with the right secret and cannot open the LUN with a wrong
// one.
func TestAccessCHAPQemu(t *testing.T) {
	requireTools(t, "qemu-io")
	tgt := startCHAPTarget(t)
	c1 := "/" + org("c1") + "/0"
	good := []string{"-f", "raw", chapURL(tgt.Portal(), "bob", bobSecret, c1, "", "")}
	out, err := qemuIO(t, good, "write -P 0x6b 4096 65536", "read -P 0x6b 4096 65536")
	if err != nil || !strings.Contains(out, "wrote 65536/65536 bytes") || !strings.Contains(out, "read 65536/65536 bytes") ||
		strings.Contains(out, "Pattern verification failed") {
		t.Errorf("qemu-io with bob's secret: %v\n%s", err, out)
	}
	bad := []string{"-f", "raw", chapURL(tgt.Portal(), "bob", wrongSecret, c1, "", "")}
	out, err = qemuIO(t, bad, "read 0 4096")
	if err == nil || strings.Contains(out, "read 4096/4096 bytes") {
		t.Errorf("qemu-io with a wrong secret read the LUN: %v\n%s", err, out)
	}
	assertNoSecrets(t, tgt)
}
