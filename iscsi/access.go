package iscsi

// Access control of logins and discovery: CHAP users (Auth), initiator
// groups, allowed portals, per-portal ACLs and redirection (Access). The
// rules are values of package access, which the configuration decoded:
// nothing here parses them.
//
// Seams for the integrator: Target carries `Auth Auth` and `Access
// Access`; Snapshot carries the discovery `Auth` of iscsi {
// incoming_user ... } and the AccessControl of iSNS. The login of a
// NORMAL session runs, in this order:
//
//  1. caps: the connection was admitted under Limits (caps.go), and
//     InitiatorName and TargetName passed CheckName (else 0200h);
//  2. Access.Redirect → answer redirectStatus with the TargetAddress
//     before any security negotiation;
//  3. Target.CheckLogin(initiator, PortalIP(local addr)), then
//     Snapshot.AccessControl → on error answer 0203h (target not found:
//     a refused initiator does not learn that the target exists, as in
//     SCST);
//  4. Auth.SelectAuthMethod, then chapServer.start/finish (chap.go);
//     an *AuthError answers AuthError.LoginStatus(); every check of a
//     CHAP response waits for LoginThrottle.Begin (throttle.go: per CHAP
//     user, source prefix and in all), and Check.Done records it;
//  5. the session's LUN map is Target.LUNsFor(initiator, portal IP).
//
// A DISCOVERY session runs 1 and 4 against the discovery Auth, is never
// redirected, and lists in SendTargets only the targets that
// Target.CheckLogin lets the initiator see (and Snapshot.AccessControl),
// each with the TargetAddress of the portals it accepts.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/scstd/scstd/internal/access"
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
	// access.DefaultCHAPAlgorithms. The strongest one the initiator also
	// offers is used, whatever the order here.
	Algorithms []access.CHAPAlgorithm
}

// Required reports whether logins must authenticate with CHAP.
func (a *Auth) Required() bool { return len(a.Incoming) > 0 }

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
func (a *Auth) verify(alg access.CHAPAlgorithm, name string, id byte, challenge, response []byte) bool {
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

// Group is an initiator group of a target: initiators whose name (or
// name#portal_ip with per_portal_acl) Initiators matches see LUNs instead of
// the target's default LUN map. A group with no LUNs hides the target from
// its initiators.
type Group struct {
	Name       string
	Initiators access.Patterns
	LUNs       *scsi.LUNMap
}

// PortalRules restrict the portals a target is offered and logged in on.
type PortalRules struct {
	// Allowed are allowed_portals patterns matched against the portal IP
	// (PortalIP form); empty allows every portal.
	Allowed access.Patterns
	// PerPortalACL matches initiator groups against
	// "initiator_name#portal_ip" instead of the initiator name.
	PerPortalACL bool
}

// Allows reports whether the target is available on the portal whose
// local IP address is localIP (PortalIP form).
func (r PortalRules) Allows(localIP string) bool {
	return len(r.Allowed) == 0 || r.Allowed.Match(localIP)
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

// redirectStatus returns the Login Response status of a redirection:
// 0101h (moved temporarily) or 0102h (moved permanently).
func redirectStatus(r access.Redirect) LoginStatus {
	if r.Permanent {
		return LoginTargetMovedPerm
	}
	return LoginTargetMovedTemp
}

// Access holds a target's access rules: which initiator sees which LUN
// map on which portal, and where logins are redirected.
type Access struct {
	// Groups are tried in order; the first whose patterns match wins.
	// An initiator no group matches sees the target's own LUNs.
	Groups  []Group
	Portals PortalRules
	// Redirect, unless zero, redirects normal-session logins.
	Redirect access.Redirect
}

// InitiatorKey returns the string groups are matched against: the
// initiator name, or "name#portal_ip" with per-portal ACLs.
func (a Access) InitiatorKey(initiator, portalIP string) string {
	if a.Portals.PerPortalACL {
		return initiator + "#" + portalIP
	}
	return initiator
}

// GroupFor returns the group initiator belongs to on the portal with IP
// portalIP, or nil when it belongs to none.
func (a Access) GroupFor(initiator, portalIP string) *Group {
	key := a.InitiatorKey(initiator, portalIP)
	for i := range a.Groups {
		if a.Groups[i].Initiators.Match(key) {
			return &a.Groups[i]
		}
	}
	return nil
}

// Errors of Target.CheckLogin.
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
	Target    string
	Initiator string
	PortalIP  string
	Group     string // the group the initiator fell in ("" for the default LUNs)
	Err       error  // ErrPortalNotAllowed or ErrNoLUNs
}

// Error implements error.
func (e *AccessError) Error() string {
	msg := fmt.Sprintf("target %s, initiator %q on portal %s: %v", e.Target, e.Initiator, e.PortalIP, e.Err)
	if e.Group != "" {
		msg += " (group " + strconv.Quote(e.Group) + ")"
	}
	return msg
}

// Unwrap returns ErrPortalNotAllowed or ErrNoLUNs.
func (e *AccessError) Unwrap() error { return e.Err }

// LoginStatus returns 0203h.
func (e *AccessError) LoginStatus() LoginStatus { return LoginNotFound }

// LUNsFor returns the LUN map initiator sees through the portal with IP
// portalIP: its group's, or the target's own. The map may be nil or
// empty: the initiator then has no access.
func (t *Target) LUNsFor(initiator, portalIP string) *scsi.LUNMap {
	if g := t.Access.GroupFor(initiator, portalIP); g != nil {
		return g.LUNs
	}
	return t.LUNs
}

// CheckLogin decides whether initiator may log in to the target, or see
// it in SendTargets, through the portal with IP portalIP (PortalIP of the
// connection's local address): the portal is allowed and the initiator
// has at least one LUN there. It returns nil or an *AccessError.
func (t *Target) CheckLogin(initiator, portalIP string) error {
	if !t.Access.Portals.Allows(portalIP) {
		return &AccessError{Target: t.Name, Initiator: initiator, PortalIP: portalIP, Err: ErrPortalNotAllowed}
	}
	g := t.Access.GroupFor(initiator, portalIP)
	luns, group := t.LUNs, ""
	if g != nil {
		luns, group = g.LUNs, g.Name
	}
	if luns.Len() == 0 {
		return &AccessError{Target: t.Name, Initiator: initiator, PortalIP: portalIP, Group: group, Err: ErrNoLUNs}
	}
	return nil
}
