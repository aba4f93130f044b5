package iscsi

// Access control of logins and discovery: CHAP users (Auth), initiator
// groups, allowed portals, per-portal ACLs and redirection (Access).
//
// Seams for the integrator: Target carries `Auth Auth` and `Access Access`
// (Access.LUNs is the target's default LUN map, the same as Target.LUNs);
// Snapshot carries the discovery `Auth` of iscsi { incoming_user ... }.
// The login of a NORMAL session runs, in this order:
//
//  1. caps: the connection was admitted under Limits (caps.go), and
//     InitiatorName and TargetName passed CheckName (else 0200h);
//  2. Access.CheckLogin(initiator, PortalIP(local addr)) and, with iSNS
//     access control, ISNSClient.Allowed(initiator, target) → on error
//     answer 0203h (target not found: a refused initiator does not learn
//     that the target exists, as in SCST);
//  3. Access.Redirect → answer Redirect.LoginStatus() with
//     Redirect.LoginKeys() before any security negotiation;
//  4. Auth.SelectAuthMethod, then chapServer.start/finish (chap.go);
//     an *AuthError answers AuthError.LoginStatus(); every check of a
//     CHAP response waits for LoginThrottle.Begin (throttle.go: per CHAP
//     user, source prefix and in all), and Check.Done records it;
//  5. the session's LUN map is Access.LUNsFor(initiator, portal IP).
//
// A DISCOVERY session runs 1 and 4 against the discovery Auth, is never
// redirected, and lists in SendTargets only the targets for which
// Access.Visible(initiator, portal IP) holds (and ISNSClient.Allowed),
// each with the TargetAddress of the portals Access.Visible accepts.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/scstd/scstd/scsi"
)

// CHAPUser is a CHAP name and secret: an incoming_user (the initiator
// proves it knows the secret) or an outgoing_user (the target proves it).
// Its String, GoString and LogValue never show the secret.
type CHAPUser struct {
	Name   string
	Secret []byte
}

// String returns the name with the secret redacted.
func (u CHAPUser) String() string { return u.Name + " (secret redacted)" }

// GoString keeps %#v from printing the secret.
func (u CHAPUser) GoString() string {
	return "iscsi.CHAPUser{Name:" + strconv.Quote(u.Name) + ", Secret:REDACTED}"
}

// LogValue keeps slog from printing the secret.
func (u CHAPUser) LogValue() slog.Value { return slog.StringValue(u.String()) }

// Auth is the CHAP policy of a target, or of discovery sessions.
type Auth struct {
	// Incoming are the users any one of which may log in. Empty: no CHAP
	// is required (AuthMethod=None is accepted).
	Incoming []CHAPUser
	// Outgoing is the user the target answers mutual CHAP with; nil: the
	// target refuses to authenticate itself.
	Outgoing *CHAPUser
	// Algorithms are the CHAP algorithms allowed; empty means
	// DefaultCHAPAlgorithms. The strongest one the initiator also offers
	// is used, whatever the order here.
	Algorithms []CHAPAlgorithm
}

// Required reports whether logins must authenticate with CHAP.
func (a *Auth) Required() bool { return len(a.Incoming) > 0 }

// Validate checks a policy built from configuration: non-empty names and
// secrets, known algorithms, and no secret shared between an incoming user
// and the outgoing one (RFC 7143 §12.1.3 forbids using one secret for both
// directions).
func (a *Auth) Validate() error {
	for _, u := range a.Incoming {
		if u.Name == "" || len(u.Secret) == 0 {
			return fmt.Errorf("incoming CHAP user %q: empty name or secret", u.Name)
		}
	}
	if o := a.Outgoing; o != nil {
		if o.Name == "" || len(o.Secret) == 0 {
			return fmt.Errorf("outgoing CHAP user %q: empty name or secret", o.Name)
		}
		for _, u := range a.Incoming {
			if string(u.Secret) == string(o.Secret) {
				return fmt.Errorf("incoming CHAP user %q and outgoing user %q have the same secret", u.Name, o.Name)
			}
		}
	}
	for _, alg := range a.Algorithms {
		if !alg.Valid() {
			return fmt.Errorf("unknown CHAP algorithm %v", alg)
		}
	}
	return nil
}

// SelectAuthMethod answers the initiator's AuthMethod offer (the value of
// the key, a comma-separated list). With incoming users the answer is
// "CHAP" and an initiator that does not offer it fails (AuthMethod=None is
// refused); without, it is "None", and an initiator that insists on
// something else (CHAP only, SRP, ...) fails: the target has no secret to
// check it against. Failures are *AuthError of kind AuthFailed (0201h).
func (a *Auth) SelectAuthMethod(offered string) (string, error) {
	want := "None"
	if a.Required() {
		want = "CHAP"
	}
	for _, m := range strings.Split(offered, ",") {
		if strings.TrimSpace(m) == want {
			return want, nil
		}
	}
	if a.Required() {
		return "", authFailed("", "CHAP is required but the initiator offers AuthMethod=%.64s", offered)
	}
	return "", authFailed("", "the initiator offers AuthMethod=%.64s but the target has no CHAP user", offered)
}

// verify reports whether response answers (id, challenge) for some
// incoming user called name. Every user is checked, and a dummy digest is
// computed when none has that name, so that the time taken does not tell
// whether a name exists.
func (a *Auth) verify(alg CHAPAlgorithm, name string, id byte, challenge, response []byte) bool {
	ok, named := false, false
	for _, u := range a.Incoming {
		if u.Name != name {
			continue
		}
		named = true
		if verifyResponse(alg, id, u.Secret, challenge, response) {
			ok = true
		}
	}
	if !named {
		verifyResponse(alg, id, nil, challenge, response)
	}
	return ok
}

// Pattern is one compiled wildcard pattern: "*" matches any run of
// characters (also none), "?" exactly one character, anything else itself,
// ignoring case. A leading "!" negates it (see PatternList).
type Pattern struct {
	glob   []rune // lower-cased
	negate bool
	src    string
}

// ParsePattern compiles s. It fails on an empty pattern, a bare "!" and
// control characters.
func ParsePattern(s string) (Pattern, error) {
	p := Pattern{src: s}
	body := s
	if strings.HasPrefix(body, "!") {
		p.negate = true
		body = body[1:]
	}
	if body == "" {
		return Pattern{}, fmt.Errorf("empty pattern %q", s)
	}
	if !utf8.ValidString(body) {
		return Pattern{}, fmt.Errorf("pattern %q is not valid UTF-8", s)
	}
	for _, r := range body {
		if unicode.IsControl(r) {
			return Pattern{}, fmt.Errorf("pattern %q contains a control character", s)
		}
		p.glob = append(p.glob, unicode.ToLower(r))
	}
	return p, nil
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.src }

// Negated reports whether the pattern had a leading "!".
func (p Pattern) Negated() bool { return p.negate }

// Match reports whether s matches the pattern body, ignoring the negation.
// It runs in O(len(pattern)·len(s)) at worst, without recursion.
func (p Pattern) Match(s string) bool {
	g := p.glob
	var gi, si int
	star, mark := -1, 0
	// Walk s rune by rune; on a mismatch after a '*', let the star
	// swallow one more rune and retry.
	for si < len(s) {
		r, size := utf8.DecodeRuneInString(s[si:])
		r = unicode.ToLower(r)
		switch {
		case gi < len(g) && g[gi] == '*':
			star, mark = gi, si
			gi++
		case gi < len(g) && (g[gi] == '?' || g[gi] == r):
			gi++
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

// PatternList is a compiled list of patterns, evaluated as iSCSI-SCST
// evaluates allowed_portal (iscsi-scst/usr/target.c): the list matches a
// string when at least one positive pattern matches it and no negated one
// does; a list of only negated patterns matches every string that none of
// them names ("!10.0.0.1" alone allows everything but 10.0.0.1). So
// ["iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest"] is
// every Microsoft initiator but the guest. (SCST's initiator groups test
// each name pattern on its own instead, so that a lone negated entry there
// pulls every other initiator into the group; scstd uses the one rule
// above for portals and initiators alike.) The empty list matches nothing.
type PatternList struct {
	pos, neg []Pattern
}

// ParsePatternList compiles the patterns of a configuration list.
func ParsePatternList(src []string) (PatternList, error) {
	var l PatternList
	for _, s := range src {
		p, err := ParsePattern(s)
		if err != nil {
			return PatternList{}, err
		}
		if p.negate {
			l.neg = append(l.neg, p)
		} else {
			l.pos = append(l.pos, p)
		}
	}
	return l, nil
}

// Empty reports whether the list has no pattern.
func (l PatternList) Empty() bool { return len(l.pos) == 0 && len(l.neg) == 0 }

// Match reports whether s is matched by the list (see PatternList).
func (l PatternList) Match(s string) bool {
	if l.Empty() {
		return false
	}
	for _, p := range l.neg {
		if p.Match(s) {
			return false
		}
	}
	if len(l.pos) == 0 {
		return true
	}
	for _, p := range l.pos {
		if p.Match(s) {
			return true
		}
	}
	return false
}

// Patterns returns the patterns as written, positive ones first.
func (l PatternList) Patterns() []string {
	out := make([]string, 0, len(l.pos)+len(l.neg))
	for _, p := range l.pos {
		out = append(out, p.src)
	}
	for _, p := range l.neg {
		out = append(out, p.src)
	}
	return out
}

// Group is an initiator group of a target: initiators whose name (or
// name#portal_ip with per_portal_acl) Initiators matches see LUNs instead of
// the target's default LUN map. A group with no LUNs hides the target from
// its initiators.
type Group struct {
	Name       string
	Initiators PatternList
	LUNs       *scsi.LUNMap
}

// PortalRules restrict the portals a target is offered and logged in on.
type PortalRules struct {
	// Allowed are allowed_portals patterns matched against the portal IP
	// (PortalIP form); empty allows every portal.
	Allowed PatternList
	// PerPortalACL matches initiator groups against
	// "initiator_name#portal_ip" instead of the initiator name.
	PerPortalACL bool
}

// Allows reports whether the target is available on the portal whose
// local IP address is localIP (PortalIP form).
func (r PortalRules) Allows(localIP string) bool {
	return r.Allowed.Empty() || r.Allowed.Match(localIP)
}

// PortalIP returns the IP of a connection's local (or remote) address in
// the form patterns and per-portal ACLs match: dotted quad for IPv4 and
// IPv4-mapped IPv6, RFC 5952 text without zone or brackets for IPv6, and
// addr.String() for anything that is not an IP address.
func PortalIP(addr net.Addr) string {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		if addr == nil {
			return ""
		}
		p, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return addr.String()
		}
		ap = p
	}
	return ap.Addr().Unmap().WithZone("").String()
}

// Redirect answers normal-session logins with a redirection.
type Redirect struct {
	// Addr is "host:port", an IPv6 host in brackets.
	Addr string
	// Permanent selects "target moved permanently" (0102h) over "target
	// moved temporarily" (0101h).
	Permanent bool
}

// ParseRedirect parses a redirect attribute, "addr[:port] temp|perm". The
// address is an IPv4 address, a bracketed IPv6 address or a DNS name; the
// port defaults to 3260.
func ParseRedirect(s string) (Redirect, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Redirect{}, fmt.Errorf("redirect %q: expected \"address[:port] temp|perm\"", s)
	}
	var r Redirect
	switch strings.ToLower(f[1]) {
	case "temp":
	case "perm":
		r.Permanent = true
	default:
		return Redirect{}, fmt.Errorf("redirect %q: the kind must be temp or perm, not %q", s, f[1])
	}
	host, port := f[0], "3260"
	switch {
	case strings.HasPrefix(host, "["):
		end := strings.Index(host, "]")
		if end < 0 {
			return Redirect{}, fmt.Errorf("redirect %q: unterminated [", s)
		}
		rest := host[end+1:]
		host = host[1:end]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return Redirect{}, fmt.Errorf("redirect %q: unexpected %q after ]", s, rest)
			}
			port = rest[1:]
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return Redirect{}, fmt.Errorf("redirect %q: %q is not an IPv6 address", s, host)
		}
	case strings.Count(host, ":") > 1:
		return Redirect{}, fmt.Errorf("redirect %q: write an IPv6 address in brackets, as [%s]:3260", s, host)
	case strings.Contains(host, ":"):
		host, port, _ = strings.Cut(host, ":")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return Redirect{}, fmt.Errorf("redirect %q: bad port %q", s, port)
	}
	if !strings.Contains(host, ":") && !validHostname(host) {
		return Redirect{}, fmt.Errorf("redirect %q: %q is neither an IP address nor a host name", s, host)
	}
	r.Addr = net.JoinHostPort(host, port)
	return r, nil
}

// validHostname accepts IPv4 literals and DNS names (letters, digits,
// hyphens and dots, labels of at most 63 characters).
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// String returns r in configuration syntax.
func (r Redirect) String() string {
	if r.Permanent {
		return r.Addr + " perm"
	}
	return r.Addr + " temp"
}

// LoginStatus returns the Login Response status for r: 0101h (moved
// temporarily) or 0102h (moved permanently).
func (r Redirect) LoginStatus() uint16 {
	if r.Permanent {
		return 0x0102
	}
	return 0x0101
}

// LoginKeys returns the keys of the redirecting Login Response: the
// TargetAddress without portal group tag (RFC 7143 §13.8 leaves it out on a
// redirection).
func (r Redirect) LoginKeys() []string { return []string{"TargetAddress=" + r.Addr} }

// Access holds a target's access decisions: which initiator sees which
// LUNs on which portal, and where logins are redirected.
type Access struct {
	// LUNs is the default LUN map, seen by initiators no group matches.
	LUNs *scsi.LUNMap
	// Groups are tried in order; the first whose patterns match wins.
	Groups  []Group
	Portals PortalRules
	// Redirect, when not nil, redirects normal-session logins.
	Redirect *Redirect
}

// InitiatorKey returns the string groups are matched against: the
// initiator name, or "name#portal_ip" with per-portal ACLs.
func (a Access) InitiatorKey(initiator, portalIP string) string {
	if a.Portals.PerPortalACL {
		return initiator + "#" + portalIP
	}
	return initiator
}

// LUNsFor returns the LUN map initiator sees through the portal with IP
// portalIP, and the name of the group it belongs to ("" for the target's
// default LUNs). The map may be nil or empty: the initiator then has no
// access.
func (a Access) LUNsFor(initiator, portalIP string) (*scsi.LUNMap, string) {
	key := a.InitiatorKey(initiator, portalIP)
	for i := range a.Groups {
		if a.Groups[i].Initiators.Match(key) {
			return a.Groups[i].LUNs, a.Groups[i].Name
		}
	}
	return a.LUNs, ""
}

// Visible reports whether SendTargets shows the target, with the portal
// whose IP is portalIP, to initiator: the portal is allowed and the
// initiator has at least one LUN there.
func (a Access) Visible(initiator, portalIP string) bool {
	return a.CheckLogin(initiator, portalIP) == nil
}

// Errors of Access.CheckLogin.
var (
	// ErrPortalNotAllowed: allowed_portals excludes the portal.
	ErrPortalNotAllowed = errors.New("target not available on this portal")
	// ErrNoLUNs: the initiator's group, or the default LUN map, is empty.
	ErrNoLUNs = errors.New("no LUNs for this initiator")
)

// AccessError is a login that the target's access rules refuse. Its
// LoginStatus is 0203h ("not found"), as SCST answers, so that a refused
// initiator does not learn that the target exists.
type AccessError struct {
	Initiator string
	PortalIP  string
	Group     string // the group the initiator fell in ("" for the default LUNs)
	Err       error  // ErrPortalNotAllowed or ErrNoLUNs
}

// Error implements error.
func (e *AccessError) Error() string {
	msg := fmt.Sprintf("initiator %q on portal %s: %v", e.Initiator, e.PortalIP, e.Err)
	if e.Group != "" {
		msg += " (group " + strconv.Quote(e.Group) + ")"
	}
	return msg
}

// Unwrap returns ErrPortalNotAllowed or ErrNoLUNs.
func (e *AccessError) Unwrap() error { return e.Err }

// LoginStatus returns 0203h.
func (e *AccessError) LoginStatus() uint16 { return 0x0203 }

// CheckLogin decides whether initiator may log in to the target through
// the portal with IP portalIP (PortalIP of the connection's local address).
// It returns nil or an *AccessError.
func (a Access) CheckLogin(initiator, portalIP string) error {
	if !a.Portals.Allows(portalIP) {
		return &AccessError{Initiator: initiator, PortalIP: portalIP, Err: ErrPortalNotAllowed}
	}
	if m, g := a.LUNsFor(initiator, portalIP); m.Len() == 0 {
		return &AccessError{Initiator: initiator, PortalIP: portalIP, Group: g, Err: ErrNoLUNs}
	}
	return nil
}
