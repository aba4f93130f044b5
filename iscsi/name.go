package iscsi

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckName checks an iSCSI name received in a login (InitiatorName,
// TargetName) against RFC 7143 §4.2.7: one of the three forms
//
//	iqn.yyyy-mm.reversed.domain[:anything]
//	eui. and 16 hex digits
//	naa. and 16 or 32 hex digits
//
// in valid UTF-8 of at most MaxNameLength bytes, without control
// characters or white space anywhere. The "anything" of an iqn. name is
// not held to the RFC's character set: initiators put upper case letters
// and underscores there, and refusing them would lock their users out;
// what could fool a terminal or a log (control characters, invalid UTF-8,
// spaces) is refused.
func CheckName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > MaxNameLength:
		return fmt.Errorf("%d bytes, at most %d", len(s), MaxNameLength)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("character %U is not allowed", r)
		}
	}
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "iqn."):
		return checkIQNName(s[4:])
	case strings.HasPrefix(lower, "eui."):
		if len(s) != 4+16 || !hexDigits(s[4:]) {
			return errors.New(`an eui. name has 16 hex digits after "eui."`)
		}
	case strings.HasPrefix(lower, "naa."):
		if (len(s) != 4+16 && len(s) != 4+32) || !hexDigits(s[4:]) {
			return errors.New(`a naa. name has 16 or 32 hex digits after "naa."`)
		}
	default:
		return errors.New(`not an "iqn.", "eui." or "naa." name`)
	}
	return nil
}

// checkIQNName checks what follows "iqn.": a date yyyy-mm, a dot, and a
// reversed domain name of letters, digits, '-' and '.' (no empty label),
// optionally followed by ':' and anything.
func checkIQNName(rest string) error {
	if len(rest) < 8 || !decimalDigits(rest[:4]) || rest[4] != '-' || !decimalDigits(rest[5:7]) || rest[7] != '.' {
		return errors.New(`an iqn. name starts with a date "yyyy-mm." after "iqn."`)
	}
	if m := rest[5:7]; m < "01" || m > "12" {
		return fmt.Errorf("month %s of the iqn. date", m)
	}
	domain, _, _ := strings.Cut(rest[8:], ":")
	if domain == "" {
		return errors.New("an iqn. name has a naming authority after the date")
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" {
			return fmt.Errorf("naming authority %q has an empty label", domain)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("naming authority %q: character %q", domain, c)
			}
		}
	}
	return nil
}

func decimalDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func hexDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}
