package iscsi

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits of the text format (RFC 7143 §6.1).
const (
	// MaxKeyLength is the longest key name.
	MaxKeyLength = 63
	// MaxValueLength is the longest value unless a key allows more.
	MaxValueLength = 255
	// MaxLargeValueLength is the longest value of the keys that carry
	// large binary values (CHAP and SRP challenges and responses).
	MaxLargeValueLength = 8192
	// MaxTextLength bounds the key=value text of one request sequence
	// (all PDUs of a continued text or login request); the RFC requires
	// accepting at least 8192 bytes.
	MaxTextLength = 64 << 10
)

// Special values of the negotiation (RFC 7143 §6.2).
const (
	ValueReject        = "Reject"
	ValueIrrelevant    = "Irrelevant"
	ValueNotUnderstood = "NotUnderstood"
	ValueYes           = "Yes"
	ValueNo            = "No"
)

// largeValueKeys may carry values up to MaxLargeValueLength bytes.
var largeValueKeys = map[string]bool{
	"CHAP_C": true, "CHAP_R": true,
	"SRP_A": true, "SRP_B": true, "SRP_M": true, "SRP_HM": true, "SRP_s": true,
	"KRB_AP_REQ": true, "KRB_AP_REP": true,
}

// KV is one key=value pair of a text or login data segment.
type KV struct {
	Key, Value string
}

// Text is the ordered key=value pairs of a data segment.
type Text []KV

// Get returns the value of key.
func (t Text) Get(key string) (string, bool) {
	for _, kv := range t {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Map returns the pairs as a map (keys are unique after ParseText).
func (t Text) Map() map[string]string {
	m := make(map[string]string, len(t))
	for _, kv := range t {
		m[kv.Key] = kv.Value
	}
	return m
}

// Add appends key=value.
func (t *Text) Add(key, value string) { *t = append(*t, KV{key, value}) }

// AppendText appends the wire form of t: each pair as key=value followed
// by a NUL byte.
func AppendText(dst []byte, t Text) []byte {
	for _, kv := range t {
		dst = append(dst, kv.Key...)
		dst = append(dst, '=')
		dst = append(dst, kv.Value...)
		dst = append(dst, 0)
	}
	return dst
}

// TextError is a malformed text data segment: the whole request fails
// (Login: 0200h initiator error; Text: Reject).
type TextError struct {
	Key string
	Msg string
}

// Error implements error.
func (e *TextError) Error() string {
	if e.Key == "" {
		return "iscsi: text: " + e.Msg
	}
	return fmt.Sprintf("iscsi: text: key %.64q: %s", e.Key, e.Msg)
}

// ParseText parses a complete key=value data segment (all continuation
// PDUs joined). Every pair must end with a NUL; keys must be well formed
// and appear at most once; values must fit their length limit. Trailing
// NUL padding after the last pair is tolerated.
func ParseText(data []byte) (Text, error) { return parseText(data, false) }

// ParseTextRepeated is ParseText for texts in which a key may repeat, as
// TargetName and TargetAddress do in a SendTargets response.
func ParseTextRepeated(data []byte) (Text, error) { return parseText(data, true) }

func parseText(data []byte, repeat bool) (Text, error) {
	if len(data) > MaxTextLength {
		return nil, &TextError{Msg: fmt.Sprintf("%d bytes exceeds %d", len(data), MaxTextLength)}
	}
	var t Text
	for len(data) > 0 {
		end := strings.IndexByte(string(data), 0)
		if end < 0 {
			return nil, &TextError{Msg: "last pair is not NUL-terminated"}
		}
		pair := data[:end]
		data = data[end+1:]
		if len(pair) == 0 {
			// NUL padding; only NULs may follow.
			for _, b := range data {
				if b != 0 {
					return nil, &TextError{Msg: "empty key=value pair"}
				}
			}
			break
		}
		eq := strings.IndexByte(string(pair), '=')
		if eq < 0 {
			return nil, &TextError{Key: string(pair), Msg: "no '='"}
		}
		key, value := string(pair[:eq]), string(pair[eq+1:])
		if err := checkKey(key); err != nil {
			return nil, err
		}
		limit := MaxValueLength
		if largeValueKeys[key] {
			limit = MaxLargeValueLength
		}
		if len(value) > limit {
			return nil, &TextError{Key: key, Msg: fmt.Sprintf("value of %d bytes exceeds %d", len(value), limit)}
		}
		if _, dup := t.Get(key); dup && !repeat {
			return nil, &TextError{Key: key, Msg: "key appears twice"}
		}
		t = append(t, KV{key, value})
	}
	return t, nil
}

// checkKey validates a key name: 1 to 63 characters from letters, digits
// and "._-+@#:" (RFC 7143 §6.1 standard-label plus the X- and X# forms).
func checkKey(k string) error {
	if k == "" {
		return &TextError{Msg: "empty key"}
	}
	if len(k) > MaxKeyLength {
		return &TextError{Key: k, Msg: "key longer than 63 bytes"}
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("._-+@#:", c) >= 0:
		default:
			return &TextError{Key: k, Msg: fmt.Sprintf("invalid character %q in key", c)}
		}
	}
	return nil
}

// ErrBadNumber is returned by ParseNumber for a malformed or out of range
// numerical value.
var ErrBadNumber = errors.New("iscsi: malformed numerical value")

// ParseNumber parses a numerical value: a decimal constant, a hex
// constant (0x...) or, for the values RFC 7143 §6.1 lets carry binary
// encodings, a base64 constant (0b...) of at most 8 bytes. The result is
// at most 2^64-1.
func ParseNumber(s string) (uint64, error) {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		b, err := ParseBinary(s)
		if err != nil || len(b) > 8 {
			return 0, ErrBadNumber
		}
		return beUint(b), nil
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B') {
		b, err := ParseBinary(s)
		if err != nil || len(b) > 8 {
			return 0, ErrBadNumber
		}
		return beUint(b), nil
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, ErrBadNumber
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, ErrBadNumber
	}
	return n, nil
}

func beUint(b []byte) uint64 {
	var n uint64
	for _, x := range b {
		n = n<<8 | uint64(x)
	}
	return n
}

// ParseBinary decodes a binary value: a hex constant "0x..." (an odd
// number of digits has an implied leading zero) or a base64 constant
// "0b..." (RFC 7143 §6.1).
func ParseBinary(s string) ([]byte, error) {
	if len(s) < 3 || s[0] != '0' {
		return nil, ErrBadNumber
	}
	body := s[2:]
	switch s[1] {
	case 'x', 'X':
		if len(body)%2 == 1 {
			body = "0" + body
		}
		b, err := hex.DecodeString(body)
		if err != nil {
			return nil, ErrBadNumber
		}
		return b, nil
	case 'b', 'B':
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, ErrBadNumber
		}
		return b, nil
	}
	return nil, ErrBadNumber
}

// textBuffer joins the data segments of a continued (C bit) text or login
// request, bounded by MaxTextLength.
type textBuffer struct {
	b []byte
}

// add appends one PDU's data; it fails when the total grows too long.
func (tb *textBuffer) add(data []byte) error {
	if len(tb.b)+len(data) > MaxTextLength {
		return &TextError{Msg: fmt.Sprintf("continued text exceeds %d bytes", MaxTextLength)}
	}
	tb.b = append(tb.b, data...)
	return nil
}

// take parses and resets the buffer.
func (tb *textBuffer) take() (Text, error) {
	t, err := ParseText(tb.b)
	tb.b = tb.b[:0]
	return t, err
}

// textChunks splits an encoded response into data segments of at most
// limit bytes; a key=value pair may span segments (RFC 7143 §6.1). An
// empty response is one empty chunk.
func textChunks(b []byte, limit int) [][]byte {
	if limit <= 0 {
		limit = DefaultMaxRecvDSL
	}
	if len(b) == 0 {
		return [][]byte{nil}
	}
	var out [][]byte
	for len(b) > limit {
		out = append(out, b[:limit])
		b = b[limit:]
	}
	return append(out, b)
}
