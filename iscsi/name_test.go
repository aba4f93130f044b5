package iscsi

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"iqn with unique part", "iqn.2026-11.org.example:storage.disk1", true},
		{"iqn without unique part", "iqn.2001-04.com.example", true},
		{"iqn as Linux writes it", "iqn.2005-03.org.open-iscsi:6c8f6b8a2f3", true},
		{"iqn with upper case and underscore", "iqn.1991-05.com.microsoft:WIN_HOST-01", true},
		{"iqn with UTF-8 unique part", "iqn.2026-11.org.example:stockage-été", true},
		{"eui", "eui.02004567A425678D", true},
		{"naa 16", "naa.52004567BA64678D", true},
		{"naa 32", "naa.62004567BA64678D0123456789ABCDEF", true},
		{"empty", "", false},
		{"no prefix", "example.com:disk", false},
		{"ESC sequence", "iqn.2026-11.org.example:\x1b[2J", false},
		{"forged log line", "iqn.2026-11.org.example:a\nengine: ok", false},
		{"carriage return", "iqn.2026-11.org.example:a\r", false},
		{"C1 control", "iqn.2026-11.org.example:a\u009b", false},
		{"space", "iqn.2026-11.org.example:a b", false},
		{"NBSP", "iqn.2026-11.org.example:a\u00a0b", false},
		{"invalid UTF-8", "iqn.2026-11.org.example:\xff", false},
		{"bad date", "iqn.26-11.org.example", false},
		{"month 13", "iqn.2026-13.org.example", false},
		{"empty domain label", "iqn.2026-11.org..example", false},
		{"no naming authority", "iqn.2026-11.:x", false},
		{"domain character", "iqn.2026-11.org_example:x", false},
		{"eui too short", "eui.0200", false},
		{"eui not hex", "eui.02004567A425678G", false},
		{"naa 20 digits", "naa.52004567BA64678D1234", false},
		{"too long", "iqn.2026-11.org.example:" + strings.Repeat("a", MaxNameLength), false},
	}
	for _, tc := range tests {
		if err := CheckName(tc.in); (err == nil) != tc.ok {
			t.Errorf("%s: CheckName(%q) = %v, want ok %v", tc.name, tc.in, err, tc.ok)
		}
	}
}

// TestLoginRefusesCraftedNames: a name with control characters or not in
// one of the three forms is refused with INITIATOR ERROR (0200h).
func TestLoginRefusesCraftedNames(t *testing.T) {
	s := wireServer(t, nil)
	for _, kv := range []Text{
		{{"InitiatorName", "iqn.2026-11.org.example:\x1b[2J\x1b[H"}, {"TargetName", wireTarget}},
		{{"InitiatorName", "iqn.2026-11.org.example:x\nengine: forged"}, {"SessionType", "Discovery"}},
		{{"InitiatorName", "not-a-name"}, {"TargetName", wireTarget}},
		{{"InitiatorName", wireInitiator}, {"TargetName", "iqn.2026-11.org.example:t\x07"}},
	} {
		c, done := startLogin(t, s)
		c.login(LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature}, kv)
		if rsp, _ := c.loginResponse(); rsp.Status != LoginInitiatorError {
			t.Errorf("%q: status %s, want INITIATOR ERROR", kv, rsp.Status)
		}
		<-done
	}
}

func FuzzCheckName(f *testing.F) {
	f.Add("iqn.2026-11.org.example:a")
	f.Add("eui.02004567A425678D")
	f.Add("naa.52004567BA64678D")
	f.Add("iqn.2026-11.org.example:\x1b")
	f.Fuzz(func(t *testing.T, s string) {
		if CheckName(s) != nil {
			return
		}
		if !utf8.ValidString(s) || len(s) > MaxNameLength {
			t.Fatalf("accepted %q", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) || unicode.IsSpace(r) {
				t.Fatalf("accepted %q with %U", s, r)
			}
		}
	})
}
