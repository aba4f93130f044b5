package iscsi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/scstd/scstd/internal/access"
)

// RFC 7143 defaults of the operational keys (§13).
const (
	defaultMaxBurstLength     = 262144
	defaultFirstBurstLength   = 65536
	defaultDefaultTime2Wait   = 2
	defaultDefaultTime2Retain = 20
	minDataSegmentLength      = 512
)

// DiscoveryParams are the offers of discovery sessions: both digests
// allowed, the RFC default segment length.
var DiscoveryParams = Params{
	HeaderDigest:             []access.Digest{access.DigestCRC32C, access.DigestNone},
	DataDigest:               []access.Digest{access.DigestCRC32C, access.DigestNone},
	MaxRecvDataSegmentLength: DefaultMaxRecvDSL,
	MaxXmitDataSegmentLength: 65536,
	MaxBurstLength:           defaultMaxBurstLength,
	FirstBurstLength:         defaultFirstBurstLength,
	MaxOutstandingR2T:        1,
	DefaultTime2Wait:         defaultDefaultTime2Wait,
	DefaultTime2Retain:       defaultDefaultTime2Retain,
}

// keyKind is how a key's outcome is computed (RFC 7143 §6.2).
type keyKind uint8

const (
	kindList        keyKind = iota + 1 // first of the initiator's values the target allows
	kindAnd                            // boolean AND
	kindOr                             // boolean OR
	kindMin                            // numerical minimum
	kindMax                            // numerical maximum
	kindDeclarative                    // the initiator's own value, no answer
	kindFixed                          // answered with a fixed value
	kindTargetOnly                     // declared by targets only: an initiator sending it is answered Reject
)

// keyDef describes one operational key.
type keyDef struct {
	kind     keyKind
	lo, hi   uint64 // range of numerical values
	fixed    string // answer of kindFixed keys
	normOnly bool   // Irrelevant in discovery sessions
}

var operationalKeys = map[string]keyDef{
	"HeaderDigest":             {kind: kindList},
	"DataDigest":               {kind: kindList},
	"MaxConnections":           {kind: kindMin, lo: 1, hi: 65535, normOnly: true},
	"InitialR2T":               {kind: kindOr, normOnly: true},
	"ImmediateData":            {kind: kindAnd, normOnly: true},
	"MaxRecvDataSegmentLength": {kind: kindDeclarative, lo: minDataSegmentLength, hi: MaxDataSegmentLength},
	"MaxBurstLength":           {kind: kindMin, lo: minDataSegmentLength, hi: MaxDataSegmentLength, normOnly: true},
	"FirstBurstLength":         {kind: kindMin, lo: minDataSegmentLength, hi: MaxDataSegmentLength, normOnly: true},
	"DefaultTime2Wait":         {kind: kindMax, lo: 0, hi: 3600},
	"DefaultTime2Retain":       {kind: kindMin, lo: 0, hi: 3600},
	"MaxOutstandingR2T":        {kind: kindMin, lo: 1, hi: 65535, normOnly: true},
	"DataPDUInOrder":           {kind: kindOr, normOnly: true},
	"DataSequenceInOrder":      {kind: kindOr, normOnly: true},
	"ErrorRecoveryLevel":       {kind: kindMin, lo: 0, hi: 2},
	"iSCSIProtocolLevel":       {kind: kindMin, lo: 0, hi: 31},
	"TaskReporting":            {kind: kindFixed, fixed: "RFC3720"},
	"IFMarker":                 {kind: kindFixed, fixed: ValueNo},
	"OFMarker":                 {kind: kindFixed, fixed: ValueNo},
	"IFMarkInt":                {kind: kindFixed, fixed: ValueIrrelevant},
	"OFMarkInt":                {kind: kindFixed, fixed: ValueIrrelevant},
	"RDMAExtensions":           {kind: kindFixed, fixed: ValueNo},
	"TargetAlias":              {kind: kindTargetOnly},
	"TargetAddress":            {kind: kindTargetOnly},
	"TargetPortalGroupTag":     {kind: kindTargetOnly},
}

// loginKeys are handled by the login itself, not by the Negotiator.
var loginKeys = map[string]bool{
	"InitiatorName": true, "InitiatorAlias": true, "TargetName": true, "SessionType": true, "AuthMethod": true,
}

// isSecurityKey reports whether key belongs to an authentication method
// (RFC 7143 §12): valid in the security stage only.
func isSecurityKey(key string) bool {
	for _, p := range []string{"CHAP_", "SRP_", "KRB_", "SPKM_"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// NegotiationError is an operational negotiation that cannot succeed: a
// key negotiated twice, or no value acceptable to both sides. The login
// fails with 0200h (initiator error).
type NegotiationError struct {
	Key string
	Msg string
}

// Error implements error.
func (e *NegotiationError) Error() string {
	return fmt.Sprintf("iscsi: negotiation of %.64s: %s", e.Key, e.Msg)
}

// Negotiator runs the operational negotiation of one login with the
// target's Params as its offers (RFC 7143 §6.2, §13). It is not safe for
// concurrent use.
type Negotiator struct {
	p         Params
	discovery bool
	res       Negotiated
	seen      map[string]bool   // keys the initiator negotiated or declared
	offered   map[string]string // keys the target proposed, answer pending
	declared  bool              // the target declared MaxRecvDataSegmentLength
}

// NewNegotiator starts a negotiation with p as the target's offers and
// the RFC defaults as the outcome of every key not negotiated.
func NewNegotiator(p Params, discovery bool) *Negotiator {
	if len(p.HeaderDigest) == 0 {
		p.HeaderDigest = []access.Digest{access.DigestNone}
	}
	if len(p.DataDigest) == 0 {
		p.DataDigest = []access.Digest{access.DigestNone}
	}
	if p.MaxRecvDataSegmentLength == 0 {
		p.MaxRecvDataSegmentLength = DefaultMaxRecvDSL
	}
	p.MaxRecvDataSegmentLength = min(max(p.MaxRecvDataSegmentLength, minDataSegmentLength), MaxDataSegmentLength)
	if p.MaxXmitDataSegmentLength == 0 {
		p.MaxXmitDataSegmentLength = MaxDataSegmentLength
	}
	p.MaxXmitDataSegmentLength = min(max(p.MaxXmitDataSegmentLength, minDataSegmentLength), MaxDataSegmentLength)
	if p.MaxBurstLength == 0 {
		p.MaxBurstLength = defaultMaxBurstLength
	}
	if p.FirstBurstLength == 0 {
		p.FirstBurstLength = defaultFirstBurstLength
	}
	p.FirstBurstLength = min(p.FirstBurstLength, p.MaxBurstLength)
	p.MaxOutstandingR2T = max(p.MaxOutstandingR2T, 1)
	return &Negotiator{
		p:         p,
		discovery: discovery,
		seen:      make(map[string]bool),
		offered:   make(map[string]string),
		res: Negotiated{
			MaxRecvDSL:          DefaultMaxRecvDSL,
			MaxXmitDSL:          min(DefaultMaxRecvDSL, p.MaxXmitDataSegmentLength),
			MaxBurstLength:      defaultMaxBurstLength,
			FirstBurstLength:    defaultFirstBurstLength,
			InitialR2T:          true,
			ImmediateData:       true,
			MaxOutstandingR2T:   1,
			DataPDUInOrder:      true,
			DataSequenceInOrder: true,
			DefaultTime2Wait:    defaultDefaultTime2Wait,
			DefaultTime2Retain:  defaultDefaultTime2Retain,
			MaxConnections:      1,
		},
	}
}

// Respond processes the initiator's operational keys of one request (in
// order; MaxBurstLength before FirstBurstLength) and returns the answers.
// Login and security keys must have been taken out by the caller.
func (n *Negotiator) Respond(in Text) (Text, error) {
	var out Text
	ordered := make(Text, 0, len(in))
	for _, kv := range in {
		if kv.Key == "MaxBurstLength" {
			ordered = append(ordered, kv)
		}
	}
	for _, kv := range in {
		if kv.Key != "MaxBurstLength" {
			ordered = append(ordered, kv)
		}
	}
	for _, kv := range ordered {
		if offer, ok := n.offered[kv.Key]; ok {
			delete(n.offered, kv.Key)
			if err := n.answer(kv.Key, offer, kv.Value); err != nil {
				return nil, err
			}
			continue
		}
		if n.seen[kv.Key] {
			return nil, &NegotiationError{Key: kv.Key, Msg: "negotiated more than once"}
		}
		n.seen[kv.Key] = true
		switch kv.Value {
		case ValueNotUnderstood, ValueIrrelevant, ValueReject:
			// Answers to nothing the target asked: nothing to say.
			continue
		}
		if v, ok := n.respondKey(kv.Key, kv.Value); ok {
			out.Add(kv.Key, v)
		}
	}
	return out, nil
}

// respondKey negotiates one key the initiator proposed. ok is false for
// declarations, which need no answer.
func (n *Negotiator) respondKey(key, value string) (string, bool) {
	def, known := operationalKeys[key]
	if !known {
		return ValueNotUnderstood, true
	}
	if def.normOnly && n.discovery {
		return ValueIrrelevant, true
	}
	switch def.kind {
	case kindFixed:
		return def.fixed, true
	case kindTargetOnly:
		return ValueReject, true
	case kindList:
		allowed := n.p.HeaderDigest
		if key == "DataDigest" {
			allowed = n.p.DataDigest
		}
		for _, v := range strings.Split(value, ",") {
			if d, err := access.ParseDigest(v); err == nil && slices.Contains(allowed, d) {
				n.setDigest(key, d == access.DigestCRC32C)
				return v, true
			}
		}
		return ValueReject, true
	case kindAnd, kindOr:
		var b bool
		switch value {
		case ValueYes:
			b = true
		case ValueNo:
		default:
			return ValueReject, true
		}
		r := n.setBool(key, b, def.kind)
		return yesNo(r), true
	}
	v, err := ParseNumber(value)
	if err != nil || v < def.lo || v > def.hi {
		return ValueReject, true
	}
	if def.kind == kindDeclarative {
		n.res.MaxXmitDSL = uint32(min(v, uint64(n.p.MaxXmitDataSegmentLength)))
		return "", false
	}
	r := n.setNumber(key, v, def.kind)
	return strconv.FormatUint(r, 10), true
}

// setDigest records a digest outcome.
func (n *Negotiator) setDigest(key string, crc bool) {
	if key == "HeaderDigest" {
		n.res.HeaderDigest = crc
	} else {
		n.res.DataDigest = crc
	}
}

// setBool combines the initiator's b with the target's value of key.
func (n *Negotiator) setBool(key string, b bool, kind keyKind) bool {
	var ours bool
	var dst *bool
	switch key {
	case "InitialR2T":
		ours, dst = n.p.InitialR2T, &n.res.InitialR2T
	case "ImmediateData":
		ours, dst = n.p.ImmediateData, &n.res.ImmediateData
	case "DataPDUInOrder":
		ours, dst = true, &n.res.DataPDUInOrder
	case "DataSequenceInOrder":
		ours, dst = true, &n.res.DataSequenceInOrder
	}
	if kind == kindAnd {
		*dst = b && ours
	} else {
		*dst = b || ours
	}
	return *dst
}

// setNumber combines the initiator's v with the target's value of key.
func (n *Negotiator) setNumber(key string, v uint64, kind keyKind) uint64 {
	var ours uint64
	var dst *uint32
	var proto uint32
	switch key {
	case "MaxConnections":
		ours, dst = 1, &n.res.MaxConnections
	case "MaxBurstLength":
		ours, dst = uint64(n.p.MaxBurstLength), &n.res.MaxBurstLength
	case "FirstBurstLength":
		ours, dst = uint64(min(n.p.FirstBurstLength, n.res.MaxBurstLength)), &n.res.FirstBurstLength
	case "DefaultTime2Wait":
		ours, dst = uint64(n.p.DefaultTime2Wait), &n.res.DefaultTime2Wait
	case "DefaultTime2Retain":
		ours, dst = uint64(n.p.DefaultTime2Retain), &n.res.DefaultTime2Retain
	case "MaxOutstandingR2T":
		ours, dst = uint64(n.p.MaxOutstandingR2T), &n.res.MaxOutstandingR2T
	case "ErrorRecoveryLevel":
		ours, dst = 0, &n.res.ErrorRecoveryLevel
	case "iSCSIProtocolLevel":
		ours, dst = 1, &proto
	}
	r := min(v, ours)
	if kind == kindMax {
		r = max(v, ours)
	}
	*dst = uint32(r)
	return r
}

// Finish is called when the initiator asks to leave the negotiation
// stages. It returns the target's declarations and its own proposals for
// keys the initiator left at defaults the target cannot accept; ready is
// false while proposals await the initiator's answer, so the response must
// not transit yet.
func (n *Negotiator) Finish() (out Text, ready bool) {
	if !n.declared {
		n.declared = true
		n.res.MaxRecvDSL = n.p.MaxRecvDataSegmentLength
		out.Add("MaxRecvDataSegmentLength", strconv.FormatUint(uint64(n.p.MaxRecvDataSegmentLength), 10))
	}
	propose := func(key, value string) {
		if n.seen[key] || n.offered[key] != "" {
			return
		}
		n.seen[key] = true
		n.offered[key] = value
		out.Add(key, value)
	}
	if !slices.Contains(n.p.HeaderDigest, access.DigestNone) {
		propose("HeaderDigest", digestList(n.p.HeaderDigest))
	}
	if !slices.Contains(n.p.DataDigest, access.DigestNone) {
		propose("DataDigest", digestList(n.p.DataDigest))
	}
	if !n.discovery {
		if !n.p.ImmediateData && n.res.ImmediateData {
			propose("ImmediateData", ValueNo)
		}
		if n.p.MaxBurstLength < n.res.MaxBurstLength {
			propose("MaxBurstLength", strconv.FormatUint(uint64(n.p.MaxBurstLength), 10))
		}
		if fb := min(n.p.FirstBurstLength, n.p.MaxBurstLength); fb < n.res.FirstBurstLength {
			propose("FirstBurstLength", strconv.FormatUint(uint64(fb), 10))
		}
	}
	return out, len(n.offered) == 0
}

// answer takes the initiator's answer to a target proposal.
func (n *Negotiator) answer(key, offer, value string) error {
	switch key {
	case "HeaderDigest", "DataDigest":
		d, err := access.ParseDigest(value)
		if err != nil || !slices.Contains(strings.Split(offer, ","), value) {
			return &NegotiationError{Key: key, Msg: fmt.Sprintf("answer %.64q is not one of %q", value, offer)}
		}
		n.setDigest(key, d == access.DigestCRC32C)
	case "ImmediateData":
		n.res.ImmediateData = false // AND with our No, whatever the answer
	case "MaxBurstLength", "FirstBurstLength":
		ours, _ := strconv.ParseUint(offer, 10, 32)
		v, err := ParseNumber(value)
		if err != nil {
			// Reject, NotUnderstood or garbage: the default stays.
			return nil
		}
		if v < minDataSegmentLength || v > ours {
			return &NegotiationError{Key: key, Msg: fmt.Sprintf("answer %d outside %d..%d", v, minDataSegmentLength, ours)}
		}
		if key == "MaxBurstLength" {
			n.res.MaxBurstLength = uint32(v)
		} else {
			n.res.FirstBurstLength = uint32(v)
		}
	}
	return nil
}

// Result returns the negotiated parameters. It fails when the outcome
// breaks the target's policy (a digest it requires was not agreed).
func (n *Negotiator) Result() (Negotiated, error) {
	r := n.res
	if !r.HeaderDigest && !slices.Contains(n.p.HeaderDigest, access.DigestNone) {
		return r, &NegotiationError{Key: "HeaderDigest", Msg: "the target requires CRC32C"}
	}
	if !r.DataDigest && !slices.Contains(n.p.DataDigest, access.DigestNone) {
		return r, &NegotiationError{Key: "DataDigest", Msg: "the target requires CRC32C"}
	}
	r.FirstBurstLength = min(r.FirstBurstLength, r.MaxBurstLength)
	return r, nil
}

// digestList returns ds as a HeaderDigest or DataDigest value,
// "CRC32C,None".
func digestList(ds []access.Digest) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.String()
	}
	return strings.Join(names, ",")
}

func yesNo(b bool) string {
	if b {
		return ValueYes
	}
	return ValueNo
}
