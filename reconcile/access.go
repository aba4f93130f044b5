package reconcile

import (
	"fmt"
	"sort"

	"github.com/scstd/scstd/iscsi"
)

// targetAccess is the parsed access control of one target, made in
// prepare (where a bad pattern, redirect or CHAP policy can still reject
// the reload) and put into the snapshot by commit.
type targetAccess struct {
	auth     iscsi.Auth
	portals  iscsi.PortalRules
	redirect *iscsi.Redirect
	// groups in name order, without their LUN maps.
	groups []iscsi.Group
}

// chapUsers converts model users for the iSCSI server. The secret leaves
// its config.Secret wrapper here, for the CHAP code alone.
func chapUsers(us []User) []iscsi.CHAPUser {
	if len(us) == 0 {
		return nil
	}
	out := make([]iscsi.CHAPUser, len(us))
	for i, u := range us {
		out[i] = iscsi.CHAPUser{Name: u.Name, Secret: []byte(u.Secret.Reveal())}
	}
	return out
}

// authOf builds and checks a CHAP policy.
func authOf(incoming, outgoing []User, algorithms []string) (iscsi.Auth, error) {
	a := iscsi.Auth{Incoming: chapUsers(incoming)}
	if out := chapUsers(outgoing); len(out) > 0 {
		a.Outgoing = &out[0]
	}
	for _, name := range algorithms {
		alg, err := iscsi.ParseCHAPAlgorithm(name)
		if err != nil {
			return iscsi.Auth{}, err
		}
		a.Algorithms = append(a.Algorithms, alg)
	}
	return a, a.Validate()
}

// accessOf parses a target's CHAP users, portal rules, redirect and group
// patterns. Groups are tried in name order (the first that matches an
// initiator wins), so that their order does not depend on how the
// configuration is split into files.
func accessOf(t *Target) (targetAccess, error) {
	var a targetAccess
	var err error
	if a.auth, err = authOf(t.IncomingUsers, t.OutgoingUsers, t.CHAPAlgorithms); err != nil {
		return a, err
	}
	if a.portals.Allowed, err = iscsi.ParsePatternList(t.AllowedPortals); err != nil {
		return a, fmt.Errorf("allowed_portals: %w", err)
	}
	a.portals.PerPortalACL = t.PerPortalACL
	if t.Redirect != "" {
		r, err := iscsi.ParseRedirect(t.Redirect)
		if err != nil {
			return a, err
		}
		a.redirect = &r
	}
	names := make([]string, 0, len(t.Groups))
	for name := range t.Groups {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pl, err := iscsi.ParsePatternList(t.Groups[name].Initiators)
		if err != nil {
			return a, fmt.Errorf("group %q: initiators: %w", name, err)
		}
		a.groups = append(a.groups, iscsi.Group{Name: name, Initiators: pl})
	}
	return a, nil
}
