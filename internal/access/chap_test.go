package access

import (
	"encoding/hex"
	"testing"
)

func TestParseCHAPAlgorithm(t *testing.T) {
	for _, a := range DefaultCHAPAlgorithms {
		got, err := ParseCHAPAlgorithm(a.String())
		if err != nil || got != a || !a.Valid() {
			t.Errorf("ParseCHAPAlgorithm(%q) = %v, %v", a, got, err)
		}
	}
	for _, s := range []string{"", "md5", "SHA-512", "SHA256", "CHAP_A(5)"} {
		if a, err := ParseCHAPAlgorithm(s); err == nil {
			t.Errorf("ParseCHAPAlgorithm(%q) = %v, want an error", s, a)
		}
	}
	if s := CHAPAlgorithm(42).String(); s != "CHAP_A(42)" || CHAPAlgorithm(42).Valid() {
		t.Errorf("CHAPAlgorithm(42) = %s", s)
	}
}

// TestCHAPAlgorithmDigests checks each algorithm's digest of "abc"
// against the known answers of RFC 1321, FIPS 180 and FIPS 202.
func TestCHAPAlgorithmDigests(t *testing.T) {
	tests := []struct {
		a    CHAPAlgorithm
		want string
	}{
		{CHAPMD5, "900150983cd24fb0d6963f7d28e17f72"},
		{CHAPSHA1, "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{CHAPSHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{CHAPSHA3256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"},
	}
	for _, tt := range tests {
		h := tt.a.New()
		h.Write([]byte("abc"))
		if got := hex.EncodeToString(h.Sum(nil)); got != tt.want || len(got) != 2*tt.a.Size() {
			t.Errorf("%v(abc) = %s (size %d), want %s", tt.a, got, tt.a.Size(), tt.want)
		}
	}
	if CHAPAlgorithm(9).New() != nil || CHAPAlgorithm(9).Size() != 0 {
		t.Error("an unknown algorithm has a digest")
	}
}

func TestParseDigest(t *testing.T) {
	for _, d := range []Digest{DigestNone, DigestCRC32C} {
		if got, err := ParseDigest(d.String()); err != nil || got != d {
			t.Errorf("ParseDigest(%q) = %v, %v", d, got, err)
		}
	}
	for _, s := range []string{"", "none", "crc32c", "CRC32"} {
		if d, err := ParseDigest(s); err == nil {
			t.Errorf("ParseDigest(%q) = %v, want an error", s, d)
		}
	}
}
