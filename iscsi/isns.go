package iscsi

// iSNS client (RFC 4171): registers the daemon's network entity, its
// portals and its enabled targets with an iSNS server, keeps the
// registration alive, removes it on shutdown, and answers access-control
// questions from the server's discovery domains.
//
// iSNSP message layout (RFC 4171 §5.1, §5.5), all integers big-endian:
//
//	 0               2               4               6
//	+---------------+---------------+---------------+---------------+
//	| version (1)   | function ID   | PDU length    | flags         |
//	+---------------+---------------+---------------+---------------+
//	| transaction ID| sequence ID   |  payload (PDU length bytes) ...
//	+---------------+---------------+-------------------------------+
//
// A request payload is a list of TLV attributes: the Source attribute,
// the Message Key attributes, a Delimiter (tag 0, length 0), then the
// Operating attributes. A response payload starts with a 4-byte status.
// Each attribute is
//
//	| tag (4) | length (4, a multiple of 4) | value (length bytes) |
//
// strings are NUL-terminated and zero-padded to 4 bytes, IP addresses are
// 16 bytes (IPv4 mapped into IPv6), ports are 4 bytes (bit 16 set for UDP).
// A message longer than one PDU is split into PDUs numbered by sequence ID,
// the first flagged FIRST and the last LAST.
//
// What scstd does with it: one DevAttrReg with the Replace flag carries the
// whole registration (entity, portals, targets as nodes of type Target,
// one portal group per target and portal) and is sent again whenever the
// set changes (Update) and every half registration period (Run); DevDereg
// of the entity on Close. Access control is a DevAttrQry whose Source is
// the target and whose key is the initiator's name: the server answers
// only with nodes that share a discovery domain with the source. ESI and
// SCN are not used: the registration period keeps the entity alive and
// access answers are cached for a few seconds only.
//
// Seam for the integrator: cmd/reconcile creates one ISNSClient per
// isns_server block with NewISNSClient, calls Update with the enabled
// targets and the listening portals after every reload, runs Run in a
// goroutine, and calls Close at shutdown. login.go and discovery.go call
// Allowed (nil-safe: a nil client allows everything).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// isnsDefaultPort is the IANA port of iSNS.
const isnsDefaultPort = "3205"

// isnsVersion is the iSNSP version of RFC 4171.
const isnsVersion = 1

// isnsHeaderLen is the length of the iSNSP header.
const isnsHeaderLen = 12

// isnsMaxPayload is the largest payload scstd puts in one PDU (a multiple
// of 4 within the 16-bit PDU length).
const isnsMaxPayload = 65532

// isnsMaxMessage bounds a reassembled response.
const isnsMaxMessage = 1 << 20

// isnsFunction is an iSNSP function ID (RFC 4171 §6.1); responses have
// bit 15 set.
type isnsFunction uint16

// The iSNSP functions scstd sends or understands.
const (
	isnsDevAttrReg isnsFunction = 0x0001
	isnsDevAttrQry isnsFunction = 0x0002
	isnsDevGetNext isnsFunction = 0x0003
	isnsDevDereg   isnsFunction = 0x0004
	isnsSCNReg     isnsFunction = 0x0005
	isnsSCNDereg   isnsFunction = 0x0006
	isnsSCNEvent   isnsFunction = 0x0007
	isnsSCN        isnsFunction = 0x0008
	isnsDDReg      isnsFunction = 0x0009
	isnsDDDereg    isnsFunction = 0x000a
	isnsDDSReg     isnsFunction = 0x000b
	isnsDDSDereg   isnsFunction = 0x000c
	isnsESI        isnsFunction = 0x000d
	isnsHeartbeat  isnsFunction = 0x000e

	isnsResponse isnsFunction = 0x8000 // response bit
)

var isnsFunctionNames = map[isnsFunction]string{
	isnsDevAttrReg: "DevAttrReg", isnsDevAttrQry: "DevAttrQry", isnsDevGetNext: "DevGetNext",
	isnsDevDereg: "DevDereg", isnsSCNReg: "SCNReg", isnsSCNDereg: "SCNDereg", isnsSCNEvent: "SCNEvent",
	isnsSCN: "SCN", isnsDDReg: "DDReg", isnsDDDereg: "DDDereg", isnsDDSReg: "DDSReg",
	isnsDDSDereg: "DDSDereg", isnsESI: "ESI", isnsHeartbeat: "Heartbeat",
}

// String returns the RFC 4171 name of f ("DevAttrRegRsp" for a response).
func (f isnsFunction) String() string {
	if n, ok := isnsFunctionNames[f&^isnsResponse]; ok {
		if f&isnsResponse != 0 {
			return n + "Rsp"
		}
		return n
	}
	return "isnsFunction(0x" + strconv.FormatUint(uint64(f), 16) + ")"
}

// isnsFlags are the iSNSP header flags.
type isnsFlags uint16

// The header flags.
const (
	isnsFlagClient   isnsFlags = 0x8000 // sender is an iSNS client
	isnsFlagServer   isnsFlags = 0x4000 // sender is the iSNS server
	isnsFlagAuth     isnsFlags = 0x2000 // authentication block present
	isnsFlagReplace  isnsFlags = 0x1000 // DevAttrReg replaces the entity
	isnsFlagLastPDU  isnsFlags = 0x0800
	isnsFlagFirstPDU isnsFlags = 0x0400
)

// String lists the flags set in f, e.g. "client|last|first".
func (f isnsFlags) String() string {
	names := []struct {
		bit  isnsFlags
		name string
	}{
		{isnsFlagClient, "client"}, {isnsFlagServer, "server"}, {isnsFlagAuth, "auth"},
		{isnsFlagReplace, "replace"}, {isnsFlagLastPDU, "last"}, {isnsFlagFirstPDU, "first"},
	}
	var parts []string
	for _, n := range names {
		if f&n.bit != 0 {
			parts = append(parts, n.name)
			f &^= n.bit
		}
	}
	if f != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(f), 16))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// isnsTag is an iSNS attribute tag (RFC 4171 §6.1).
type isnsTag uint32

// The attribute tags scstd uses.
const (
	isnsTagDelimiter          isnsTag = 0
	isnsTagEntityID           isnsTag = 1
	isnsTagEntityProtocol     isnsTag = 2
	isnsTagRegistrationPeriod isnsTag = 6
	isnsTagEntityIndex        isnsTag = 7
	isnsTagPortalIP           isnsTag = 16
	isnsTagPortalPort         isnsTag = 17
	isnsTagPortalIndex        isnsTag = 22
	isnsTagISCSIName          isnsTag = 32
	isnsTagISCSINodeType      isnsTag = 33
	isnsTagISCSIAlias         isnsTag = 34
	isnsTagISCSINodeIndex     isnsTag = 36
	isnsTagPGISCSIName        isnsTag = 48
	isnsTagPGPortalIP         isnsTag = 49
	isnsTagPGPortalPort       isnsTag = 50
	isnsTagPGTag              isnsTag = 51
	isnsTagPGIndex            isnsTag = 52
	isnsTagDDID               isnsTag = 2065
	isnsTagDDMemberISCSIName  isnsTag = 2068
)

var isnsTagNames = map[isnsTag]string{
	isnsTagDelimiter: "Delimiter", isnsTagEntityID: "EntityIdentifier", isnsTagEntityProtocol: "EntityProtocol",
	isnsTagRegistrationPeriod: "RegistrationPeriod", isnsTagEntityIndex: "EntityIndex",
	isnsTagPortalIP: "PortalIPAddress", isnsTagPortalPort: "PortalPort", isnsTagPortalIndex: "PortalIndex",
	isnsTagISCSIName: "iSCSIName", isnsTagISCSINodeType: "iSCSINodeType", isnsTagISCSIAlias: "iSCSIAlias",
	isnsTagISCSINodeIndex: "iSCSINodeIndex", isnsTagPGISCSIName: "PGiSCSIName", isnsTagPGPortalIP: "PGPortalIPAddr",
	isnsTagPGPortalPort: "PGPortalPort", isnsTagPGTag: "PGTag", isnsTagPGIndex: "PGIndex",
	isnsTagDDID: "DD_ID", isnsTagDDMemberISCSIName: "DDMemberiSCSIName",
}

// String returns the RFC 4171 name of t, or its number.
func (t isnsTag) String() string {
	if n, ok := isnsTagNames[t]; ok {
		return n
	}
	return "isnsTag(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// isnsStatus is the status of an iSNSP response (RFC 4171 §6.4.1).
type isnsStatus uint32

// The response statuses.
const (
	isnsSuccess              isnsStatus = 0
	isnsUnknownError         isnsStatus = 1
	isnsMessageFormatError   isnsStatus = 2
	isnsInvalidRegistration  isnsStatus = 3
	isnsInvalidQuery         isnsStatus = 5
	isnsSourceUnknown        isnsStatus = 6
	isnsSourceAbsent         isnsStatus = 7
	isnsSourceUnauthorized   isnsStatus = 8
	isnsNoSuchEntry          isnsStatus = 9
	isnsVersionNotSupported  isnsStatus = 10
	isnsInternalError        isnsStatus = 11
	isnsBusy                 isnsStatus = 12
	isnsOptionNotUnderstood  isnsStatus = 13
	isnsInvalidUpdate        isnsStatus = 14
	isnsMessageNotSupported  isnsStatus = 15
	isnsAttrNotImplemented   isnsStatus = 18
	isnsESINotAvailable      isnsStatus = 21
	isnsInvalidDeregistation isnsStatus = 22
)

var isnsStatusNames = map[isnsStatus]string{
	isnsSuccess: "Successful", isnsUnknownError: "Unknown Error", isnsMessageFormatError: "Message Format Error",
	isnsInvalidRegistration: "Invalid Registration", isnsInvalidQuery: "Invalid Query",
	isnsSourceUnknown: "Source Unknown", isnsSourceAbsent: "Source Absent",
	isnsSourceUnauthorized: "Source Unauthorized", isnsNoSuchEntry: "No Such Entry",
	isnsVersionNotSupported: "Version Not Supported", isnsInternalError: "Internal Error", isnsBusy: "Busy",
	isnsOptionNotUnderstood: "Option Not Understood", isnsInvalidUpdate: "Invalid Update",
	isnsMessageNotSupported: "Message Not Supported", isnsAttrNotImplemented: "Attribute Not Implemented",
	isnsESINotAvailable: "ESI Not Available", isnsInvalidDeregistation: "Invalid Deregistration",
}

// String returns the RFC 4171 name of s.
func (s isnsStatus) String() string {
	if n, ok := isnsStatusNames[s]; ok {
		return n
	}
	return "isnsStatus(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Error makes a failure status an error.
func (s isnsStatus) Error() string { return "iSNS server: " + s.String() }

// isnsEntityProtocolISCSI is the Entity Protocol value for iSCSI.
const isnsEntityProtocolISCSI = 2

// isnsNodeTypeTarget is the iSCSI Node Type bit of a target.
const isnsNodeTypeTarget = 1

// isnsAttr is one TLV attribute; Value excludes nothing (padding
// included as received).
type isnsAttr struct {
	Tag   isnsTag
	Value []byte
}

// appendISNSAttr appends tag, the padded length and value padded with
// zeros to a multiple of 4.
func appendISNSAttr(b []byte, tag isnsTag, value []byte) []byte {
	n := (len(value) + 3) &^ 3
	b = binary.BigEndian.AppendUint32(b, uint32(tag))
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, value...)
	for i := len(value); i < n; i++ {
		b = append(b, 0)
	}
	return b
}

// appendISNSString appends a NUL-terminated string attribute.
func appendISNSString(b []byte, tag isnsTag, s string) []byte {
	v := make([]byte, len(s)+1)
	copy(v, s)
	return appendISNSAttr(b, tag, v)
}

// appendISNSUint32 appends a 4-byte integer attribute.
func appendISNSUint32(b []byte, tag isnsTag, v uint32) []byte {
	return appendISNSAttr(b, tag, binary.BigEndian.AppendUint32(nil, v))
}

// appendISNSIP appends a 16-byte IP address attribute (IPv4 mapped).
func appendISNSIP(b []byte, tag isnsTag, ip netip.Addr) []byte {
	a := ip.As16()
	return appendISNSAttr(b, tag, a[:])
}

// appendISNSNil appends an attribute of length 0 (the Delimiter, or an
// attribute a query asks for).
func appendISNSNil(b []byte, tag isnsTag) []byte { return appendISNSAttr(b, tag, nil) }

// parseISNSAttrs splits a payload into attributes.
func parseISNSAttrs(b []byte) ([]isnsAttr, error) {
	var out []isnsAttr
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("iSNS: %d stray bytes after the last attribute", len(b))
		}
		tag := isnsTag(binary.BigEndian.Uint32(b))
		n := binary.BigEndian.Uint32(b[4:])
		if uint64(n) > uint64(len(b)-8) {
			return nil, fmt.Errorf("iSNS: attribute %v of length %d overruns the message", tag, n)
		}
		out = append(out, isnsAttr{Tag: tag, Value: b[8 : 8+n]})
		b = b[8+n:]
	}
	return out, nil
}

// isnsAttrString decodes a NUL-terminated string value.
func isnsAttrString(v []byte) string {
	if i := slices.Index(v, 0); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

// isnsMessage is one iSNSP message (one or more PDUs).
type isnsMessage struct {
	Function isnsFunction
	Flags    isnsFlags // FIRST/LAST are set per PDU by appendPDUs
	XID      uint16
	Payload  []byte
}

// appendPDUs appends m as iSNSP PDUs, splitting a payload longer than
// isnsMaxPayload.
func (m *isnsMessage) appendPDUs(b []byte) []byte {
	p := m.Payload
	for seq := uint16(0); ; seq++ {
		n := min(len(p), isnsMaxPayload)
		flags := m.Flags &^ (isnsFlagFirstPDU | isnsFlagLastPDU)
		if seq == 0 {
			flags |= isnsFlagFirstPDU
		}
		if n == len(p) {
			flags |= isnsFlagLastPDU
		}
		b = binary.BigEndian.AppendUint16(b, isnsVersion)
		b = binary.BigEndian.AppendUint16(b, uint16(m.Function))
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = binary.BigEndian.AppendUint16(b, uint16(flags))
		b = binary.BigEndian.AppendUint16(b, m.XID)
		b = binary.BigEndian.AppendUint16(b, seq)
		b = append(b, p[:n]...)
		p = p[n:]
		if len(p) == 0 {
			return b
		}
	}
}

// readISNSMessage reads the PDUs of one message and reassembles it. PDUs
// must come in sequence order with the same function and transaction.
func readISNSMessage(r io.Reader) (*isnsMessage, error) {
	var m *isnsMessage
	var hdr [isnsHeaderLen]byte
	for seq := uint16(0); ; seq++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, err
		}
		version := binary.BigEndian.Uint16(hdr[0:])
		fn := isnsFunction(binary.BigEndian.Uint16(hdr[2:]))
		n := int(binary.BigEndian.Uint16(hdr[4:]))
		flags := isnsFlags(binary.BigEndian.Uint16(hdr[6:]))
		xid := binary.BigEndian.Uint16(hdr[8:])
		pseq := binary.BigEndian.Uint16(hdr[10:])
		if version != isnsVersion {
			return nil, fmt.Errorf("iSNS: version %d PDU", version)
		}
		if m == nil {
			m = &isnsMessage{Function: fn, Flags: flags, XID: xid}
		} else if fn != m.Function || xid != m.XID {
			return nil, fmt.Errorf("iSNS: PDU of %v/%d inside message %v/%d", fn, xid, m.Function, m.XID)
		}
		if pseq != seq {
			return nil, fmt.Errorf("iSNS: PDU sequence %d, expected %d", pseq, seq)
		}
		if len(m.Payload)+n > isnsMaxMessage {
			return nil, fmt.Errorf("iSNS: message longer than %d bytes", isnsMaxMessage)
		}
		start := len(m.Payload)
		m.Payload = append(m.Payload, make([]byte, n)...)
		if _, err := io.ReadFull(r, m.Payload[start:]); err != nil {
			return nil, err
		}
		if flags&isnsFlagLastPDU != 0 {
			m.Flags |= flags & isnsFlagLastPDU
			return m, nil
		}
	}
}

// isnsResponseStatus splits a response payload into status and
// attributes.
func isnsResponseStatus(m *isnsMessage) (isnsStatus, []isnsAttr, error) {
	if len(m.Payload) < 4 {
		return 0, nil, fmt.Errorf("iSNS: %v without status", m.Function)
	}
	st := isnsStatus(binary.BigEndian.Uint32(m.Payload))
	attrs, err := parseISNSAttrs(m.Payload[4:])
	if err != nil && st == isnsSuccess {
		return st, nil, err
	}
	return st, attrs, nil
}

// isnsPortal is a registered portal.
type isnsPortal = netip.AddrPort

// isnsRegistration is what one DevAttrReg declares.
type isnsRegistration struct {
	Entity  string
	Source  string // iSCSI name of a node of the entity (or being registered)
	Targets []string
	Portals []isnsPortal
	PGT     uint16
}

// payload encodes the DevAttrReg request (RFC 4171 §5.6.5.1): Source,
// Message Key (Entity Identifier), Delimiter, then the entity, its portals,
// its nodes, and a portal group per node and portal.
func (r *isnsRegistration) payload() []byte {
	var b []byte
	b = appendISNSString(b, isnsTagISCSIName, r.Source)
	b = appendISNSString(b, isnsTagEntityID, r.Entity)
	b = appendISNSNil(b, isnsTagDelimiter)
	b = appendISNSString(b, isnsTagEntityID, r.Entity)
	b = appendISNSUint32(b, isnsTagEntityProtocol, isnsEntityProtocolISCSI)
	for _, p := range r.Portals {
		b = appendISNSIP(b, isnsTagPortalIP, p.Addr())
		b = appendISNSUint32(b, isnsTagPortalPort, uint32(p.Port()))
	}
	for _, t := range r.Targets {
		b = appendISNSString(b, isnsTagISCSIName, t)
		b = appendISNSUint32(b, isnsTagISCSINodeType, isnsNodeTypeTarget)
	}
	for _, t := range r.Targets {
		for _, p := range r.Portals {
			b = appendISNSString(b, isnsTagPGISCSIName, t)
			b = appendISNSIP(b, isnsTagPGPortalIP, p.Addr())
			b = appendISNSUint32(b, isnsTagPGPortalPort, uint32(p.Port()))
			b = appendISNSUint32(b, isnsTagPGTag, uint32(r.PGT))
		}
	}
	return b
}

// isnsDeregPayload encodes the DevDereg of a whole entity (RFC 4171
// §5.6.5.4): Source, Delimiter (no Message Key), Entity Identifier.
func isnsDeregPayload(source, entity string) []byte {
	var b []byte
	b = appendISNSString(b, isnsTagISCSIName, source)
	b = appendISNSNil(b, isnsTagDelimiter)
	b = appendISNSString(b, isnsTagEntityID, entity)
	return b
}

// isnsAccessQueryPayload encodes the DevAttrQry that asks, on behalf of
// target, for the node called initiator (RFC 4171 §5.6.5.2): the server
// only returns it when it shares a discovery domain with target.
func isnsAccessQueryPayload(target, initiator string) []byte {
	var b []byte
	b = appendISNSString(b, isnsTagISCSIName, target)
	b = appendISNSString(b, isnsTagISCSIName, initiator)
	b = appendISNSNil(b, isnsTagDelimiter)
	b = appendISNSNil(b, isnsTagISCSIName)
	b = appendISNSNil(b, isnsTagISCSINodeType)
	return b
}

// ISNSConfig configures an ISNSClient.
type ISNSConfig struct {
	// Server is "host[:port]" (port 3205 when omitted, IPv6 in brackets).
	Server string
	// EntityID names the network entity; empty: "scstd:" + host name.
	EntityID string
	// AccessControl makes Allowed consult the server's discovery domains;
	// without it Allowed always says yes.
	AccessControl bool
	// PortalGroupTag is the TPGT registered for every target and portal
	// (0 means 1, the tag scstd's portals use).
	PortalGroupTag uint16
	// Logger receives registration events; nil: slog.Default().
	Logger *slog.Logger
	// Timeout bounds one exchange with the server; 0 means 5s.
	Timeout time.Duration
	// CacheTTL is how long an Allowed answer is reused; 0 means 10s.
	CacheTTL time.Duration
}

// ISNSClient registers scstd with one iSNS server. Methods are safe for
// concurrent use.
type ISNSClient struct {
	server  string
	entity  string
	access  atomic.Bool
	pgt     uint16
	log     *slog.Logger
	timeout time.Duration
	ttl     time.Duration
	now     func() time.Time
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	xid     atomic.Uint32

	mu         sync.Mutex // serializes registration changes and exchanges
	targets    []string
	portals    []isnsPortal // as configured; unspecified IPs resolved per exchange
	registered []string     // the targets the server holds for the entity
	lastErr    error        // of the last registration or deregistration
	refresh    time.Duration
	closed     bool
	kick       chan struct{}

	cmu   sync.Mutex
	cache map[[2]string]isnsCacheEntry
}

type isnsCacheEntry struct {
	allowed bool
	expires time.Time
}

// ErrISNSClosed is returned by Update after Close.
var ErrISNSClosed = errors.New("iSNS client closed")

// NewISNSClient returns a client for cfg.Server. It does not contact the
// server: Update does.
func NewISNSClient(cfg ISNSConfig) (*ISNSClient, error) {
	addr, err := isnsServerAddr(cfg.Server)
	if err != nil {
		return nil, err
	}
	c := &ISNSClient{
		server:  addr,
		entity:  cfg.EntityID,
		pgt:     cfg.PortalGroupTag,
		log:     cfg.Logger,
		timeout: cfg.Timeout,
		ttl:     cfg.CacheTTL,
		now:     time.Now,
		refresh: 5 * time.Minute,
		kick:    make(chan struct{}, 1),
		cache:   make(map[[2]string]isnsCacheEntry),
	}
	c.access.Store(cfg.AccessControl)
	d := &net.Dialer{}
	c.dial = d.DialContext
	if c.entity == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.entity = "scstd:" + h
	}
	if c.pgt == 0 {
		c.pgt = 1
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.ttl <= 0 {
		c.ttl = 10 * time.Second
	}
	c.log = c.log.With("isns_server", c.server)
	return c, nil
}

// isnsServerAddr normalizes "host[:port]" to "host:port".
func isnsServerAddr(s string) (string, error) {
	if s == "" {
		return "", errors.New("iSNS server address is empty")
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return "", fmt.Errorf("iSNS server %q: bad port %q", s, port)
		}
		return net.JoinHostPort(host, port), nil
	}
	host := s
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return "", fmt.Errorf("iSNS server %q: write an IPv6 address in brackets", s)
	}
	return net.JoinHostPort(host, isnsDefaultPort), nil
}

// ISNSState is what an ISNSClient has achieved, for status displays.
type ISNSState struct {
	// Server is the iSNS server's "host:port".
	Server string `json:"server"`
	// Entity is the entity identifier registered.
	Entity string `json:"entity"`
	// AccessControl says whether Allowed consults the server.
	AccessControl bool `json:"access_control"`
	// Registered are the targets the server holds for the entity.
	Registered []string `json:"registered"`
	// Error is why the last registration failed ("" when it succeeded);
	// Run retries it.
	Error string `json:"error,omitempty"`
}

// State returns the client's registration state.
func (c *ISNSClient) State() ISNSState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ISNSState{Server: c.server, Entity: c.entity, AccessControl: c.access.Load(),
		Registered: slices.Clone(c.registered)}
	if st.Registered == nil {
		st.Registered = []string{}
	}
	if c.lastErr != nil {
		st.Error = c.lastErr.Error()
	}
	return st
}

// Entity returns the entity identifier the client registers.
func (c *ISNSClient) Entity() string { return c.entity }

// Update sets what the client registers: the names of the enabled targets
// and the listening portals as "ip:port" ("[ipv6]:port"). A portal on an
// unspecified address (0.0.0.0, [::]) is registered with the local address
// of the connection to the iSNS server. It registers at once, replacing
// the previous registration, or deregisters the entity when targets is
// empty; on error Run keeps retrying.
func (c *ISNSClient) Update(targets []string, portals []string) error {
	ps := make([]isnsPortal, 0, len(portals))
	for _, p := range portals {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			return fmt.Errorf("iSNS: portal %q: %v", p, err)
		}
		ps = append(ps, netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()))
	}
	ts := slices.Clone(targets)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	slices.SortFunc(ps, func(a, b isnsPortal) int { return a.Compare(b) })
	ps = slices.Compact(ps)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrISNSClosed
	}
	c.targets, c.portals = ts, ps
	c.flushCache()
	err := c.syncLocked(context.Background())
	if err != nil {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// syncLocked brings the server in line with c.targets/c.portals. c.mu is
// held.
func (c *ISNSClient) syncLocked(ctx context.Context) (err error) {
	defer func() { c.lastErr = err }()
	if len(c.targets) == 0 {
		if len(c.registered) == 0 {
			return nil
		}
		if err := c.deregisterLocked(ctx); err != nil {
			return err
		}
		return nil
	}
	return c.registerLocked(ctx)
}

// source picks the Source attribute for a change of registration: a
// target the server already holds and that stays registered, else any one
// the server holds (still valid while the message is processed), else the
// first new one.
func (c *ISNSClient) source() string {
	for _, t := range c.registered {
		if _, found := slices.BinarySearch(c.targets, t); found {
			return t
		}
	}
	if len(c.registered) > 0 {
		return c.registered[0]
	}
	if len(c.targets) > 0 {
		return c.targets[0]
	}
	return ""
}

func (c *ISNSClient) registerLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.dial(ctx, "tcp", c.server)
	if err != nil {
		return fmt.Errorf("iSNS: %w", err)
	}
	defer conn.Close()
	local := netip.MustParseAddr("::")
	if ta, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		local = ta.AddrPort().Addr().Unmap().WithZone("")
	}
	portals := make([]isnsPortal, 0, len(c.portals))
	for _, p := range c.portals {
		if p.Addr().IsUnspecified() {
			p = netip.AddrPortFrom(local, p.Port())
		}
		portals = append(portals, p)
	}
	slices.SortFunc(portals, func(a, b isnsPortal) int { return a.Compare(b) })
	portals = slices.Compact(portals)
	reg := isnsRegistration{Entity: c.entity, Source: c.source(), Targets: c.targets, Portals: portals, PGT: c.pgt}
	req := &isnsMessage{Function: isnsDevAttrReg, Flags: isnsFlagClient | isnsFlagReplace, Payload: reg.payload()}
	st, attrs, err := c.exchange(ctx, conn, req)
	if err != nil {
		return err
	}
	if st != isnsSuccess {
		return fmt.Errorf("iSNS: registering entity %q: %w", c.entity, st)
	}
	c.registered = slices.Clone(c.targets)
	c.refresh = 5 * time.Minute
	for _, a := range attrs {
		if a.Tag == isnsTagRegistrationPeriod && len(a.Value) == 4 {
			if p := time.Duration(binary.BigEndian.Uint32(a.Value)) * time.Second; p > 0 {
				c.refresh = max(p/2, 5*time.Second)
			}
		}
	}
	c.log.Info("registered with iSNS", "entity", c.entity, "targets", len(c.targets), "portals", len(portals))
	return nil
}

func (c *ISNSClient) deregisterLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.dial(ctx, "tcp", c.server)
	if err != nil {
		return fmt.Errorf("iSNS: %w", err)
	}
	defer conn.Close()
	req := &isnsMessage{Function: isnsDevDereg, Flags: isnsFlagClient, Payload: isnsDeregPayload(c.source(), c.entity)}
	st, _, err := c.exchange(ctx, conn, req)
	if err != nil {
		return err
	}
	if st != isnsSuccess && st != isnsNoSuchEntry {
		return fmt.Errorf("iSNS: deregistering entity %q: %w", c.entity, st)
	}
	c.registered = nil
	c.log.Info("deregistered from iSNS", "entity", c.entity)
	return nil
}

// exchange sends req on conn and returns the status and attributes of the
// matching response, skipping any other message the server sends.
func (c *ISNSClient) exchange(ctx context.Context, conn net.Conn, req *isnsMessage) (isnsStatus, []isnsAttr, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req.XID = uint16(c.xid.Add(1))
	if _, err := conn.Write(req.appendPDUs(nil)); err != nil {
		return 0, nil, fmt.Errorf("iSNS: sending %v: %w", req.Function, err)
	}
	for range 8 {
		rsp, err := readISNSMessage(conn)
		if err != nil {
			return 0, nil, fmt.Errorf("iSNS: reading the answer to %v: %w", req.Function, err)
		}
		if rsp.Function != req.Function|isnsResponse || rsp.XID != req.XID {
			continue
		}
		return isnsResponseStatus(rsp)
	}
	return 0, nil, fmt.Errorf("iSNS: no answer to %v", req.Function)
}

// Run keeps the registration alive until ctx is done: it registers again
// every half registration period, and retries a failed registration every
// 10 seconds.
func (c *ISNSClient) Run(ctx context.Context) {
	retry := false
	for {
		c.mu.Lock()
		wait := c.refresh
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		if retry {
			wait = 10 * time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.kick:
			t.Stop()
			// A failed Update: wait a little before retrying.
			retry = true
			continue
		case <-t.C:
		}
		c.mu.Lock()
		var err error
		if !c.closed {
			err = c.syncLocked(ctx)
		}
		c.mu.Unlock()
		retry = err != nil
		if err != nil {
			c.log.Warn("iSNS registration failed; retrying", "err", err)
		}
	}
}

// Close deregisters the entity (if it is registered) and stops Run.
func (c *ISNSClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	select {
	case c.kick <- struct{}{}:
	default:
	}
	if len(c.registered) == 0 {
		return nil
	}
	return c.deregisterLocked(context.Background())
}

// Allowed reports whether initiator may see and log in to target: always
// true without access control (or for a nil client); otherwise true only
// when the iSNS server places both in a common discovery domain. Answers
// are cached for CacheTTL; when the server cannot be asked, the answer is
// no (access control fails closed) and the failure is logged.
func (c *ISNSClient) Allowed(initiator, target string) bool {
	if c == nil || !c.access.Load() {
		return true
	}
	key := [2]string{initiator, target}
	now := c.now()
	c.cmu.Lock()
	if e, ok := c.cache[key]; ok && now.Before(e.expires) {
		c.cmu.Unlock()
		return e.allowed
	}
	c.cmu.Unlock()

	ok, err := c.query(initiator, target)
	if err != nil {
		c.log.Warn("iSNS access query failed; refusing", "initiator", initiator, "target", target, "err", err)
	}
	c.cmu.Lock()
	if len(c.cache) >= 4096 {
		clear(c.cache)
	}
	c.cache[key] = isnsCacheEntry{allowed: ok, expires: now.Add(c.ttl)}
	c.cmu.Unlock()
	return ok
}

// SetAccessControl turns access control on or off (ISNSConfig's
// AccessControl) and forgets the cached answers.
func (c *ISNSClient) SetAccessControl(on bool) {
	c.access.Store(on)
	c.flushCache()
}

func (c *ISNSClient) flushCache() {
	c.cmu.Lock()
	clear(c.cache)
	c.cmu.Unlock()
}

// query asks the server whether target can see initiator.
func (c *ISNSClient) query(initiator, target string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	conn, err := c.dial(ctx, "tcp", c.server)
	if err != nil {
		return false, fmt.Errorf("iSNS: %w", err)
	}
	defer conn.Close()
	req := &isnsMessage{Function: isnsDevAttrQry, Flags: isnsFlagClient, Payload: isnsAccessQueryPayload(target, initiator)}
	st, attrs, err := c.exchange(ctx, conn, req)
	if err != nil {
		return false, err
	}
	switch st {
	case isnsSuccess:
	case isnsNoSuchEntry:
		return false, nil
	default:
		return false, fmt.Errorf("iSNS: query for %q: %w", initiator, st)
	}
	// The answer repeats the key, then a delimiter, then the operating
	// attributes of every matching node: look past the delimiter.
	past := false
	for _, a := range attrs {
		if a.Tag == isnsTagDelimiter {
			past = true
			continue
		}
		if past && a.Tag == isnsTagISCSIName && strings.EqualFold(isnsAttrString(a.Value), initiator) {
			return true, nil
		}
	}
	return false, nil
}
