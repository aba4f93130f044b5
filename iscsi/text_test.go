package iscsi

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseText(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := []struct {
		name    string
		in      string
		want    Text
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"one pair", "InitiatorName=iqn.1993-08.org.debian:01:abc\x00",
			Text{{"InitiatorName", "iqn.1993-08.org.debian:01:abc"}}, false},
		{"several pairs in order", "SessionType=Discovery\x00AuthMethod=None\x00HeaderDigest=CRC32C,None\x00",
			Text{{"SessionType", "Discovery"}, {"AuthMethod", "None"}, {"HeaderDigest", "CRC32C,None"}}, false},
		{"empty value", "SendTargets=\x00", Text{{"SendTargets", ""}}, false},
		{"value with =", "X-com.example.k=a=b\x00", Text{{"X-com.example.k", "a=b"}}, false},
		{"trailing NUL padding", "A=1\x00\x00\x00", Text{{"A", "1"}}, false},
		{"255-byte value", "K=" + long[:255] + "\x00", Text{{"K", long[:255]}}, false},
		{"large CHAP_C value", "CHAP_C=0x" + strings.Repeat("ab", 1000) + "\x00",
			Text{{"CHAP_C", "0x" + strings.Repeat("ab", 1000)}}, false},
		{"no NUL at end", "A=1", nil, true},
		{"no =", "A\x00", nil, true},
		{"empty key", "=1\x00", nil, true},
		{"duplicate key", "A=1\x00A=2\x00", nil, true},
		{"256-byte value", "K=" + long + "\x00", nil, true},
		{"64-byte key", strings.Repeat("K", 64) + "=1\x00", nil, true},
		{"bad key character", "A B=1\x00", nil, true},
		{"data after padding", "A=1\x00\x00B=2\x00", nil, true},
		{"too long in total", strings.Repeat("X", MaxTextLength+1), nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseText([]byte(tc.in))
			if tc.wantErr {
				var te *TextError
				if !errors.As(err, &te) {
					t.Fatalf("ParseText = %v, %v; want *TextError", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseText = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestAppendText(t *testing.T) {
	got := AppendText(nil, Text{{"TargetName", "iqn.x:a"}, {"TargetAddress", "[::1]:3260,1"}})
	// "TargetName=iqn.x:a\0TargetAddress=[::1]:3260,1\0"
	want := wireHex(t, "5461726765744e616d653d69716e2e783a6100"+
		"546172676574416464726573733d5b3a3a315d3a333236302c3100")
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendText = %q", got)
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"8192", 8192, true},
		{"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551616", 0, false},
		{"0x2000", 8192, true},
		{"0X2000", 8192, true},
		{"0xfff", 4095, true},  // odd number of digits
		{"0bIAA=", 8192, true}, // base64 of 20 00
		{"0b////////////", 0, false},
		{"0x", 0, false},
		{"0xg1", 0, false},
		{"0b!!", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1e3", 0, false},
		{" 1", 0, false},
		{"0x112233445566778899", 0, false}, // more than 8 bytes
	}
	for _, tc := range tests {
		got, err := ParseNumber(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseNumber(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseBinary(t *testing.T) {
	tests := []struct {
		in   string
		want string // hex
		ok   bool
	}{
		{"0x0102ff", "0102ff", true},
		{"0x102", "0102", true},
		{"0bAQL/", "0102ff", true},
		{"0102", "", false},
		{"0bAQL", "", false},
		{"0z12", "", false},
	}
	for _, tc := range tests {
		got, err := ParseBinary(tc.in)
		if tc.ok != (err == nil) || (tc.ok && !bytes.Equal(got, wireHex(t, tc.want))) {
			t.Errorf("ParseBinary(%q) = %x, %v", tc.in, got, err)
		}
	}
}

func TestTextBufferAndChunks(t *testing.T) {
	var tb textBuffer
	// A pair split across two PDUs, as the C bit allows.
	if err := tb.add([]byte("SendTar")); err != nil {
		t.Fatal(err)
	}
	if err := tb.add([]byte("gets=All\x00")); err != nil {
		t.Fatal(err)
	}
	got, err := tb.take()
	if err != nil || !reflect.DeepEqual(got, Text{{"SendTargets", "All"}}) {
		t.Fatalf("take = %q, %v", got, err)
	}
	if len(tb.b) != 0 {
		t.Fatal("take did not reset")
	}
	if err := tb.add(make([]byte, MaxTextLength+1)); err == nil {
		t.Fatal("oversized continued text accepted")
	}

	chunks := textChunks([]byte("0123456789"), 4)
	if len(chunks) != 3 || string(chunks[0]) != "0123" || string(chunks[2]) != "89" {
		t.Fatalf("textChunks = %q", chunks)
	}
	if c := textChunks(nil, 4); len(c) != 1 || len(c[0]) != 0 {
		t.Fatalf("textChunks(empty) = %q", c)
	}
}

func FuzzParseText(f *testing.F) {
	f.Add([]byte("InitiatorName=iqn.1993-08.org.debian:01:abc\x00SessionType=Normal\x00"))
	f.Add([]byte("SendTargets=All\x00"))
	f.Add([]byte("CHAP_C=0x0102\x00CHAP_I=3\x00"))
	f.Add([]byte("A=1\x00A=2\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		kv, err := ParseText(in)
		if err != nil {
			return
		}
		back, err := ParseText(AppendText(nil, kv))
		if err != nil || !reflect.DeepEqual(back, kv) {
			t.Fatalf("round trip: %q -> %q, %v", kv, back, err)
		}
		for _, p := range kv {
			ParseNumber(p.Value)
		}
	})
}
