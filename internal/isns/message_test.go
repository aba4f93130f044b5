package isns

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// unhex decodes hex words written with spaces and line breaks; on each
// line, the first word that is not hex starts a comment.
func unhex(t testing.TB, s string) []byte {
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

func TestPayloads(t *testing.T) {
	portal := netip.MustParseAddrPort("192.0.2.1:3260")
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{
			name: "DevDereg of an entity",
			got:  deregPayload("iqn.a:t", "e1"),
			want: `
				00000020 00000008 69716e2e613a7400  source: iSCSI Name "iqn.a:t\0"
				00000000 00000000                   delimiter (no message key)
				00000001 00000004 65310000          Entity Identifier "e1\0" + 1 pad`,
		},
		{
			name: "DevAttrQry for access control",
			got:  accessQueryPayload("iqn.a:t", "iqn.b:i"),
			want: `
				00000020 00000008 69716e2e613a7400  source: the target
				00000020 00000008 69716e2e623a6900  key: iSCSI Name of the initiator
				00000000 00000000                   delimiter
				00000020 00000000                   return iSCSI Name
				00000021 00000000                   return iSCSI Node Type`,
		},
		{
			name: "DevAttrReg of one target on one portal",
			got: (&registration{Entity: "e1", Source: "iqn.a:t", Targets: []string{"iqn.a:t"},
				Portals: []netip.AddrPort{portal}, PGT: 1}).payload(),
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
			got:  appendString(nil, tagEntityID, "abcd"),
			want: `00000001 00000008 61626364 00000000`,
		},
		{
			name: "IPv6 address",
			got:  appendIP(nil, tagPortalIP, netip.MustParseAddr("2001:db8::1")),
			want: `00000010 00000010 20010db8000000000000000000000001`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			if !bytes.Equal(tt.got, want) {
				t.Fatalf("got\n%x\nwant\n%x", tt.got, want)
			}
		})
	}
}

func TestPDUFraming(t *testing.T) {
	m := &message{Function: devDereg, Flags: flagClient, XID: 1, Payload: deregPayload("iqn.a:t", "e1")}
	got := m.appendPDUs(nil)
	want := unhex(t, `
		0001 0004 0024 8c00 0001 0000   version 1, DevDereg, 36 bytes, client|last|first, xid 1, seq 0`)
	want = append(want, m.Payload...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
	back, err := readMessage(bytes.NewReader(got))
	if err != nil || back.Function != m.Function || back.XID != 1 || !bytes.Equal(back.Payload, m.Payload) {
		t.Fatalf("read back %+v, %v", back, err)
	}

	// A payload longer than one PDU is split and reassembled.
	big := &message{Function: devAttrReg | responseBit, Flags: flagServer, XID: 7,
		Payload: bytes.Repeat([]byte{1, 2, 3, 4}, maxPayload/4+10)}
	wire := big.appendPDUs(nil)
	if len(wire) != len(big.Payload)+2*headerLen {
		t.Fatalf("%d bytes on the wire for two PDUs", len(wire))
	}
	first := binary.BigEndian.Uint16(wire[6:])
	second := binary.BigEndian.Uint16(wire[headerLen+maxPayload+6:])
	if pduFlags(first)&(flagFirstPDU|flagLastPDU) != flagFirstPDU ||
		pduFlags(second)&(flagFirstPDU|flagLastPDU) != flagLastPDU {
		t.Fatalf("flags %04x %04x", first, second)
	}
	back, err = readMessage(bytes.NewReader(wire))
	if err != nil || !bytes.Equal(back.Payload, big.Payload) {
		t.Fatalf("reassembly: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
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
			if m, err := readMessage(bytes.NewReader(unhex(t, tt.wire))); err == nil {
				t.Fatalf("accepted: %+v", m)
			}
		})
	}
}

func TestParseAttrs(t *testing.T) {
	attrs, err := parseAttrs(unhex(t, "00000020 00000008 69716e2e613a7400 00000000 00000000 00000006 00000004 00000258"))
	if err != nil || len(attrs) != 3 {
		t.Fatalf("%v %v", attrs, err)
	}
	if attrString(attrs[0].Value) != "iqn.a:t" || attrs[1].Tag != tagDelimiter ||
		attrs[2].Tag != tagRegistrationPeriod || binary.BigEndian.Uint32(attrs[2].Value) != 600 {
		t.Fatalf("decoded %+v", attrs)
	}
	for _, bad := range []string{"00000020", "00000020 00000010 00000000", "00000020 ffffffff"} {
		if _, err := parseAttrs(unhex(t, bad)); err == nil {
			t.Errorf("parseAttrs(%s) accepted", bad)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{devAttrReg.String(), "DevAttrReg"},
		{(devAttrQry | responseBit).String(), "DevAttrQryRsp"},
		{function(0x77).String(), "function(0x77)"},
		{tagPGTag.String(), "PGTag"},
		{attrTag(999).String(), "attrTag(999)"},
		{statusNoSuchEntry.String(), "No Such Entry"},
		{statusSourceUnauthorized.Error(), "iSNS server: Source Unauthorized"},
		{status(99).String(), "status(99)"},
		{(flagClient | flagReplace | flagLastPDU | flagFirstPDU).String(), "client|replace|last|first"},
		{(flagServer | 1).String(), "server|0x1"},
		{pduFlags(0).String(), "none"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add(unhex(f, "0001 8002 0004 4c00 0001 0000 00000000"))
	f.Add(unhex(f, "0001 8002 0014 4c00 0001 0000 00000000 00000020 00000008 69716e2e613a7400"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readMessage(bytes.NewReader(b))
		if err != nil {
			return
		}
		st, attrs, err := responseStatus(m)
		if err != nil {
			return
		}
		_ = st.String()
		for _, a := range attrs {
			_ = attrString(a.Value)
			_ = a.Tag.String()
		}
	})
}
