package access

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Well-known ports.
const (
	// ISCSIPort is the IANA port of iSCSI.
	ISCSIPort = 3260
	// ISNSPort is the IANA port of iSNS.
	ISNSPort = 3205
)

// HostPort is a host (IP address or DNS name) and a port: a portal, an
// iSNS server, a redirect's target. The zero HostPort is no address.
// HostPorts are comparable.
type HostPort struct {
	host string // without brackets; an IPv6 address may carry a zone
	port uint16
}

// ParseHostPort parses "host[:port]", using defaultPort when the text
// has none. An IPv6 host is in brackets ("[fe80::1%eth0]:3260", "[::]"),
// so that "::1:3260" cannot be misread; other hosts are IPv4 addresses or
// DNS names.
func ParseHostPort(s string, defaultPort uint16) (HostPort, error) {
	if s == "" {
		return HostPort{}, errors.New("empty address")
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return HostPort{}, fmt.Errorf("%q lacks the closing \"]\"", s)
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return HostPort{}, fmt.Errorf("%q has %q after the bracketed address", s, rest)
			}
			port = rest[1:]
			if port == "" {
				return HostPort{}, fmt.Errorf("%q has an empty port", s)
			}
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return HostPort{}, fmt.Errorf("%q is not an IPv6 address", host)
		}
	case strings.Count(s, ":") > 1:
		return HostPort{}, fmt.Errorf("%q: an IPv6 address must be in brackets, as in \"[::1]:3260\" or \"[::1]\"", s)
	case strings.Contains(s, ":"):
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return HostPort{}, fmt.Errorf("%q has an empty port", s)
		}
		if err := checkHost(host); err != nil {
			return HostPort{}, err
		}
	default:
		if err := checkHost(host); err != nil {
			return HostPort{}, err
		}
	}
	hp := HostPort{host: host, port: defaultPort}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
			return HostPort{}, fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		hp.port = uint16(n)
	}
	return hp, nil
}

// MustHostPort is ParseHostPort for addresses known to be valid
// (defaults, tests); it panics on an error.
func MustHostPort(s string, defaultPort uint16) HostPort {
	hp, err := ParseHostPort(s, defaultPort)
	if err != nil {
		panic(err)
	}
	return hp
}

// checkHost accepts an IPv4 address or a DNS name.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Is4() {
		return nil
	}
	if len(h) > 253 {
		return fmt.Errorf("host name %.20q... is longer than 253 characters", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not an IPv4 address or a host name", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q is not an IPv4 address or a host name", h)
			}
		}
	}
	return nil
}

// Host returns the host: an IP address (IPv6 without brackets) or a DNS
// name.
func (a HostPort) Host() string { return a.host }

// Port returns the port.
func (a HostPort) Port() uint16 { return a.port }

// Addr returns the host as an IP address, and false for a DNS name.
func (a HostPort) Addr() (netip.Addr, bool) {
	ip, err := netip.ParseAddr(a.host)
	return ip, err == nil
}

// IsZero reports whether a is the zero HostPort.
func (a HostPort) IsZero() bool { return a == HostPort{} }

// String returns "host:port", an IPv6 host in brackets; "" for the zero
// HostPort.
func (a HostPort) String() string {
	if a.IsZero() {
		return ""
	}
	return net.JoinHostPort(a.host, strconv.Itoa(int(a.port)))
}

// MarshalText returns a.String().
func (a HostPort) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Compare orders addresses by their text.
func (a HostPort) Compare(b HostPort) int { return strings.Compare(a.String(), b.String()) }

// Redirect is a target's redirect attribute: logins are sent to Addr,
// temporarily or permanently. The zero Redirect is none.
type Redirect struct {
	Addr HostPort
	// Permanent is true for "perm" (target moved permanently) and false
	// for "temp" (target moved temporarily).
	Permanent bool
}

// ParseRedirect parses "host[:port] temp|perm", the port 3260 when
// omitted. The address goes to initiators, so an IPv6 zone, which only
// means something on this host, is refused.
func ParseRedirect(s string) (Redirect, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return Redirect{}, fmt.Errorf("%q does not have the form \"address[:port] temp|perm\"", s)
	}
	var r Redirect
	switch f[1] {
	case "temp":
	case "perm":
		r.Permanent = true
	default:
		return Redirect{}, fmt.Errorf("redirect type %q is neither \"temp\" nor \"perm\"", f[1])
	}
	addr, err := ParseHostPort(f[0], ISCSIPort)
	if err != nil {
		return Redirect{}, err
	}
	if ip, ok := addr.Addr(); ok && ip.Zone() != "" {
		return Redirect{}, fmt.Errorf("%q has the zone %q, which only this host knows; initiators are sent the address", f[0], ip.Zone())
	}
	r.Addr = addr
	return r, nil
}

// IsZero reports whether r is no redirect.
func (r Redirect) IsZero() bool { return r == Redirect{} }

// String returns r as the configuration writes it ("192.0.2.20:3260
// temp"), or "" for no redirect.
func (r Redirect) String() string {
	switch {
	case r.IsZero():
		return ""
	case r.Permanent:
		return r.Addr.String() + " perm"
	}
	return r.Addr.String() + " temp"
}

// MarshalText returns r.String().
func (r Redirect) MarshalText() ([]byte, error) { return []byte(r.String()), nil }
