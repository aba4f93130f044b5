package iscsi

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultTPGT is the target portal group tag of every portal: a gateway
// has a single portal group (Snapshot.TPGT, when set, is another).
const DefaultTPGT = 1

// MaxNameLength is the longest iSCSI name (RFC 7143 §4.2.7.1).
const MaxNameLength = 223

// SessionType is the SessionType login key.
type SessionType uint8

// Session types.
const (
	SessionNormal SessionType = iota
	SessionDiscovery
)

// String returns the name of t as logs show it.
func (t SessionType) String() string {
	if t == SessionDiscovery {
		return "Discovery"
	}
	return "Normal"
}

// LoginResult is what a successful login of a normal session hands to the
// session: who logged in, to what, and the negotiated parameters. The
// FrameReader passed to login already runs with the negotiated digests and
// MaxRecvDSL; the session's writer must set Params' digests itself.
type LoginResult struct {
	InitiatorName  string
	InitiatorAlias string
	ISID           [6]byte
	TSIH           uint16
	CID            uint16
	TPGT           uint16
	Target         *Target
	Params         Negotiated
	// ExpCmdSN is the CmdSN the first full-feature command will carry.
	ExpCmdSN uint32
	// StatSN is the next StatSN the target will use.
	StatSN uint32
	// Portal is the connection's local address, Remote the initiator's.
	Portal net.Addr
	Remote net.Addr
}

// LoginError is a failed login: the status sent in the last Login
// Response, after which the connection is closed.
type LoginError struct {
	Status LoginStatus
	Msg    string
	// Keys go in the refusing response (TargetAddress of a redirection).
	Keys Text
}

// Error implements error.
func (e *LoginError) Error() string { return fmt.Sprintf("iscsi: login: %s: %s", e.Status, e.Msg) }

func loginFail(st LoginStatus, format string, args ...any) *LoginError {
	return &LoginError{Status: st, Msg: fmt.Sprintf(format, args...)}
}

// authenticator is the security stage of one login (RFC 7143 §6.3.1):
// AuthMethod selection and the method's key exchange. Errors with a
// LoginStatus() uint16 method choose the failing status.
type authenticator interface {
	// selectMethod answers the initiator's AuthMethod list.
	selectMethod(offered string) (string, error)
	// exchange takes the security keys (CHAP_*, ...) of one request and
	// returns the keys to answer with.
	exchange(keys Text) (Text, error)
	// satisfied reports whether the security stage may be left: the
	// chosen method completed, or none is required.
	satisfied() bool
}

// policyAuth is the security stage for an Auth policy: AuthMethod=None
// without incoming users, CHAP (chap.go) with them. gate is the
// throttle's, for the CHAP exchange.
type policyAuth struct {
	a    *Auth
	chap *chapServer
	gate func(user string) (func(ok bool), error)
}

func (p *policyAuth) selectMethod(offered string) (string, error) {
	m, err := p.a.SelectAuthMethod(offered)
	if err == nil && m == "CHAP" && p.chap == nil {
		p.chap = newCHAPServer(p.a)
		p.chap.gate = p.gate
	}
	return m, err
}

func (p *policyAuth) exchange(keys Text) (Text, error) {
	if p.chap == nil {
		return nil, loginFail(LoginInitiatorError, "security key %.64s before AuthMethod=CHAP", keys[0].Key)
	}
	m := keys.Map()
	var out []string
	var err error
	if _, ok := m["CHAP_A"]; ok {
		out, err = p.chap.start(m)
	} else {
		out, err = p.chap.finish(m)
	}
	if err != nil {
		return nil, err
	}
	var t Text
	for _, kv := range out {
		k, v, _ := strings.Cut(kv, "=")
		t.Add(k, v)
	}
	return t, nil
}

func (p *policyAuth) satisfied() bool {
	if p.chap != nil {
		return p.chap.done()
	}
	return !p.a.Required()
}

// authenticatorFor returns the security stage for a login to t, or to a
// discovery session when t is nil; its CHAP checks wait for gate.
func (s *Server) authenticatorFor(snap *Snapshot, t *Target, gate func(string) (func(bool), error)) authenticator {
	if t == nil {
		return &policyAuth{a: &snap.Auth, gate: gate}
	}
	return &policyAuth{a: &t.Auth, gate: gate}
}

// statusOf returns the Login Response status an error calls for, if any.
func statusOf(err error) (LoginStatus, bool) {
	var le *LoginError
	if errors.As(err, &le) {
		return le.Status, true
	}
	var ae *AdmitError
	if errors.As(err, &ae) {
		return ae.Status, true
	}
	var ls interface{ LoginStatus() uint16 }
	if errors.As(err, &ls) {
		return LoginStatus(ls.LoginStatus()), true
	}
	return 0, false
}

// discoveryTSIH hands out TSIHs for discovery sessions, from the upper half
// of the space so they do not meet those of normal sessions in practice.
var discoveryTSIH atomic.Uint32

func nextDiscoveryTSIH() uint16 {
	return 0x8000 | uint16(discoveryTSIH.Add(1)%0x7fff+1)
}

// loginConn is the state of one login.
type loginConn struct {
	s        *Server
	nc       net.Conn
	fr       *FrameReader
	fw       *FrameWriter
	snap     *Snapshot
	deadline time.Time // the login's end (Limits.LoginTimeout)

	first    LoginRequest // the leading request: ISID, TSIH, CID
	tsih     uint16       // the TSIH responses carry
	started  bool
	stage    LoginStage
	statSN   uint32
	expCmdSN uint32
	itt      uint32

	sessionType    SessionType
	initiatorName  string
	initiatorAlias string
	targetName     string // as the initiator asked for it, for the log
	target         *Target
	auth           authenticator
	authMethod     string
	seenLoginKeys  map[string]bool
	neg            *Negotiator
	tpgtSent       bool
	text           textBuffer
	pending        [][]byte // response chunks not yet sent (C bit)
	pendingTransit bool
	pendingReq     LoginRequest // the request the pending chunks answer
	final          *LoginResult // admitted: the final response is being sent
	failures       chapFailures // of a login that failed its CHAP check
}

// login runs the login phase on a new connection (RFC 7143 §6): security
// and operational negotiation, then either hands a normal session back to
// the caller, or serves a discovery session to its end and returns
// (nil, nil). On failure the Login Response carrying the status has been
// sent and the connection must be closed.
func (s *Server) login(nc net.Conn, fr *FrameReader) (*LoginResult, error) {
	remote := nc.RemoteAddr()
	snap := s.Snapshot()
	deadline := time.Now().Add(snap.Limits.withDefaults().LoginTimeout)
	nc.SetDeadline(deadline)
	c := &loginConn{s: s, nc: nc, fr: fr, fw: newFrameWriterSize(nc, loginWriteBufSize), snap: snap,
		deadline: deadline, seenLoginKeys: make(map[string]bool)}
	fr.SetDigests(false, false)
	fr.SetMaxRecvDSL(DefaultMaxRecvDSL)
	r, err := c.run()
	if err != nil {
		if _, ok := statusOf(err); ok || c.started {
			s.countLogin(c.loginOutcome(err))
		}
		if _, ok := statusOf(err); !ok && c.initiatorName != "" {
			s.log.Warn("login failed", c.failureAttrs(remote, err)...)
		}
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	s.countLogin(c.loginOutcome(nil))
	if c.sessionType == SessionDiscovery {
		s.log.Debug("discovery session", "remote", nc.RemoteAddr().String(), "initiator", c.initiatorName)
		return nil, s.serveDiscovery(nc, fr, c.fw, r)
	}
	s.noteKnown(remote)
	s.log.Info("login", "remote", nc.RemoteAddr().String(), "initiator", r.InitiatorName,
		"target", r.Target.Name, "tsih", r.TSIH)
	return r, nil
}

// chapGate is the throttle's gate for this login's CHAP checks.
func (c *loginConn) chapGate(user string) (func(ok bool), error) {
	chk, err := c.s.throttle.Begin(user, c.nc.RemoteAddr(), c.deadline)
	if err != nil {
		return nil, err
	}
	return chk.Done, nil
}

// chapFailures is the throttle's count of failed CHAP checks when a login
// failed, for its log line.
type chapFailures struct {
	user             string
	byUser, byPrefix int
}

// noteFailures keeps the throttle's failure counts of the CHAP user err
// names, taken before the failure's response is sent: once it is, the
// initiator may try again, and a later failure would be counted in this
// one's log line.
func (c *loginConn) noteFailures(err error) {
	var ae *AuthError
	var te *ThrottleError
	switch {
	case errors.As(err, &ae):
		c.failures.user = ae.User
	case errors.As(err, &te):
		c.failures.user = te.User
	}
	if c.failures.user != "" {
		c.failures.byUser, c.failures.byPrefix = c.s.throttle.Failures(c.failures.user, c.nc.RemoteAddr())
	}
}

// logRefused logs a login refused with status st, before its response is
// sent: once it is, the initiator may try again, and that attempt's line
// must come after this one.
func (c *loginConn) logRefused(err error, st LoginStatus) {
	args := append(c.failureAttrs(c.nc.RemoteAddr(), err), "status", st.String())
	if f := c.failures; f.user != "" {
		args = append(args, "chap_user", f.user, "failures_of_user", f.byUser, "failures_from_address", f.byPrefix)
	}
	if !errors.Is(err, ErrThrottled) {
		c.s.log.Warn("login refused", args...)
		return
	}
	if ok, suppressed := c.s.logAllowed("chap throttle"); ok {
		c.s.log.Warn("CHAP response refused unchecked: too many failed attempts", append(args,
			"refused_since_last_line", suppressed)...)
	}
}

// run reads Login Requests until the login completes or fails.
func (c *loginConn) run() (*LoginResult, error) {
	for {
		p, err := c.fr.Read()
		if err == nil {
			var r *LoginResult
			var done bool
			r, done, err = c.handle(p)
			if done {
				p.Release()
				return r, nil
			}
		}
		p.Release()
		if err == nil {
			continue
		}
		if c.final != nil {
			// The session was admitted but its final response could not
			// be delivered: hand it over on a closed connection, so that
			// the session ends as any other whose connection dropped.
			c.s.log.Debug("login: connection lost after admission", "tsih", c.final.TSIH, "err", err)
			c.nc.Close()
			return c.final, nil
		}
		if st, ok := statusOf(err); ok {
			var keys Text
			var le *LoginError
			if errors.As(err, &le) {
				keys = le.Keys
			}
			c.noteFailures(err)
			c.logRefused(err, st)
			c.sendStatus(st, keys)
		} else if p == nil {
			err = fmt.Errorf("iscsi: login: %w", err)
		}
		return nil, err
	}
}

// handle processes one Login Request PDU.
func (c *loginConn) handle(p *PDU) (*LoginResult, bool, error) {
	if op := p.BHS.Opcode(); op != OpLoginRequest {
		return nil, false, fmt.Errorf("iscsi: login: %s during login", op)
	}
	var req LoginRequest
	if err := req.Decode(&p.BHS); err != nil {
		return nil, false, loginFail(LoginInitiatorError, "%v", err)
	}
	c.itt = req.ITT
	if !c.started {
		c.started = true
		c.first = req
		c.tsih = req.TSIH
		c.stage = req.CSG
		c.statSN = req.ExpStatSN
		c.expCmdSN = req.CmdSN
		if req.VersionMin > 0 {
			return nil, false, loginFail(LoginUnsupportedVersion, "version %d..%d, target supports 0", req.VersionMin, req.VersionMax)
		}
		if !c.snap.Enabled {
			return nil, false, loginFail(LoginServiceUnavailable, "iSCSI is disabled")
		}
	} else {
		if req.ISID != c.first.ISID || req.TSIH != c.first.TSIH || req.CID != c.first.CID {
			return nil, false, loginFail(LoginInitiatorError, "ISID, TSIH or CID changed during login")
		}
		if req.CSG != c.stage && len(c.pending) == 0 {
			return nil, false, loginFail(LoginInitiatorError, "stage %s, expected %s", req.CSG, c.stage)
		}
	}
	if len(c.pending) > 0 {
		if len(p.Data) > 0 || req.Continue {
			return nil, false, loginFail(LoginInitiatorError, "text while the target's response continues")
		}
		if err := c.sendNextChunk(req); err != nil {
			return nil, false, err
		}
		if len(c.pending) == 0 && c.final != nil {
			return c.finish(c.final)
		}
		return nil, false, nil
	}
	if err := c.text.add(p.Data); err != nil {
		return nil, false, loginFail(LoginInitiatorError, "%v", err)
	}
	if req.Continue {
		// Acknowledge a partial request with an empty response.
		return nil, false, c.respond(req, nil, false)
	}
	kvs, err := c.text.take()
	if err != nil {
		return nil, false, loginFail(LoginInitiatorError, "%v", err)
	}
	out, transit, err := c.negotiate(req, kvs)
	if err != nil {
		return nil, false, err
	}
	if !transit || req.NSG != StageFullFeature {
		return nil, false, c.respondText(req, out, transit)
	}
	r, err := c.complete(req)
	if err != nil {
		return nil, false, err
	}
	c.final = r
	if err := c.respondText(req, out, true); err != nil {
		return nil, false, err
	}
	if len(c.pending) > 0 {
		// The final response continues: the login completes when its
		// last chunk is sent.
		return nil, false, nil
	}
	return c.finish(r)
}

// negotiate handles the keys of one complete request and decides whether
// the response transits to req.NSG.
func (c *loginConn) negotiate(req LoginRequest, kvs Text) (Text, bool, error) {
	var out Text
	leading := !c.seenLoginKeys["InitiatorName"] && c.initiatorName == ""
	var ops, sec Text
	for _, kv := range kvs {
		switch {
		case loginKeys[kv.Key]:
			if c.seenLoginKeys[kv.Key] {
				return nil, false, loginFail(LoginInitiatorError, "%s declared twice", kv.Key)
			}
			c.seenLoginKeys[kv.Key] = true
		case isSecurityKey(kv.Key):
			sec = append(sec, kv)
		default:
			ops = append(ops, kv)
		}
	}
	if leading {
		if err := c.leading(kvs); err != nil {
			return nil, false, err
		}
		out = append(out, c.leadingAnswers()...)
	}
	if v, ok := kvs.Get("AuthMethod"); ok {
		if req.CSG != StageSecurity {
			return nil, false, loginFail(LoginInitiatorError, "AuthMethod outside the security stage")
		}
		m, err := c.auth.selectMethod(v)
		if err != nil {
			return nil, false, err
		}
		c.authMethod = m
		out.Add("AuthMethod", m)
	}
	if len(sec) > 0 {
		if req.CSG != StageSecurity {
			return nil, false, loginFail(LoginInitiatorError, "security key %s outside the security stage", sec[0].Key)
		}
		ans, err := c.auth.exchange(sec)
		if err != nil {
			return nil, false, err
		}
		out = append(out, ans...)
	}
	ans, err := c.neg.Respond(ops)
	if err != nil {
		return nil, false, loginFail(LoginInitiatorError, "%v", err)
	}
	out = append(out, ans...)
	if !req.Transit {
		return out, false, nil
	}
	if req.CSG == StageSecurity && !c.auth.satisfied() {
		if c.authMethod == "" {
			return nil, false, loginFail(LoginAuthFailed, "authentication required, no AuthMethod offered")
		}
		// The exchange is under way: stay in the security stage.
		return out, false, nil
	}
	if req.NSG != StageFullFeature {
		return out, true, nil
	}
	more, ready := c.neg.Finish()
	out = append(out, more...)
	return out, ready, nil
}

// leading takes the keys of the first complete request: who logs in, to
// what, and in which session type.
func (c *loginConn) leading(kvs Text) error {
	m := kvs.Map()
	name, ok := m["InitiatorName"]
	if !ok || name == "" {
		return loginFail(LoginMissingParameter, "no InitiatorName")
	}
	if err := CheckName(name); err != nil {
		return loginFail(LoginInitiatorError, "InitiatorName %q: %v", name, err)
	}
	c.initiatorName = name
	c.initiatorAlias = m["InitiatorAlias"]
	switch m["SessionType"] {
	case "", "Normal":
		c.sessionType = SessionNormal
	case "Discovery":
		c.sessionType = SessionDiscovery
	default:
		return loginFail(LoginSessionTypeUnsupported, "SessionType=%.64s", m["SessionType"])
	}
	if c.sessionType == SessionNormal {
		tn, ok := m["TargetName"]
		c.targetName = tn
		if !ok || tn == "" {
			return loginFail(LoginMissingParameter, "no TargetName in a normal session")
		}
		if err := CheckName(tn); err != nil {
			return loginFail(LoginInitiatorError, "TargetName %q: %v", tn, err)
		}
		t := c.snap.Targets[tn]
		if t == nil {
			t = c.snap.Targets[strings.ToLower(tn)]
		}
		portalIP := PortalIP(c.nc.LocalAddr())
		switch {
		case t == nil:
			return loginFail(LoginNotFound, "no target %.64q", tn)
		case !t.Enabled:
			return loginFail(LoginNotFound, "target %s is disabled", t.Name)
		case !t.Access.Redirect.IsZero():
			rd := t.Access.Redirect
			le := loginFail(redirectStatus(rd), "redirected to %s", rd.Addr)
			// RFC 7143 §13.8: no portal group tag on a redirection.
			le.Keys.Add("TargetAddress", rd.Addr.String())
			return le
		}
		if err := t.CheckLogin(name, portalIP); err != nil {
			return loginFail(LoginNotFound, "%v", err)
		}
		if !c.snap.allowed(name, t.Name) {
			return loginFail(LoginNotFound, "iSNS access control: %s is not in a discovery domain with %s", name, t.Name)
		}
		c.target = t
		c.neg = NewNegotiator(t.Params, false)
	} else {
		c.neg = NewNegotiator(DiscoveryParams, true)
	}
	c.auth = c.s.authenticatorFor(c.snap, c.target, c.chapGate)
	if c.first.CSG != StageSecurity && !c.auth.satisfied() {
		return loginFail(LoginAuthFailed, "authentication required, the login skips the security stage")
	}
	return nil
}

// leadingAnswers are the keys of the first response.
func (c *loginConn) leadingAnswers() Text {
	var out Text
	if c.sessionType == SessionNormal && !c.tpgtSent {
		c.tpgtSent = true
		out.Add("TargetPortalGroupTag", fmt.Sprint(c.snap.tpgt()))
	}
	return out
}

// complete ends the negotiation and admits the session.
func (c *loginConn) complete(req LoginRequest) (*LoginResult, error) {
	params, err := c.neg.Result()
	if err != nil {
		return nil, loginFail(LoginInitiatorError, "%v", err)
	}
	r := &LoginResult{
		InitiatorName:  c.initiatorName,
		InitiatorAlias: c.initiatorAlias,
		ISID:           c.first.ISID,
		TSIH:           c.first.TSIH,
		CID:            c.first.CID,
		TPGT:           c.snap.tpgt(),
		Target:         c.target,
		Params:         params,
		ExpCmdSN:       c.expCmdSN,
		Portal:         c.nc.LocalAddr(),
		Remote:         c.nc.RemoteAddr(),
	}
	if c.sessionType == SessionDiscovery {
		r.TSIH = nextDiscoveryTSIH()
		c.tsih = r.TSIH
		return r, nil
	}
	tsih, err := c.s.admitSession(r)
	if err != nil {
		var ae *AdmitError
		if errors.As(err, &ae) {
			return nil, loginFail(ae.Status, "%s", ae.Msg)
		}
		return nil, loginFail(LoginTargetError, "%v", err)
	}
	r.TSIH = tsih
	c.tsih = tsih
	return r, nil
}

// finish switches the connection to the negotiated parameters.
func (c *loginConn) finish(r *LoginResult) (*LoginResult, bool, error) {
	r.StatSN = c.statSN
	c.fr.SetDigests(r.Params.HeaderDigest, r.Params.DataDigest)
	c.fr.SetMaxRecvDSL(r.Params.MaxRecvDSL)
	return r, true, nil
}

// maxCmdSN is the command window advertised during login.
func (c *loginConn) maxCmdSN() uint32 {
	if c.target != nil && c.target.QueuedCommands > 0 {
		return c.expCmdSN + c.target.QueuedCommands - 1
	}
	return c.expCmdSN
}

// respondText sends out, split into DefaultMaxRecvDSL chunks; transit
// goes on the last one.
func (c *loginConn) respondText(req LoginRequest, out Text, transit bool) error {
	chunks := textChunks(AppendText(nil, out), DefaultMaxRecvDSL)
	if len(chunks) > 1 {
		c.pending = chunks[1:]
		c.pendingTransit = transit
		c.pendingReq = req
		return c.send(req, chunks[0], false, true)
	}
	return c.send(req, chunks[0], transit, false)
}

// sendNextChunk answers an empty request with the next response chunk.
func (c *loginConn) sendNextChunk(empty LoginRequest) error {
	req := c.pendingReq
	req.ITT = empty.ITT
	chunk := c.pending[0]
	c.pending = c.pending[1:]
	if len(c.pending) > 0 {
		return c.send(req, chunk, false, true)
	}
	return c.send(req, chunk, c.pendingTransit, false)
}

// respond sends a response without text.
func (c *loginConn) respond(req LoginRequest, data []byte, transit bool) error {
	return c.send(req, data, transit, false)
}

// send writes one Login Response.
func (c *loginConn) send(req LoginRequest, data []byte, transit, cont bool) error {
	resp := LoginResponse{
		Transit: transit, Continue: cont, CSG: req.CSG, ISID: c.first.ISID, TSIH: c.tsih,
		ITT: req.ITT, StatSN: c.statSN, ExpCmdSN: c.expCmdSN, MaxCmdSN: c.maxCmdSN(),
	}
	if transit {
		resp.NSG = req.NSG
		c.stage = req.NSG
	}
	c.statSN++
	var h BHS
	resp.Encode(&h)
	if err := c.fw.WritePDU(&h, nil, data); err != nil {
		return err
	}
	return c.fw.Flush()
}

// sendStatus sends a Login Response refusing the login.
func (c *loginConn) sendStatus(st LoginStatus, keys Text) {
	resp := LoginResponse{CSG: c.stage, ISID: c.first.ISID, ITT: c.itt, StatSN: c.statSN,
		ExpCmdSN: c.expCmdSN, MaxCmdSN: c.expCmdSN, Status: st}
	var h BHS
	resp.Encode(&h)
	if c.fw.WritePDU(&h, nil, AppendText(nil, keys)) == nil {
		c.fw.Flush()
	}
}
