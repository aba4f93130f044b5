package reconcile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scstd/scstd/config"
)

// Cluster is the cluster block (docs/scale-out.md). The engine only
// carries it, as it carries log_level: the daemon acts on the applied
// plan's SetCluster changes. What a change does is in its reason: the
// connection settings apply at once by reconnecting to etcd
// (reasonReconnect); the gateway's identity in the cluster (its name, the
// key prefix, the block itself) applies at the next start
// (reasonNextStart), since phase 2 hangs the gateway's ports and the
// logical units' reservations on it.
type Cluster struct {
	Gateway     string        `json:"gateway"`
	Prefix      string        `json:"prefix"`
	Etcd        []string      `json:"etcd"`
	LeaseTTL    time.Duration `json:"lease_ttl"`
	DialTimeout time.Duration `json:"dial_timeout"`
	CAFile      string        `json:"ca_file,omitempty"`
	CertFile    string        `json:"cert_file,omitempty"`
	KeyFile     string        `json:"key_file,omitempty"`
	Username    string        `json:"username,omitempty"`
	Password    config.Secret `json:"password"`
	// Members are the gateways of the cluster and their ids, by name.
	Members []ClusterMember `json:"members"`
}

// ClusterMember is a gateway of the cluster and its id (its target
// portal group tag and the high byte of its relative port identifiers).
type ClusterMember struct {
	Name string `json:"name"`
	ID   uint16 `json:"id"`
}

// id returns the id of gateway name, 0 when it is no member.
func (c *Cluster) id(name string) uint16 {
	if c == nil {
		return 0
	}
	for _, m := range c.Members {
		if m.Name == name {
			return m.ID
		}
	}
	return 0
}

// The reasons of cluster changes; the daemon acts on them.
const (
	// ReasonReconnect: the daemon reconnects to etcd with the new
	// settings, make-before-break.
	ReasonReconnect = "reconnects to etcd"
	// ReasonNextStart: the running daemon keeps its identity in the
	// cluster; the new one applies when it starts again.
	ReasonNextStart = "applies at the next start"
	// reasonMembers: the other gateways' ports, which REPORT TARGET PORT
	// GROUPS lists, follow at once.
	reasonMembers = "the other gateways' ports follow"
)

// ClusterAddr is the address of the cluster block.
var ClusterAddr = Addr{Cluster: true}

var clusterAttrs = []attr[Cluster]{
	field("gateway", func(c *Cluster) *string { return &c.Gateway }, fixed[Cluster](SetCluster, Hot, ReasonNextStart)),
	field("prefix", func(c *Cluster) *string { return &c.Prefix }, fixed[Cluster](SetCluster, Hot, ReasonNextStart)),
	listField("etcd", func(c *Cluster) *[]string { return &c.Etcd }, fixed[Cluster](SetCluster, Hot, ReasonReconnect)),
	field("lease_ttl", func(c *Cluster) *time.Duration { return &c.LeaseTTL }, fixed[Cluster](SetCluster, Hot, ReasonReconnect)),
	field("dial_timeout", func(c *Cluster) *time.Duration { return &c.DialTimeout }, fixed[Cluster](SetCluster, Hot, ReasonReconnect)),
	field("ca_file", func(c *Cluster) *string { return &c.CAFile }, fixed[Cluster](SetCluster, Hot, ReasonReconnect)),
	field("cert_file", func(c *Cluster) *string { return &c.CertFile }, fixed[Cluster](SetCluster, Hot, ReasonReconnect)),
	field("key_file", func(c *Cluster) *string { return &c.KeyFile }, fixed[Cluster](SetCluster, Hot, ReasonReconnect)),
	field("username", func(c *Cluster) *string { return &c.Username }, fixed[Cluster](SetCluster, Hot, ReasonReconnect)),
	{
		name: "members",
		get:  func(c *Cluster) any { return c.Members },
		set:  func(c *Cluster, v any) { c.Members = v.([]ClusterMember) },
		eq:   func(a, b *Cluster) bool { return slices.Equal(a.Members, b.Members) },
		change: func(b, a *Cluster) (Op, Impact, string) {
			// This gateway's own id is its ports' identity: it
			// applies at the next start, as its name does.
			if b.id(b.Gateway) != a.id(a.Gateway) {
				return SetCluster, Hot, ReasonNextStart
			}
			return SetCluster, Hot, reasonMembers
		},
	},
	{
		name:   "password",
		get:    func(c *Cluster) any { return c.Password },
		set:    func(c *Cluster, v any) { c.Password = v.(config.Secret) },
		eq:     func(a, b *Cluster) bool { return a.Password.Equal(b.Password) },
		change: fixed[Cluster](SetCluster, Hot, ReasonReconnect),
	},
}

// clusterFromConfig returns the model of a cluster block, nil for none.
func clusterFromConfig(c *config.Cluster) *Cluster {
	if c == nil {
		return nil
	}
	m := &Cluster{Gateway: c.Gateway, Prefix: c.Prefix, Etcd: slices.Clone(c.Etcd), LeaseTTL: c.LeaseTTL,
		DialTimeout: c.DialTimeout, CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
		Username: c.Username, Password: c.Password}
	for _, cm := range c.Members {
		m.Members = append(m.Members, ClusterMember{Name: cm.Name, ID: uint16(cm.ID)})
	}
	slices.SortFunc(m.Members, func(a, b ClusterMember) int { return strings.Compare(a.Name, b.Name) })
	return m
}

// clone returns a deep copy of c (nil for nil).
func (c *Cluster) clone() *Cluster {
	if c == nil {
		return nil
	}
	n := *c
	n.Etcd = slices.Clone(c.Etcd)
	n.Members = slices.Clone(c.Members)
	return &n
}

// String summarizes the block for a plan: the gateway and where it
// joins.
func (c *Cluster) String() string {
	return fmt.Sprintf("gateway %s in %s", strconv.Quote(c.Gateway), strconv.Quote(c.Prefix))
}

// cluster adds the changes of the cluster block: one for the block
// itself when it comes or goes, else one per attribute.
func (d *differ) cluster() {
	r, w := d.running.Cluster, d.desired.Cluster
	switch {
	case r == nil && w == nil:
	case r == nil || w == nil:
		d.add(Change{Op: SetCluster, Addr: ClusterAddr, Before: r.clone(), After: w.clone(), Impact: Hot, Reason: ReasonNextStart}, Hot)
	default:
		diffAttrs(d, ClusterAddr, clusterAttrs, r, w, Hot)
	}
}

// applyCluster sets the model's cluster block as c says.
func (m *Model) applyCluster(c Change) {
	if c.Attr == "" {
		after, _ := c.After.(*Cluster)
		m.Cluster = after.clone()
		return
	}
	setAttr(clusterAttrs, m.Cluster, c)
}
