package iscsi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestLoginFailureLogged: every login that fails after the initiator
// named itself is one WARN record with target, initiator, remote address
// and reason; a connection that sends nothing is not worth a warning.
func TestLoginFailureLogged(t *testing.T) {
	chap := func(snap *Snapshot) {
		snap.Targets[wireTarget].Auth = Auth{Incoming: []CHAPUser{{Name: "joe", Secret: []byte("12charsecret")}}}
		snap.Auth = Auth{Incoming: []CHAPUser{{Name: "disco", Secret: []byte("12charsecret")}}}
	}
	long := "iqn.2026-11.org.example:" + strings.Repeat("x", 220) // 244 bytes: within a text value (255), over MaxNameLength
	tests := []struct {
		name string
		mod  func(*Snapshot)
		keys Text // nil: the initiator sends nothing and hangs up
		// hangUp: the initiator hangs up after its first request, which
		// asks for more of the security stage.
		hangUp bool
		want   map[string]any // nil: no record
	}{
		{name: "unknown target", keys: Text{{"InitiatorName", wireInitiator}, {"TargetName", "iqn.2026-11.org.example:nope"}},
			want: map[string]any{"msg": "login refused", "target": "iqn.2026-11.org.example:nope", "status": "NOT_FOUND", "reason": "no target"}},
		{name: "CHAP refused", mod: chap, keys: Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"AuthMethod", "None"}},
			want: map[string]any{"msg": "login refused", "target": wireTarget, "status": "AUTHENTICATION_FAILURE"}},
		{name: "discovery CHAP refused", mod: chap, keys: discoveryKeys,
			want: map[string]any{"msg": "login refused", "target": "", "discovery": true, "status": "AUTHENTICATION_FAILURE"}},
		{name: "long target name", keys: Text{{"InitiatorName", wireInitiator}, {"TargetName", long}},
			want: map[string]any{"msg": "login refused", "target": long[:MaxNameLength] + "..."}},
		{name: "hung up during login", keys: Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"AuthMethod", "None"}}, hangUp: true,
			want: map[string]any{"msg": "login failed", "target": wireTarget}},
		{name: "nothing sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := wireServer(t, tt.mod)
			s.log = slog.New(slog.NewJSONHandler(&buf, nil))
			c, done := startLogin(t, s)
			switch {
			case tt.keys == nil:
				c.nc.Close()
			case tt.hangUp:
				c.login(LoginRequest{CSG: StageSecurity, NSG: StageOperational}, tt.keys)
				c.loginResponse()
				c.nc.Close()
			default:
				c.login(LoginRequest{CSG: StageSecurity}, tt.keys)
				c.loginResponse()
			}
			<-done
			var recs []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var r map[string]any
				if line == "" {
					continue
				}
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatal(err)
				}
				if r["level"] == "WARN" {
					recs = append(recs, r)
				}
			}
			if tt.want == nil {
				if len(recs) != 0 {
					t.Fatalf("warned: %v", recs)
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("%d WARN records, want 1:\n%s", len(recs), buf.String())
			}
			r := recs[0]
			if r["initiator"] != wireInitiator || r["remote"] == nil || r["reason"] == "" {
				t.Errorf("record lacks initiator, remote or reason: %v", r)
			}
			for k, v := range tt.want {
				got := r[k]
				if s, ok := v.(string); ok && k == "reason" {
					if g, _ := got.(string); !strings.Contains(g, s) {
						t.Errorf("%s = %q, want it to contain %q", k, got, s)
					}
					continue
				}
				if got != v {
					t.Errorf("%s = %#v, want %#v (record %v)", k, got, v, r)
				}
			}
		})
	}
}
