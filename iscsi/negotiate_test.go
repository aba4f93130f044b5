package iscsi

import (
	"errors"
	"reflect"
	"testing"

	"github.com/scstd/scstd/internal/access"
)

// wireParams are a target's offers as a typical configuration sets them.
var wireParams = Params{
	HeaderDigest:             []access.Digest{access.DigestCRC32C, access.DigestNone},
	DataDigest:               []access.Digest{access.DigestNone},
	ImmediateData:            true,
	InitialR2T:               false,
	MaxRecvDataSegmentLength: 262144,
	MaxXmitDataSegmentLength: 131072,
	MaxBurstLength:           1048576,
	FirstBurstLength:         65536,
	MaxOutstandingR2T:        4,
	DefaultTime2Wait:         2,
	DefaultTime2Retain:       20,
}

func TestNegotiateKeys(t *testing.T) {
	tests := []struct {
		name      string
		params    Params
		discovery bool
		in        Text
		want      Text // the answers
		check     func(Negotiated) bool
	}{
		{"header digest: initiator order, target's list", wireParams, false,
			Text{{"HeaderDigest", "CRC32C,None"}}, Text{{"HeaderDigest", "CRC32C"}},
			func(n Negotiated) bool { return n.HeaderDigest }},
		{"header digest: None first wins", wireParams, false,
			Text{{"HeaderDigest", "None,CRC32C"}}, Text{{"HeaderDigest", "None"}},
			func(n Negotiated) bool { return !n.HeaderDigest }},
		{"data digest: CRC32C not allowed", wireParams, false,
			Text{{"DataDigest", "CRC32C"}}, Text{{"DataDigest", "Reject"}},
			func(n Negotiated) bool { return !n.DataDigest }},
		{"data digest: unknown values skipped", wireParams, false,
			Text{{"DataDigest", "MD5,None"}}, Text{{"DataDigest", "None"}}, nil},
		{"MaxConnections is 1", wireParams, false,
			Text{{"MaxConnections", "8"}}, Text{{"MaxConnections", "1"}},
			func(n Negotiated) bool { return n.MaxConnections == 1 }},
		{"MaxConnections 0 out of range", wireParams, false,
			Text{{"MaxConnections", "0"}}, Text{{"MaxConnections", "Reject"}}, nil},
		{"InitialR2T OR: No with target No", wireParams, false,
			Text{{"InitialR2T", "No"}}, Text{{"InitialR2T", "No"}},
			func(n Negotiated) bool { return !n.InitialR2T }},
		{"InitialR2T OR: Yes wins", wireParams, false,
			Text{{"InitialR2T", "Yes"}}, Text{{"InitialR2T", "Yes"}},
			func(n Negotiated) bool { return n.InitialR2T }},
		{"InitialR2T bad boolean", wireParams, false,
			Text{{"InitialR2T", "maybe"}}, Text{{"InitialR2T", "Reject"}}, nil},
		{"ImmediateData AND: Yes, Yes", wireParams, false,
			Text{{"ImmediateData", "Yes"}}, Text{{"ImmediateData", "Yes"}},
			func(n Negotiated) bool { return n.ImmediateData }},
		{"ImmediateData AND: target No", Params{ImmediateData: false}, false,
			Text{{"ImmediateData", "Yes"}}, Text{{"ImmediateData", "No"}},
			func(n Negotiated) bool { return !n.ImmediateData }},
		{"MaxRecvDataSegmentLength is declarative, capped by max_xmit", wireParams, false,
			Text{{"MaxRecvDataSegmentLength", "262144"}}, nil,
			func(n Negotiated) bool { return n.MaxXmitDSL == 131072 }},
		{"MaxRecvDataSegmentLength below cap", wireParams, false,
			Text{{"MaxRecvDataSegmentLength", "0x2000"}}, nil,
			func(n Negotiated) bool { return n.MaxXmitDSL == 8192 }},
		{"MaxRecvDataSegmentLength too small", wireParams, false,
			Text{{"MaxRecvDataSegmentLength", "511"}}, Text{{"MaxRecvDataSegmentLength", "Reject"}},
			func(n Negotiated) bool { return n.MaxXmitDSL == 8192 }},
		{"MaxRecvDataSegmentLength too large", wireParams, false,
			Text{{"MaxRecvDataSegmentLength", "16777216"}}, Text{{"MaxRecvDataSegmentLength", "Reject"}}, nil},
		{"MaxBurstLength min", wireParams, false,
			Text{{"MaxBurstLength", "16776192"}}, Text{{"MaxBurstLength", "1048576"}},
			func(n Negotiated) bool { return n.MaxBurstLength == 1048576 }},
		{"FirstBurstLength min and not above MaxBurstLength", wireParams, false,
			Text{{"FirstBurstLength", "262144"}, {"MaxBurstLength", "16384"}},
			Text{{"MaxBurstLength", "16384"}, {"FirstBurstLength", "16384"}},
			func(n Negotiated) bool { return n.FirstBurstLength == 16384 && n.MaxBurstLength == 16384 }},
		{"FirstBurstLength bad number", wireParams, false,
			Text{{"FirstBurstLength", "lots"}}, Text{{"FirstBurstLength", "Reject"}}, nil},
		{"DefaultTime2Wait max", wireParams, false,
			Text{{"DefaultTime2Wait", "0"}}, Text{{"DefaultTime2Wait", "2"}},
			func(n Negotiated) bool { return n.DefaultTime2Wait == 2 }},
		{"DefaultTime2Retain min", wireParams, false,
			Text{{"DefaultTime2Retain", "0"}}, Text{{"DefaultTime2Retain", "0"}},
			func(n Negotiated) bool { return n.DefaultTime2Retain == 0 }},
		{"DefaultTime2Wait out of range", wireParams, false,
			Text{{"DefaultTime2Wait", "3601"}}, Text{{"DefaultTime2Wait", "Reject"}}, nil},
		{"MaxOutstandingR2T min", wireParams, false,
			Text{{"MaxOutstandingR2T", "16"}}, Text{{"MaxOutstandingR2T", "4"}},
			func(n Negotiated) bool { return n.MaxOutstandingR2T == 4 }},
		{"DataPDUInOrder OR: always Yes", wireParams, false,
			Text{{"DataPDUInOrder", "No"}}, Text{{"DataPDUInOrder", "Yes"}},
			func(n Negotiated) bool { return n.DataPDUInOrder }},
		{"DataSequenceInOrder OR: always Yes", wireParams, false,
			Text{{"DataSequenceInOrder", "No"}}, Text{{"DataSequenceInOrder", "Yes"}},
			func(n Negotiated) bool { return n.DataSequenceInOrder }},
		{"ErrorRecoveryLevel min with 0", wireParams, false,
			Text{{"ErrorRecoveryLevel", "2"}}, Text{{"ErrorRecoveryLevel", "0"}},
			func(n Negotiated) bool { return n.ErrorRecoveryLevel == 0 }},
		{"ErrorRecoveryLevel out of range", wireParams, false,
			Text{{"ErrorRecoveryLevel", "3"}}, Text{{"ErrorRecoveryLevel", "Reject"}}, nil},
		{"markers off", wireParams, false,
			Text{{"IFMarker", "Yes"}, {"OFMarker", "No"}, {"IFMarkInt", "2048~8192"}, {"OFMarkInt", "1"}},
			Text{{"IFMarker", "No"}, {"OFMarker", "No"}, {"IFMarkInt", "Irrelevant"}, {"OFMarkInt", "Irrelevant"}}, nil},
		{"unknown and vendor keys", wireParams, false,
			Text{{"FooBar", "1"}, {"X-com.example.Thing", "on"}, {"X#example", "1"}},
			Text{{"FooBar", "NotUnderstood"}, {"X-com.example.Thing", "NotUnderstood"}, {"X#example", "NotUnderstood"}}, nil},
		{"target-declared keys from the initiator", wireParams, false,
			Text{{"TargetPortalGroupTag", "1"}}, Text{{"TargetPortalGroupTag", "Reject"}}, nil},
		{"unsolicited NotUnderstood gets no answer", wireParams, false,
			Text{{"X-foo", "NotUnderstood"}}, nil, nil},
		{"discovery: session keys are Irrelevant", DiscoveryParams, true,
			Text{{"InitialR2T", "No"}, {"MaxBurstLength", "1024"}, {"MaxConnections", "1"}, {"HeaderDigest", "None"}},
			Text{{"MaxBurstLength", "Irrelevant"}, {"InitialR2T", "Irrelevant"}, {"MaxConnections", "Irrelevant"},
				{"HeaderDigest", "None"}}, nil},
		{"iSCSIProtocolLevel min with 1", wireParams, false,
			Text{{"iSCSIProtocolLevel", "2"}}, Text{{"iSCSIProtocolLevel", "1"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := NewNegotiator(tc.params, tc.discovery)
			got, err := n.Respond(tc.in)
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("answers %q, want %q", got, tc.want)
			}
			res, _ := n.Result()
			if tc.check != nil && !tc.check(res) {
				t.Fatalf("outcome %+v", res)
			}
		})
	}
}

func TestNegotiateDefaults(t *testing.T) {
	n := NewNegotiator(wireParams, false)
	decl, ready := n.Finish()
	if !ready || !reflect.DeepEqual(decl, Text{{"MaxRecvDataSegmentLength", "262144"}}) {
		t.Fatalf("Finish = %q, %v", decl, ready)
	}
	res, err := n.Result()
	if err != nil {
		t.Fatal(err)
	}
	want := Negotiated{MaxRecvDSL: 262144, MaxXmitDSL: 8192, MaxBurstLength: 262144, FirstBurstLength: 65536,
		InitialR2T: true, ImmediateData: true, MaxOutstandingR2T: 1, DataPDUInOrder: true, DataSequenceInOrder: true,
		DefaultTime2Wait: 2, DefaultTime2Retain: 20, MaxConnections: 1}
	if res != want {
		t.Fatalf("defaults %+v\nwant %+v", res, want)
	}
}

func TestNegotiateTargetProposals(t *testing.T) {
	p := wireParams
	p.HeaderDigest = []access.Digest{access.DigestCRC32C}
	p.ImmediateData = false
	p.MaxBurstLength = 65536
	p.FirstBurstLength = 16384
	n := NewNegotiator(p, false)
	if _, err := n.Respond(Text{{"DataDigest", "None"}}); err != nil {
		t.Fatal(err)
	}
	offers, ready := n.Finish()
	want := Text{{"MaxRecvDataSegmentLength", "262144"}, {"HeaderDigest", "CRC32C"}, {"ImmediateData", "No"},
		{"MaxBurstLength", "65536"}, {"FirstBurstLength", "16384"}}
	if ready || !reflect.DeepEqual(offers, want) {
		t.Fatalf("Finish = %q, %v; want %q, false", offers, ready, want)
	}
	if _, err := n.Result(); err == nil {
		t.Fatal("Result accepted no header digest while CRC32C is required")
	}
	ans, err := n.Respond(Text{{"HeaderDigest", "CRC32C"}, {"ImmediateData", "No"}, {"MaxBurstLength", "32768"},
		{"FirstBurstLength", "Reject"}})
	if err != nil || len(ans) != 0 {
		t.Fatalf("answers to proposals: %q, %v", ans, err)
	}
	if more, ready := n.Finish(); !ready || len(more) != 0 {
		t.Fatalf("second Finish = %q, %v", more, ready)
	}
	res, err := n.Result()
	if err != nil {
		t.Fatal(err)
	}
	if !res.HeaderDigest || res.ImmediateData || res.MaxBurstLength != 32768 || res.FirstBurstLength != 32768 {
		t.Fatalf("outcome %+v", res)
	}
}

func TestNegotiateErrors(t *testing.T) {
	tests := []struct {
		name  string
		steps []Text
	}{
		{"renegotiation in a later request", []Text{{{"MaxBurstLength", "65536"}}, {{"MaxBurstLength", "65536"}}}},
		{"renegotiation in the same request", []Text{{{"ErrorRecoveryLevel", "0"}, {"ErrorRecoveryLevel", "0"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := NewNegotiator(wireParams, false)
			var err error
			for _, s := range tc.steps {
				if _, err = n.Respond(s); err != nil {
					break
				}
			}
			var ne *NegotiationError
			if !errors.As(err, &ne) {
				t.Fatalf("err = %v, want *NegotiationError", err)
			}
		})
	}
	// An answer to a digest proposal outside the offered list fails.
	p := wireParams
	p.DataDigest = []access.Digest{access.DigestCRC32C}
	n := NewNegotiator(p, false)
	n.Finish()
	if _, err := n.Respond(Text{{"DataDigest", "None"}}); err == nil {
		t.Fatal("None accepted as the answer to DataDigest=CRC32C")
	}
}

func FuzzNegotiate(f *testing.F) {
	f.Add([]byte("HeaderDigest=CRC32C,None\x00DataDigest=None\x00MaxRecvDataSegmentLength=262144\x00"+
		"MaxBurstLength=16776192\x00FirstBurstLength=262144\x00ImmediateData=Yes\x00InitialR2T=No\x00"), false)
	f.Add([]byte("MaxBurstLength=0x1000\x00FirstBurstLength=0bAQAA\x00ErrorRecoveryLevel=2\x00"), false)
	f.Add([]byte("HeaderDigest=None\x00X-foo=bar\x00"), true)
	f.Fuzz(func(t *testing.T, in []byte, discovery bool) {
		kv, err := ParseText(in)
		if err != nil {
			return
		}
		n := NewNegotiator(wireParams, discovery)
		if _, err := n.Respond(kv); err != nil {
			return
		}
		n.Finish()
		res, err := n.Result()
		if err != nil {
			return
		}
		switch {
		case res.FirstBurstLength > res.MaxBurstLength:
			t.Fatalf("FirstBurstLength %d > MaxBurstLength %d", res.FirstBurstLength, res.MaxBurstLength)
		case res.MaxXmitDSL > wireParams.MaxXmitDataSegmentLength || res.MaxXmitDSL < minDataSegmentLength:
			t.Fatalf("MaxXmitDSL %d", res.MaxXmitDSL)
		case res.MaxBurstLength > wireParams.MaxBurstLength && res.MaxBurstLength != defaultMaxBurstLength:
			t.Fatalf("MaxBurstLength %d above the target's", res.MaxBurstLength)
		case res.DataDigest:
			t.Fatal("DataDigest agreed although the target allows None only")
		case res.MaxConnections != 1 || res.ErrorRecoveryLevel != 0:
			t.Fatalf("MaxConnections %d, ErrorRecoveryLevel %d", res.MaxConnections, res.ErrorRecoveryLevel)
		}
	})
}
