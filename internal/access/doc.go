// Package access holds the typed values of scstd's access rules and
// login settings: initiator and portal patterns, host:port addresses,
// redirects, CHAP algorithms and digests. Each has one parser here, the
// grammar of the configuration file; package config decodes the file
// into these values once, and the engine (reconcile, iscsi) carries and
// uses them without parsing them again. So a value the configuration
// accepts cannot fail later, when a reload is applied.
//
// It uses the standard library only, so that config (which may import
// nothing of the engine) can decode into it.
//
// # Patterns
//
// A Pattern is a wildcard pattern as iSCSI-SCST writes allowed_portal and
// initiator group members: "*" matches any run of characters (also
// none), "?" one character, anything else itself; a leading "!" negates
// it. Matching ignores case, as SCST's does (its wildcmp compares
// tolower() of both sides) and as RFC 3722 makes iSCSI names
// case-insensitive; letters beyond ASCII fold by Unicode's simple
// lower-case mapping.
//
// Patterns is a list of them, evaluated as iSCSI-SCST evaluates
// allowed_portal: a string matches when at least one positive pattern
// matches it and no negated one does; a list of only negated patterns
// matches every string that none of them names ("!10.0.0.1" alone allows
// everything but 10.0.0.1). So ["iqn.1991-05.com.microsoft:*",
// "!iqn.1991-05.com.microsoft:guest"] is every Microsoft initiator but
// the guest. (SCST's initiator groups test each name pattern on its own
// instead, so that a lone negated entry there pulls every other initiator
// into the group; scstd uses the one rule above for portals and
// initiators alike.) The empty list matches nothing.
//
// # Addresses
//
// A HostPort is "host:port": an IPv4 address, a bracketed IPv6 address
// ("[::1]:3260", "[fe80::1%eth0]:3260") or a DNS name, and a port, which
// the parser fills in when the text has none. An IPv6 address is always
// in brackets, so that "::1:3260" cannot be misread. A Redirect is
// "host[:port] temp|perm", the iSCSI-SCST redirect attribute; its address
// goes to initiators, so it has no IPv6 zone.
package access
