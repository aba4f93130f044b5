package iscsi

import "sync"

// loginThrottles holds each Server's LoginThrottle.
//
// iscsiwire needs: a `throttle *LoginThrottle` field in Server, set by
// NewServer; until server.go has it, login.go reaches the throttle
// through loginThrottle below (one per Server, made on first use).
var loginThrottles sync.Map // *Server → *LoginThrottle

// loginThrottle returns s's failed-login throttle.
func (s *Server) loginThrottle() *LoginThrottle {
	if v, ok := loginThrottles.Load(s); ok {
		return v.(*LoginThrottle)
	}
	v, _ := loginThrottles.LoadOrStore(s, NewLoginThrottle())
	return v.(*LoginThrottle)
}
