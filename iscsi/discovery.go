package iscsi

import (
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// discoveryWindow is the command window of discovery sessions.
const discoveryWindow = 4

// discoverySession is the full-feature phase of one discovery session:
// SendTargets, NOP-Out and Logout (RFC 7143 §4.3, Appendix C).
type discoverySession struct {
	s         *Server
	nc        net.Conn
	fw        *FrameWriter
	initiator string
	portal    net.Addr
	maxXmit   int

	statSN   uint32
	expCmdSN uint32

	// A continued Text Request being received.
	reqITT  uint32
	reqTTT  uint32
	reqText textBuffer
	inReq   bool
	// A Text Response being sent in several PDUs.
	rspITT  uint32
	rspTTT  uint32
	pending [][]byte
	nextTTT uint32
}

// serveDiscovery runs a discovery session until Logout, an error or the
// peer closing the connection (nil).
func (s *Server) serveDiscovery(nc net.Conn, fr *FrameReader, fw *FrameWriter, r *LoginResult) error {
	fw.SetDigests(r.Params.HeaderDigest, r.Params.DataDigest)
	d := &discoverySession{s: s, nc: nc, fw: fw, initiator: r.InitiatorName, portal: r.Portal,
		maxXmit: int(r.Params.MaxXmitDSL), statSN: r.StatSN, expCmdSN: r.ExpCmdSN}
	for {
		nc.SetReadDeadline(time.Now().Add(s.Snapshot().Limits.withDefaults().DiscoveryIdleTimeout))
		p, err := fr.Read()
		if err != nil {
			var de *DataDigestError
			if p != nil && errors.As(err, &de) {
				err = d.reject(&p.BHS, RejectDataDigestError)
				p.Release()
				if err != nil {
					return err
				}
				continue
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		done, err := d.handle(p)
		p.Release()
		if err == nil {
			err = fw.Flush()
		}
		if err != nil || done {
			return err
		}
	}
}

// handle answers one PDU; done after Logout.
func (d *discoverySession) handle(p *PDU) (done bool, err error) {
	switch p.BHS.Opcode() {
	case OpTextRequest:
		var req TextRequest
		if err := req.Decode(&p.BHS); err != nil {
			return false, d.reject(&p.BHS, RejectProtocolError)
		}
		d.acceptCmdSN(req.CmdSN, req.Immediate)
		return false, d.text(&p.BHS, req, p.Data)
	case OpNOPOut:
		var req NOPOut
		if err := req.Decode(&p.BHS); err != nil {
			return false, d.reject(&p.BHS, RejectProtocolError)
		}
		d.acceptCmdSN(req.CmdSN, req.Immediate)
		if req.ITT == ReservedTag {
			return false, nil // no answer wanted
		}
		data := p.Data
		if len(data) > d.maxXmit {
			data = data[:d.maxXmit]
		}
		rsp := NOPIn{LUN: req.LUN, ITT: req.ITT, TTT: ReservedTag}
		d.stamp(&rsp.StatSN, &rsp.ExpCmdSN, &rsp.MaxCmdSN)
		var h BHS
		rsp.Encode(&h)
		return false, d.fw.WritePDU(&h, nil, data)
	case OpLogoutRequest:
		var req LogoutRequest
		if err := req.Decode(&p.BHS); err != nil {
			return false, d.reject(&p.BHS, RejectProtocolError)
		}
		d.acceptCmdSN(req.CmdSN, req.Immediate)
		rsp := LogoutResponse{Response: LogoutSuccess, ITT: req.ITT}
		if req.Reason == LogoutRemoveForRecovery {
			rsp.Response = LogoutRecoveryNotSupported
		}
		d.stamp(&rsp.StatSN, &rsp.ExpCmdSN, &rsp.MaxCmdSN)
		var h BHS
		rsp.Encode(&h)
		if err := d.fw.WritePDU(&h, nil, nil); err != nil {
			return true, err
		}
		return true, d.fw.Flush()
	case OpSCSICommand, OpTaskMgmtRequest, OpDataOut, OpSNACKRequest, OpLoginRequest:
		// Valid opcodes, but not in a discovery session's full-feature phase.
		return false, d.reject(&p.BHS, RejectProtocolError)
	default:
		return false, d.reject(&p.BHS, RejectCommandNotSupported)
	}
}

// acceptCmdSN advances ExpCmdSN for a non-immediate request carrying it.
func (d *discoverySession) acceptCmdSN(cmdSN uint32, immediate bool) {
	if !immediate && cmdSN == d.expCmdSN {
		d.expCmdSN++
	}
}

// stamp fills the sequence numbers of a response and advances StatSN.
func (d *discoverySession) stamp(statSN, expCmdSN, maxCmdSN *uint32) {
	*statSN = d.statSN
	*expCmdSN = d.expCmdSN
	*maxCmdSN = d.expCmdSN + discoveryWindow - 1
	d.statSN++
}

// reject answers a PDU with a Reject carrying its header.
func (d *discoverySession) reject(h *BHS, reason RejectReason) error {
	rsp := Reject{Reason: reason}
	d.stamp(&rsp.StatSN, &rsp.ExpCmdSN, &rsp.MaxCmdSN)
	var rh BHS
	rsp.Encode(&rh)
	return d.fw.WritePDU(&rh, nil, h[:])
}

// tag returns a fresh target transfer tag.
func (d *discoverySession) tag() uint32 {
	d.nextTTT++
	if d.nextTTT == ReservedTag {
		d.nextTTT = 1
	}
	return d.nextTTT
}

// text handles one Text Request PDU: a part of a continued request, a
// request for the next part of a continued response, or a new request.
func (d *discoverySession) text(h *BHS, req TextRequest, data []byte) error {
	switch {
	case req.TTT != ReservedTag && len(d.pending) > 0 && req.TTT == d.rspTTT && req.ITT == d.rspITT:
		if len(data) > 0 {
			return d.reject(h, RejectProtocolError)
		}
		return d.sendChunk()
	case req.TTT != ReservedTag && d.inReq && req.TTT == d.reqTTT && req.ITT == d.reqITT:
		// Next part of a continued request.
	case req.TTT != ReservedTag:
		return d.reject(h, RejectInvalidPDUField)
	default:
		// A new request resets any exchange in progress.
		d.pending, d.inReq = nil, false
		d.reqText.b = d.reqText.b[:0]
		d.reqITT = req.ITT
	}
	if err := d.reqText.add(data); err != nil {
		d.inReq = false
		d.reqText.b = d.reqText.b[:0]
		return d.reject(h, RejectProtocolError)
	}
	if req.Continue {
		d.inReq = true
		d.reqTTT = d.tag()
		rsp := TextResponse{LUN: req.LUN, ITT: req.ITT, TTT: d.reqTTT}
		d.stamp(&rsp.StatSN, &rsp.ExpCmdSN, &rsp.MaxCmdSN)
		var rh BHS
		rsp.Encode(&rh)
		return d.fw.WritePDU(&rh, nil, nil)
	}
	d.inReq = false
	kvs, err := d.reqText.take()
	if err != nil {
		return d.reject(h, RejectProtocolError)
	}
	var out Text
	for _, kv := range kvs {
		switch {
		case kv.Key == "SendTargets":
			out = append(out, d.sendTargets(kv.Value)...)
		case operationalKeys[kv.Key].kind != 0 || loginKeys[kv.Key] || isSecurityKey(kv.Key):
			// Valid keys, but not renegotiable in a discovery session.
			out.Add(kv.Key, ValueReject)
		default:
			out.Add(kv.Key, ValueNotUnderstood)
		}
	}
	d.rspITT = req.ITT
	d.pending = textChunks(AppendText(nil, out), d.maxXmit)
	if len(d.pending) > 1 {
		d.rspTTT = d.tag()
	}
	return d.sendChunk()
}

// sendChunk sends the next part of the pending Text Response.
func (d *discoverySession) sendChunk() error {
	chunk := d.pending[0]
	d.pending = d.pending[1:]
	rsp := TextResponse{ITT: d.rspITT, TTT: ReservedTag, Final: true}
	if len(d.pending) > 0 {
		rsp = TextResponse{ITT: d.rspITT, TTT: d.rspTTT, Continue: true}
	}
	d.stamp(&rsp.StatSN, &rsp.ExpCmdSN, &rsp.MaxCmdSN)
	var h BHS
	rsp.Encode(&h)
	return d.fw.WritePDU(&h, nil, chunk)
}

// sendTargets answers SendTargets=value: All lists every enabled target
// with LUNs for this initiator; a target name lists that target if so; an
// empty value names the session's target, which a discovery session has
// not, so it lists nothing (RFC 7143 Appendix C). A target that the
// portal of this discovery session does not serve (allowed_portals, or
// no LUNs for the initiator there with per_portal_acl) is not listed at
// all, as in iSCSI-SCST: it is "accessible for initiators only on the
// specified portals", so the other portals do not reveal it either.
func (d *discoverySession) sendTargets(value string) Text {
	snap := d.s.Snapshot()
	var names []string
	switch value {
	case "":
	case "All":
		for name := range snap.Targets {
			names = append(names, name)
		}
		slices.Sort(names)
	default:
		names = []string{value}
	}
	addrs := d.targetAddresses(snap.tpgt())
	var out Text
	for _, name := range names {
		t := snap.Targets[name]
		if t == nil || !t.Enabled || !snap.allowed(d.initiator, t.Name) {
			continue
		}
		if len(addrs) > 0 && addrs[0].own && t.CheckLogin(d.initiator, addrs[0].ip) != nil {
			continue
		}
		named := false
		for _, a := range addrs {
			if t.CheckLogin(d.initiator, a.ip) != nil {
				continue
			}
			if !named {
				named = true
				out.Add("TargetName", t.Name)
			}
			out.Add("TargetAddress", a.text)
		}
	}
	return out
}

// portalAddress is a portal as SendTargets reports it.
type portalAddress struct {
	ip   string // PortalIP form, for access rules
	text string // "ip:port,tpgt"
	own  bool   // the portal of the discovery session itself
}

// targetAddresses returns "ip:port,tpgt" for every portal (IPv6 in
// brackets), the connection's own portal first; a wildcard listener is
// reported with the IP the initiator reached it on.
func (d *discoverySession) targetAddresses(tpgt uint16) []portalAddress {
	local, _ := d.portal.(*net.TCPAddr)
	seen := map[string]bool{}
	var out []portalAddress
	add := func(ip net.IP, port int, own bool) {
		pip := PortalIP(&net.TCPAddr{IP: ip})
		a := net.JoinHostPort(pip, strconv.Itoa(port)) + "," + strconv.Itoa(int(tpgt))
		if !seen[a] {
			seen[a] = true
			out = append(out, portalAddress{ip: pip, text: a, own: own})
		}
	}
	if local != nil {
		add(local.IP, local.Port, true)
	}
	var rest []*net.TCPAddr
	for _, a := range d.s.Portals() {
		if ta, ok := a.(*net.TCPAddr); ok {
			rest = append(rest, ta)
		}
	}
	slices.SortFunc(rest, func(a, b *net.TCPAddr) int { return strings.Compare(a.String(), b.String()) })
	for _, ta := range rest {
		ip := ta.IP
		if ip.IsUnspecified() {
			if local == nil {
				continue
			}
			ip = local.IP
		}
		add(ip, ta.Port, false)
	}
	return out
}
