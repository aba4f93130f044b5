package scstconf

import (
	"fmt"
	"strings"
	"unicode"
)

// Format returns entries in scst.conf syntax as scstadmin writes it: one
// entry a line, sections indented by tabs, values with blanks quoted, "\"
// and "#" escaped. Parse(Format(f.Entries)) gives back the same entries.
func Format(entries []*Entry) []byte {
	return appendEntries(nil, entries, "", "\t", false)
}

// formatRedacted is Format with CHAP secrets replaced by "(redacted)" and
// sections indented by two spaces, for entries kept as comments.
func formatRedacted(entries ...*Entry) string {
	return string(appendEntries(nil, entries, "", "  ", true))
}

func appendEntries(b []byte, entries []*Entry, indent, step string, redact bool) []byte {
	for _, e := range entries {
		b = append(b, indent...)
		b = append(b, entryLine(e, redact)...)
		if e.HasSection {
			b = append(b, " {\n"...)
			b = appendEntries(b, e.Section, indent+step, step, redact)
			b = append(b, indent...)
			b = append(b, '}')
		}
		b = append(b, '\n')
	}
	return b
}

// entryLine is the entry's name and arguments in scst.conf syntax, without
// its section.
func entryLine(e *Entry, redact bool) string {
	words := make([]string, 0, 1+len(e.Args))
	words = append(words, quoteWord(e.Name))
	args := e.Args
	if redact && isUserAttr(e.Name) {
		args = []string{redactUser(e.Value())}
	}
	for _, a := range args {
		words = append(words, quoteWord(a))
	}
	return strings.Join(words, " ")
}

// isUserAttr reports whether name is a CHAP user attribute, whose value
// holds a secret: IncomingUser, OutgoingUser, and the numbered forms sysfs
// gives the second and later ones (IncomingUser1, ...).
func isUserAttr(name string) bool {
	return numbered(name, "IncomingUser") || numbered(name, "OutgoingUser")
}

// redactUser keeps the user name of a "name secret" value.
func redactUser(v string) string {
	f := strings.Fields(v)
	if len(f) == 0 {
		return "(redacted)"
	}
	return f[0] + " (redacted)"
}

// quoteWord escapes "\", "#" and `"`, and quotes a word that is empty or
// holds blanks, as scstadmin's writer does.
func quoteWord(s string) string {
	var b strings.Builder
	quote := s == "" || strings.ContainsAny(s, " \t")
	if quote {
		b.WriteByte('"')
	}
	for _, r := range s {
		switch r {
		case '\\', '#', '"':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	if quote {
		b.WriteByte('"')
	}
	return b.String()
}

// printable returns s with every character that is not printable written
// as a Go escape, so that messages never carry raw control bytes.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == unicode.ReplacementChar:
			b.WriteString(`\ufffd`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// isDigits reports whether s is all ASCII digits; empty counts when
// emptyOK.
func isDigits(s string, emptyOK bool) bool {
	if s == "" {
		return emptyOK
	}
	return strings.TrimLeft(s, "0123456789") == ""
}
