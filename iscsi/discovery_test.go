package iscsi

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
)

// startTCPLogin is startLogin over a loopback TCP connection, so that
// SendTargets has a portal address to report.
func startTCPLogin(t *testing.T, s *Server, network, addr string) (*pipeClient, chan loginOutcome) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan loginOutcome, 1)
	go func() {
		srv, err := ln.Accept()
		if err != nil {
			done <- loginOutcome{nil, err}
			return
		}
		r, err := s.login(srv, NewFrameReader(srv))
		done <- loginOutcome{r, err}
		srv.Close()
	}()
	cli, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	cli.SetDeadline(time.Now().Add(10 * time.Second))
	return &pipeClient{t: t, nc: cli, fr: NewFrameReader(cli), fw: NewFrameWriter(cli)}, done
}

// discoveryLogin logs in to a discovery session in one step.
func (c *pipeClient) discoveryLogin(extra ...KV) {
	c.t.Helper()
	c.login(LoginRequest{Transit: true, CSG: StageSecurity, NSG: StageFullFeature, CmdSN: 1},
		append(append(Text{}, discoveryKeys...), extra...))
	rsp, kv := c.loginResponse()
	if rsp.Status != LoginSuccess || !rsp.Transit || rsp.TSIH == 0 {
		c.t.Fatalf("discovery login: %+v %q", rsp, kv)
	}
	if _, ok := kv.Get("TargetPortalGroupTag"); ok {
		c.t.Fatal("TargetPortalGroupTag in a discovery session")
	}
}

func (c *pipeClient) text(req TextRequest, kv Text) {
	c.t.Helper()
	var h BHS
	req.Encode(&h)
	c.send(&h, AppendText(nil, kv))
}

func (c *pipeClient) textResponse() (TextResponse, []byte) {
	c.t.Helper()
	p, err := c.fr.Read()
	if err != nil {
		c.t.Fatal(err)
	}
	defer p.Release()
	var rsp TextResponse
	if err := rsp.Decode(&p.BHS); err != nil {
		c.t.Fatalf("%v (opcode %s)", err, p.BHS.Opcode())
	}
	return rsp, bytes.Clone(p.Data)
}

func TestDiscoverySendTargets(t *testing.T) {
	s := wireServer(t, func(snap *Snapshot) {
		b := *snap.Targets[wireTarget]
		b.Name = "iqn.2026-11.org.example:b"
		snap.Targets[b.Name] = &b
	})
	tests := []struct {
		value string
		want  []string // target names listed, in order
	}{
		{"All", []string{"iqn.2026-11.org.example:b", wireTarget}}, // sorted by name
		{wireTarget, []string{wireTarget}},
		{wireTarget + "-off", nil},
		{wireTarget + "-empty", nil},
		{"iqn.2026-11.org.example:nope", nil},
		{"", nil},
	}
	c, done := startTCPLogin(t, s, "tcp", "127.0.0.1:0")
	c.discoveryLogin()
	port := c.nc.RemoteAddr().(*net.TCPAddr).Port
	for i, tc := range tests {
		c.text(TextRequest{Final: true, ITT: uint32(i + 1), TTT: ReservedTag, CmdSN: uint32(1 + i), ExpStatSN: uint32(i + 1)},
			Text{{"SendTargets", tc.value}})
		rsp, data := c.textResponse()
		if !rsp.Final || rsp.Continue || rsp.TTT != ReservedTag || rsp.ITT != uint32(i+1) {
			t.Fatalf("SendTargets=%s: header %+v", tc.value, rsp)
		}
		if rsp.ExpCmdSN != uint32(2+i) {
			t.Fatalf("SendTargets=%s: ExpCmdSN %d, want %d", tc.value, rsp.ExpCmdSN, 2+i)
		}
		var want Text
		for _, n := range tc.want {
			want = append(want, KV{"TargetName", n}, KV{"TargetAddress", fmt.Sprintf("127.0.0.1:%d,1", port)})
		}
		got, err := ParseTextRepeated(data)
		if err == nil && len(got) == 0 {
			got = nil
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("SendTargets=%q:\n got %q %v\nwant %q", tc.value, got, err, want)
		}
	}
	// Logout ends the session.
	var h BHS
	(&LogoutRequest{Immediate: true, ITT: 99, CmdSN: 7}).Encode(&h)
	c.send(&h, nil)
	p, err := c.fr.Read()
	if err != nil {
		t.Fatal(err)
	}
	var lr LogoutResponse
	if err := lr.Decode(&p.BHS); err != nil || lr.Response != LogoutSuccess || lr.ITT != 99 {
		t.Fatalf("logout response %+v %v", lr, err)
	}
	if out := <-done; out.err != nil || out.r != nil {
		t.Fatalf("discovery login returned %+v, %v", out.r, out.err)
	}
}

func TestDiscoveryIPv6Address(t *testing.T) {
	c, done := startTCPLogin(t, wireServer(t, nil), "tcp6", "[::1]:0")
	c.discoveryLogin()
	c.text(TextRequest{Final: true, ITT: 1, TTT: ReservedTag, CmdSN: 1}, Text{{"SendTargets", "All"}})
	_, data := c.textResponse()
	want := fmt.Sprintf("TargetName=%s\x00TargetAddress=[::1]:%d,1\x00", wireTarget, c.nc.RemoteAddr().(*net.TCPAddr).Port)
	if string(data) != want {
		t.Fatalf("got %q, want %q", data, want)
	}
	c.nc.Close()
	if out := <-done; out.err != nil {
		t.Fatal(out.err)
	}
}

func TestDiscoveryMultiPDUResponseWithDigests(t *testing.T) {
	s := wireServer(t, func(snap *Snapshot) {
		for i := range 40 {
			tt := *snap.Targets[wireTarget]
			tt.Name = fmt.Sprintf("iqn.2026-11.org.example:many-%02d", i)
			snap.Targets[tt.Name] = &tt
		}
	})
	c, done := startTCPLogin(t, s, "tcp", "127.0.0.1:0")
	c.discoveryLogin(KV{"HeaderDigest", "CRC32C"}, KV{"DataDigest", "CRC32C"}, KV{"MaxRecvDataSegmentLength", "512"})
	c.fr.SetDigests(true, true)
	c.fw.SetDigests(true, true)
	c.text(TextRequest{Final: true, ITT: 5, TTT: ReservedTag, CmdSN: 1}, Text{{"SendTargets", "All"}})
	var all []byte
	pdus := 0
	for {
		rsp, data := c.textResponse()
		pdus++
		if len(data) > 512 {
			t.Fatalf("data segment of %d bytes exceeds the initiator's 512", len(data))
		}
		all = append(all, data...)
		if rsp.Final {
			if rsp.TTT != ReservedTag {
				t.Fatalf("final response TTT %#x", rsp.TTT)
			}
			break
		}
		if !rsp.Continue || rsp.TTT == ReservedTag {
			t.Fatalf("non-final response %+v", rsp)
		}
		// Ask for the rest with an empty request carrying the TTT.
		c.text(TextRequest{Final: true, ITT: 5, TTT: rsp.TTT, CmdSN: 2}, nil)
	}
	kv, err := ParseTextRepeated(all)
	if err != nil {
		t.Fatal(err)
	}
	if pdus < 2 || len(kv) != 2*41 {
		t.Fatalf("%d PDUs, %d pairs", pdus, len(kv))
	}
	c.nc.Close()
	<-done
}

func TestDiscoveryOtherPDUs(t *testing.T) {
	c, done := startTCPLogin(t, wireServer(t, nil), "tcp", "127.0.0.1:0")
	c.discoveryLogin()

	// NOP-Out ping: echoed with its data.
	var h BHS
	(&NOPOut{Immediate: true, ITT: 7, TTT: ReservedTag, CmdSN: 1}).Encode(&h)
	c.send(&h, []byte("ping"))
	p, err := c.fr.Read()
	if err != nil {
		t.Fatal(err)
	}
	var nin NOPIn
	if err := nin.Decode(&p.BHS); err != nil || nin.ITT != 7 || nin.TTT != ReservedTag || string(p.Data) != "ping" {
		t.Fatalf("NOP-In %+v %q %v", nin, p.Data, err)
	}

	// A SCSI command has no place in a discovery session.
	h = BHS{}
	(&SCSICommand{Final: true, ITT: 8, CmdSN: 1, CDB: [16]byte{0x00}}).Encode(&h)
	c.send(&h, nil)
	p, err = c.fr.Read()
	if err != nil {
		t.Fatal(err)
	}
	var rj Reject
	if err := rj.Decode(&p.BHS); err != nil || rj.Reason != RejectProtocolError || !bytes.Equal(p.Data, h[:]) {
		t.Fatalf("reject %+v %v, data %x", rj, err, p.Data)
	}

	// Unknown keys are NotUnderstood; operational keys cannot be renegotiated here.
	c.text(TextRequest{Final: true, ITT: 9, TTT: ReservedTag, CmdSN: 1}, Text{{"X-foo", "1"}, {"MaxBurstLength", "512"}})
	_, data := c.textResponse()
	if string(data) != "X-foo=NotUnderstood\x00MaxBurstLength=Reject\x00" {
		t.Fatalf("text answer %q", data)
	}

	// A continued request: "SendTar" + "gets=All".
	c.text(TextRequest{Continue: true, ITT: 10, TTT: ReservedTag, CmdSN: 2}, nil)
	rsp, _ := c.textResponse()
	h = BHS{}
	(&TextRequest{Continue: true, ITT: 11, TTT: ReservedTag, CmdSN: 2}).Encode(&h)
	c.send(&h, []byte("SendTar"))
	rsp, data = c.textResponse()
	if rsp.Final || rsp.TTT == ReservedTag || len(data) != 0 {
		t.Fatalf("acknowledgement of a continued request %+v %q", rsp, data)
	}
	h = BHS{}
	(&TextRequest{Final: true, ITT: 11, TTT: rsp.TTT, CmdSN: 2}).Encode(&h)
	c.send(&h, []byte("gets=All\x00"))
	rsp, data = c.textResponse()
	if !rsp.Final || !strings.HasPrefix(string(data), "TargetName="+wireTarget+"\x00") {
		t.Fatalf("continued SendTargets: %+v %q", rsp, data)
	}

	// A TTT that matches nothing is an invalid field.
	c.text(TextRequest{Final: true, ITT: 12, TTT: 0x1234, CmdSN: 3}, nil)
	p, err = c.fr.Read()
	if err != nil {
		t.Fatal(err)
	}
	if err := rj.Decode(&p.BHS); err != nil || rj.Reason != RejectInvalidPDUField {
		t.Fatalf("reject %+v %v", rj, err)
	}
	c.nc.Close()
	if out := <-done; out.err != nil {
		t.Fatal(out.err)
	}
}

// refuseAll is an AccessControl that lets no initiator see any target.
type refuseAll struct{}

func (refuseAll) Allowed(string, string) bool { return false }

// TestAccessControlRefuses: the snapshot's AccessControl (iSNS) hides
// targets from SendTargets and refuses logins to them as not found; none
// lets the target's own rules decide alone.
func TestAccessControlRefuses(t *testing.T) {
	s := wireServer(t, func(snap *Snapshot) { snap.AccessControl = refuseAll{} })

	c, done := startTCPLogin(t, s, "tcp", "127.0.0.1:0")
	c.discoveryLogin()
	c.text(TextRequest{Final: true, ITT: 1, TTT: ReservedTag, CmdSN: 1}, Text{{"SendTargets", "All"}})
	if _, data := c.textResponse(); len(data) != 0 {
		t.Fatalf("SendTargets listed %q without the access control's approval", data)
	}
	c.nc.Close()
	<-done

	c, done = startLogin(t, s)
	c.login(LoginRequest{CSG: StageSecurity}, Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}})
	if rsp, _ := c.loginResponse(); rsp.Status != LoginNotFound {
		t.Fatalf("status %s, want NOT_FOUND", rsp.Status)
	}
	<-done

	// Without access control everything is visible again.
	next := *s.Snapshot()
	next.AccessControl = nil
	s.Publish(&next)
	c, done = startLogin(t, s)
	c.login(LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature},
		Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}})
	if rsp, _ := c.loginResponse(); rsp.Status != LoginSuccess {
		t.Fatalf("status %s", rsp.Status)
	}
	if out := <-done; out.err != nil {
		t.Fatal(out.err)
	}
}

// TestDiscoveryHidesTargetOffPortal: a target with allowed_portals =
// ["127.0.0.2"] is listed by SendTargets on a discovery session to
// 127.0.0.2 (with its 127.0.0.2 addresses only), and not at all on one to
// 127.0.0.1, even though the server also listens on 127.0.0.2.
func TestDiscoveryHidesTargetOffPortal(t *testing.T) {
	const only2 = "iqn.2026-11.org.example:only2"
	s := wireServer(t, func(snap *Snapshot) {
		c := *snap.Targets[wireTarget]
		c.Name = only2
		c.Access.Portals = PortalRules{Allowed: access.MustPatterns("127.0.0.2")}
		snap.Targets[c.Name] = &c
	})
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	if err := s.SetPortals([]string{"127.0.0.2:0"}); err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	other := s.Portals()[0].String()
	for _, tc := range []struct {
		via  string
		want func(own string) Text
	}{
		{"127.0.0.1:0", func(own string) Text {
			return Text{{"TargetName", wireTarget}, {"TargetAddress", own + ",1"}, {"TargetAddress", other + ",1"}}
		}},
		{"127.0.0.2:0", func(own string) Text {
			return Text{
				{"TargetName", wireTarget}, {"TargetAddress", own + ",1"}, {"TargetAddress", other + ",1"},
				{"TargetName", only2}, {"TargetAddress", own + ",1"}, {"TargetAddress", other + ",1"},
			}
		}},
	} {
		t.Run("via "+tc.via, func(t *testing.T) {
			c, _ := startTCPLogin(t, s, "tcp", tc.via)
			c.discoveryLogin()
			c.text(TextRequest{Final: true, ITT: 1, TTT: ReservedTag, CmdSN: 1}, Text{{"SendTargets", "All"}})
			_, data := c.textResponse()
			got, err := ParseTextRepeated(data)
			want := tc.want(c.nc.RemoteAddr().String())
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("SendTargets=All via %s:\n got %q %v\nwant %q", tc.via, got, err, want)
			}
		})
	}
}
