package access

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"fmt"
	"hash"
	"strconv"
)

// CHAPAlgorithm is a CHAP_A value: the digest a CHAP exchange uses. The
// numbers are those of the IANA PPP authentication algorithms registry,
// as SCST, LIO, open-iscsi and libiscsi use them; RFC 7143 §12.1.3 names
// MD5.
type CHAPAlgorithm uint8

// The CHAP algorithms scstd implements.
const (
	CHAPMD5     CHAPAlgorithm = 5
	CHAPSHA1    CHAPAlgorithm = 6
	CHAPSHA256  CHAPAlgorithm = 7
	CHAPSHA3256 CHAPAlgorithm = 8
)

// DefaultCHAPAlgorithms is the chap_algorithms of a target that sets
// none: all four, strongest first.
var DefaultCHAPAlgorithms = []CHAPAlgorithm{CHAPSHA3256, CHAPSHA256, CHAPSHA1, CHAPMD5}

var chapNames = [...]string{CHAPMD5: "MD5", CHAPSHA1: "SHA-1", CHAPSHA256: "SHA-256", CHAPSHA3256: "SHA3-256"}

// ParseCHAPAlgorithm returns the algorithm the configuration spells name:
// "SHA3-256", "SHA-256", "SHA-1" or "MD5".
func ParseCHAPAlgorithm(name string) (CHAPAlgorithm, error) {
	for _, a := range DefaultCHAPAlgorithms {
		if name == a.String() {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown CHAP algorithm %q", name)
}

// Valid reports whether a is one of the algorithms scstd implements.
func (a CHAPAlgorithm) Valid() bool { return a >= CHAPMD5 && a <= CHAPSHA3256 }

// String returns the configuration spelling of a ("MD5", "SHA-1",
// "SHA-256", "SHA3-256"), or "CHAP_A(n)" for another value.
func (a CHAPAlgorithm) String() string {
	if a.Valid() {
		return chapNames[a]
	}
	return "CHAP_A(" + strconv.Itoa(int(a)) + ")"
}

// MarshalText returns a.String().
func (a CHAPAlgorithm) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Size returns the digest length of a in bytes, the length of a CHAP_R;
// 0 for an algorithm scstd does not implement.
func (a CHAPAlgorithm) Size() int {
	switch a {
	case CHAPMD5:
		return md5.Size
	case CHAPSHA1:
		return sha1.Size
	case CHAPSHA256:
		return sha256.Size
	case CHAPSHA3256:
		return 32
	}
	return 0
}

// New returns a fresh digest of a, or nil for an algorithm scstd does not
// implement.
func (a CHAPAlgorithm) New() hash.Hash {
	switch a {
	case CHAPMD5:
		return md5.New()
	case CHAPSHA1:
		return sha1.New()
	case CHAPSHA256:
		return sha256.New()
	case CHAPSHA3256:
		return sha3.New256()
	}
	return nil
}
