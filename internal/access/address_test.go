package access

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseHostPort(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
		ip                bool
	}{
		{in: "0.0.0.0:3260", want: "0.0.0.0:3260", ip: true},
		{in: "127.0.0.1", want: "127.0.0.1:3260", ip: true},
		{in: "[::]:3260", want: "[::]:3260", ip: true},
		{in: "[::]", want: "[::]:3260", ip: true},
		{in: "[fe80::1%eth0]:3261", want: "[fe80::1%eth0]:3261", ip: true},
		{in: "localhost:3261", want: "localhost:3261"},
		{in: "storage.example.org.", want: "storage.example.org.:3260"},
		{in: "::1", wantErr: "brackets"},
		{in: "::1:3260", wantErr: "brackets"},
		{in: "[::1]:", wantErr: "empty port"},
		{in: "[::1", wantErr: "closing"},
		{in: "[::1]x", wantErr: "after the bracketed"},
		{in: "[192.0.2.1]:3260", wantErr: "not an IPv6"},
		{in: "127.0.0.1:", wantErr: "empty port"},
		{in: ":3260", wantErr: "empty host"},
		{in: "host:port", wantErr: "port"},
		{in: "host:65536", wantErr: "port"},
		{in: "host:0", wantErr: "port"},
		{in: "host:+80", wantErr: "port"},
		{in: "bad_host", wantErr: "host name"},
		{in: "-bad-.example", wantErr: "host name"},
		{in: "", wantErr: "empty address"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseHostPort(tt.in, ISCSIPort)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseHostPort(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("ParseHostPort(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if _, ok := got.Addr(); ok != tt.ip {
				t.Errorf("%q: Addr() ok = %v, want %v", tt.in, ok, tt.ip)
			}
			if again, err := ParseHostPort(got.String(), 1); err != nil || again != got {
				t.Errorf("round trip of %q: %v, %v", got, again, err)
			}
		})
	}
}

func TestParseRedirect(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		perm    bool
		wantErr string
	}{
		{in: "192.0.2.20:3260 temp", want: "192.0.2.20:3260"},
		{in: "192.0.2.20 perm", want: "192.0.2.20:3260", perm: true},
		{in: "  target2.example.org:3261   temp ", want: "target2.example.org:3261"},
		{in: "[2001:db8::1]:3262 perm", want: "[2001:db8::1]:3262", perm: true},
		{in: "[2001:db8::1] temp", want: "[2001:db8::1]:3260"},
		{in: "[fe80::1%eth0]:3260 temp", wantErr: "zone"},
		{in: "192.0.2.20:3260", wantErr: "does not have the form"},
		{in: "192.0.2.20:3260 temp extra", wantErr: "does not have the form"},
		{in: "192.0.2.20 TEMP", wantErr: "neither"},
		{in: "192.0.2.20:3260 moved", wantErr: "neither"},
		{in: "2001:db8::1 temp", wantErr: "brackets"},
		{in: "[2001:db8::1 temp", wantErr: "closing"},
		{in: "[192.0.2.1]:3260 temp", wantErr: "not an IPv6"},
		{in: "[2001:db8::1]x temp", wantErr: "after the bracketed"},
		{in: "192.0.2.20:0 temp", wantErr: "port"},
		{in: "192.0.2.20:70000 temp", wantErr: "port"},
		{in: "-bad-.example temp", wantErr: "host name"},
		{in: "bad_host!:3260 temp", wantErr: "host name"},
		{in: "", wantErr: "does not have the form"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRedirect(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRedirect(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Addr.String() != tt.want || got.Permanent != tt.perm {
				t.Fatalf("ParseRedirect(%q) = %+v, %v; want %s perm=%v", tt.in, got, err, tt.want, tt.perm)
			}
			if again, err := ParseRedirect(got.String()); err != nil || again != got {
				t.Errorf("round trip of %q: %v, %v", got.String(), again, err)
			}
		})
	}
	if s := (Redirect{}).String(); s != "" {
		t.Errorf("no redirect prints %q", s)
	}
}

// TestJSON: the values print in JSON as the configuration writes them.
func TestJSON(t *testing.T) {
	v := struct {
		P Patterns
		A HostPort
		R Redirect
		C []CHAPAlgorithm
		D []Digest
	}{
		MustPatterns("10.*", "!10.0.0.1"), MustHostPort("[::1]", ISCSIPort),
		Redirect{Addr: MustHostPort("192.0.2.1", ISCSIPort), Permanent: true},
		DefaultCHAPAlgorithms, []Digest{DigestCRC32C, DigestNone},
	}
	b, err := json.Marshal(v)
	want := `{"P":["10.*","!10.0.0.1"],"A":"[::1]:3260","R":"192.0.2.1:3260 perm",` +
		`"C":["SHA3-256","SHA-256","SHA-1","MD5"],"D":["CRC32C","None"]}`
	if err != nil || string(b) != want {
		t.Errorf("JSON %s, %v; want %s", b, err, want)
	}
}
