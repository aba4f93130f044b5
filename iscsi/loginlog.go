package iscsi

import "net"

// failureAttrs are the log attributes of a login that failed with err:
// which target it was for (the name the initiator asked for, "" for a
// discovery session or before it said), which initiator, from which
// address, and why. A name an initiator sent is cut at MaxNameLength
// bytes; the log handler escapes what it holds.
func (c *loginConn) failureAttrs(remote net.Addr, err error) []any {
	target := c.targetName
	if c.target != nil {
		target = c.target.Name
	}
	args := []any{"target", capName(target), "initiator", capName(c.initiatorName), "remote", remote.String(), "reason", err.Error()}
	if c.sessionType == SessionDiscovery {
		args = append(args, "discovery", true)
	}
	return args
}

// capName cuts an initiator-supplied name at MaxNameLength bytes.
func capName(s string) string {
	if len(s) > MaxNameLength {
		return s[:MaxNameLength] + "..."
	}
	return s
}
