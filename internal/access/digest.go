package access

import (
	"fmt"
	"strconv"
)

// Digest is a HeaderDigest or DataDigest value. The zero Digest is None.
type Digest uint8

// The digests.
const (
	DigestNone Digest = iota
	DigestCRC32C
)

var digestNames = [...]string{DigestNone: "None", DigestCRC32C: "CRC32C"}

// ParseDigest returns the digest spelled s, "None" or "CRC32C" (as the
// configuration and the iSCSI keys spell them).
func ParseDigest(s string) (Digest, error) {
	for d, name := range digestNames {
		if s == name {
			return Digest(d), nil
		}
	}
	return 0, fmt.Errorf("unknown digest %q", s)
}

// String returns "None" or "CRC32C" ("Digest(n)" for another value).
func (d Digest) String() string {
	if int(d) < len(digestNames) {
		return digestNames[d]
	}
	return "Digest(" + strconv.Itoa(int(d)) + ")"
}

// MarshalText returns d.String().
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
