package reconcile

import (
	"net"
	"testing"

	"github.com/scstd/scstd/iscsi"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestISNSLinks follows the engine's iSNS links across Applies: one
// client per isns_server, kept while the server stays, replaced when it
// changes, the access-control client put in the snapshot, and every link
// closed by Close. (Registration itself is tested against a real isnsd in
// test/e2e.)
func TestISNSLinks(t *testing.T) {
	r := &recorder{}
	e := NewEngine(r, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1, ISNSEntityID: "scstd:test"})
	t.Cleanup(func() { e.Close() })
	a, b := closedAddr(t), closedAddr(t)
	cfg := func(servers string) string {
		return `
iscsi {
  portals = ["127.0.0.1:3260"]
` + servers + `
}
handler "vdisk_nullio" {
  device "null1" { size = "1GiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
}
`
	}
	links := func() map[string]*isnsLink {
		e.mu.Lock()
		defer e.mu.Unlock()
		m := map[string]*isnsLink{}
		for k, v := range e.isns {
			m[k.String()] = v
		}
		return m
	}
	for i, step := range []struct {
		servers    string
		want       []string // servers with a link
		accessFrom string   // server whose client does access control, "" none
		sameAsPrev bool     // the link to want[0] is the previous step's
	}{
		{`isns_server "` + a + `" { access_control = true }`, []string{a}, a, false},
		{`isns_server "` + a + `" {}`, []string{a}, "", true},
		{`isns_server "` + a + `" {}
  isns_server "` + b + `" { access_control = true }`, []string{a, b}, b, true},
		{`isns_server "` + b + `" {}`, []string{b}, "", true},
		{``, nil, "", false},
	} {
		before := links()
		apply(t, e, parse(t, cfg(step.servers)))
		got := links()
		if len(got) != len(step.want) {
			t.Fatalf("step %d: links to %v, want %v", i, got, step.want)
		}
		for _, s := range step.want {
			if got[s] == nil {
				t.Fatalf("step %d: no link to %s", i, s)
			}
		}
		if step.sameAsPrev && got[step.want[0]] != before[step.want[0]] {
			t.Errorf("step %d: the link to %s was replaced", i, step.want[0])
		}
		r.mu.Lock()
		access := r.snap.AccessControl
		r.mu.Unlock()
		var want iscsi.AccessControl
		if step.accessFrom != "" {
			want = got[step.accessFrom].client
		}
		if access != want {
			t.Errorf("step %d: access control by %p, want %p (%s)", i, access, want, step.accessFrom)
		}
		if step.accessFrom != "" && want.Allowed("iqn.x:i", "iqn.x:t") {
			t.Errorf("step %d: an unreachable iSNS server with access control must refuse", i)
		}
	}
	apply(t, e, parse(t, cfg(`isns_server "`+a+`" {}`)))
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := len(links()); n != 0 {
		t.Errorf("%d iSNS links after Close", n)
	}
}
