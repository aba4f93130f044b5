package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/scstd/scstd/internal/access"
)

// bindAddr is a portal as the kernel binds it.
type bindAddr struct {
	// ip is the address with an IPv4-mapped IPv6 address unmapped; invalid
	// for a host name.
	ip netip.Addr
	// host is the lower-case host name when the portal names one.
	host string
	port int
}

// bindAddrOf returns how the kernel binds the portal a.
func bindAddrOf(a access.HostPort) bindAddr {
	if ip, ok := a.Addr(); ok {
		return bindAddr{ip: ip.Unmap(), port: int(a.Port())}
	}
	return bindAddr{host: strings.ToLower(strings.TrimSuffix(a.Host(), ".")), port: int(a.Port())}
}

// String is the address in portal syntax after normalisation.
func (b bindAddr) String() string {
	if b.ip.IsValid() {
		return netip.AddrPortFrom(b.ip, uint16(b.port)).String()
	}
	return net.JoinHostPort(b.host, strconv.Itoa(b.port))
}

// family names the address family for messages.
func (b bindAddr) family() string {
	if b.ip.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// conflicts says why b (written bText) and o (written oText) cannot both
// be bound, or "". A wildcard listens on every address of its family:
// "0.0.0.0:P" takes every IPv4 address on port P, and "[::]:P" (which the
// daemon binds IPv6-only) every IPv6 address, so that the two coexist, but
// neither coexists with a specific address of its family on the same port.
func (b bindAddr) conflicts(o bindAddr, bText, oText string) string {
	if b.port != o.port || !b.ip.IsValid() || !o.ip.IsValid() || b.ip.Is4() != o.ip.Is4() {
		return ""
	}
	switch {
	case b.ip.IsUnspecified():
		return bText + " listens on every " + b.family() + " address, so " + oText + " cannot listen beside it"
	case o.ip.IsUnspecified():
		return oText + " listens on every " + o.family() + " address, so " + bText + " cannot listen beside it"
	}
	return ""
}

// portals checks that every portal can be bound beside the others: no
// address twice (after normalisation: "[::0]:3260" is "[::]:3260",
// "[::ffff:10.0.0.1]" is "10.0.0.1"), and no wildcard beside a specific
// address of its family on the same port. Host names are compared by name.
func (v *validator) portals(ps []Portal) {
	type seenPortal struct {
		b bindAddr
		p Portal
	}
	var seen []seenPortal
	for _, p := range ps {
		b := bindAddrOf(p.Addr)
		clash := false
		for _, s := range seen {
			if s.b == b {
				same := ""
				if s.p.Addr != p.Addr {
					same = " (" + s.p.Addr.String() + " is the same address)"
				}
				v.errorf(p.Range, "Duplicate portal", "The portal %s is also listed at %s%s.", p.Addr, at(s.p.Range), same)
				clash = true
				break
			}
			if why := s.b.conflicts(b, s.p.Addr.String(), p.Addr.String()); why != "" {
				v.errorf(p.Range, "Portals cannot both be bound",
					"%s (the other is listed at %s). Keep the wildcard alone, or list the addresses one by one.", why, at(s.p.Range))
				clash = true
				break
			}
		}
		if !clash {
			seen = append(seen, seenPortal{b: b, p: p})
		}
	}
}
