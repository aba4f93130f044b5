package reconcile

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/config"
)

func baseCluster() *Cluster {
	return &Cluster{Gateway: "gw1", Prefix: "/scstd/", Etcd: []string{"http://127.0.0.1:2379"},
		LeaseTTL: 5 * time.Second, DialTimeout: 5 * time.Second,
		Members: []ClusterMember{{"gw1", 1}, {"gw2", 2}}}
}

// TestClusterPlans: what a plan says of each change of the cluster block
// (golden files testdata/cluster_*.golden), and that applying the plan
// gives the desired model.
func TestClusterPlans(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after *Cluster
	}{
		{"cluster_added", nil, baseCluster()},
		{"cluster_removed", baseCluster(), nil},
		{"cluster_connection", baseCluster(), func() *Cluster {
			c := baseCluster()
			c.Etcd = []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"}
			c.LeaseTTL, c.DialTimeout = 10*time.Second, 2*time.Second
			c.CAFile, c.CertFile, c.KeyFile = "/etc/scstd/ca.pem", "/etc/scstd/c.pem", "/etc/scstd/c.key"
			c.Username, c.Password = "scstd", config.NewSecret("secret-one")
			return c
		}()},
		{"cluster_identity", baseCluster(), func() *Cluster {
			c := baseCluster()
			c.Gateway, c.Prefix = "gw2", "/scstd/site-a/"
			return c
		}()},
		{"cluster_members", baseCluster(), func() *Cluster {
			c := baseCluster()
			c.Members = append(c.Members, ClusterMember{"gw3", 3})
			return c
		}()},
		{"cluster_own_id", baseCluster(), func() *Cluster {
			c := baseCluster()
			c.Members = []ClusterMember{{"gw1", 4}, {"gw2", 2}}
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			running, desired := baseModel(), baseModel()
			running.Cluster, desired.Cluster = tc.before, tc.after
			p := Diff(running, desired, goldenSessions)
			got := p.String()
			compareGoldenPlan(t, tc.name, got)
			if strings.Contains(got, "secret-one") {
				t.Error("the plan prints the password")
			}
			for _, c := range p.Changes {
				if c.Op != SetCluster || c.Impact != Hot || (c.Reason != ReasonReconnect && c.Reason != ReasonNextStart && c.Reason != reasonMembers) {
					t.Errorf("change %+v", c)
				}
			}
			if next := running.apply(p); !reflect.DeepEqual(next.Cluster, desired.Cluster) {
				t.Errorf("apply(diff(a, b), a).Cluster = %+v, want %+v", next.Cluster, desired.Cluster)
			}
			if !Diff(desired, desired, goldenSessions).Empty() {
				t.Error("diff(b, b) is not empty")
			}
		})
	}
}

// TestClusterFirstApply: the start takes the cluster block as it is (the
// daemon joins with it); later reloads plan its changes.
func TestClusterFirstApply(t *testing.T) {
	e := NewEngine(&recorder{}, nil, Options{RetryInterval: -1, SizePollInterval: -1})
	t.Cleanup(func() { e.Close() })
	const cfg = `
cluster {
  etcd    = ["%s"]
  gateway = "%s"
  member "gw1" { id = 1 }
  member "gw2" { id = 2 }
}
handler "vdisk_nullio" {
  device "null1" { size = "1MiB" }
}
target "iqn.2026-11.org.example:a" {
  rel_tgt_id = 1
  lun "0" { device = "null1" }
}
`
	render := func(etcd, gw string) *config.Config {
		return parse(t, strings.Replace(strings.Replace(cfg, "%s", etcd, 1), "%s", gw, 1))
	}
	res := apply(t, e, render("http://127.0.0.1:2379", "gw1"))
	for _, c := range res.Plan.Changes {
		if c.Op == SetCluster {
			t.Errorf("the start plans %v", c)
		}
	}
	res = apply(t, e, render("http://127.0.0.2:2379", "gw2"))
	got := map[string]string{}
	for _, c := range res.Plan.Changes {
		got[c.Attr] = c.Reason
	}
	if len(got) != 2 || got["etcd"] != ReasonReconnect || got["gateway"] != ReasonNextStart {
		t.Errorf("reload plan: %s", res.Plan)
	}
	if p, _ := e.Plan(render("http://127.0.0.2:2379", "gw2")); !p.Empty() {
		t.Errorf("the applied cluster block plans again: %s", p)
	}
}
