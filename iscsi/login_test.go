package iscsi

import (
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

const (
	wireInitiator = "iqn.2026-11.org.example:host1"
	wireTarget    = "iqn.2026-11.org.example:disk"
)

// wireLUNs returns a LUN map with one nullio disk at LUN 0.
func wireLUNs(t testing.TB) *scsi.LUNMap {
	t.Helper()
	b, err := vdisk.Open(vdisk.Spec{Handler: vdisk.NullIO, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dev := scsi.NewDevice(scsi.DeviceConfig{Name: "null0"}, b)
	return scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: dev}})
}

// wireServer returns a server publishing an enabled snapshot with
// wireTarget (one LUN), a disabled target and a target without LUNs.
func wireServer(t testing.TB, mod func(*Snapshot)) *Server {
	t.Helper()
	luns := wireLUNs(t)
	snap := &Snapshot{Enabled: true, Targets: map[string]*Target{
		wireTarget:            {Name: wireTarget, Enabled: true, Params: wireParams, QueuedCommands: 32, LUNs: luns},
		wireTarget + "-off":   {Name: wireTarget + "-off", Enabled: false, Params: wireParams, LUNs: luns},
		wireTarget + "-empty": {Name: wireTarget + "-empty", Enabled: true, Params: wireParams},
	}}
	if mod != nil {
		mod(snap)
	}
	s := NewServer(nil)
	s.Publish(snap)
	return s
}

// pipeClient is the initiator end of a net.Pipe, speaking raw PDUs.
type pipeClient struct {
	t   testing.TB
	nc  net.Conn
	fr  *FrameReader
	fw  *FrameWriter
	itt uint32
}

// startLogin runs s.login on one end of a pipe and returns the other end
// and a channel with login's outcome.
func startLogin(t testing.TB, s *Server) (*pipeClient, chan loginOutcome) {
	srv, cli := net.Pipe()
	t.Cleanup(func() { srv.Close(); cli.Close() })
	done := make(chan loginOutcome, 1)
	go func() {
		r, err := s.login(srv, NewFrameReader(srv))
		done <- loginOutcome{r, err}
		srv.Close()
	}()
	cli.SetDeadline(time.Now().Add(10 * time.Second))
	return &pipeClient{t: t, nc: cli, fr: NewFrameReader(cli), fw: NewFrameWriter(cli)}, done
}

type loginOutcome struct {
	r   *LoginResult
	err error
}

func (c *pipeClient) send(h *BHS, data []byte) {
	c.t.Helper()
	if err := c.fw.WritePDU(h, nil, data); err != nil {
		c.t.Fatal(err)
	}
	if err := c.fw.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *pipeClient) login(req LoginRequest, kv Text) {
	c.t.Helper()
	if req.ISID == ([6]byte{}) {
		req.ISID = [6]byte{0x80, 0, 0, 0, 0, 1}
	}
	req.ITT = c.itt
	var h BHS
	req.Encode(&h)
	c.send(&h, AppendText(nil, kv))
}

func (c *pipeClient) recv() (*PDU, Text) {
	c.t.Helper()
	p, err := c.fr.Read()
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	kv, err := ParseTextRepeated(p.Data)
	if err != nil {
		c.t.Fatalf("response text %q: %v", p.Data, err)
	}
	return p, kv
}

func (c *pipeClient) loginResponse() (LoginResponse, Text) {
	c.t.Helper()
	p, kv := c.recv()
	defer p.Release()
	var rsp LoginResponse
	if err := rsp.Decode(&p.BHS); err != nil {
		c.t.Fatal(err)
	}
	return rsp, kv
}

var discoveryKeys = Text{{"InitiatorName", wireInitiator}, {"SessionType", "Discovery"}, {"AuthMethod", "None"}}

func TestLoginNormalOnePDU(t *testing.T) {
	s := wireServer(t, nil)
	c, done := startLogin(t, s)
	c.login(LoginRequest{Transit: true, CSG: StageSecurity, NSG: StageFullFeature, CID: 1, CmdSN: 10, ExpStatSN: 5},
		Text{{"InitiatorName", wireInitiator}, {"InitiatorAlias", "host1"}, {"TargetName", wireTarget},
			{"AuthMethod", "None"}, {"HeaderDigest", "None"}, {"DataDigest", "None"},
			{"MaxRecvDataSegmentLength", "65536"}, {"ImmediateData", "Yes"}, {"InitialR2T", "No"},
			{"MaxBurstLength", "262144"}, {"FirstBurstLength", "65536"}, {"X-vendor.key", "1"}})
	rsp, kv := c.loginResponse()
	if rsp.Status != LoginSuccess || !rsp.Transit || rsp.CSG != StageSecurity || rsp.NSG != StageFullFeature {
		t.Fatalf("response %+v", rsp)
	}
	if rsp.TSIH == 0 || rsp.StatSN != 5 || rsp.ExpCmdSN != 10 || rsp.MaxCmdSN != 10+32-1 {
		t.Fatalf("TSIH/sequence numbers: %+v", rsp)
	}
	want := Text{{"TargetPortalGroupTag", "1"}, {"AuthMethod", "None"}, {"MaxBurstLength", "262144"},
		{"HeaderDigest", "None"}, {"DataDigest", "None"}, {"ImmediateData", "Yes"}, {"InitialR2T", "No"},
		{"FirstBurstLength", "65536"}, {"X-vendor.key", "NotUnderstood"}, {"MaxRecvDataSegmentLength", "262144"}}
	if !reflect.DeepEqual(kv, want) {
		t.Fatalf("keys\n got %q\nwant %q", kv, want)
	}
	out := <-done
	if out.err != nil {
		t.Fatal(out.err)
	}
	r := out.r
	if r.InitiatorName != wireInitiator || r.InitiatorAlias != "host1" || r.Target.Name != wireTarget ||
		r.TSIH != rsp.TSIH || r.CID != 1 || r.ExpCmdSN != 10 || r.StatSN != 6 || r.TPGT != DefaultTPGT {
		t.Fatalf("result %+v", r)
	}
	if p := r.Params; p.MaxXmitDSL != 65536 || p.MaxRecvDSL != 262144 || p.InitialR2T || !p.ImmediateData {
		t.Fatalf("params %+v", p)
	}
}

func TestLoginStages(t *testing.T) {
	s := wireServer(t, nil)
	c, done := startLogin(t, s)
	// Security stage, then operational (with a continued request), then full feature.
	c.login(LoginRequest{Transit: true, CSG: StageSecurity, NSG: StageOperational},
		Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"AuthMethod", "CHAP,None"}})
	rsp, kv := c.loginResponse()
	if rsp.Status != LoginSuccess || !rsp.Transit || rsp.NSG != StageOperational {
		t.Fatalf("security response %+v", rsp)
	}
	if v, _ := kv.Get("AuthMethod"); v != "None" {
		t.Fatalf("AuthMethod = %q", v)
	}
	// "HeaderDigest=CRC32C\0Max" + "RecvDataSegmentLength=8192\0" across two PDUs.
	var h BHS
	part := LoginRequest{Continue: true, CSG: StageOperational, ISID: [6]byte{0x80, 0, 0, 0, 0, 1}}
	part.Encode(&h)
	c.send(&h, []byte("HeaderDigest=CRC32C\x00Max"))
	rsp, kv = c.loginResponse()
	if rsp.Transit || rsp.Continue || len(kv) != 0 || rsp.Status != LoginSuccess {
		t.Fatalf("response to a continued request: %+v %q", rsp, kv)
	}
	last := LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature, ISID: part.ISID}
	h = BHS{}
	last.Encode(&h)
	c.send(&h, []byte("RecvDataSegmentLength=8192\x00"))
	rsp, kv = c.loginResponse()
	if rsp.Status != LoginSuccess || !rsp.Transit || rsp.CSG != StageOperational || rsp.NSG != StageFullFeature {
		t.Fatalf("operational response %+v", rsp)
	}
	if v, _ := kv.Get("HeaderDigest"); v != "CRC32C" {
		t.Fatalf("keys %q", kv)
	}
	out := <-done
	if out.err != nil || !out.r.Params.HeaderDigest || out.r.Params.MaxXmitDSL != 8192 {
		t.Fatalf("outcome %+v %v", out.r, out.err)
	}
	// From here on the reader expects header digests.
	c.fr.SetDigests(true, false)
}

func TestLoginContinuedRequest(t *testing.T) {
	s := wireServer(t, nil)
	c, done := startLogin(t, s)
	var h BHS
	first := LoginRequest{Continue: true, CSG: StageOperational, NSG: StageFullFeature, ISID: [6]byte{0x80, 0, 0, 0, 0, 1}}
	first.Encode(&h)
	c.send(&h, []byte("InitiatorName="+wireInitiator+"\x00Target"))
	if rsp, kv := c.loginResponse(); rsp.Status != LoginSuccess || rsp.Transit || len(kv) != 0 {
		t.Fatalf("first response %+v %q", rsp, kv)
	}
	c.login(LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature},
		Text{{"Name", wireTarget}, {"HeaderDigest", "CRC32C"}})
	rsp, kv := c.loginResponse()
	if rsp.Status != LoginSuccess || !rsp.Transit || rsp.NSG != StageFullFeature {
		t.Fatalf("final response %+v %q", rsp, kv)
	}
	if v, _ := kv.Get("HeaderDigest"); v != "CRC32C" {
		t.Fatalf("keys %q", kv)
	}
	out := <-done
	if out.err != nil || !out.r.Params.HeaderDigest {
		t.Fatalf("outcome %+v %v", out.r, out.err)
	}
}

func TestLoginTargetProposal(t *testing.T) {
	s := wireServer(t, func(snap *Snapshot) {
		p := wireParams
		p.ImmediateData = false
		snap.Targets[wireTarget].Params = p
	})
	c, done := startLogin(t, s)
	c.login(LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature},
		Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}})
	rsp, kv := c.loginResponse()
	if rsp.Transit || rsp.Status != LoginSuccess {
		t.Fatalf("the target must not transit with a proposal pending: %+v", rsp)
	}
	if v, _ := kv.Get("ImmediateData"); v != "No" {
		t.Fatalf("keys %q", kv)
	}
	c.login(LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature}, Text{{"ImmediateData", "No"}})
	rsp, kv = c.loginResponse()
	if !rsp.Transit || rsp.Status != LoginSuccess || len(kv) != 0 {
		t.Fatalf("final %+v %q", rsp, kv)
	}
	out := <-done
	if out.err != nil || out.r.Params.ImmediateData {
		t.Fatalf("outcome %+v %v", out.r, out.err)
	}
}

func TestLoginFailures(t *testing.T) {
	chap := func(snap *Snapshot) {
		snap.Targets[wireTarget].Auth = Auth{Incoming: []CHAPUser{{Name: "joe", Secret: []byte("12charsecret")}}}
	}
	tests := []struct {
		name   string
		mod    func(*Snapshot)
		req    LoginRequest
		keys   Text
		status LoginStatus
		// reason is the failure's reason in Server.Logins, under target
		// (wireTarget when "-", "" for none).
		target string
		reason string
	}{
		{"no InitiatorName", nil, LoginRequest{CSG: StageSecurity},
			Text{{"TargetName", wireTarget}}, LoginMissingParameter, "", LoginReasonInitiatorError},
		{"no TargetName", nil, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}}, LoginMissingParameter, "", LoginReasonInitiatorError},
		{"unknown target", nil, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", "iqn.2026-11.org.example:nope"}}, LoginNotFound, "", LoginReasonNotFound},
		{"disabled target", nil, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget + "-off"}}, LoginNotFound, wireTarget + "-off", LoginReasonDisabled},
		{"target without LUNs", nil, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget + "-empty"}}, LoginNotFound, wireTarget + "-empty", LoginReasonNotAllowed},
		{"iSCSI disabled", func(s *Snapshot) { s.Enabled = false }, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}}, LoginServiceUnavailable, "", LoginReasonServiceUnavailable},
		{"unsupported version", nil, LoginRequest{CSG: StageSecurity, VersionMax: 2, VersionMin: 1},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}}, LoginUnsupportedVersion, "", LoginReasonInitiatorError},
		{"bad session type", nil, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"SessionType", "Bogus"}}, LoginSessionTypeUnsupported, "", LoginReasonInitiatorError},
		{"duplicate key", nil, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"InitiatorName", wireInitiator}}, LoginInitiatorError, "", LoginReasonInitiatorError},
		{"malformed text", nil, LoginRequest{CSG: StageSecurity}, Text{{"", "x"}}, LoginInitiatorError, "", LoginReasonInitiatorError},
		{"CHAP required, None offered", chap, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"AuthMethod", "None"}}, LoginAuthFailed, wireTarget, LoginReasonAuthentication},
		{"CHAP required, security stage skipped", chap, LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}}, LoginAuthFailed, wireTarget, LoginReasonAuthentication},
		{"CHAP required, leaving security unauthenticated", chap,
			LoginRequest{Transit: true, CSG: StageSecurity, NSG: StageOperational},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}}, LoginAuthFailed, wireTarget, LoginReasonAuthentication},
		{"CHAP key with None", nil, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"CHAP_A", "5"}}, LoginInitiatorError, wireTarget, LoginReasonInitiatorError},
		{"TSIH of no session", nil, LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature, TSIH: 77},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}}, LoginSessionDoesNotExist, wireTarget, LoginReasonInitiatorError},
		{"redirect", func(s *Snapshot) {
			s.Targets[wireTarget].Access.Redirect = access.Redirect{Addr: access.MustHostPort("192.0.2.20:3260", access.ISCSIPort)}
		}, LoginRequest{CSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}}, LoginTargetMovedTemp, wireTarget, LoginReasonRedirected},
		{"invalid stage transition", nil, LoginRequest{Transit: true, CSG: StageOperational, NSG: StageSecurity},
			Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}}, LoginInitiatorError, "", LoginReasonInitiatorError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := wireServer(t, tc.mod)
			c, done := startLogin(t, s)
			c.login(tc.req, tc.keys)
			rsp, kv := c.loginResponse()
			if rsp.Status != tc.status {
				t.Fatalf("status %s, want %s", rsp.Status, tc.status)
			}
			if tc.status == LoginTargetMovedTemp {
				if v, _ := kv.Get("TargetAddress"); v != "192.0.2.20:3260" {
					t.Fatalf("redirect keys %q", kv)
				}
			}
			out := <-done
			if out.err == nil || out.r != nil {
				t.Fatalf("login returned %+v, %v", out.r, out.err)
			}
			if st, ok := statusOf(out.err); !ok || st != tc.status {
				t.Fatalf("error %v has status %s", out.err, st)
			}
			if _, err := c.fr.Read(); err != io.EOF {
				t.Fatalf("connection not closed after the refusal: %v", err)
			}
			want := TargetLogins{Target: tc.target, Failures: map[string]uint64{tc.reason: 1}}
			if got := s.Logins(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Errorf("logins %+v, want %+v", got, want)
			}
		})
	}
}

func TestLoginNotALoginPDU(t *testing.T) {
	c, done := startLogin(t, wireServer(t, nil))
	var h BHS
	(&NOPOut{Immediate: true, ITT: 1, TTT: ReservedTag}).Encode(&h)
	c.send(&h, nil)
	if out := <-done; out.err == nil {
		t.Fatal("login accepted a NOP-Out")
	}
}

func TestLoginTimeoutDeadline(t *testing.T) {
	// The whole login runs under one deadline: a silent initiator is
	// dropped, which a pipe shows as an i/o timeout well within the test.
	srv, cli := net.Pipe()
	defer cli.Close()
	s := wireServer(t, nil)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		// Shorten the deadline after login set it.
		time.AfterFunc(50*time.Millisecond, func() { srv.SetDeadline(time.Now()) })
		_, err := s.login(srv, NewFrameReader(srv))
		done <- err
	}()
	err := <-done
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("timeout took too long")
	}
}

func TestDiscoveryTSIHNeverZero(t *testing.T) {
	for range 70000 {
		if tsih := nextDiscoveryTSIH(); tsih&0x8000 == 0 || tsih == 0x8000 {
			t.Fatalf("discovery TSIH %#x", tsih)
		}
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want LoginStatus
		ok   bool
	}{
		{loginFail(LoginNotFound, "x"), LoginNotFound, true},
		{fmt.Errorf("wrapped: %w", &AdmitError{Status: LoginTooManyConnections}), LoginTooManyConnections, true},
		{&AuthError{Kind: AuthFailed}, LoginAuthFailed, true},
		{&AuthError{Kind: AuthMalformed}, LoginInitiatorError, true},
		{io.EOF, 0, false},
	}
	for _, tc := range tests {
		if st, ok := statusOf(tc.err); st != tc.want || ok != tc.ok {
			t.Errorf("statusOf(%v) = %s, %v", tc.err, st, ok)
		}
	}
}

// loginStream builds the bytes of a login request followed by more PDUs.
func loginStream(req LoginRequest, kv Text, more ...[]byte) []byte {
	var h BHS
	req.Encode(&h)
	b := AppendFrame(nil, &h, nil, AppendText(nil, kv), false, false)
	for _, m := range more {
		b = append(b, m...)
	}
	return b
}

func FuzzLogin(f *testing.F) {
	s := wireServer(f, nil)
	full := LoginRequest{Transit: true, CSG: StageSecurity, NSG: StageFullFeature, ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, CmdSN: 1}
	var st BHS
	(&TextRequest{Final: true, ITT: 2, TTT: ReservedTag, CmdSN: 1}).Encode(&st)
	sendTargets := AppendFrame(nil, &st, nil, []byte("SendTargets=All\x00"), false, false)
	var lo BHS
	(&LogoutRequest{Immediate: true, ITT: 3, CmdSN: 2}).Encode(&lo)
	logout := AppendFrame(nil, &lo, nil, nil, false, false)
	f.Add(loginStream(full, discoveryKeys, sendTargets, logout))
	f.Add(loginStream(full, Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"HeaderDigest", "CRC32C"}}))
	f.Add(loginStream(LoginRequest{Continue: true, CSG: StageSecurity}, Text{{"InitiatorName", wireInitiator}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		srv, cli := net.Pipe()
		defer cli.Close()
		go io.Copy(io.Discard, cli)
		go func() {
			cli.Write(in)
			cli.Close()
		}()
		fr := NewFrameReader(srv)
		r, err := s.login(srv, fr)
		srv.Close()
		if r != nil && (err != nil || r.TSIH == 0 || r.Target == nil) {
			t.Fatalf("login returned %+v, %v", r, err)
		}
		if r != nil {
			// End the admitted session, or the next login of the same
			// initiator and ISID would wait to reinstate it.
			s.runSession(srv, fr, r)
		}
	})
}

// chapLogin runs the security stage of a CHAP login as user with secret
// and returns the status of the response to CHAP_R.
func chapLogin(t *testing.T, s *Server, user, secret string) LoginStatus {
	t.Helper()
	c, done := startLogin(t, s)
	defer func() { c.nc.Close(); <-done }()
	c.login(LoginRequest{CSG: StageSecurity},
		Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"AuthMethod", "CHAP"}})
	if rsp, _ := c.loginResponse(); rsp.Status != LoginSuccess {
		t.Fatalf("AuthMethod=CHAP: status %s", rsp.Status)
	}
	c.login(LoginRequest{CSG: StageSecurity}, Text{{"CHAP_A", "5"}})
	rsp, kv := c.loginResponse()
	if rsp.Status != LoginSuccess {
		t.Fatalf("CHAP_A: status %s", rsp.Status)
	}
	m := kv.Map()
	id, _ := parseCHAPIdentifier(m["CHAP_I"])
	ch, err := decodeCHAPBinary(m["CHAP_C"])
	if err != nil {
		t.Fatalf("CHAP_C %q: %v", m["CHAP_C"], err)
	}
	r := chapResponse(access.CHAPMD5, id, []byte(secret), ch)
	c.login(LoginRequest{Transit: true, CSG: StageSecurity, NSG: StageOperational},
		Text{{"CHAP_N", user}, {"CHAP_R", encodeCHAPBinary(r)}})
	rsp, _ = c.loginResponse()
	return rsp.Status
}

// TestLoginCHAPThrottled: wrong CHAP responses beyond the burst wait for
// the throttle; one that cannot be checked before the login's deadline
// is refused unchecked with SERVICE UNAVAILABLE; the right secret from
// the address that guessed wrong still logs in once its turn comes, and
// failures that are no guess (no CHAP offered) are not charged.
func TestLoginCHAPThrottled(t *testing.T) {
	s := wireServer(t, func(snap *Snapshot) {
		snap.Targets[wireTarget].Auth = Auth{Incoming: []CHAPUser{{Name: "joe", Secret: []byte("12charsecret")}},
			Algorithms: []access.CHAPAlgorithm{access.CHAPMD5}}
		snap.Limits.LoginTimeout = 2 * time.Second
	})
	s.throttle = newLoginThrottle(time.Now, throttlePolicy{burst: 1, every: 300 * time.Millisecond},
		throttlePolicy{burst: 1, every: time.Hour},
		throttlePolicy{burst: 2, every: 300 * time.Millisecond}, throttlePolicy{burst: 100, every: time.Millisecond})
	for i := range 2 {
		start := time.Now()
		if st := chapLogin(t, s, "joe", "wrong-secret"); st != LoginAuthFailed {
			t.Fatalf("guess %d: status %s", i+1, st)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Fatalf("guess %d of the burst waited %s", i+1, d)
		}
	}
	start := time.Now()
	if st := chapLogin(t, s, "joe", "wrong-secret"); st != LoginAuthFailed {
		t.Fatalf("third guess: status %s", st)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("third guess answered after %s, before the throttle's interval", d)
	}
	if u, p := s.throttle.Failures("joe", pipeAddr{}); u != 3 || p != 3 {
		t.Fatalf("failures: user %d, address %d; want 3", u, p)
	}
	s.throttle = newLoginThrottle(time.Now, throttlePolicy{burst: 1, every: time.Hour},
		throttlePolicy{burst: 0, every: time.Hour}, throttlePolicy{burst: 1, every: time.Hour}, globalPolicy)
	chapLogin(t, s, "joe", "wrong-secret")
	start = time.Now()
	if st := chapLogin(t, s, "joe", "12charsecret"); st != LoginServiceUnavailable {
		t.Fatalf("a check that cannot start before the deadline: status %s, want SERVICE UNAVAILABLE", st)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the refusal took %s", d)
	}
	// No CHAP offered: refused, but no guess was checked.
	c, done := startLogin(t, s)
	c.login(LoginRequest{CSG: StageSecurity},
		Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"AuthMethod", "None"}})
	if rsp, _ := c.loginResponse(); rsp.Status != LoginAuthFailed {
		t.Fatalf("AuthMethod=None: status %s", rsp.Status)
	}
	<-done
	if u, _ := s.throttle.Failures("joe", pipeAddr{}); u != 1 {
		t.Fatalf("a login without CHAP was charged: %d failures", u)
	}
}

// pipeAddr is the address net.Pipe reports.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func TestLoginLongResponseContinues(t *testing.T) {
	s := wireServer(t, nil)
	c, done := startLogin(t, s)
	// 600 unknown keys: their NotUnderstood answers exceed the 8192 bytes
	// a login PDU may carry, so the final response is sent in parts.
	keys := Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}}
	for i := range 600 {
		keys.Add(fmt.Sprintf("X-k%04d", i), "v")
	}
	req := LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature}
	c.login(req, keys)
	var all []byte
	parts := 0
	for {
		p, _ := c.fr.Read()
		var rsp LoginResponse
		if err := rsp.Decode(&p.BHS); err != nil || rsp.Status != LoginSuccess {
			t.Fatalf("part %d: %+v %v", parts, rsp, err)
		}
		if len(p.Data) > DefaultMaxRecvDSL {
			t.Fatalf("part of %d bytes", len(p.Data))
		}
		all = append(all, p.Data...)
		parts++
		p.Release()
		if !rsp.Continue {
			if !rsp.Transit || rsp.NSG != StageFullFeature || rsp.TSIH == 0 {
				t.Fatalf("last part %+v", rsp)
			}
			break
		}
		if rsp.Transit {
			t.Fatal("T and C both set")
		}
		// An empty request asks for the next part.
		c.login(LoginRequest{CSG: StageOperational}, nil)
	}
	kv, err := ParseText(all)
	if err != nil || parts < 2 || len(kv) != 600+2 {
		t.Fatalf("%d parts, %d keys, %v", parts, len(kv), err)
	}
	if out := <-done; out.err != nil || out.r == nil {
		t.Fatalf("outcome %+v %v", out.r, out.err)
	}
}

func TestLoginConnectionLostAfterAdmission(t *testing.T) {
	s := wireServer(t, nil)
	srv, cli := net.Pipe()
	done := make(chan loginOutcome, 1)
	fr := NewFrameReader(srv)
	go func() {
		r, err := s.login(srv, fr)
		done <- loginOutcome{r, err}
	}()
	var h BHS
	(&LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature, ISID: [6]byte{0x80, 0, 0, 0, 0, 9}}).Encode(&h)
	frame := AppendFrame(nil, &h, nil, AppendText(nil, Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}}), false, false)
	if _, err := cli.Write(frame); err != nil {
		t.Fatal(err)
	}
	cli.Close() // before reading the final response
	out := <-done
	if out.err != nil || out.r == nil || out.r.TSIH == 0 {
		t.Fatalf("login = %+v, %v; want the admitted session", out.r, out.err)
	}
	// The session runs on the dead connection and ends by itself.
	ended := make(chan struct{})
	go func() {
		s.runSession(srv, fr, out.r)
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("session on a closed connection did not end")
	}
}

// TestLoginGatewayTPGT: a snapshot with its own target portal group tag
// (a gateway of a cluster) announces it at login, gives it to the
// session, and lists it in SendTargets.
func TestLoginGatewayTPGT(t *testing.T) {
	s := wireServer(t, func(snap *Snapshot) { snap.TPGT = 3 })
	c, done := startLogin(t, s)
	c.login(LoginRequest{Transit: true, CSG: StageSecurity, NSG: StageFullFeature, CID: 1, CmdSN: 1},
		Text{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"AuthMethod", "None"}})
	rsp, kv := c.loginResponse()
	if tag, _ := kv.Get("TargetPortalGroupTag"); rsp.Status != LoginSuccess || tag != "3" {
		t.Fatalf("status %v, TargetPortalGroupTag %q", rsp.Status, tag)
	}
	if out := <-done; out.err != nil || out.r.TPGT != 3 {
		t.Fatalf("result %+v, %v", out.r, out.err)
	}

	d, _ := startTCPLogin(t, s, "tcp", "127.0.0.1:0")
	d.discoveryLogin()
	d.text(TextRequest{Final: true, ITT: 1, TTT: ReservedTag, CmdSN: 1, ExpStatSN: 1}, Text{{"SendTargets", wireTarget}})
	_, data := d.textResponse()
	want := fmt.Sprintf("TargetAddress=%s,3", d.nc.RemoteAddr())
	if !strings.Contains(string(data), want) {
		t.Errorf("SendTargets: %q, want %q", data, want)
	}
}
