package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/scstd/scstd/internal/access"
)

// DefaultMetricsPort is the port of a metrics listen address that gives
// none.
const DefaultMetricsPort = 9470

// Metrics is the metrics block: where the daemon serves Prometheus
// metrics over HTTP.
//
//	metrics {
//	  listen = "127.0.0.1:9470"
//	}
type Metrics struct {
	// Listen is the address the metrics endpoint listens on (port
	// DefaultMetricsPort when the text gives none); zero when listen
	// is "" or unset: no endpoint.
	Listen access.HostPort

	DeclRange hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs map[string]hcl.Range
}

// Range returns the range of the attribute name when it was set, and the
// block's otherwise.
func (m *Metrics) Range(name string) hcl.Range {
	if r, ok := m.Attrs[name]; ok {
		return r
	}
	return m.DeclRange
}

var metricsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "listen"}},
}

// metrics decodes the metrics block.
func (d *decoder) metrics(b *hcl.Block) {
	if prev := d.cfg.Metrics; prev != nil {
		d.duplicate(b.DefRange, "Duplicate metrics block", fmt.Sprintf("Only one metrics block is allowed; it is also declared at %s.", at(prev.DeclRange)))
		return
	}
	m := &Metrics{DeclRange: b.DefRange, Attrs: map[string]hcl.Range{}}
	d.cfg.Metrics = m
	c := d.content(b.Body, metricsSchema)
	a, ok := c.Attributes["listen"]
	if !ok {
		return
	}
	m.Attrs[a.Name] = a.Range
	s, ok := d.str(a)
	if !ok || s == "" {
		return
	}
	addr, err := access.ParseHostPort(s, DefaultMetricsPort)
	if err != nil {
		d.errorf(a.Expr.Range(), "Invalid metrics listen address",
			"%v. Expected \"host:port\" such as \"127.0.0.1:9470\", with an IPv6 host in brackets (\"[::1]:9470\"), or \"\" for no endpoint.", err)
		return
	}
	if _, isIP := addr.Addr(); !isIP && strings.Trim(addr.Host(), "0123456789") == "" {
		d.errorf(a.Expr.Range(), "Invalid metrics listen address",
			"%q is a number, not a host. Expected \"host:port\" such as \"127.0.0.1:%s\".", s, addr.Host())
		return
	}
	m.Listen = addr
}

// metrics checks that the metrics endpoint can be bound beside the
// portals: not on a portal's address, nor beside a wildcard portal of its
// family on the same port.
func (v *validator) metrics(m *Metrics, portals []Portal) {
	if m == nil || m.Listen.IsZero() {
		return
	}
	b := bindAddrOf(m.Listen)
	for _, p := range portals {
		pb := bindAddrOf(p.Addr)
		if pb == b {
			v.errorf(m.Range("listen"), "Metrics endpoint on a portal",
				"%s is also an iSCSI portal (listed at %s); give the metrics endpoint another port.", m.Listen, at(p.Range))
			return
		}
		if why := pb.conflicts(b, "the portal "+p.Addr.String(), "the metrics endpoint "+m.Listen.String()); why != "" {
			v.errorf(m.Range("listen"), "Metrics endpoint cannot be bound", "%s (the portal is listed at %s). Give the metrics endpoint another port.", why, at(p.Range))
			return
		}
	}
}
