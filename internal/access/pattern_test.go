package access

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"**x", "x", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"é?x*", "éyxz", true},
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

// TestPatternCase holds the case rule the package documents: SCST's
// wildcmp compares tolower() of pattern and name, and so does Match, for
// initiator names and portal addresses alike; beyond ASCII, Unicode's
// simple lower-case mapping.
func TestPatternCase(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"iqn.1991-05.com.microsoft:*", "IQN.1991-05.COM.MICROSOFT:Host1", true},
		{"IQN.1991-05.COM.MICROSOFT:HOST?", "iqn.1991-05.com.microsoft:host1", true},
		{"fd00::A*", "fd00::a1", true},
		{"iqn.2026-11.org.example:DÍSK", "iqn.2026-11.org.example:dísk", true},
		{"iqn.2026-11.org.example:disk", "iqn.2026-11.org.example:disc", false},
	}
	for _, tt := range tests {
		if got := MustPattern(tt.pattern).Match(tt.s); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		if got := MustPatterns(tt.pattern).Match(tt.s); got != tt.want {
			t.Errorf("[%q].Match(%q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestPatternMatchIsNotExponential(t *testing.T) {
	p := MustPattern(strings.Repeat("*a", 30) + "b")
	if p.Match(strings.Repeat("a", 5000)) {
		t.Fatal("matched")
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := []struct {
		in    string
		empty bool
	}{
		{"", true},
		{"!", true},
		{"a\x00b", false},
		{"tab\there", false},
		{"\xff", false},
		{"!\u0085", false},
	}
	for _, tt := range tests {
		_, err := ParsePattern(tt.in)
		if err == nil || errors.Is(err, ErrEmptyPattern) != tt.empty {
			t.Errorf("ParsePattern(%q) = %v, want an error (empty: %v)", tt.in, err, tt.empty)
		}
	}
	if _, err := ParsePatterns([]string{"ok", "!"}); err == nil {
		t.Error("ParsePatterns accepts a bare !")
	}
}

func TestPatterns(t *testing.T) {
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
		{"negation first", []string{"!10.170.77.2", "10.170.7?.*"},
			[]string{"10.170.75.2"}, []string{"10.170.77.2", "10.170.67.2"}},
		{"!* refuses everything", []string{"!*"}, nil, []string{"10.0.0.1", ""}},
		{"group example", []string{"iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest"},
			[]string{"iqn.1991-05.com.microsoft:host1"},
			[]string{"iqn.1991-05.com.microsoft:guest", "iqn.2004-10.com.ubuntu:01:abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParsePatterns(tt.patterns)
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
			if got := l.Strings(); !slices.Equal(got, tt.patterns) && len(tt.patterns) > 0 {
				t.Errorf("Strings() = %q, want %q", got, tt.patterns)
			}
		})
	}
}

func TestPatternMatchAllocatesNothing(t *testing.T) {
	l := MustPatterns("iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest")
	if n := testing.AllocsPerRun(100, func() { l.Match("IQN.1991-05.com.microsoft:host1") }); n != 0 {
		t.Errorf("Match allocates %v times", n)
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
		if q, err := ParsePattern(p.String()); err != nil || q != p {
			t.Fatalf("round trip of %q: %v, %v", pattern, q, err)
		}
		m := p.Match(s)
		// A pattern without wildcards matches exactly its own text
		// (case-insensitively).
		body := strings.TrimPrefix(pattern, "!")
		if !strings.ContainsAny(body, "*?") && utf8.ValidString(s) && m != strings.EqualFold(body, s) {
			t.Fatalf("%q.Match(%q) = %v", pattern, s, m)
		}
		// "*" + body + "*" matches whenever body does.
		if m && !p.Negated() {
			if q, err := ParsePattern("*" + body + "*"); err == nil && !q.Match(s) {
				t.Fatalf("*%s* does not match %q", body, s)
			}
		}
	})
}
