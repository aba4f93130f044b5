// Package initiator is a small iSCSI initiator for tests: it logs in
// (AuthMethod=None or CHAP, digests optional), lists targets with SendTargets,
// runs SCSI commands with Data-Out and Data-In, task management functions,
// pings with NOP-Out, logs out, and sends raw PDUs so that tests can produce the malformed and
// out-of-order traffic libiscsi never sends. One command at a time; not
// safe for concurrent use.
package initiator

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// DefaultInitiatorName is the name Login uses when Options leaves it empty.
const DefaultInitiatorName = "iqn.2026-11.org.scstd:test-initiator"

// Options configure a login.
type Options struct {
	// InitiatorName defaults to DefaultInitiatorName.
	InitiatorName string
	// TargetName selects a normal session; empty logs in to a discovery
	// session.
	TargetName string
	// ISID defaults to 80 00 00 00 00 01 (random-qualifier format).
	ISID [6]byte
	// TSIH non-zero asks to add a connection to that session.
	TSIH uint16
	// HeaderDigest and DataDigest ask for CRC32C (falling back to None).
	HeaderDigest, DataDigest bool
	// MaxRecvDSL is declared as MaxRecvDataSegmentLength; default 262144.
	MaxRecvDSL uint32
	// ImmediateData and InitialR2T are proposed as given (for normal
	// sessions); the zero Options propose ImmediateData=No, InitialR2T=No.
	ImmediateData, InitialR2T bool
	// SkipSecurity starts the login in the operational stage.
	SkipSecurity bool
	// ExtraKeys are appended to the first operational request.
	ExtraKeys iscsi.Text
	// CHAP, when set, authenticates with CHAP instead of AuthMethod=None.
	CHAP *CHAP
}

// LoginError is a login the target refused.
type LoginError struct {
	Status iscsi.LoginStatus
	Keys   iscsi.Text
}

// Error implements error.
func (e *LoginError) Error() string { return "initiator: login refused: " + e.Status.String() }

// RejectError is a Reject the target answered a request with.
type RejectError struct {
	Reason iscsi.RejectReason
	// Header is the rejected PDU's header as the target returned it.
	Header []byte
}

// Error implements error.
func (e *RejectError) Error() string { return "initiator: rejected: " + e.Reason.String() }

// Params are the parameters a login agreed on, as this initiator uses them.
type Params struct {
	HeaderDigest, DataDigest  bool
	MaxXmitDSL                uint32 // the target's MaxRecvDataSegmentLength
	MaxRecvDSL                uint32 // ours
	ImmediateData, InitialR2T bool
	FirstBurstLength          uint32
	MaxBurstLength            uint32
	// Keys are all the keys the target sent during login.
	Keys iscsi.Text
}

// Conn is one initiator connection.
type Conn struct {
	nc net.Conn
	fr *iscsi.FrameReader
	fw *iscsi.FrameWriter

	// Params are valid after Login.
	Params Params
	// TSIH is the session's TSIH after Login.
	TSIH uint16
	ISID [6]byte
	// CHAPAlgorithm is the algorithm the target chose for a CHAP login.
	CHAPAlgorithm access.CHAPAlgorithm

	cmdSN     uint32
	expStatSN uint32
	maxCmdSN  uint32
	itt       uint32
	// Async are the Asynchronous Messages received while waiting.
	Async []iscsi.AsyncMessage
}

// Dial connects to addr ("host:port") with a 10 s timeout.
func Dial(addr string) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return NewConn(nc), nil
}

// NewConn wraps an established connection.
func NewConn(nc net.Conn) *Conn {
	return &Conn{nc: nc, fr: iscsi.NewFrameReader(nc), fw: iscsi.NewFrameWriter(nc), cmdSN: 1}
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// SetDeadline sets the connection's deadline for what follows.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// NextITT returns a fresh initiator task tag.
func (c *Conn) NextITT() uint32 {
	c.itt++
	if c.itt == iscsi.ReservedTag {
		c.itt = 1
	}
	return c.itt
}

// CmdSN is the CmdSN the next non-immediate command carries.
func (c *Conn) CmdSN() uint32 { return c.cmdSN }

// ExpStatSN is the StatSN expected next.
func (c *Conn) ExpStatSN() uint32 { return c.expStatSN }

// MaxCmdSN is the last MaxCmdSN the target advertised.
func (c *Conn) MaxCmdSN() uint32 { return c.maxCmdSN }

// AdvanceCmdSN consumes a CmdSN for a raw non-immediate PDU and returns it.
func (c *Conn) AdvanceCmdSN() uint32 {
	n := c.cmdSN
	c.cmdSN++
	return n
}

// SendPDU writes one PDU as given (the digests in force apply); h's
// TotalAHSLength and DataSegmentLength are set from ahs and data.
func (c *Conn) SendPDU(h *iscsi.BHS, ahs, data []byte) error {
	if err := c.fw.WritePDU(h, ahs, data); err != nil {
		return err
	}
	return c.fw.Flush()
}

// SendRaw writes bytes as they are, for framing that SendPDU cannot
// produce (bad digests, lengths that lie).
func (c *Conn) SendRaw(b []byte) error {
	_, err := c.nc.Write(b)
	return err
}

// ReadPDU reads the next PDU; the caller releases it. StatSN bookkeeping
// is updated from it.
func (c *Conn) ReadPDU() (*iscsi.PDU, error) {
	p, err := c.fr.Read()
	if p != nil {
		c.track(&p.BHS)
	}
	return p, err
}

// track follows StatSN and MaxCmdSN in responses.
func (c *Conn) track(h *iscsi.BHS) {
	statSN := be32(h[24:])
	maxCmd := be32(h[32:])
	switch h.Opcode() {
	case iscsi.OpDataIn:
		if h[1]&0x01 == 0 { // no status: StatSN not valid
			c.maxCmdSN = maxCmd
			return
		}
	case iscsi.OpR2T:
		c.maxCmdSN = maxCmd
		return
	case iscsi.OpLoginResponse:
		c.expStatSN = statSN + 1
		return
	case iscsi.OpNOPIn:
		if h.ITT() == iscsi.ReservedTag {
			// A ping: StatSN is the next one, not consumed.
			c.maxCmdSN = maxCmd
			return
		}
	}
	c.expStatSN = statSN + 1
	c.maxCmdSN = maxCmd
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Login logs in with o.
func (c *Conn) Login(o Options) error {
	if o.InitiatorName == "" {
		o.InitiatorName = DefaultInitiatorName
	}
	if o.ISID == ([6]byte{}) {
		o.ISID = [6]byte{0x80, 0, 0, 0, 0, 1}
	}
	if o.MaxRecvDSL == 0 {
		o.MaxRecvDSL = 262144
	}
	c.ISID = o.ISID
	c.Params = Params{MaxXmitDSL: 8192, MaxRecvDSL: o.MaxRecvDSL, ImmediateData: true, InitialR2T: true,
		FirstBurstLength: 65536, MaxBurstLength: 262144}
	leading := iscsi.Text{{Key: "InitiatorName", Value: o.InitiatorName}}
	if o.TargetName == "" {
		leading.Add("SessionType", "Discovery")
	} else {
		leading.Add("SessionType", "Normal")
		leading.Add("TargetName", o.TargetName)
	}
	ops := c.operationalKeys(o)
	itt := c.NextITT()
	stage := iscsi.StageSecurity
	var keys iscsi.Text
	switch {
	case o.SkipSecurity:
		stage = iscsi.StageOperational
		keys = append(leading, ops...)
	case o.CHAP != nil:
		alg, err := c.chapSecurity(o, leading, itt)
		if err != nil {
			return err
		}
		c.CHAPAlgorithm = alg
		stage = iscsi.StageOperational
		keys = ops
	default:
		keys = append(leading, iscsi.KV{Key: "AuthMethod", Value: "None"})
	}
	for range 16 {
		req := iscsi.LoginRequest{Transit: true, CSG: stage, NSG: iscsi.StageOperational, ISID: o.ISID,
			TSIH: o.TSIH, ITT: itt, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
		if stage == iscsi.StageOperational {
			req.NSG = iscsi.StageFullFeature
		}
		rsp, got, err := c.loginExchange(req, keys)
		if err != nil {
			return err
		}
		c.Params.Keys = append(c.Params.Keys, got...)
		answers := c.absorb(o, got, keys)
		if rsp.Status != iscsi.LoginSuccess {
			return &LoginError{Status: rsp.Status, Keys: got}
		}
		keys = answers
		if !rsp.Transit {
			continue
		}
		c.TSIH = rsp.TSIH
		if rsp.NSG == iscsi.StageFullFeature {
			c.fr.SetDigests(c.Params.HeaderDigest, c.Params.DataDigest)
			c.fw.SetDigests(c.Params.HeaderDigest, c.Params.DataDigest)
			c.fr.SetMaxRecvDSL(c.Params.MaxRecvDSL)
			return nil
		}
		stage = rsp.NSG
		if stage == iscsi.StageOperational && !o.SkipSecurity {
			keys = append(keys, ops...)
		}
	}
	return errors.New("initiator: login does not converge")
}

// operationalKeys are the keys of the first operational request.
func (c *Conn) operationalKeys(o Options) iscsi.Text {
	digest := func(on bool) string {
		if on {
			return "CRC32C,None"
		}
		return "None"
	}
	yn := func(b bool) string {
		if b {
			return "Yes"
		}
		return "No"
	}
	t := iscsi.Text{
		{Key: "HeaderDigest", Value: digest(o.HeaderDigest)},
		{Key: "DataDigest", Value: digest(o.DataDigest)},
		{Key: "MaxRecvDataSegmentLength", Value: strconv.Itoa(int(o.MaxRecvDSL))},
	}
	if o.TargetName != "" {
		t = append(t, iscsi.Text{
			{Key: "ImmediateData", Value: yn(o.ImmediateData)},
			{Key: "InitialR2T", Value: yn(o.InitialR2T)},
			{Key: "MaxBurstLength", Value: "262144"},
			{Key: "FirstBurstLength", Value: "65536"},
			{Key: "MaxConnections", Value: "1"},
			{Key: "MaxOutstandingR2T", Value: "1"},
			{Key: "ErrorRecoveryLevel", Value: "0"},
			{Key: "DataPDUInOrder", Value: "Yes"},
			{Key: "DataSequenceInOrder", Value: "Yes"},
			{Key: "DefaultTime2Wait", Value: "2"},
			{Key: "DefaultTime2Retain", Value: "0"},
		}...)
	}
	return append(t, o.ExtraKeys...)
}

// absorb records the target's keys and returns answers to its proposals
// (keys it sent that this side did not).
func (c *Conn) absorb(o Options, got, sent iscsi.Text) iscsi.Text {
	var answers iscsi.Text
	for _, kv := range got {
		_, ours := sent.Get(kv.Key)
		switch kv.Key {
		case "HeaderDigest", "DataDigest":
			v := kv.Value
			if !ours {
				v = "None"
				want := (kv.Key == "HeaderDigest" && o.HeaderDigest) || (kv.Key == "DataDigest" && o.DataDigest)
				if want || !contains(strings.Split(kv.Value, ","), "None") {
					v = "CRC32C"
				}
				answers.Add(kv.Key, v)
			}
			if kv.Key == "HeaderDigest" {
				c.Params.HeaderDigest = v == "CRC32C"
			} else {
				c.Params.DataDigest = v == "CRC32C"
			}
		case "MaxRecvDataSegmentLength":
			if n, err := iscsi.ParseNumber(kv.Value); err == nil {
				c.Params.MaxXmitDSL = uint32(n)
			}
		case "ImmediateData":
			c.Params.ImmediateData = kv.Value == "Yes"
			if !ours {
				answers.Add(kv.Key, "No")
				c.Params.ImmediateData = false
			}
		case "InitialR2T":
			c.Params.InitialR2T = kv.Value == "Yes"
		case "FirstBurstLength", "MaxBurstLength":
			n, err := iscsi.ParseNumber(kv.Value)
			if err != nil {
				continue
			}
			if kv.Key == "FirstBurstLength" {
				c.Params.FirstBurstLength = uint32(n)
			} else {
				c.Params.MaxBurstLength = uint32(n)
			}
			if !ours {
				answers.Add(kv.Key, kv.Value)
			}
		}
	}
	return answers
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// loginExchange sends one login request (split over several PDUs when
// long) and reads the whole response (following the C bit).
func (c *Conn) loginExchange(req iscsi.LoginRequest, keys iscsi.Text) (iscsi.LoginResponse, iscsi.Text, error) {
	data := iscsi.AppendText(nil, keys)
	for len(data) > 8192 {
		part := req
		part.Transit, part.Continue = false, true
		var h iscsi.BHS
		part.Encode(&h)
		if err := c.SendPDU(&h, nil, data[:8192]); err != nil {
			return iscsi.LoginResponse{}, nil, err
		}
		data = data[8192:]
		if _, _, err := c.readLoginResponse(); err != nil {
			return iscsi.LoginResponse{}, nil, err
		}
	}
	var h iscsi.BHS
	req.Encode(&h)
	if err := c.SendPDU(&h, nil, data); err != nil {
		return iscsi.LoginResponse{}, nil, err
	}
	var all []byte
	for {
		rsp, d, err := c.readLoginResponse()
		if err != nil {
			return rsp, nil, err
		}
		all = append(all, d...)
		if !rsp.Continue {
			kv, err := iscsi.ParseTextRepeated(all)
			return rsp, kv, err
		}
		next := iscsi.LoginRequest{CSG: req.CSG, ISID: req.ISID, TSIH: req.TSIH, ITT: req.ITT, CmdSN: c.cmdSN,
			ExpStatSN: c.expStatSN}
		h = iscsi.BHS{}
		next.Encode(&h)
		if err := c.SendPDU(&h, nil, nil); err != nil {
			return rsp, nil, err
		}
	}
}

func (c *Conn) readLoginResponse() (iscsi.LoginResponse, []byte, error) {
	var rsp iscsi.LoginResponse
	p, err := c.ReadPDU()
	if err != nil {
		p.Release()
		return rsp, nil, err
	}
	defer p.Release()
	if err := rsp.Decode(&p.BHS); err != nil {
		return rsp, nil, fmt.Errorf("initiator: %v during login", p.BHS.Opcode())
	}
	return rsp, append([]byte(nil), p.Data...), nil
}

// Target is one SendTargets record.
type Target struct {
	Name      string
	Addresses []string // "ip:port,tpgt"
}

// SendTargets asks for value ("All", a target name, or "") and returns
// the records, following multi-PDU responses.
func (c *Conn) SendTargets(value string) ([]Target, error) {
	kv, err := c.Text(iscsi.Text{{Key: "SendTargets", Value: value}})
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, p := range kv {
		switch p.Key {
		case "TargetName":
			out = append(out, Target{Name: p.Value})
		case "TargetAddress":
			if len(out) == 0 {
				return nil, fmt.Errorf("initiator: TargetAddress before TargetName")
			}
			out[len(out)-1].Addresses = append(out[len(out)-1].Addresses, p.Value)
		}
	}
	return out, nil
}

// Text sends a Text Request with keys and returns the whole answer.
func (c *Conn) Text(keys iscsi.Text) (iscsi.Text, error) {
	itt := c.NextITT()
	req := iscsi.TextRequest{Final: true, ITT: itt, TTT: iscsi.ReservedTag, CmdSN: c.AdvanceCmdSN(),
		ExpStatSN: c.expStatSN}
	data := iscsi.AppendText(nil, keys)
	var all []byte
	for {
		req.ExpStatSN = c.expStatSN
		var h iscsi.BHS
		req.Encode(&h)
		if err := c.SendPDU(&h, nil, data); err != nil {
			return nil, err
		}
		p, err := c.waitFor(itt)
		if err != nil {
			return nil, err
		}
		var rsp iscsi.TextResponse
		err = rsp.Decode(&p.BHS)
		all = append(all, p.Data...)
		p.Release()
		if err != nil {
			return nil, err
		}
		if rsp.Final {
			return iscsi.ParseTextRepeated(all)
		}
		// Ask for the rest: same ITT, the target's TTT, same CmdSN
		// (immediate continuation of the same task).
		req = iscsi.TextRequest{Final: true, ITT: itt, TTT: rsp.TTT, CmdSN: c.cmdSN, Immediate: true}
		data = nil
	}
}

// waitFor reads PDUs until one for itt arrives, answering target pings
// and recording asynchronous messages on the way. A Reject of a PDU with
// that ITT is returned as *RejectError.
func (c *Conn) waitFor(itt uint32) (*iscsi.PDU, error) {
	for {
		p, err := c.ReadPDU()
		if err != nil {
			p.Release()
			return nil, err
		}
		switch p.BHS.Opcode() {
		case iscsi.OpNOPIn:
			if p.BHS.ITT() == iscsi.ReservedTag {
				var ping iscsi.NOPIn
				ping.Decode(&p.BHS)
				p.Release()
				if err := c.answerPing(ping); err != nil {
					return nil, err
				}
				continue
			}
		case iscsi.OpAsyncMessage:
			var m iscsi.AsyncMessage
			m.Decode(&p.BHS)
			c.Async = append(c.Async, m)
			p.Release()
			continue
		case iscsi.OpReject:
			var rj iscsi.Reject
			rj.Decode(&p.BHS)
			hdr := append([]byte(nil), p.Data...)
			p.Release()
			if len(hdr) >= iscsi.BHSLen && be32(hdr[16:]) == itt {
				return nil, &RejectError{Reason: rj.Reason, Header: hdr}
			}
			continue
		}
		if p.BHS.ITT() == itt {
			return p, nil
		}
		p.Release()
	}
}

// answerPing answers a target NOP-In that wants a reply.
func (c *Conn) answerPing(ping iscsi.NOPIn) error {
	if ping.TTT == iscsi.ReservedTag {
		return nil
	}
	out := iscsi.NOPOut{Immediate: true, LUN: ping.LUN, ITT: iscsi.ReservedTag, TTT: ping.TTT, CmdSN: c.cmdSN,
		ExpStatSN: c.expStatSN}
	var h iscsi.BHS
	out.Encode(&h)
	return c.SendPDU(&h, nil, nil)
}

// NOP sends a NOP-Out ping carrying data and returns the echoed data.
func (c *Conn) NOP(data []byte) ([]byte, error) {
	itt := c.NextITT()
	req := iscsi.NOPOut{Immediate: true, ITT: itt, TTT: iscsi.ReservedTag, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
	var h iscsi.BHS
	req.Encode(&h)
	if err := c.SendPDU(&h, nil, data); err != nil {
		return nil, err
	}
	p, err := c.waitFor(itt)
	if err != nil {
		return nil, err
	}
	defer p.Release()
	if p.BHS.Opcode() != iscsi.OpNOPIn {
		return nil, fmt.Errorf("initiator: %v answers a NOP-Out", p.BHS.Opcode())
	}
	return append([]byte(nil), p.Data...), nil
}

// Logout closes the session and returns the target's response code.
func (c *Conn) Logout() (iscsi.LogoutResponseCode, error) {
	itt := c.NextITT()
	req := iscsi.LogoutRequest{Immediate: true, Reason: iscsi.LogoutCloseSession, ITT: itt, CmdSN: c.cmdSN,
		ExpStatSN: c.expStatSN}
	var h iscsi.BHS
	req.Encode(&h)
	if err := c.SendPDU(&h, nil, nil); err != nil {
		return 0, err
	}
	p, err := c.waitFor(itt)
	if err != nil {
		return 0, err
	}
	defer p.Release()
	var rsp iscsi.LogoutResponse
	if err := rsp.Decode(&p.BHS); err != nil {
		return 0, err
	}
	return rsp.Response, nil
}

// Response is the outcome of a SCSI command.
type Response struct {
	// Response is the iSCSI service response; Status the SCSI status.
	Response iscsi.ServiceResponse
	Status   uint8
	// Sense is the sense data of a CHECK CONDITION (without the
	// SenseLength prefix).
	Sense []byte
	// Data is what Data-In PDUs delivered, placed at their offsets.
	Data                []byte
	Overflow, Underflow bool
	ResidualCount       uint32
	// DataInPDUs counts the Data-In PDUs received.
	DataInPDUs int
}

// Command runs one SCSI command on lun (an 8-byte LUN field): out is
// written (immediate data, unsolicited Data-Out and R2T-solicited
// Data-Out, as negotiated), up to readLen bytes are read.
func (c *Conn) Command(lun [8]byte, cdb []byte, out []byte, readLen int) (*Response, error) {
	if len(cdb) > 16 {
		return nil, errors.New("initiator: CDB longer than 16 bytes")
	}
	itt := c.NextITT()
	cmd := iscsi.SCSICommand{Final: true, Read: readLen > 0, Write: len(out) > 0, Attr: scsi.Simple,
		LUN: lun, ITT: itt, CmdSN: c.AdvanceCmdSN(), ExpStatSN: c.expStatSN}
	copy(cmd.CDB[:], cdb)
	cmd.ExpectedDataTransferLength = uint32(readLen)
	if len(out) > 0 {
		cmd.ExpectedDataTransferLength = uint32(len(out))
	}
	var immediate []byte
	sent := 0
	firstBurst := int(c.Params.FirstBurstLength)
	if len(out) > 0 && c.Params.ImmediateData {
		immediate = out[:min(len(out), firstBurst, int(c.Params.MaxXmitDSL))]
		sent = len(immediate)
	}
	unsolicited := 0
	if len(out) > 0 && !c.Params.InitialR2T {
		unsolicited = min(len(out), firstBurst) - sent
	}
	cmd.Final = unsolicited <= 0
	var h iscsi.BHS
	cmd.Encode(&h)
	if err := c.SendPDU(&h, nil, immediate); err != nil {
		return nil, err
	}
	if unsolicited > 0 {
		if err := c.dataOut(lun, itt, iscsi.ReservedTag, out, sent, unsolicited); err != nil {
			return nil, err
		}
	}
	rsp := &Response{}
	if readLen > 0 {
		rsp.Data = make([]byte, 0, readLen)
	}
	for {
		p, err := c.waitFor(itt)
		if err != nil {
			return nil, err
		}
		switch p.BHS.Opcode() {
		case iscsi.OpR2T:
			var r2t iscsi.R2T
			r2t.Decode(&p.BHS)
			p.Release()
			off, n := int(r2t.BufferOffset), int(r2t.DesiredDataTransferLength)
			if off+n > len(out) {
				return nil, fmt.Errorf("initiator: R2T for %d bytes at %d beyond %d", n, off, len(out))
			}
			if err := c.dataOut(lun, itt, r2t.TTT, out, off, n); err != nil {
				return nil, err
			}
		case iscsi.OpDataIn:
			var din iscsi.DataIn
			err := din.Decode(&p.BHS)
			off := int(din.BufferOffset)
			if err == nil && off+len(p.Data) > readLen {
				err = fmt.Errorf("initiator: Data-In of %d bytes at %d beyond %d", len(p.Data), off, readLen)
			}
			if err != nil {
				p.Release()
				return nil, err
			}
			if end := off + len(p.Data); end > len(rsp.Data) {
				rsp.Data = rsp.Data[:end]
			}
			copy(rsp.Data[off:], p.Data)
			p.Release()
			rsp.DataInPDUs++
			if din.HasStatus {
				rsp.Status, rsp.Overflow, rsp.Underflow = din.Status, din.Overflow, din.Underflow
				rsp.ResidualCount = din.ResidualCount
				return rsp, nil
			}
		case iscsi.OpSCSIResponse:
			var sr iscsi.SCSIResponse
			err := sr.Decode(&p.BHS)
			if len(p.Data) >= 2 {
				n := int(p.Data[0])<<8 | int(p.Data[1])
				if 2+n <= len(p.Data) {
					rsp.Sense = append([]byte(nil), p.Data[2:2+n]...)
				}
			}
			p.Release()
			if err != nil {
				return nil, err
			}
			rsp.Response, rsp.Status = sr.Response, sr.Status
			rsp.Overflow, rsp.Underflow, rsp.ResidualCount = sr.Overflow, sr.Underflow, sr.ResidualCount
			return rsp, nil
		default:
			op := p.BHS.Opcode()
			p.Release()
			return nil, fmt.Errorf("initiator: unexpected %v for a SCSI command", op)
		}
	}
}

// dataOut sends out[off:off+n] as a Data-Out sequence of PDUs no longer
// than the target's MaxRecvDataSegmentLength.
func (c *Conn) dataOut(lun [8]byte, itt, ttt uint32, out []byte, off, n int) error {
	seg := int(c.Params.MaxXmitDSL)
	var dataSN uint32
	for done := 0; done < n; {
		l := min(seg, n-done)
		d := iscsi.DataOut{Final: done+l == n, LUN: lun, ITT: itt, TTT: ttt, ExpStatSN: c.expStatSN,
			DataSN: dataSN, BufferOffset: uint32(off + done)}
		var h iscsi.BHS
		d.Encode(&h)
		if err := c.fw.WritePDU(&h, nil, out[off+done:off+done+l]); err != nil {
			return err
		}
		done += l
		dataSN++
	}
	return c.fw.Flush()
}

// TaskMgmt sends a Task Management Function Request (immediate) and
// returns the target's response code. rtt and refCmdSN matter for
// ABORT TASK only.
func (c *Conn) TaskMgmt(fn iscsi.TMFunction, lun [8]byte, rtt, refCmdSN uint32) (iscsi.TMResponse, error) {
	itt := c.NextITT()
	req := iscsi.TaskMgmtRequest{Immediate: true, Function: fn, LUN: lun, ITT: itt, RTT: iscsi.ReservedTag,
		CmdSN: c.cmdSN, ExpStatSN: c.expStatSN, RefCmdSN: refCmdSN}
	if fn == iscsi.TMAbortTask {
		req.RTT = rtt
	}
	var h iscsi.BHS
	req.Encode(&h)
	if err := c.SendPDU(&h, nil, nil); err != nil {
		return 0, err
	}
	p, err := c.waitFor(itt)
	if err != nil {
		return 0, err
	}
	defer p.Release()
	var rsp iscsi.TaskMgmtResponse
	if err := rsp.Decode(&p.BHS); err != nil {
		return 0, err
	}
	return rsp.Response, nil
}
