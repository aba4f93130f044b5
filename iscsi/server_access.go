package iscsi

import "sync"

// This file keeps the per-Server state of login access control that the
// Server struct does not carry: the iSNS client consulted for access
// control, looked up by *Server.

// isnsClients holds the iSNS client whose access control each Server's
// logins and discoveries consult (set by SetISNSAccess).
var isnsClients sync.Map // *Server → *ISNSClient

// SetISNSAccess makes logins and SendTargets ask c whether an initiator
// may see a target (ISNSClient.Allowed); nil turns iSNS access control
// off. Safe to call at any time; new logins see the change.
func (s *Server) SetISNSAccess(c *ISNSClient) {
	if c == nil {
		isnsClients.Delete(s)
		return
	}
	isnsClients.Store(s, c)
}

// isnsAllowed reports whether iSNS access control lets initiator see
// target (true without an iSNS client).
func (s *Server) isnsAllowed(initiator, target string) bool {
	v, ok := isnsClients.Load(s)
	if !ok {
		return true
	}
	return v.(*ISNSClient).Allowed(initiator, target)
}
