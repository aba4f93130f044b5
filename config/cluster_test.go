package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClusterDecode(t *testing.T) {
	l := testLoader()
	cfg, diags := l.Load("testdata/valid/cluster.hcl")
	if len(diags) > 0 {
		t.Fatal(diagText(t, l, diags))
	}
	c := cfg.Cluster
	if len(c.Members) != 2 || c.Member("gw1").ID != 1 || c.Member("gw2.example.com").ID != 2 || c.Member("gw3") != nil {
		t.Errorf("members %+v", c.Members)
	}
	if tg := cfg.DeviceGroups[0].TargetGroups; tg[0].Gateway != "gw1" || tg[1].Gateway != "gw2.example.com" {
		t.Errorf("target groups' gateways: %q, %q", tg[0].Gateway, tg[1].Gateway)
	}
	abs, _ := filepath.Abs("testdata/valid/etcd/ca.pem")
	want := []string{"https://127.0.0.1:2379", "https://[::1]:2380", "https://etcd3.example.com:2379"}
	if fmt.Sprint(c.Etcd) != fmt.Sprint(want) || c.Gateway != "gw1" || c.Prefix != "/scstd/site-a/" ||
		c.LeaseTTL != 10*time.Second || c.DialTimeout != 2*time.Second || c.CAFile != abs ||
		c.CertFile != "/etc/scstd/etcd-client.pem" || c.KeyFile != "/etc/scstd/etcd-client.key" ||
		c.Username != "scstd" || c.Password.Reveal() != testEnv["JOE_SECRET"] || !c.TLS() {
		t.Errorf("decoded %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c.Password, c, c); strings.Contains(s, testEnv["JOE_SECRET"]) {
		t.Errorf("the etcd password prints: %s", s)
	}

	cfg, diags = l.Parse([]byte(`cluster {
  etcd    = ["http://127.0.0.1"]
  gateway = "gw2.example.com"
  member "gw2.example.com" { id = 7 }
}`), "/etc/scst.hcl")
	if len(diags) > 0 {
		t.Fatal(diagText(t, l, diags))
	}
	c = cfg.Cluster
	if c.Etcd[0] != "http://127.0.0.1:2379" || c.Gateway != "gw2.example.com" || c.Prefix != DefaultClusterPrefix ||
		c.LeaseTTL != DefaultLeaseTTL || c.DialTimeout != DefaultDialTimeout || c.TLS() || c.Username != "" ||
		len(c.Members) != 1 || c.Member("gw2.example.com").ID != 7 {
		t.Errorf("defaults: %+v", c)
	}
	if cfg, _ := testLoader().Parse(nil, "/etc/scst.hcl"); cfg.Cluster != nil {
		t.Error("a file without a cluster block has a Cluster")
	}
}

func TestParseEtcdURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "http://127.0.0.1:2379", want: "http://127.0.0.1:2379"},
		{in: "https://etcd1", want: "https://etcd1:2379"},
		{in: "https://etcd1/", want: "https://etcd1:2379"},
		{in: "http://[fe80::1]:12379", want: "http://[fe80::1]:12379"},
		{in: "etcd1:2379", err: "scheme must be http or https"},
		{in: "unix:///run/etcd.sock", err: "scheme must be http or https"},
		{in: "http://u:p@etcd1:2379", err: "use the username and password attributes"},
		{in: "http://etcd1:2379/v3", err: "more than a scheme"},
		{in: "http://etcd1:2379?x=1", err: "more than a scheme"},
		{in: "http://:2379", err: "empty host"},
		{in: "http://etcd1:99999", err: "not a number from 1 to 65535"},
		{in: "http://::1:2379", err: "not a URL"},
	} {
		got, err := ParseEtcdURL(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseEtcdURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseEtcdURL(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}

// TestHashExcept: the cluster's configuration hash leaves out the
// gateway's own name, literal or from env(), and nothing else.
func TestHashExcept(t *testing.T) {
	const file = `cluster {
  etcd    = ["http://127.0.0.1:2379"]
  gateway = %s
  member "gw1" { id = 1 }
  member "gateway-two" { id = 2 }
}
target "iqn.2026-11.org.example:a" {
  rel_tgt_id      = 1
  queued_commands = %d
}
`
	hash := func(gateway string, queued int) (plain, cluster string) {
		t.Helper()
		src := &Sources{Path: "/etc/scst.hcl", Files: []Source{{Name: "/etc/scst.hcl", Bytes: []byte(fmt.Sprintf(file, gateway, queued))}}}
		l := testLoader()
		cfg, diags := l.LoadSources(src)
		if diags.HasErrors() {
			t.Fatal(diagText(t, l, diags))
		}
		return src.Hash(), src.HashExcept(cfg.Cluster.GatewayValue)
	}
	p1, c1 := hash(`"gw1"`, 32)
	p2, c2 := hash(`"gateway-two"`, 32)
	p3, c3 := hash(`env("SCSTD_GATEWAY")`, 32)
	_, c4 := hash(`"gw1"`, 64)
	if p1 == p2 || p1 == p3 {
		t.Error("Hash leaves the gateway out")
	}
	if c1 != c2 || c1 != c3 {
		t.Errorf("HashExcept differs with the gateway name alone: %s %s %s", c1, c2, c3)
	}
	if c4 == c1 {
		t.Error("HashExcept misses a change outside the gateway's name")
	}
	src := &Sources{Path: "/etc/scst.hcl", Files: []Source{{Name: "/etc/scst.hcl", Bytes: []byte("x")}}}
	if src.HashExcept(Cluster{}.GatewayValue) != src.Hash() {
		t.Error("HashExcept of a zero range is not Hash")
	}
}
