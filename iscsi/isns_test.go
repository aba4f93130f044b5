package iscsi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
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

	"github.com/scstd/scstd/internal/isnsd"
)

// unhex decodes hex words written with spaces and line breaks; on each
// line, the first word that is not hex starts a comment.
// manualClock is a clock the test moves forward.
type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time          { return c.t }
func (c *manualClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func isnsHex(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
	for _, line := range strings.Split(s, "\n") {
		for _, f := range strings.Fields(line) {
			b, err := hex.DecodeString(f)
			if err != nil {
				break
			}
			out = append(out, b...)
		}
	}
	return out
}

func TestISNSPayloads(t *testing.T) {
	portal := netip.MustParseAddrPort("192.0.2.1:3260")
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{
			name: "DevDereg of an entity",
			got:  isnsDeregPayload("iqn.a:t", "e1"),
			want: `
				00000020 00000008 69716e2e613a7400  source: iSCSI Name "iqn.a:t\0"
				00000000 00000000                   delimiter (no message key)
				00000001 00000004 65310000          Entity Identifier "e1\0" + 1 pad`,
		},
		{
			name: "DevAttrQry for access control",
			got:  isnsAccessQueryPayload("iqn.a:t", "iqn.b:i"),
			want: `
				00000020 00000008 69716e2e613a7400  source: the target
				00000020 00000008 69716e2e623a6900  key: iSCSI Name of the initiator
				00000000 00000000                   delimiter
				00000020 00000000                   return iSCSI Name
				00000021 00000000                   return iSCSI Node Type`,
		},
		{
			name: "DevAttrReg of one target on one portal",
			got: (&isnsRegistration{Entity: "e1", Source: "iqn.a:t", Targets: []string{"iqn.a:t"},
				Portals: []isnsPortal{portal}, PGT: 1}).payload(),
			want: `
				00000020 00000008 69716e2e613a7400  source: iSCSI Name
				00000001 00000004 65310000          key: Entity Identifier
				00000000 00000000                   delimiter
				00000001 00000004 65310000          Entity Identifier
				00000002 00000004 00000002          Entity Protocol: iSCSI
				00000010 00000010 00000000000000000000ffffc0000201  Portal IP 192.0.2.1 (v4-mapped)
				00000011 00000004 00000cbc          Portal TCP port 3260
				00000020 00000008 69716e2e613a7400  iSCSI Name
				00000021 00000004 00000001          iSCSI Node Type: Target
				00000030 00000008 69716e2e613a7400  PG iSCSI Name
				00000031 00000010 00000000000000000000ffffc0000201  PG Portal IP
				00000032 00000004 00000cbc          PG Portal port
				00000033 00000004 00000001          PG Tag 1`,
		},
		{
			name: "string of exactly four bytes gets a whole word of NUL",
			got:  appendISNSString(nil, isnsTagEntityID, "abcd"),
			want: `00000001 00000008 61626364 00000000`,
		},
		{
			name: "IPv6 address",
			got:  appendISNSIP(nil, isnsTagPortalIP, netip.MustParseAddr("2001:db8::1")),
			want: `00000010 00000010 20010db8000000000000000000000001`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := isnsHex(t, tt.want)
			if !bytes.Equal(tt.got, want) {
				t.Fatalf("got\n%x\nwant\n%x", tt.got, want)
			}
		})
	}
}

func TestISNSPDUFraming(t *testing.T) {
	m := &isnsMessage{Function: isnsDevDereg, Flags: isnsFlagClient, XID: 1, Payload: isnsDeregPayload("iqn.a:t", "e1")}
	got := m.appendPDUs(nil)
	want := isnsHex(t, `
		0001 0004 0024 8c00 0001 0000   version 1, DevDereg, 36 bytes, client|last|first, xid 1, seq 0`)
	want = append(want, m.Payload...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
	back, err := readISNSMessage(bytes.NewReader(got))
	if err != nil || back.Function != m.Function || back.XID != 1 || !bytes.Equal(back.Payload, m.Payload) {
		t.Fatalf("read back %+v, %v", back, err)
	}

	// A payload longer than one PDU is split and reassembled.
	big := &isnsMessage{Function: isnsDevAttrReg | isnsResponse, Flags: isnsFlagServer, XID: 7,
		Payload: bytes.Repeat([]byte{1, 2, 3, 4}, isnsMaxPayload/4+10)}
	wire := big.appendPDUs(nil)
	if len(wire) != len(big.Payload)+2*isnsHeaderLen {
		t.Fatalf("%d bytes on the wire for two PDUs", len(wire))
	}
	first := binary.BigEndian.Uint16(wire[6:])
	second := binary.BigEndian.Uint16(wire[isnsHeaderLen+isnsMaxPayload+6:])
	if isnsFlags(first)&(isnsFlagFirstPDU|isnsFlagLastPDU) != isnsFlagFirstPDU ||
		isnsFlags(second)&(isnsFlagFirstPDU|isnsFlagLastPDU) != isnsFlagLastPDU {
		t.Fatalf("flags %04x %04x", first, second)
	}
	back, err = readISNSMessage(bytes.NewReader(wire))
	if err != nil || !bytes.Equal(back.Payload, big.Payload) {
		t.Fatalf("reassembly: %v", err)
	}
}

func TestISNSReadErrors(t *testing.T) {
	tests := []struct {
		name string
		wire string
	}{
		{"short header", "0001 0004 00"},
		{"version 2", "0002 8004 0004 4c00 0001 0000 00000000"},
		{"truncated payload", "0001 8004 0008 4c00 0001 0000 00000000"},
		{"sequence skips", "0001 8004 0000 4400 0001 0000   0001 8004 0000 4800 0001 0002"},
		{"another transaction inside", "0001 8004 0000 4400 0001 0000   0001 8004 0000 4800 0002 0001"},
		{"no last PDU", "0001 8004 0000 4400 0001 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := readISNSMessage(bytes.NewReader(isnsHex(t, tt.wire))); err == nil {
				t.Fatalf("accepted: %+v", m)
			}
		})
	}
}

func TestISNSParseAttrs(t *testing.T) {
	attrs, err := parseISNSAttrs(isnsHex(t, "00000020 00000008 69716e2e613a7400 00000000 00000000 00000006 00000004 00000258"))
	if err != nil || len(attrs) != 3 {
		t.Fatalf("%v %v", attrs, err)
	}
	if isnsAttrString(attrs[0].Value) != "iqn.a:t" || attrs[1].Tag != isnsTagDelimiter ||
		attrs[2].Tag != isnsTagRegistrationPeriod || binary.BigEndian.Uint32(attrs[2].Value) != 600 {
		t.Fatalf("decoded %+v", attrs)
	}
	for _, bad := range []string{"00000020", "00000020 00000010 00000000", "00000020 ffffffff"} {
		if _, err := parseISNSAttrs(isnsHex(t, bad)); err == nil {
			t.Errorf("parseISNSAttrs(%s) accepted", bad)
		}
	}
}

func TestISNSNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{isnsDevAttrReg.String(), "DevAttrReg"},
		{(isnsDevAttrQry | isnsResponse).String(), "DevAttrQryRsp"},
		{isnsFunction(0x77).String(), "isnsFunction(0x77)"},
		{isnsTagPGTag.String(), "PGTag"},
		{isnsTag(999).String(), "isnsTag(999)"},
		{isnsNoSuchEntry.String(), "No Such Entry"},
		{isnsSourceUnauthorized.Error(), "iSNS server: Source Unauthorized"},
		{isnsStatus(99).String(), "isnsStatus(99)"},
		{(isnsFlagClient | isnsFlagReplace | isnsFlagLastPDU | isnsFlagFirstPDU).String(), "client|replace|last|first"},
		{(isnsFlagServer | 1).String(), "server|0x1"},
		{isnsFlags(0).String(), "none"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
}

func TestISNSServerAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.10", "192.0.2.10:3205"},
		{"192.0.2.10:3206", "192.0.2.10:3206"},
		{"[2001:db8::1]", "[2001:db8::1]:3205"},
		{"[2001:db8::1]:3206", "[2001:db8::1]:3206"},
		{"isns.example.com", "isns.example.com:3205"},
		{"2001:db8::1", ""},
		{"host:0", ""},
		{"host:http", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := isnsServerAddr(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("isnsServerAddr(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("isnsServerAddr(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzISNSReadMessage(f *testing.F) {
	f.Add(isnsHex(f, "0001 8002 0004 4c00 0001 0000 00000000"))
	f.Add(isnsHex(f, "0001 8002 0014 4c00 0001 0000 00000000 00000020 00000008 69716e2e613a7400"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readISNSMessage(bytes.NewReader(b))
		if err != nil {
			return
		}
		st, attrs, err := isnsResponseStatus(m)
		if err != nil {
			return
		}
		_ = st.String()
		for _, a := range attrs {
			_ = isnsAttrString(a.Value)
			_ = a.Tag.String()
		}
	})
}

// fakeISNS is a scripted iSNS server on a loopback port: it records the
// requests and answers each with reply(request).
type fakeISNS struct {
	ln    net.Listener
	mu    sync.Mutex
	reqs  []*isnsMessage
	reply func(req *isnsMessage) (isnsStatus, []byte)
}

func newFakeISNS(t *testing.T, reply func(req *isnsMessage) (isnsStatus, []byte)) *fakeISNS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeISNS{ln: ln, reply: reply}
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

func (s *fakeISNS) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		req, err := readISNSMessage(r)
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
		noise := &isnsMessage{Function: isnsESI, Flags: isnsFlagServer, XID: 999}
		rsp := &isnsMessage{Function: req.Function | isnsResponse, Flags: isnsFlagServer, XID: req.XID, Payload: payload}
		c.Write(rsp.appendPDUs(noise.appendPDUs(nil)))
	}
}

func (s *fakeISNS) requests() []*isnsMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*isnsMessage(nil), s.reqs...)
}

func isnsQuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestISNSClientAgainstFake(t *testing.T) {
	allowed := "iqn.b:good"
	srv := newFakeISNS(t, func(req *isnsMessage) (isnsStatus, []byte) {
		switch req.Function {
		case isnsDevAttrReg:
			return isnsSuccess, appendISNSUint32(nil, isnsTagRegistrationPeriod, 60)
		case isnsDevDereg:
			return isnsSuccess, nil
		case isnsDevAttrQry:
			attrs, _ := parseISNSAttrs(req.Payload)
			ini := isnsAttrString(attrs[1].Value)
			if ini != allowed {
				return isnsNoSuchEntry, nil
			}
			var b []byte
			b = appendISNSString(b, isnsTagISCSIName, ini) // key echoed
			b = appendISNSNil(b, isnsTagDelimiter)
			b = appendISNSString(b, isnsTagISCSIName, ini)
			b = appendISNSUint32(b, isnsTagISCSINodeType, 2)
			return isnsSuccess, b
		}
		return isnsMessageNotSupported, nil
	})
	c, err := NewISNSClient(ISNSConfig{Server: srv.ln.Addr().String(), EntityID: "scstd:test", AccessControl: true, Logger: isnsQuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	clk := &manualClock{t: time.Unix(1_000_000, 0)}
	c.now = clk.now

	if err := c.Update([]string{"iqn.a:t2", "iqn.a:t1", "iqn.a:t1"}, []string{"0.0.0.0:3260", "[::ffff:192.0.2.1]:3260"}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 || reqs[0].Function != isnsDevAttrReg || reqs[0].Flags&isnsFlagReplace == 0 || reqs[0].Flags&isnsFlagClient == 0 {
		t.Fatalf("requests %+v", reqs)
	}
	want := (&isnsRegistration{Entity: "scstd:test", Source: "iqn.a:t1", Targets: []string{"iqn.a:t1", "iqn.a:t2"},
		Portals: []isnsPortal{netip.MustParseAddrPort("127.0.0.1:3260"), netip.MustParseAddrPort("192.0.2.1:3260")}, PGT: 1}).payload()
	if !bytes.Equal(reqs[0].Payload, want) {
		t.Fatalf("registration\n%x\nwant (wildcard portal → local address, duplicates removed, sorted)\n%x", reqs[0].Payload, want)
	}
	if c.refresh != 30*time.Second {
		t.Fatalf("refresh %v, want half of the 60s period", c.refresh)
	}

	// Dropping t1: the source is the target that stays.
	if err := c.Update([]string{"iqn.a:t2"}, []string{"192.0.2.1:3260"}); err != nil {
		t.Fatal(err)
	}
	attrs, _ := parseISNSAttrs(srv.requests()[1].Payload)
	if src := isnsAttrString(attrs[0].Value); src != "iqn.a:t2" {
		t.Fatalf("source %q", src)
	}
	// Replacing every target: the source is one still registered.
	if err := c.Update([]string{"iqn.a:t3"}, []string{"192.0.2.1:3260"}); err != nil {
		t.Fatal(err)
	}
	attrs, _ = parseISNSAttrs(srv.requests()[2].Payload)
	if src := isnsAttrString(attrs[0].Value); src != "iqn.a:t2" {
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
	if last.Function != isnsDevDereg || !bytes.Equal(last.Payload, isnsDeregPayload("iqn.a:t3", "scstd:test")) {
		t.Fatalf("deregistration %v %x", last.Function, last.Payload)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Update([]string{"x"}, nil); !errors.Is(err, ErrISNSClosed) {
		t.Fatalf("Update after Close: %v", err)
	}
}

func TestISNSClientFailures(t *testing.T) {
	srv := newFakeISNS(t, func(req *isnsMessage) (isnsStatus, []byte) { return isnsSourceUnauthorized, nil })
	c, err := NewISNSClient(ISNSConfig{Server: srv.ln.Addr().String(), AccessControl: true, Logger: isnsQuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update([]string{"iqn.a:t"}, []string{"192.0.2.1:3260"}); !errors.Is(err, isnsSourceUnauthorized) {
		t.Fatalf("Update: %v", err)
	}
	if c.Allowed("iqn.b:i", "iqn.a:t") {
		t.Fatal("an error answer allows access")
	}
	if err := c.Update([]string{"iqn.a:t"}, []string{"not-an-address"}); err == nil {
		t.Fatal("bad portal accepted")
	}

	// Unreachable server: access control fails closed.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	d, _ := NewISNSClient(ISNSConfig{Server: addr, AccessControl: true, Logger: isnsQuietLogger(), Timeout: time.Second})
	if d.Allowed("iqn.b:i", "iqn.a:t") {
		t.Fatal("unreachable server allows access")
	}
	// Without access control, and for a nil client, everything is allowed.
	e, _ := NewISNSClient(ISNSConfig{Server: addr, Logger: isnsQuietLogger()})
	var nilClient *ISNSClient
	if !e.Allowed("a", "b") || !nilClient.Allowed("a", "b") {
		t.Fatal("access control off must allow")
	}
	if _, err := NewISNSClient(ISNSConfig{}); err == nil {
		t.Fatal("empty server accepted")
	}
}

func TestISNSRunRefreshes(t *testing.T) {
	var mu sync.Mutex
	regs := 0
	srv := newFakeISNS(t, func(req *isnsMessage) (isnsStatus, []byte) {
		mu.Lock()
		defer mu.Unlock()
		if req.Function == isnsDevAttrReg {
			regs++
		}
		return isnsSuccess, appendISNSUint32(nil, isnsTagRegistrationPeriod, 1)
	})
	c, _ := NewISNSClient(ISNSConfig{Server: srv.ln.Addr().String(), Logger: isnsQuietLogger()})
	if err := c.Update([]string{"iqn.a:t"}, []string{"192.0.2.1:3260"}); err != nil {
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

func TestISNSWithOpenISNS(t *testing.T) {
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
	c, err := NewISNSClient(ISNSConfig{Server: d.Addr, EntityID: "scstd:isnstest", AccessControl: true,
		Logger: isnsQuietLogger(), CacheTTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update([]string{t1, t2}, []string{"127.0.0.1:3260"}); err != nil {
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
	if err := c.Update([]string{t2}, []string{"127.0.0.1:3260"}); err != nil {
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
