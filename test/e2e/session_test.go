package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
)

const sessionConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_nullio" {
  device "null0" {
    size = "64MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "null0" }
}
`

// liveSessions reads the sessions from `scstd status -json`.
func liveSessions(t *testing.T, tgt *testtarget.Target) []iscsi.SessionInfo {
	t.Helper()
	out, code := testtarget.Run(t, "status", "-json", "-admin-socket", tgt.AdminSocket())
	if code != 0 {
		t.Fatalf("scstd status -json: exit %d\n%s", code, out)
	}
	var st struct {
		Engine struct {
			Sessions []iscsi.SessionInfo `json:"sessions"`
		} `json:"engine"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -json: %v\n%s", err, out)
	}
	return st.Engine.Sessions
}

// TestStatusShowsSessionAndSessionCloseEndsIt: `scstd status` shows a
// live session with its negotiated parameters and connection, and
// `scstd session close TARGET INITIATOR` ends exactly that session.
func TestStatusShowsSessionAndSessionCloseEndsIt(t *testing.T) {
	tgt := testtarget.Start(t, sessionConfig)
	const who = "iqn.2026-11.org.example:closeme"
	login := func(name string) *initiator.Conn {
		c, err := initiator.Dial(tgt.Portal())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(time.Minute))
		if err := c.Login(initiator.Options{InitiatorName: name, TargetName: iqnT1, MaxRecvDSL: 65536}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	victim := login(who)
	bystander := login("iqn.2026-11.org.example:bystander")

	var found *iscsi.SessionInfo
	for _, s := range liveSessions(t, tgt) {
		if s.Initiator == who {
			found = &s
		}
	}
	if found == nil {
		t.Fatalf("status shows no session of %s", who)
	}
	if found.Target != iqnT1 || found.TSIH == 0 || found.ISID == "" || len(found.Connections) != 1 ||
		found.Connections[0].Portal != tgt.Portal() || found.Params.MaxXmitDSL != 65536 {
		t.Errorf("session in status = %+v", *found)
	}
	text, code := testtarget.Run(t, "status", "-admin-socket", tgt.AdminSocket())
	if code != 0 || !strings.Contains(text, who) {
		t.Errorf("scstd status (text): exit %d, no line for %s:\n%s", code, who, text)
	}

	out, code := testtarget.Run(t, "session", "-admin-socket", tgt.AdminSocket(), "close", iqnT1, who)
	if code != 0 || !strings.Contains(out, "closed 1 session") {
		t.Fatalf("scstd session close: exit %d\n%s", code, out)
	}
	if _, err := victim.NOP([]byte("ping")); err == nil {
		t.Error("the closed session still answers a NOP-Out")
	}
	if _, err := bystander.NOP([]byte("ping")); err != nil {
		t.Errorf("closing one session hurt another: %v", err)
	}
	for _, s := range liveSessions(t, tgt) {
		if s.Initiator == who {
			t.Errorf("status still shows the closed session: %+v", s)
		}
	}

	out, code = testtarget.Run(t, "session", "-admin-socket", tgt.AdminSocket(), "close", iqnT1, who)
	if code != 1 {
		t.Errorf("closing a session that is gone: exit %d, want 1\n%s", code, out)
	}
}

// TestConfigHashMatchesFile: the hash the daemon reports for the running
// configuration is the file's SHA-256, so tooling can detect drift with
// sha256sum; it follows a reload.
func TestConfigHashMatchesFile(t *testing.T) {
	tgt := testtarget.Start(t, sessionConfig)
	fileHash := func() string {
		b, err := os.ReadFile(tgt.ConfigPath())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	last, err := tgt.Admin().LastReload()
	if err != nil {
		t.Fatal(err)
	}
	if last.ConfigHash != fileHash() {
		t.Errorf("running config hash %s, file's SHA-256 %s", last.ConfigHash, fileHash())
	}
	r := tgt.Reconfigure(strings.Replace(sessionConfig, `size = "64MiB"`, `size = "128MiB"`, 1))
	if !r.OK || r.ConfigHash != fileHash() {
		t.Errorf("after reload: ok=%v hash %s, file's SHA-256 %s", r.OK, r.ConfigHash, fileHash())
	}
}
