package reconcile

import (
	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// This file turns a target's CHAP users and access rules, as the model
// carries them (values the configuration decoded and checked), into the
// iSCSI server's. Nothing here parses or can fail: a reload that the
// configuration accepted does not stop here.

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

// authOf returns a CHAP policy: a target's, or with no algorithms (all of
// them) discovery's.
func authOf(incoming, outgoing []User, algorithms []access.CHAPAlgorithm) iscsi.Auth {
	a := iscsi.Auth{Incoming: chapUsers(incoming), Algorithms: algorithms}
	if out := chapUsers(outgoing); len(out) > 0 {
		a.Outgoing = &out[0]
	}
	return a
}

// accessOf returns a target's portal rules, redirect and groups. Groups
// are tried in name order (the first that matches an initiator wins), so
// that their order does not depend on how the configuration is split
// into files; lunMap gives each group its LUN map.
func accessOf(t *Target, lunMap func(group string) *scsi.LUNMap) iscsi.Access {
	a := iscsi.Access{
		Portals:  iscsi.PortalRules{Allowed: t.AllowedPortals, PerPortalACL: t.PerPortalACL},
		Redirect: t.Redirect,
	}
	for _, name := range sortedKeys(t.Groups) {
		a.Groups = append(a.Groups, iscsi.Group{Name: name, Initiators: t.Groups[name].Initiators, LUNs: lunMap(name)})
	}
	return a
}
