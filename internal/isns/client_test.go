package isns

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/internal/isnsd"
)

// manualClock is a clock the test moves forward.
type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time          { return c.t }
func (c *manualClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// fakeServer is a scripted iSNS server on a loopback port: it records the
// requests and answers each with reply(request).
type fakeServer struct {
	ln    net.Listener
	mu    sync.Mutex
	reqs  []*message
	reply func(req *message) (status, []byte)
}

func newFakeServer(t *testing.T, reply func(req *message) (status, []byte)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, reply: reply}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		req, err := readMessage(r)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		st, attrs := s.reply(req)
		payload := binary.BigEndian.AppendUint32(nil, uint32(st))
		payload = append(payload, attrs...)
		// An unrelated message first, which the client must skip.
		noise := &message{Function: esi, Flags: flagServer, XID: 999}
		rsp := &message{Function: req.Function | responseBit, Flags: flagServer, XID: req.XID, Payload: payload}
		c.Write(rsp.appendPDUs(noise.appendPDUs(nil)))
	}
}

func (s *fakeServer) requests() []*message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*message(nil), s.reqs...)
}

// hostPort parses the address of a test server.
func hostPort(t testing.TB, s string) access.HostPort {
	t.Helper()
	a, err := access.ParseHostPort(s, access.ISNSPort)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// addrPorts parses portals.
func addrPorts(list ...string) []netip.AddrPort {
	out := make([]netip.AddrPort, len(list))
	for i, s := range list {
		out[i] = netip.MustParseAddrPort(s)
	}
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestClientAgainstFake(t *testing.T) {
	allowed := "iqn.b:good"
	srv := newFakeServer(t, func(req *message) (status, []byte) {
		switch req.Function {
		case devAttrReg:
			return statusSuccess, appendUint32(nil, tagRegistrationPeriod, 60)
		case devDereg:
			return statusSuccess, nil
		case devAttrQry:
			attrs, _ := parseAttrs(req.Payload)
			ini := attrString(attrs[1].Value)
			if ini != allowed {
				return statusNoSuchEntry, nil
			}
			var b []byte
			b = appendString(b, tagISCSIName, ini) // key echoed
			b = appendNil(b, tagDelimiter)
			b = appendString(b, tagISCSIName, ini)
			b = appendUint32(b, tagISCSINodeType, 2)
			return statusSuccess, b
		}
		return statusMessageNotSupported, nil
	})
	c := NewClient(Config{Server: hostPort(t, srv.ln.Addr().String()), EntityID: "scstd:test", AccessControl: true, Logger: quietLogger()})
	clk := &manualClock{t: time.Unix(1_000_000, 0)}
	c.now = clk.now

	if err := c.Update([]string{"iqn.a:t2", "iqn.a:t1", "iqn.a:t1"}, addrPorts("0.0.0.0:3260", "[::ffff:192.0.2.1]:3260")); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 || reqs[0].Function != devAttrReg || reqs[0].Flags&flagReplace == 0 || reqs[0].Flags&flagClient == 0 {
		t.Fatalf("requests %+v", reqs)
	}
	want := (&registration{Entity: "scstd:test", Source: "iqn.a:t1", Targets: []string{"iqn.a:t1", "iqn.a:t2"},
		Portals: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:3260"), netip.MustParseAddrPort("192.0.2.1:3260")}, PGT: 1}).payload()
	if !bytes.Equal(reqs[0].Payload, want) {
		t.Fatalf("registration\n%x\nwant (wildcard portal → local address, duplicates removed, sorted)\n%x", reqs[0].Payload, want)
	}
	if c.refresh != 30*time.Second {
		t.Fatalf("refresh %v, want half of the 60s period", c.refresh)
	}

	// Dropping t1: the source is the target that stays.
	if err := c.Update([]string{"iqn.a:t2"}, addrPorts("192.0.2.1:3260")); err != nil {
		t.Fatal(err)
	}
	attrs, _ := parseAttrs(srv.requests()[1].Payload)
	if src := attrString(attrs[0].Value); src != "iqn.a:t2" {
		t.Fatalf("source %q", src)
	}
	// Replacing every target: the source is one still registered.
	if err := c.Update([]string{"iqn.a:t3"}, addrPorts("192.0.2.1:3260")); err != nil {
		t.Fatal(err)
	}
	attrs, _ = parseAttrs(srv.requests()[2].Payload)
	if src := attrString(attrs[0].Value); src != "iqn.a:t2" {
		t.Fatalf("source %q", src)
	}

	// Access control, with caching.
	if !c.Allowed("iqn.b:good", "iqn.a:t3") || c.Allowed("iqn.b:bad", "iqn.a:t3") {
		t.Fatal("wrong access answers")
	}
	n := len(srv.requests())
	c.Allowed("iqn.b:good", "iqn.a:t3")
	if len(srv.requests()) != n {
		t.Fatal("answer not cached")
	}
	clk.advance(11 * time.Second)
	c.Allowed("iqn.b:good", "iqn.a:t3")
	if len(srv.requests()) != n+1 {
		t.Fatal("cache not expired")
	}

	// No targets: deregistration; Close then has nothing to do.
	if err := c.Update(nil, nil); err != nil {
		t.Fatal(err)
	}
	last := srv.requests()[len(srv.requests())-1]
	if last.Function != devDereg || !bytes.Equal(last.Payload, deregPayload("iqn.a:t3", "scstd:test")) {
		t.Fatalf("deregistration %v %x", last.Function, last.Payload)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Update([]string{"x"}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v", err)
	}
}

func TestClientFailures(t *testing.T) {
	srv := newFakeServer(t, func(req *message) (status, []byte) { return statusSourceUnauthorized, nil })
	c := NewClient(Config{Server: hostPort(t, srv.ln.Addr().String()), AccessControl: true, Logger: quietLogger()})
	if err := c.Update([]string{"iqn.a:t"}, addrPorts("192.0.2.1:3260")); !errors.Is(err, statusSourceUnauthorized) {
		t.Fatalf("Update: %v", err)
	}
	if c.Allowed("iqn.b:i", "iqn.a:t") {
		t.Fatal("an error answer allows access")
	}

	// Unreachable server: access control fails closed.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	d := NewClient(Config{Server: hostPort(t, addr), AccessControl: true, Logger: quietLogger(), Timeout: time.Second})
	if d.Allowed("iqn.b:i", "iqn.a:t") {
		t.Fatal("unreachable server allows access")
	}
	// Without access control, and for a nil client, everything is allowed.
	e := NewClient(Config{Server: hostPort(t, addr), Logger: quietLogger()})
	var nilClient *Client
	if !e.Allowed("a", "b") || !nilClient.Allowed("a", "b") {
		t.Fatal("access control off must allow")
	}
}

func TestRunRefreshes(t *testing.T) {
	var mu sync.Mutex
	regs := 0
	srv := newFakeServer(t, func(req *message) (status, []byte) {
		mu.Lock()
		defer mu.Unlock()
		if req.Function == devAttrReg {
			regs++
		}
		return statusSuccess, appendUint32(nil, tagRegistrationPeriod, 1)
	})
	c := NewClient(Config{Server: hostPort(t, srv.ln.Addr().String()), Logger: quietLogger()})
	if err := c.Update([]string{"iqn.a:t"}, addrPorts("192.0.2.1:3260")); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.refresh = 50 * time.Millisecond // as if the period were 100ms
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := regs
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not refresh the registration")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWithOpenISNS(t *testing.T) {
	for _, tool := range []string{"isnsd", "isnsadm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s (open-isns) not installed", tool)
		}
	}
	d := isnsd.Start(t)
	const (
		t1   = "iqn.2026-11.org.example:storage.t1"
		t2   = "iqn.2026-11.org.example:storage.t2"
		ini1 = "iqn.2026-11.org.example:host1"
		ini2 = "iqn.2026-11.org.example:host2"
	)
	c := NewClient(Config{Server: hostPort(t, d.Addr), EntityID: "scstd:isnstest", AccessControl: true,
		Logger: quietLogger(), CacheTTL: time.Millisecond})
	if err := c.Update([]string{t1, t2}, addrPorts("127.0.0.1:3260")); err != nil {
		t.Fatal(err)
	}
	if c.refresh != 5*time.Minute {
		t.Errorf("refresh %v, want half of isnsd's 10m registration period", c.refresh)
	}
	out := d.Adm(t, "--query", "iscsi-name="+t1)
	if !strings.Contains(out, t1) || !strings.Contains(out, "Target") {
		t.Fatalf("isnsadm does not see %s:\n%s", t1, out)
	}
	out = d.Adm(t, "--list", "portals")
	if !strings.Contains(out, "127.0.0.1") || !strings.Contains(out, "3260") {
		t.Fatalf("portal not registered:\n%s", out)
	}
	out = d.Adm(t, "--list", "portal-groups")
	if strings.Count(out, "Portal group tag = 1") != 2 || !strings.Contains(out, t1) || !strings.Contains(out, t2) {
		t.Fatalf("portal groups (one per target and portal, tag 1):\n%s", out)
	}
	out = d.Adm(t, "--list", "entities")
	if !strings.Contains(out, "scstd:isnstest") {
		t.Fatalf("entity not registered:\n%s", out)
	}

	// Update drops t1 and keeps t2.
	if err := c.Update([]string{t2}, addrPorts("127.0.0.1:3260")); err != nil {
		t.Fatal(err)
	}
	out = d.Adm(t, "--list", "nodes")
	if strings.Contains(out, t1) || !strings.Contains(out, t2) {
		t.Fatalf("after update:\n%s", out)
	}

	// Access control: host1 shares a discovery domain with t2; host2 is in
	// none, so only the (empty of t2) default domain.
	d.Adm(t, "--register", "entity=hosts", "initiator,iscsi-name="+ini1, "initiator,iscsi-name="+ini2)
	if !c.Allowed(ini1, t2) || !c.Allowed(ini2, t2) {
		t.Fatal("default discovery domain: both initiators must be allowed")
	}
	d.Adm(t, "--dd-register", "dd-name=storage", "dd-member-name="+t2, "dd-member-name="+ini1)
	time.Sleep(5 * time.Millisecond) // past CacheTTL
	if !c.Allowed(ini1, t2) {
		t.Fatal("host1 shares a discovery domain with t2 but is refused")
	}
	if c.Allowed(ini2, t2) {
		t.Fatal("host2 is in no discovery domain with t2 but is allowed")
	}
	if c.Allowed("iqn.2026-11.org.example:unregistered", t2) {
		t.Fatal("an unregistered initiator is allowed")
	}

	// Close deregisters the entity.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	out = d.Adm(t, "--list", "nodes")
	if strings.Contains(out, t2) {
		t.Fatalf("t2 still registered after Close:\n%s", out)
	}
}
