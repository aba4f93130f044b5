package config

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "4096", want: 4096},
		{in: "512B", want: 512},
		{in: "512MiB", want: 512 << 20},
		{in: "10GiB", want: 10 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "2PiB", want: 2 << 50},
		{in: "1KiB", want: 1024},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "10GB", want: 10_000_000_000},
		{in: "1kb", want: 1000},
		{in: "3mb", want: 3_000_000},
		{in: "1gib", want: 1 << 30},
		{in: "10 GiB", want: 10 << 30},
		{in: " 7 ", want: 7},
		{in: "8191PiB", want: 8191 << 50},
		{in: "8192PiB", wantErr: "too large"},
		{in: "9223372036854775807", want: 9223372036854775807},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "0", wantErr: "positive"},
		{in: "0GiB", wantErr: "positive"},
		{in: "", wantErr: "whole number"},
		{in: "GiB", wantErr: "whole number"},
		{in: "-1", wantErr: "whole number"},
		{in: "1.5GiB", wantErr: "unknown unit"},
		{in: "10XB", wantErr: "unknown unit"},
		{in: "10G", wantErr: "unknown unit"},
		{in: "10 GiB x", wantErr: "unknown unit"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCheckISCSIName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "iqn with suffix", in: "iqn.2026-11.org.example:storage"},
		{name: "iqn without suffix", in: "iqn.2026-11.org.example"},
		{name: "iqn RFC example", in: "iqn.2001-04.com.example:storage:diskarrays-sn-a8675309"},
		{name: "iqn colon-rich suffix", in: "iqn.1991-05.com.microsoft:host.domain-1"},
		{name: "eui", in: "eui.02004567A425678D"},
		{name: "eui lower hex", in: "eui.02004567a425678d"},
		{name: "naa 64-bit", in: "naa.52004567BA64678D"},
		{name: "naa 128-bit", in: "naa.62004567BA64678D0123456789ABCDEF"},
		{name: "uppercase", in: "iqn.2026-11.org.Example:a", wantErr: "lower case"},
		{name: "uppercase prefix", in: "IQN.2026-11.org.example:a", wantErr: "does not start"},
		{name: "month 13", in: "iqn.2026-13.org.example", wantErr: "not a date"},
		{name: "month 00", in: "iqn.2026-00.org.example", wantErr: "not a date"},
		{name: "two-digit year", in: "iqn.26-11.org.example", wantErr: "expected a date"},
		{name: "signed month", in: "iqn.2026-+1.org.example", wantErr: "not a date"},
		{name: "no domain", in: "iqn.2026-11.", wantErr: "reversed domain"},
		{name: "no domain before colon", in: "iqn.2026-11.:x", wantErr: "reversed domain"},
		{name: "empty label", in: "iqn.2026-11.org..example", wantErr: "empty label"},
		{name: "space", in: "iqn.2026-11.org.example:a b", wantErr: "not allowed"},
		{name: "underscore", in: "iqn.2026-11.org.example:a_b", wantErr: "not allowed"},
		{name: "non-ASCII", in: "iqn.2026-11.org.example:dísk", wantErr: "not allowed"},
		{name: "eui short", in: "eui.02004567A425678", wantErr: "16 hex"},
		{name: "eui not hex", in: "eui.02004567A425678G", wantErr: "16 hex"},
		{name: "naa 20 digits", in: "naa.52004567BA64678D0123", wantErr: "16 or 32"},
		{name: "no prefix", in: "storage1", wantErr: "does not start"},
		{name: "empty", in: "", wantErr: "does not start"},
		{name: "too long", in: "iqn.2026-11.org.example:" + strings.Repeat("a", 200), wantErr: "at most 223"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckISCSIName(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckISCSIName(%q) = %v; want nil", tt.in, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckISCSIName(%q) = %v; want error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseLUN(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"00", 0, true}, {"1", 1, true}, {"16383", 16383, true},
		{"16384", 0, false}, {"99999", 0, false}, {"123456", 0, false},
		{"-1", 0, false}, {"+1", 0, false}, {"x", 0, false}, {"", 0, false}, {"1 ", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseLUN(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLUN(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
