package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/scstd/scstd/internal/access"
)

// This file holds the cluster block: the gateway's place among several
// scstd gateways that export the same logical units from shared storage,
// with their common state in etcd (docs/scale-out.md).
//
//	cluster {
//	  etcd      = ["https://etcd1:2379", "https://etcd2:2379"]
//	  gateway   = env("SCSTD_GATEWAY")
//	  lease_ttl = "5s"
//	  ca_file   = "/etc/scstd/etcd-ca.pem"
//	  username  = "scstd"
//	  password  = file("/etc/scstd/etcd-password")
//	  member "gw1" { id = 1 }
//	  member "gw2" { id = 2 }
//	}
//
// Each member block declares a gateway of the cluster and its id
// (1..255): gateway n serves every target with target portal group tag n
// and relative target port identifier n·256 + rel_tgt_id, so that every
// gateway knows every other gateway's ports from the file alone.

// Defaults and limits of the cluster block.
const (
	// DefaultLeaseTTL is the default lease_ttl.
	DefaultLeaseTTL = 5 * time.Second
	// MinLeaseTTL and MaxLeaseTTL bound lease_ttl. etcd raises a TTL
	// below 1.5 election timeouts (1.5 s with its defaults) anyway.
	MinLeaseTTL = 2 * time.Second
	MaxLeaseTTL = 300 * time.Second
	// DefaultDialTimeout is the default dial_timeout.
	DefaultDialTimeout = 5 * time.Second
	// DefaultClusterPrefix is the default prefix of the cluster's etcd
	// keys.
	DefaultClusterPrefix = "/scstd/"
	// DefaultEtcdPort is the port of an etcd URL that names none.
	DefaultEtcdPort = 2379
	// MaxMemberID is the largest member id, and MaxClusterRelTgtID the
	// largest rel_tgt_id of a target in a cluster: a gateway's relative
	// target port identifiers are id·256 + rel_tgt_id.
	MaxMemberID        = 255
	MaxClusterRelTgtID = 255
)

// Cluster is the cluster block: the etcd cluster that holds the state the
// gateways share, and this gateway's name among them.
type Cluster struct {
	// Etcd are the etcd client URLs, normalised to "scheme://host:port"
	// (port 2379 when the URL has none). All use one scheme: http, or
	// https for TLS.
	Etcd []string
	// Gateway is this gateway's name, unique in the cluster.
	Gateway string
	// Prefix starts every key of the cluster; it starts and ends with
	// "/" (default DefaultClusterPrefix).
	Prefix string
	// LeaseTTL is the time to live of the gateway's lease, whole seconds
	// (default DefaultLeaseTTL).
	LeaseTTL time.Duration
	// DialTimeout bounds each connection attempt to etcd (default
	// DefaultDialTimeout).
	DialTimeout time.Duration
	// CAFile holds the certificates of the authorities that sign the
	// etcd servers' certificates ("": the system's). CertFile and KeyFile
	// are the gateway's client certificate and key, both or neither.
	// Paths are absolute.
	CAFile, CertFile, KeyFile string
	// Username and Password authenticate to etcd (both or neither).
	Username string
	Password Secret
	// Members are the gateways of the cluster (member blocks), in file
	// order; names and ids are unique, and Gateway is one of them.
	Members []*ClusterMember

	// DeclRange is the range of the block header.
	DeclRange hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs map[string]hcl.Range
	// EtcdRanges are the ranges of the elements of etcd.
	EtcdRanges []hcl.Range
	// GatewayValue is the range of the gateway attribute's expression,
	// which HashExcept leaves out of the configuration's hash.
	GatewayValue hcl.Range
}

// Range returns the range of attribute name when it was set, and
// DeclRange otherwise.
func (c *Cluster) Range(name string) hcl.Range { return rangeOr(c.Attrs, name, c.DeclRange) }

// Member returns the member block of gateway name, or nil.
func (c *Cluster) Member(name string) *ClusterMember {
	for _, m := range c.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// ClusterMember is one member block: a gateway of the cluster and its
// id.
type ClusterMember struct {
	// Name is the gateway's name (its gateway attribute on that host).
	Name string
	// ID is the gateway's id, 1..MaxMemberID: its target portal group
	// tag and the high byte of its relative target port identifiers.
	ID int

	// DeclRange is the range of the block header, NameRange of its label.
	DeclRange hcl.Range
	NameRange hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs map[string]hcl.Range
}

// Range returns the range of attribute name when it was set, and
// DeclRange otherwise.
func (m *ClusterMember) Range(name string) hcl.Range { return rangeOr(m.Attrs, name, m.DeclRange) }

// TLS reports whether the gateway talks to etcd over TLS.
func (c *Cluster) TLS() bool { return len(c.Etcd) > 0 && strings.HasPrefix(c.Etcd[0], "https://") }

var clusterSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "etcd", Required: true}, {Name: "gateway", Required: true}, {Name: "lease_ttl"},
		{Name: "dial_timeout"}, {Name: "prefix"}, {Name: "ca_file"}, {Name: "cert_file"},
		{Name: "key_file"}, {Name: "username"}, {Name: "password"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "member", LabelNames: []string{"name"}}},
}

var memberSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "id", Required: true}},
}

// cluster decodes the cluster block.
func (d *decoder) cluster(b *hcl.Block) {
	if prev := d.cfg.Cluster; prev != nil {
		d.duplicate(b.DefRange, "Duplicate cluster block", fmt.Sprintf("Only one cluster block is allowed; it is also declared at %s.", at(prev.DeclRange)))
		return
	}
	c := &Cluster{Prefix: DefaultClusterPrefix, LeaseTTL: DefaultLeaseTTL, DialTimeout: DefaultDialTimeout,
		DeclRange: b.DefRange, Attrs: map[string]hcl.Range{}}
	d.cfg.Cluster = c
	content := d.content(b.Body, clusterSchema)
	for _, a := range sortedAttrs(content.Attributes) {
		c.Attrs[a.Name] = a.Range
		switch a.Name {
		case "etcd":
			d.etcdURLs(c, a)
		case "gateway":
			c.GatewayValue = a.Expr.Range()
			if s, ok := d.str(a); ok {
				if err := checkGatewayName(s); err != nil {
					d.errorf(a.Expr.Range(), "Invalid gateway name", "%v. The name is this gateway's key in etcd; take it from the environment with env(\"SCSTD_GATEWAY\") so that every gateway runs the same file.", err)
					continue
				}
				c.Gateway = s
			}
		case "prefix":
			if s, ok := d.str(a); ok {
				if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, "/") || strings.Contains(s, "//") {
					d.errorf(a.Expr.Range(), "Invalid prefix", "Expected a key prefix that starts and ends with \"/\", such as \"/scstd/site-a/\", got %q.", s)
					continue
				}
				c.Prefix = s
			}
		case "lease_ttl":
			if v, ok := d.duration(a, MinLeaseTTL, MaxLeaseTTL); ok {
				if v%time.Second != 0 {
					d.errorf(a.Expr.Range(), "Invalid lease_ttl", "etcd grants leases in whole seconds; got %v.", v)
					continue
				}
				c.LeaseTTL = v
			}
		case "dial_timeout":
			if v, ok := d.duration(a, 100*time.Millisecond, 5*time.Minute); ok {
				c.DialTimeout = v
			}
		case "ca_file", "cert_file", "key_file":
			if s, ok := d.str(a); ok {
				if s == "" {
					d.errorf(a.Expr.Range(), "Empty "+a.Name, "Expected the path of a PEM file; remove the attribute for none.")
					continue
				}
				if !filepath.IsAbs(s) {
					s = absPath(d.dir, s)
				}
				switch a.Name {
				case "ca_file":
					c.CAFile = s
				case "cert_file":
					c.CertFile = s
				default:
					c.KeyFile = s
				}
			}
		case "username":
			if s, ok := d.str(a); ok {
				if s == "" {
					d.errorf(a.Expr.Range(), "Empty username", "Expected the etcd user's name; remove username and password for no authentication.")
					continue
				}
				c.Username = s
			}
		case "password":
			if s, ok := d.str(a); ok {
				if s == "" {
					// Point at the name: the value may be a literal secret.
					d.errorf(a.NameRange, "Empty password", "The etcd password is empty; set it with file() or env().")
					continue
				}
				c.Password = NewSecret(s)
			}
		}
	}
	for _, b := range content.Blocks {
		d.clusterMember(c, b)
	}
	d.clusterPairs(c)
	d.clusterSelf(c)
}

// clusterMember decodes one member block.
func (d *decoder) clusterMember(c *Cluster, b *hcl.Block) {
	m := &ClusterMember{Name: b.Labels[0], DeclRange: b.DefRange, NameRange: b.LabelRanges[0], Attrs: map[string]hcl.Range{}}
	if err := checkGatewayName(m.Name); err != nil {
		d.errorf(m.NameRange, "Invalid member name", "%v. A member block is labelled with the gateway's name.", err)
		return
	}
	if prev := c.Member(m.Name); prev != nil {
		d.duplicate(m.NameRange, "Duplicate member", fmt.Sprintf("The gateway %q is also declared at %s.", m.Name, at(prev.NameRange)))
		return
	}
	content := d.content(b.Body, memberSchema)
	a, ok := content.Attributes["id"]
	if !ok {
		return // the schema reported it
	}
	m.Attrs["id"] = a.Range
	n, ok := d.intIn(a, 1, MaxMemberID)
	if !ok {
		return
	}
	m.ID = int(n)
	for _, o := range c.Members {
		if o.ID == m.ID {
			d.errorf(a.Expr.Range(), "Duplicate member id", "id %d is also the id of the gateway %q at %s; each gateway has its own.", m.ID, o.Name, at(o.Range("id")))
			return
		}
	}
	c.Members = append(c.Members, m)
}

// clusterSelf checks that the gateway's own name has a member block:
// its id gives its ports.
func (d *decoder) clusterSelf(c *Cluster) {
	if c.Gateway == "" || c.Member(c.Gateway) != nil {
		return
	}
	names := make([]string, len(c.Members))
	for i, m := range c.Members {
		names[i] = strconv.Quote(m.Name)
	}
	known := "The cluster block declares no member."
	if len(names) > 0 {
		known = "Its members are " + strings.Join(names, ", ") + "."
	}
	d.errorf(c.Range("gateway"), "Gateway not a member", "This gateway is %q, which has no member block. %s Add member %q { id = N } (1..%d, unique): every gateway reads the ids of all from the same file.",
		c.Gateway, known, c.Gateway, MaxMemberID)
}

// etcdURLs decodes the etcd attribute.
func (d *decoder) etcdURLs(c *Cluster, a *hcl.Attribute) {
	list, ranges, ok := d.strList(a)
	if !ok {
		return
	}
	if len(list) == 0 {
		d.errorf(a.Expr.Range(), "No etcd endpoints", "Expected at least one etcd client URL, such as \"https://etcd1:2379\".")
		return
	}
	scheme := ""
	for k, s := range list {
		u, err := ParseEtcdURL(s)
		if err != nil {
			d.errorf(ranges[k], "Invalid etcd endpoint", "%v. Expected a client URL such as \"https://etcd1:2379\" or \"http://127.0.0.1:2379\".", err)
			continue
		}
		sch, _, _ := strings.Cut(u, "://")
		if scheme == "" {
			scheme = sch
		} else if sch != scheme {
			d.errorf(ranges[k], "Mixed etcd schemes", "Every etcd endpoint uses one scheme; this one is %s, the first is %s.", sch, scheme)
			continue
		}
		c.Etcd = append(c.Etcd, u)
		c.EtcdRanges = append(c.EtcdRanges, ranges[k])
	}
}

// clusterPairs checks the attributes that go together: a client
// certificate and its key, a user and a password, TLS files and https.
func (d *decoder) clusterPairs(c *Cluster) {
	pair := func(x, y string) {
		_, hasX := c.Attrs[x]
		_, hasY := c.Attrs[y]
		if hasX && !hasY {
			d.errorf(c.Range(x), "Missing "+y, "%s is set but %s is not; set both or neither.", x, y)
		}
	}
	pair("cert_file", "key_file")
	pair("key_file", "cert_file")
	pair("username", "password")
	pair("password", "username")
	if len(c.Etcd) == 0 || c.TLS() {
		return
	}
	for _, name := range []string{"ca_file", "cert_file", "key_file"} {
		if _, set := c.Attrs[name]; set {
			d.errorf(c.Range(name), "TLS file without https", "%s is set but the etcd endpoints use http://; use https:// URLs for TLS, or remove %s.", name, name)
		}
	}
	if _, set := c.Attrs["password"]; set {
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "etcd password over plain http",
			Detail:   "The etcd endpoints use http://: the password and the token etcd gives for it cross the network unencrypted. Use https:// endpoints.",
			Subject:  c.Range("password").Ptr(),
		})
	}
}

// ParseEtcdURL checks an etcd client URL and returns it as
// "scheme://host:port": scheme http or https, a host (an IPv6 host in
// brackets), a port (DefaultEtcdPort when none), nothing else.
func ParseEtcdURL(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: the scheme must be http or https", s)
	case u.User != nil:
		return "", fmt.Errorf("%q has a user name; use the username and password attributes", s)
	case u.Host == "":
		return "", fmt.Errorf("%q has no host", s)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return "", fmt.Errorf("%q has more than a scheme, a host and a port", s)
	}
	hp, err := access.ParseHostPort(u.Host, DefaultEtcdPort)
	if err != nil {
		return "", err
	}
	return u.Scheme + "://" + hp.String(), nil
}

// checkGatewayName accepts 1 to 64 letters, digits, '-', '_' and '.': a
// host name does.
func checkGatewayName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("gateway name %q must be 1 to 64 characters long", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("gateway name %q has %q; expected letters, digits, '-', '_' and '.'", s, rune(c))
		}
	}
	return nil
}

// duration decodes a duration string ("5s", "1m30s") within [lo, hi].
func (d *decoder) duration(a *hcl.Attribute, lo, hi time.Duration) (time.Duration, bool) {
	s, ok := d.str(a)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(a.Expr.Range(), "Invalid duration", "Expected a duration such as \"5s\" or \"500ms\", got %q.", s)
		return 0, false
	}
	if v < lo || v > hi {
		d.errorf(a.Expr.Range(), "Value out of range", "The attribute %q must be from %v to %v, got %v.", a.Name, lo, hi, v)
		return 0, false
	}
	return v, true
}

// HashExcept is Hash with the bytes of r (in the file r names) left out:
// the cluster's configuration hash, in which files that differ only in
// the gateway's own name (r, Cluster.GatewayValue) hash alike. A zero r
// leaves nothing out.
func (s *Sources) HashExcept(r hcl.Range) string {
	if r.Filename == "" {
		return s.Hash()
	}
	masked := &Sources{Path: s.Path, Dir: s.Dir, Files: make([]Source, len(s.Files))}
	for i, f := range s.Files {
		masked.Files[i] = f
		if f.Name != r.Filename || r.Start.Byte < 0 || r.End.Byte > len(f.Bytes) || r.Start.Byte > r.End.Byte {
			continue
		}
		b := make([]byte, 0, len(f.Bytes))
		b = append(b, f.Bytes[:r.Start.Byte]...)
		b = append(b, '*')
		b = append(b, f.Bytes[r.End.Byte:]...)
		masked.Files[i].Bytes = b
	}
	return masked.Hash()
}
