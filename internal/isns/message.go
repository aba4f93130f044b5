package isns

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// This file is the wire format: the header, function IDs, flags, attribute
// tags and statuses, attributes, the framing of messages into PDUs, and
// the payloads scstd sends.

// protocolVersion is the iSNSP version of RFC 4171.
const protocolVersion = 1

// headerLen is the length of the iSNSP header.
const headerLen = 12

// maxPayload is the largest payload scstd puts in one PDU (a multiple
// of 4 within the 16-bit PDU length).
const maxPayload = 65532

// maxMessage bounds a reassembled response.
const maxMessage = 1 << 20

// function is an iSNSP function ID (RFC 4171 §6.1); responses have
// bit 15 set.
type function uint16

// The iSNSP functions scstd sends or understands.
const (
	devAttrReg function = 0x0001
	devAttrQry function = 0x0002
	devGetNext function = 0x0003
	devDereg   function = 0x0004
	scnReg     function = 0x0005
	scnDereg   function = 0x0006
	scnEvent   function = 0x0007
	scn        function = 0x0008
	ddReg      function = 0x0009
	ddDereg    function = 0x000a
	ddsReg     function = 0x000b
	ddsDereg   function = 0x000c
	esi        function = 0x000d
	heartbeat  function = 0x000e

	responseBit function = 0x8000 // response bit
)

var functionNames = map[function]string{
	devAttrReg: "DevAttrReg", devAttrQry: "DevAttrQry", devGetNext: "DevGetNext",
	devDereg: "DevDereg", scnReg: "SCNReg", scnDereg: "SCNDereg", scnEvent: "SCNEvent",
	scn: "SCN", ddReg: "DDReg", ddDereg: "DDDereg", ddsReg: "DDSReg",
	ddsDereg: "DDSDereg", esi: "ESI", heartbeat: "Heartbeat",
}

// String returns the RFC 4171 name of f ("DevAttrRegRsp" for a response).
func (f function) String() string {
	if n, ok := functionNames[f&^responseBit]; ok {
		if f&responseBit != 0 {
			return n + "Rsp"
		}
		return n
	}
	return "function(0x" + strconv.FormatUint(uint64(f), 16) + ")"
}

// pduFlags are the iSNSP header flags.
type pduFlags uint16

// The header flags.
const (
	flagClient   pduFlags = 0x8000 // sender is an iSNS client
	flagServer   pduFlags = 0x4000 // sender is the iSNS server
	flagAuth     pduFlags = 0x2000 // authentication block present
	flagReplace  pduFlags = 0x1000 // DevAttrReg replaces the entity
	flagLastPDU  pduFlags = 0x0800
	flagFirstPDU pduFlags = 0x0400
)

// String lists the flags set in f, e.g. "client|last|first".
func (f pduFlags) String() string {
	names := []struct {
		bit  pduFlags
		name string
	}{
		{flagClient, "client"}, {flagServer, "server"}, {flagAuth, "auth"},
		{flagReplace, "replace"}, {flagLastPDU, "last"}, {flagFirstPDU, "first"},
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

// attrTag is an iSNS attribute tag (RFC 4171 §6.1).
type attrTag uint32

// The attribute tags scstd uses.
const (
	tagDelimiter          attrTag = 0
	tagEntityID           attrTag = 1
	tagEntityProtocol     attrTag = 2
	tagRegistrationPeriod attrTag = 6
	tagEntityIndex        attrTag = 7
	tagPortalIP           attrTag = 16
	tagPortalPort         attrTag = 17
	tagPortalIndex        attrTag = 22
	tagISCSIName          attrTag = 32
	tagISCSINodeType      attrTag = 33
	tagISCSIAlias         attrTag = 34
	tagISCSINodeIndex     attrTag = 36
	tagPGISCSIName        attrTag = 48
	tagPGPortalIP         attrTag = 49
	tagPGPortalPort       attrTag = 50
	tagPGTag              attrTag = 51
	tagPGIndex            attrTag = 52
	tagDDID               attrTag = 2065
	tagDDMemberISCSIName  attrTag = 2068
)

var tagNames = map[attrTag]string{
	tagDelimiter: "Delimiter", tagEntityID: "EntityIdentifier", tagEntityProtocol: "EntityProtocol",
	tagRegistrationPeriod: "RegistrationPeriod", tagEntityIndex: "EntityIndex",
	tagPortalIP: "PortalIPAddress", tagPortalPort: "PortalPort", tagPortalIndex: "PortalIndex",
	tagISCSIName: "iSCSIName", tagISCSINodeType: "iSCSINodeType", tagISCSIAlias: "iSCSIAlias",
	tagISCSINodeIndex: "iSCSINodeIndex", tagPGISCSIName: "PGiSCSIName", tagPGPortalIP: "PGPortalIPAddr",
	tagPGPortalPort: "PGPortalPort", tagPGTag: "PGTag", tagPGIndex: "PGIndex",
	tagDDID: "DD_ID", tagDDMemberISCSIName: "DDMemberiSCSIName",
}

// String returns the RFC 4171 name of t, or its number.
func (t attrTag) String() string {
	if n, ok := tagNames[t]; ok {
		return n
	}
	return "attrTag(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// status is the status of an iSNSP response (RFC 4171 §6.4.1).
type status uint32

// The response statuses.
const (
	statusSuccess               status = 0
	statusUnknownError          status = 1
	statusMessageFormatError    status = 2
	statusInvalidRegistration   status = 3
	statusInvalidQuery          status = 5
	statusSourceUnknown         status = 6
	statusSourceAbsent          status = 7
	statusSourceUnauthorized    status = 8
	statusNoSuchEntry           status = 9
	statusVersionNotSupported   status = 10
	statusInternalError         status = 11
	statusBusy                  status = 12
	statusOptionNotUnderstood   status = 13
	statusInvalidUpdate         status = 14
	statusMessageNotSupported   status = 15
	statusAttrNotImplemented    status = 18
	statusESINotAvailable       status = 21
	statusInvalidDeregistration status = 22
)

var statusNames = map[status]string{
	statusSuccess: "Successful", statusUnknownError: "Unknown Error", statusMessageFormatError: "Message Format Error",
	statusInvalidRegistration: "Invalid Registration", statusInvalidQuery: "Invalid Query",
	statusSourceUnknown: "Source Unknown", statusSourceAbsent: "Source Absent",
	statusSourceUnauthorized: "Source Unauthorized", statusNoSuchEntry: "No Such Entry",
	statusVersionNotSupported: "Version Not Supported", statusInternalError: "Internal Error", statusBusy: "Busy",
	statusOptionNotUnderstood: "Option Not Understood", statusInvalidUpdate: "Invalid Update",
	statusMessageNotSupported: "Message Not Supported", statusAttrNotImplemented: "Attribute Not Implemented",
	statusESINotAvailable: "ESI Not Available", statusInvalidDeregistration: "Invalid Deregistration",
}

// String returns the RFC 4171 name of s.
func (s status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "status(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Error makes a failure status an error.
func (s status) Error() string { return "iSNS server: " + s.String() }

// entityProtocolISCSI is the Entity Protocol value for iSCSI.
const entityProtocolISCSI = 2

// nodeTypeTarget is the iSCSI Node Type bit of a target.
const nodeTypeTarget = 1

// attr is one TLV attribute; Value excludes nothing (padding
// included as received).
type attr struct {
	Tag   attrTag
	Value []byte
}

// appendAttr appends tag, the padded length and value padded with
// zeros to a multiple of 4.
func appendAttr(b []byte, tag attrTag, value []byte) []byte {
	n := (len(value) + 3) &^ 3
	b = binary.BigEndian.AppendUint32(b, uint32(tag))
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, value...)
	for i := len(value); i < n; i++ {
		b = append(b, 0)
	}
	return b
}

// appendString appends a NUL-terminated string attribute.
func appendString(b []byte, tag attrTag, s string) []byte {
	v := make([]byte, len(s)+1)
	copy(v, s)
	return appendAttr(b, tag, v)
}

// appendUint32 appends a 4-byte integer attribute.
func appendUint32(b []byte, tag attrTag, v uint32) []byte {
	return appendAttr(b, tag, binary.BigEndian.AppendUint32(nil, v))
}

// appendIP appends a 16-byte IP address attribute (IPv4 mapped).
func appendIP(b []byte, tag attrTag, ip netip.Addr) []byte {
	a := ip.As16()
	return appendAttr(b, tag, a[:])
}

// appendNil appends an attribute of length 0 (the Delimiter, or an
// attribute a query asks for).
func appendNil(b []byte, tag attrTag) []byte { return appendAttr(b, tag, nil) }

// parseAttrs splits a payload into attributes.
func parseAttrs(b []byte) ([]attr, error) {
	var out []attr
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("iSNS: %d stray bytes after the last attribute", len(b))
		}
		tag := attrTag(binary.BigEndian.Uint32(b))
		n := binary.BigEndian.Uint32(b[4:])
		if uint64(n) > uint64(len(b)-8) {
			return nil, fmt.Errorf("iSNS: attribute %v of length %d overruns the message", tag, n)
		}
		out = append(out, attr{Tag: tag, Value: b[8 : 8+n]})
		b = b[8+n:]
	}
	return out, nil
}

// attrString decodes a NUL-terminated string value.
func attrString(v []byte) string {
	if i := slices.Index(v, 0); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

// message is one iSNSP message (one or more PDUs).
type message struct {
	Function function
	Flags    pduFlags // FIRST/LAST are set per PDU by appendPDUs
	XID      uint16
	Payload  []byte
}

// appendPDUs appends m as iSNSP PDUs, splitting a payload longer than
// maxPayload.
func (m *message) appendPDUs(b []byte) []byte {
	p := m.Payload
	for seq := uint16(0); ; seq++ {
		n := min(len(p), maxPayload)
		flags := m.Flags &^ (flagFirstPDU | flagLastPDU)
		if seq == 0 {
			flags |= flagFirstPDU
		}
		if n == len(p) {
			flags |= flagLastPDU
		}
		b = binary.BigEndian.AppendUint16(b, protocolVersion)
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

// readMessage reads the PDUs of one message and reassembles it. PDUs
// must come in sequence order with the same function and transaction.
func readMessage(r io.Reader) (*message, error) {
	var m *message
	var hdr [headerLen]byte
	for seq := uint16(0); ; seq++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, err
		}
		version := binary.BigEndian.Uint16(hdr[0:])
		fn := function(binary.BigEndian.Uint16(hdr[2:]))
		n := int(binary.BigEndian.Uint16(hdr[4:]))
		flags := pduFlags(binary.BigEndian.Uint16(hdr[6:]))
		xid := binary.BigEndian.Uint16(hdr[8:])
		pseq := binary.BigEndian.Uint16(hdr[10:])
		if version != protocolVersion {
			return nil, fmt.Errorf("iSNS: version %d PDU", version)
		}
		if m == nil {
			m = &message{Function: fn, Flags: flags, XID: xid}
		} else if fn != m.Function || xid != m.XID {
			return nil, fmt.Errorf("iSNS: PDU of %v/%d inside message %v/%d", fn, xid, m.Function, m.XID)
		}
		if pseq != seq {
			return nil, fmt.Errorf("iSNS: PDU sequence %d, expected %d", pseq, seq)
		}
		if len(m.Payload)+n > maxMessage {
			return nil, fmt.Errorf("iSNS: message longer than %d bytes", maxMessage)
		}
		start := len(m.Payload)
		m.Payload = append(m.Payload, make([]byte, n)...)
		if _, err := io.ReadFull(r, m.Payload[start:]); err != nil {
			return nil, err
		}
		if flags&flagLastPDU != 0 {
			m.Flags |= flags & flagLastPDU
			return m, nil
		}
	}
}

// responseStatus splits a response payload into status and
// attributes.
func responseStatus(m *message) (status, []attr, error) {
	if len(m.Payload) < 4 {
		return 0, nil, fmt.Errorf("iSNS: %v without status", m.Function)
	}
	st := status(binary.BigEndian.Uint32(m.Payload))
	attrs, err := parseAttrs(m.Payload[4:])
	if err != nil && st == statusSuccess {
		return st, nil, err
	}
	return st, attrs, nil
}

// registration is what one DevAttrReg declares.
type registration struct {
	Entity  string
	Source  string // iSCSI name of a node of the entity (or being registered)
	Targets []string
	Portals []netip.AddrPort
	PGT     uint16
}

// payload encodes the DevAttrReg request (RFC 4171 §5.6.5.1): Source,
// Message Key (Entity Identifier), Delimiter, then the entity, its portals,
// its nodes, and a portal group per node and portal.
func (r *registration) payload() []byte {
	var b []byte
	b = appendString(b, tagISCSIName, r.Source)
	b = appendString(b, tagEntityID, r.Entity)
	b = appendNil(b, tagDelimiter)
	b = appendString(b, tagEntityID, r.Entity)
	b = appendUint32(b, tagEntityProtocol, entityProtocolISCSI)
	for _, p := range r.Portals {
		b = appendIP(b, tagPortalIP, p.Addr())
		b = appendUint32(b, tagPortalPort, uint32(p.Port()))
	}
	for _, t := range r.Targets {
		b = appendString(b, tagISCSIName, t)
		b = appendUint32(b, tagISCSINodeType, nodeTypeTarget)
	}
	for _, t := range r.Targets {
		for _, p := range r.Portals {
			b = appendString(b, tagPGISCSIName, t)
			b = appendIP(b, tagPGPortalIP, p.Addr())
			b = appendUint32(b, tagPGPortalPort, uint32(p.Port()))
			b = appendUint32(b, tagPGTag, uint32(r.PGT))
		}
	}
	return b
}

// deregPayload encodes the DevDereg of a whole entity (RFC 4171
// §5.6.5.4): Source, Delimiter (no Message Key), Entity Identifier.
func deregPayload(source, entity string) []byte {
	var b []byte
	b = appendString(b, tagISCSIName, source)
	b = appendNil(b, tagDelimiter)
	b = appendString(b, tagEntityID, entity)
	return b
}

// accessQueryPayload encodes the DevAttrQry that asks, on behalf of
// target, for the node called initiator (RFC 4171 §5.6.5.2): the server
// only returns it when it shares a discovery domain with target.
func accessQueryPayload(target, initiator string) []byte {
	var b []byte
	b = appendString(b, tagISCSIName, target)
	b = appendString(b, tagISCSIName, initiator)
	b = appendNil(b, tagDelimiter)
	b = appendNil(b, tagISCSIName)
	b = appendNil(b, tagISCSINodeType)
	return b
}
