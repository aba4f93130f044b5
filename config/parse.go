package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps a lower-case unit suffix to its multiplier: the xB units
// are decimal (SI), the xiB units binary (IEC).
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"pb":  1e15,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"pib": 1 << 50,
}

// ParseSize parses a size such as "4096", "512MiB", "10GiB" or "1TB": a
// whole number followed by an optional unit (B; KB, MB, GB, TB, PB = powers
// of 1000; KiB, MiB, GiB, TiB, PiB = powers of 1024; case does not matter).
// The size must be positive and fit in an int64.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q does not start with a whole number", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q in %q", t[i:], s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("size must be positive, got %q", s)
	}
	return n * mult, nil
}

// ParseLUN parses a LUN label: a decimal number from 0 to MaxLUN.
func ParseLUN(s string) (int, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a LUN number", s)
	}
	n, _ := strconv.Atoi(s)
	if n > MaxLUN {
		return 0, fmt.Errorf("LUN %d is out of range", n)
	}
	return n, nil
}

// maxNameLen is the longest iSCSI name in bytes (RFC 7143 §4.2.7.1).
const maxNameLen = 223

// CheckISCSIName reports whether s is a valid iSCSI name in one of the
// three formats of RFC 7143 §4.2.7: "iqn.yyyy-mm.reversed.domain[:anything]"
// (lower case ASCII letters, digits, '-', '.', ':'), "eui." followed by 16
// hex digits, or "naa." followed by 16 or 32 hex digits.
func CheckISCSIName(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("the name is %d bytes long; iSCSI names have at most %d", len(s), maxNameLen)
	}
	switch {
	case strings.HasPrefix(s, "iqn."):
		return checkIQN(s)
	case strings.HasPrefix(s, "eui."):
		if !isHex(s[4:]) || len(s) != 4+16 {
			return fmt.Errorf("%q: an eui. name has exactly 16 hex digits after \"eui.\"", s)
		}
	case strings.HasPrefix(s, "naa."):
		if !isHex(s[4:]) || (len(s) != 4+16 && len(s) != 4+32) {
			return fmt.Errorf("%q: a naa. name has 16 or 32 hex digits after \"naa.\"", s)
		}
	default:
		return fmt.Errorf("%q does not start with \"iqn.\", \"eui.\" or \"naa.\"", s)
	}
	return nil
}

func checkIQN(s string) error {
	rest := s[4:]
	if len(rest) < 8 || rest[4] != '-' || rest[7] != '.' {
		return fmt.Errorf("%q: expected a date \"yyyy-mm.\" after \"iqn.\"", s)
	}
	year, errY := strconv.Atoi(rest[:4])
	month, errM := strconv.Atoi(rest[5:7])
	if errY != nil || errM != nil || !isDigits(rest[:4]) || !isDigits(rest[5:7]) || year < 1900 || month < 1 || month > 12 {
		return fmt.Errorf("%q: %q is not a date \"yyyy-mm\"", s, rest[:7])
	}
	rest = rest[8:]
	domain, _, _ := strings.Cut(rest, ":")
	if domain == "" {
		return fmt.Errorf("%q: expected a reversed domain name after the date", s)
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" {
			return fmt.Errorf("%q: the reversed domain name %q has an empty label", s, domain)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == ':':
		case c >= 'A' && c <= 'Z':
			return fmt.Errorf("%q: iSCSI names are lower case", s)
		default:
			return fmt.Errorf("%q: character %q is not allowed (expected a-z, 0-9, '-', '.', ':')", s, rune(c))
		}
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

func isDigits(s string) bool { return s != "" && strings.TrimLeft(s, "0123456789") == "" }
