package access

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrEmptyPattern is the error of ParsePattern for a pattern that
// matches nothing: "" or a bare "!".
var ErrEmptyPattern = errors.New("empty pattern")

// Pattern is one wildcard pattern (see the package documentation). The
// zero Pattern matches only the empty string. Patterns are comparable:
// two are equal when they are written alike.
type Pattern struct {
	text   string // as written, "!" included
	fold   string // the body without "!", lower-cased
	negate bool
}

// ParsePattern parses s. It fails on a pattern that matches nothing ("",
// "!": ErrEmptyPattern), on invalid UTF-8 and on control characters.
func ParsePattern(s string) (Pattern, error) {
	body, negate := strings.CutPrefix(s, "!")
	if body == "" {
		return Pattern{}, fmt.Errorf("%w %q", ErrEmptyPattern, s)
	}
	if !utf8.ValidString(body) {
		return Pattern{}, fmt.Errorf("pattern %q is not valid UTF-8", s)
	}
	var fold strings.Builder
	fold.Grow(len(body))
	for _, r := range body {
		if unicode.IsControl(r) {
			return Pattern{}, fmt.Errorf("pattern %q contains the control character %U", s, r)
		}
		fold.WriteRune(unicode.ToLower(r))
	}
	return Pattern{text: s, fold: fold.String(), negate: negate}, nil
}

// MustPattern is ParsePattern for patterns known to be valid (tests,
// defaults); it panics on an error.
func MustPattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.text }

// MarshalText returns the pattern as written.
func (p Pattern) MarshalText() ([]byte, error) { return []byte(p.text), nil }

// Negated reports whether the pattern has a leading "!".
func (p Pattern) Negated() bool { return p.negate }

// Match reports whether s matches the pattern's body, ignoring the
// negation and case. It takes O(len(pattern)·len(s)) at worst, without
// recursion, and allocates nothing.
func (p Pattern) Match(s string) bool {
	g := p.fold
	gi, si := 0, 0
	star, mark := -1, 0
	// Walk s rune by rune; on a mismatch after a '*', let the star
	// swallow one more rune of s and retry from just after it.
	for si < len(s) {
		r, size := utf8.DecodeRuneInString(s[si:])
		r = unicode.ToLower(r)
		var gr rune
		gsize := 0
		if gi < len(g) {
			gr, gsize = utf8.DecodeRuneInString(g[gi:])
		}
		switch {
		case gsize > 0 && gr == '*':
			star, mark = gi, si
			gi++
		case gsize > 0 && (gr == '?' || gr == r):
			gi += gsize
			si += size
		case star >= 0:
			_, msize := utf8.DecodeRuneInString(s[mark:])
			mark += msize
			si = mark
			gi = star + 1
		default:
			return false
		}
	}
	for gi < len(g) && g[gi] == '*' {
		gi++
	}
	return gi == len(g)
}

// Patterns is a list of patterns in the order written, matched as the
// package documentation says. Its zero value, the empty list, matches
// nothing.
type Patterns []Pattern

// ParsePatterns parses a list of patterns; the error names the first bad
// one.
func ParsePatterns(list []string) (Patterns, error) {
	out := make(Patterns, 0, len(list))
	for _, s := range list {
		p, err := ParsePattern(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// MustPatterns is ParsePatterns for lists known to be valid; it panics on
// an error.
func MustPatterns(list ...string) Patterns {
	l, err := ParsePatterns(list)
	if err != nil {
		panic(err)
	}
	return l
}

// Match reports whether s matches the list: no negated pattern matches
// it, and some positive one does (or there is none).
func (l Patterns) Match(s string) bool {
	if len(l) == 0 {
		return false
	}
	positive, matched := false, false
	for _, p := range l {
		switch {
		case p.negate:
			if p.Match(s) {
				return false
			}
		case !matched:
			positive = true
			matched = p.Match(s)
		}
	}
	return matched || !positive
}

// Strings returns the patterns as written, in order.
func (l Patterns) Strings() []string {
	out := make([]string, len(l))
	for i, p := range l {
		out[i] = p.text
	}
	return out
}
