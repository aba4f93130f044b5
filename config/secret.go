package config

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

const redacted = "(redacted)"

// Secret is a CHAP secret. Every way of printing it (fmt verbs, JSON, slog)
// shows "(redacted)"; the value is only available through Reveal.
type Secret struct {
	value string
}

// NewSecret returns a Secret holding s.
func NewSecret(s string) Secret { return Secret{value: s} }

// Reveal returns the secret's value. Call it only where the value is used
// (computing a CHAP response), never to print it.
func (s Secret) Reveal() string { return s.value }

// Len returns the length of the secret in bytes.
func (s Secret) Len() int { return len(s.value) }

// Equal reports whether s and o hold the same value, in constant time.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.value), []byte(o.value)) == 1
}

// String returns "(redacted)".
func (s Secret) String() string { return redacted }

// GoString returns "(redacted)".
func (s Secret) GoString() string { return redacted }

// Format prints "(redacted)" for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON returns the JSON string "(redacted)".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "(redacted)".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue returns "(redacted)" for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
