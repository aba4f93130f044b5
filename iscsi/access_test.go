package iscsi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/scstd/scstd/scsi"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		s       string
		want    bool
	}{
		{"10.170.7?.*", "10.170.77.2", true},
		{"10.170.7?.*", "10.170.67.2", false},
		{"10.170.7?.*", "10.170.7.2", false},
		{"*", "", true},
		{"*", "anything", true},
		{"?", "", false},
		{"?", "é", true}, // one character, two bytes
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"*a", "*ba", true}, // a literal '*' in the subject is just a character
		{"*.example.com", "host.example.com", true},
		{"*.example.com", "example.com", false},
		{"iqn.1991-05.com.microsoft:*", "IQN.1991-05.COM.MICROSOFT:Host1", true}, // case-insensitive
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"**x", "x", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"!10.0.0.1", "10.0.0.1", true}, // Match ignores the negation
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
		}
		if got := p.Match(tt.s); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestPatternMatchIsNotExponential(t *testing.T) {
	p, _ := ParsePattern(strings.Repeat("*a", 30) + "b")
	if p.Match(strings.Repeat("a", 5000)) {
		t.Fatal("matched")
	}
}

func TestParsePatternErrors(t *testing.T) {
	for _, s := range []string{"", "!", "a\x00b", "tab\there", "\xff"} {
		if _, err := ParsePattern(s); err == nil {
			t.Errorf("ParsePattern(%q) accepted", s)
		}
	}
	if _, err := ParsePatternList([]string{"ok", "!"}); err == nil {
		t.Error("ParsePatternList accepts a bare !")
	}
}

func TestPatternList(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		match    []string
		noMatch  []string
	}{
		{"empty list matches nothing", nil, nil, []string{"", "x"}},
		{"positives are ORed", []string{"10.170.77.2", "10.170.75.2"},
			[]string{"10.170.77.2", "10.170.75.2"}, []string{"10.170.76.2"}},
		{"only negations: everything else", []string{"!10.170.77.2"},
			[]string{"10.170.77.3", "192.0.2.1"}, []string{"10.170.77.2"}},
		{"several negations are ANDed", []string{"!10.170.77.2", "!192.0.2.*"},
			[]string{"10.170.77.3"}, []string{"10.170.77.2", "192.0.2.9"}},
		{"design example: positive minus negative", []string{"10.170.7?.*", "!10.170.77.2"},
			[]string{"10.170.75.2", "10.170.77.3"}, []string{"10.170.77.2", "10.170.67.2"}},
		{"!* refuses everything", []string{"!*"}, nil, []string{"10.0.0.1", ""}},
		{"group example", []string{"iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest"},
			[]string{"iqn.1991-05.com.microsoft:host1"},
			[]string{"iqn.1991-05.com.microsoft:guest", "iqn.2004-10.com.ubuntu:01:abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParsePatternList(tt.patterns)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.match {
				if !l.Match(s) {
					t.Errorf("%q does not match %q", tt.patterns, s)
				}
			}
			for _, s := range tt.noMatch {
				if l.Match(s) {
					t.Errorf("%q matches %q", tt.patterns, s)
				}
			}
			if got := l.Patterns(); len(got) != len(tt.patterns) {
				t.Errorf("Patterns() = %q", got)
			}
		})
	}
}

func accessLUNMap(luns ...scsi.LUN) *scsi.LUNMap {
	m := map[scsi.LUN]*scsi.LogicalUnit{}
	for _, l := range luns {
		m[l] = &scsi.LogicalUnit{Device: &scsi.Device{}}
	}
	return scsi.NewLUNMap(m)
}

func mustPatterns(t *testing.T, p ...string) PatternList {
	t.Helper()
	l, err := ParsePatternList(p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestAccessGroupMatrix checks which LUN map, group, visibility and login
// decision several initiators get on several targets.
func TestAccessGroupMatrix(t *testing.T) {
	defaultLUNs := accessLUNMap(0, 1)
	specialLUNs := accessLUNMap(0)
	linuxLUNs := accessLUNMap(5, 6, 7)
	targets := map[string]Access{
		// Default LUNs for everyone, Microsoft hosts but the guest see the
		// special group.
		"design": {
			LUNs: defaultLUNs,
			Groups: []Group{{Name: "special_ini", LUNs: specialLUNs,
				Initiators: mustPatterns(t, "iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest")}},
		},
		// No default LUNs: only group members get in (SCST README, "allow
		// only a specific set of initiators").
		"allowlist": {
			Groups: []Group{{Name: "linux", LUNs: linuxLUNs, Initiators: mustPatterns(t, "iqn.2004-10.com.ubuntu:*")}},
		},
		// An empty group blocks its members (SCST README, "denied_inis").
		"denylist": {
			LUNs:   defaultLUNs,
			Groups: []Group{{Name: "denied", Initiators: mustPatterns(t, "!iqn.2004-10.com.ubuntu:01:good")}},
		},
		// First matching group wins.
		"ordered": {
			LUNs: defaultLUNs,
			Groups: []Group{
				{Name: "first", LUNs: specialLUNs, Initiators: mustPatterns(t, "*:host1")},
				{Name: "second", LUNs: linuxLUNs, Initiators: mustPatterns(t, "iqn.*")},
			},
		},
	}
	initiators := []string{
		"iqn.1991-05.com.microsoft:host1",
		"iqn.1991-05.com.microsoft:guest",
		"iqn.2004-10.com.ubuntu:01:good",
		"iqn.2004-10.com.ubuntu:01:other",
	}
	type cell struct {
		group string
		luns  int // 0: hidden and refused
	}
	want := map[string][]cell{
		"design":    {{"special_ini", 1}, {"", 2}, {"", 2}, {"", 2}},
		"allowlist": {{"", 0}, {"", 0}, {"linux", 3}, {"linux", 3}},
		"denylist":  {{"denied", 0}, {"denied", 0}, {"", 2}, {"denied", 0}},
		"ordered":   {{"first", 1}, {"second", 3}, {"second", 3}, {"second", 3}},
	}
	for tname, acc := range targets {
		for i, ini := range initiators {
			t.Run(tname+"/"+ini, func(t *testing.T) {
				w := want[tname][i]
				m, g := acc.LUNsFor(ini, "192.0.2.1")
				if g != w.group || m.Len() != w.luns {
					t.Fatalf("LUNsFor = %d LUNs in group %q, want %d in %q", m.Len(), g, w.luns, w.group)
				}
				if acc.Visible(ini, "192.0.2.1") != (w.luns > 0) {
					t.Fatalf("Visible = %v with %d LUNs", !(w.luns > 0), w.luns)
				}
				err := acc.CheckLogin(ini, "192.0.2.1")
				if w.luns > 0 {
					if err != nil {
						t.Fatalf("CheckLogin: %v", err)
					}
					return
				}
				var ae *AccessError
				if !errors.As(err, &ae) || !errors.Is(err, ErrNoLUNs) || ae.LoginStatus() != 0x0203 || ae.Group != w.group {
					t.Fatalf("CheckLogin = %v, want ErrNoLUNs in group %q", err, w.group)
				}
			})
		}
	}
}

func TestAccessPortals(t *testing.T) {
	a := Access{
		LUNs:    accessLUNMap(0),
		Portals: PortalRules{Allowed: mustPatterns(t, "10.170.7?.*", "!10.170.77.2", "fd00::*")},
	}
	tests := []struct {
		portal string
		ok     bool
	}{
		{"10.170.75.1", true},
		{"10.170.77.2", false},
		{"10.170.67.2", false},
		{"fd00::1", true},
		{"fe80::1", false},
	}
	for _, tt := range tests {
		err := a.CheckLogin("iqn.x:y", tt.portal)
		if tt.ok != (err == nil) || a.Visible("iqn.x:y", tt.portal) != tt.ok || a.Portals.Allows(tt.portal) != tt.ok {
			t.Errorf("portal %s: CheckLogin = %v, want allowed=%v", tt.portal, err, tt.ok)
		}
		if !tt.ok && !errors.Is(err, ErrPortalNotAllowed) {
			t.Errorf("portal %s: %v, want ErrPortalNotAllowed", tt.portal, err)
		}
	}
	if !(PortalRules{}).Allows("203.0.113.9") {
		t.Error("no allowed_portals must allow every portal")
	}
}

func TestAccessPerPortalACL(t *testing.T) {
	// SCST README example 3: block one initiator on one portal only, and
	// another on every portal.
	a := Access{
		LUNs: accessLUNMap(0),
		Groups: []Group{{Name: "BLOCKING_GROUP", Initiators: mustPatterns(t,
			"iqn.2005-03.org.vlnb:cacdcd2520#10.170.77.2",
			"iqn.2005-03.org.vlnb:other*")}},
		Portals: PortalRules{PerPortalACL: true},
	}
	tests := []struct {
		ini, portal string
		ok          bool
	}{
		{"iqn.2005-03.org.vlnb:cacdcd2520", "10.170.77.2", false},
		{"iqn.2005-03.org.vlnb:cacdcd2520", "10.170.77.3", true},
		{"iqn.2005-03.org.vlnb:other", "10.170.77.3", false},
		{"iqn.2005-03.org.vlnb:other", "10.170.77.2", false},
		{"iqn.2005-03.org.vlnb:third", "10.170.77.2", true},
	}
	for _, tt := range tests {
		if got := a.Visible(tt.ini, tt.portal); got != tt.ok {
			t.Errorf("%s on %s: visible=%v, want %v", tt.ini, tt.portal, got, tt.ok)
		}
	}
	if k := a.InitiatorKey("iqn.a:b", "fd00::1"); k != "iqn.a:b#fd00::1" {
		t.Errorf("InitiatorKey = %q", k)
	}
	a.Portals.PerPortalACL = false
	if k := a.InitiatorKey("iqn.a:b", "fd00::1"); k != "iqn.a:b" {
		t.Errorf("InitiatorKey without per-portal ACL = %q", k)
	}
}

func TestPortalIP(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 3260}, "192.0.2.1"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 3260}, "192.0.2.1"},
		{&net.TCPAddr{IP: net.ParseIP("fd00::1"), Port: 3260}, "fd00::1"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 3260, Zone: "eth0"}, "fe80::1"},
		{&net.UnixAddr{Name: "/run/x", Net: "unix"}, "/run/x"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := PortalIP(tt.addr); got != tt.want {
			t.Errorf("PortalIP(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestParseRedirect(t *testing.T) {
	tests := []struct {
		in     string
		addr   string // "" for an error
		perm   bool
		status uint16
	}{
		{"192.0.2.20:3260 temp", "192.0.2.20:3260", false, 0x0101},
		{"192.0.2.20 perm", "192.0.2.20:3260", true, 0x0102},
		{"  192.0.2.20:3261   TEMP ", "192.0.2.20:3261", false, 0x0101},
		{"[2001:db8::1]:3262 perm", "[2001:db8::1]:3262", true, 0x0102},
		{"[2001:db8::1] temp", "[2001:db8::1]:3260", false, 0x0101},
		{"target2.example.com:3260 temp", "target2.example.com:3260", false, 0x0101},
		{"2001:db8::1 temp", "", false, 0},       // IPv6 must be bracketed
		{"192.0.2.20:3260", "", false, 0},        // kind missing
		{"192.0.2.20:3260 moved", "", false, 0},  // unknown kind
		{"192.0.2.20:0 temp", "", false, 0},      // port 0
		{"192.0.2.20:70000 temp", "", false, 0},  // port too large
		{"[192.0.2.20]:3260 temp", "", false, 0}, // IPv4 in brackets
		{"[2001:db8::1 temp", "", false, 0},
		{"[2001:db8::1]x temp", "", false, 0},
		{"bad_host!:3260 temp", "", false, 0},
		{"", "", false, 0},
		{"a b c", "", false, 0},
	}
	for _, tt := range tests {
		r, err := ParseRedirect(tt.in)
		if tt.addr == "" {
			if err == nil {
				t.Errorf("ParseRedirect(%q) = %+v, want an error", tt.in, r)
			}
			continue
		}
		if err != nil || r.Addr != tt.addr || r.Permanent != tt.perm || r.LoginStatus() != tt.status {
			t.Errorf("ParseRedirect(%q) = %+v, %v; want %s perm=%v", tt.in, r, err, tt.addr, tt.perm)
			continue
		}
		if keys := r.LoginKeys(); len(keys) != 1 || keys[0] != "TargetAddress="+tt.addr {
			t.Errorf("LoginKeys = %q", keys)
		}
		back, err := ParseRedirect(r.String())
		if err != nil || back != r {
			t.Errorf("round trip of %q: %+v, %v", r.String(), back, err)
		}
	}
}

func TestCHAPUserRedacted(t *testing.T) {
	u := CHAPUser{Name: "joe", Secret: []byte("hunter2-hunter2")}
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("login", "user", u, "ptr", &u)
	outputs := []string{
		fmt.Sprint(u), fmt.Sprintf("%v %+v %#v %s", u, u, u, u), fmt.Sprintf("%v", &u),
		fmt.Sprintf("%v", Auth{Incoming: []CHAPUser{u}, Outgoing: &u}),
		logBuf.String(),
	}
	for _, s := range outputs {
		if strings.Contains(s, "hunter2") || strings.Contains(s, fmt.Sprint([]byte("hunter2"))[1:10]) {
			t.Errorf("secret printed: %s", s)
		}
		if !strings.Contains(s, "joe") {
			t.Errorf("name missing: %s", s)
		}
	}
}

func TestAuthValidate(t *testing.T) {
	ok := testAuth()
	tests := []struct {
		name string
		auth Auth
		ok   bool
	}{
		{"good", *ok, true},
		{"no users", Auth{}, true},
		{"empty secret", Auth{Incoming: []CHAPUser{{Name: "a"}}}, false},
		{"empty name", Auth{Incoming: []CHAPUser{{Secret: []byte("x")}}}, false},
		{"shared secret", Auth{Incoming: ok.Incoming, Outgoing: &CHAPUser{Name: "o", Secret: []byte("joe-secret-12")}}, false},
		{"bad outgoing", Auth{Outgoing: &CHAPUser{Name: "o"}}, false},
		{"bad algorithm", Auth{Algorithms: []CHAPAlgorithm{CHAPMD5, 42}}, false},
	}
	for _, tt := range tests {
		err := tt.auth.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret-12") {
			t.Errorf("%s: error shows a secret: %v", tt.name, err)
		}
	}
}

func FuzzPatternMatch(f *testing.F) {
	f.Add("10.170.7?.*", "10.170.77.2")
	f.Add("!*a*b?", "xaxbz")
	f.Add("é*?", "\xff\xfe")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		m := p.Match(s)
		// A pattern without wildcards matches exactly its own text
		// (case-insensitively).
		body := strings.TrimPrefix(pattern, "!")
		if !strings.ContainsAny(body, "*?") && utf8.ValidString(s) && m != strings.EqualFold(body, s) {
			t.Fatalf("%q.Match(%q) = %v", pattern, s, m)
		}
		// "*" + body + "*" matches whenever body does.
		if m && !p.negate {
			if q, err := ParsePattern("*" + body + "*"); err == nil && !q.Match(s) {
				t.Fatalf("*%s* does not match %q", body, s)
			}
		}
	})
}
