package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lmittmann/tint"
	"golang.org/x/sys/unix"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/reconcile"
)

// The daemon's log formats (`scstd run -log-format`).
//
// "text", the default, is logfmt (key=value, as slog's TextHandler writes
// it) when stderr is not a terminal, and tint's coloured text when it is.
// Text is the default off a terminal too because the daemon's main home
// is a systemd unit, whose journal stamps and stores each line and is read
// by people with journalctl, and because logfmt is already machine-readable
// (Loki, Vector and fluent-bit parse it). "json" writes one JSON object a
// line, for pipelines that want it (container log shippers).
const (
	logText = "text"
	logJSON = "json"
)

// logTimeFormat is how every format writes a record's time: RFC 3339 with
// milliseconds and the zone offset (2026-11-03T14:02:11.123+01:00).
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// slogLevels maps log_level's values to slog's levels.
var slogLevels = map[config.LogLevel]slog.Level{
	config.LogDebug: slog.LevelDebug,
	config.LogInfo:  slog.LevelInfo,
	config.LogWarn:  slog.LevelWarn,
	config.LogError: slog.LevelError,
}

// parseLevel reads a level as -log-level and log_level spell it.
func parseLevel(s string) (slog.Level, error) {
	if l, ok := slogLevels[config.LogLevel(s)]; ok {
		return l, nil
	}
	return 0, fmt.Errorf("expected debug, info, warn or error, got %q", s)
}

// levelName is the spelling of l in -log-level and log_level.
func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

// logFormatFlag is the value of -log-format.
type logFormatFlag struct{ p *string }

func (f logFormatFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

func (f logFormatFlag) Set(s string) error {
	if s != logText && s != logJSON {
		return fmt.Errorf("expected text or json, got %q", s)
	}
	*f.p = s
	return nil
}

// logLevelFlag is the value of -log-level.
type logLevelFlag struct{ p *slog.Level }

func (f logLevelFlag) String() string {
	if f.p == nil {
		return ""
	}
	return levelName(*f.p)
}

func (f logLevelFlag) Set(s string) error {
	l, err := parseLevel(s)
	if err != nil {
		return err
	}
	*f.p = l
	return nil
}

// logLevel is the daemon's log level, shared by every handler of its
// logger. The -log-level flag sets it at start; once a configuration that
// sets log_level is applied, the file's level is in force, and a file
// without log_level returns it to the flag's.
type logLevel struct {
	slog.LevelVar
	flag slog.Level
}

func newLogLevel(flag slog.Level) *logLevel {
	l := &logLevel{flag: flag}
	l.Set(flag)
	return l
}

// forConfig returns the level a configuration's log_level asks for ("":
// the flag's).
func (l *logLevel) forConfig(setting string) (slog.Level, error) {
	if setting == "" {
		return l.flag, nil
	}
	return parseLevel(setting)
}

// newLogger returns the daemon's logger: it writes to w in format
// (logText or logJSON) the records at or above level. Text on a terminal
// is tint's, coloured unless noColor. Every format stamps records with
// logTimeFormat.
func newLogger(w io.Writer, format string, level slog.Leveler, noColor bool) *slog.Logger {
	if format == logJSON {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: formatTime}))
	}
	if onTerminal(w) {
		if b, ok := w.(*batchWriter); ok {
			w = b.w
		}
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: logTimeFormat, NoColor: noColor}))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: formatTime}))
}

// onTerminal reports whether w writes to a terminal (under the
// batching, if any).
func onTerminal(w io.Writer) bool {
	if b, ok := w.(*batchWriter); ok {
		w = b.w
	}
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// batchWriter is the daemon's log output. Between hold and release it
// gathers what is written and writes it out in chunks of batchChunk, in
// order: the 21,000 "change applied" records of a start of 10,000 LUNs
// were as many write(2) calls, 40% of their cost. Records of other
// goroutines in between wait with them.
type batchWriter struct {
	w io.Writer

	mu   sync.Mutex
	held bool
	buf  []byte
}

// batchChunk is how much a held batchWriter gathers before it writes.
const batchChunk = 64 << 10

func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.held {
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= batchChunk {
		return len(p), b.flush()
	}
	return len(p), nil
}

// hold starts gathering; release writes what was gathered and stops.
func (b *batchWriter) hold() {
	b.mu.Lock()
	b.held = true
	b.mu.Unlock()
}

func (b *batchWriter) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held = false
	b.flush()
}

// flush writes out what was gathered. Called with b.mu held.
func (b *batchWriter) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// formatTime writes a record's time as logTimeFormat (slog's JSON handler
// would write nanoseconds, trimmed to a varying width).
func formatTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().Format(logTimeFormat))
	}
	return a
}

// noColor reports whether the NO_COLOR convention (no-color.org) asks for
// no colour: the variable is set and not empty.
func noColor(getenv func(string) string) bool { return getenv("NO_COLOR") != "" }

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// changesFormat is the format in which logChanges writes the records of
// a plan itself to w, the output of a logger of format: logJSON, logText
// unless w is a terminal (tint's), else "" (slog writes them).
func changesFormat(w io.Writer, format string) string {
	if format == logText && onTerminal(w) {
		return ""
	}
	return format
}

// writeChanges writes the "change applied" records of p to w in format
// (logJSON or logText), each the very bytes slog's JSONHandler or
// TextHandler writes for logChanges's record (with formatTime), in
// chunks of batchChunk. slog took 4.2 µs a JSON record, 88 ms for the
// 21,000 of a start of 10,000 LUNs (text more), most of it in its
// generic attribute handling, the caller's program counter and the time
// format.
func writeChanges(w io.Writer, format string, p reconcile.Plan, generation uint64) {
	appendRecord := appendChangeJSON
	if format == logText {
		appendRecord = appendChangeText
	}
	buf := make([]byte, 0, batchChunk+1024)
	for _, c := range p.Changes {
		buf = appendRecord(buf, time.Now(), generation, c)
		if len(buf) >= batchChunk {
			w.Write(buf)
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		w.Write(buf)
	}
}

// appendChangeJSON appends c's "change applied" record at time now, as
// slog's JSONHandler writes it (TestChangeRecordsAsSlog holds it to that).
func appendChangeJSON(b []byte, now time.Time, generation uint64, c reconcile.Change) []byte {
	before, after := c.Values()
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, logTimeFormat)
	b = append(b, `","level":"INFO","msg":"change applied","generation":`...)
	b = strconv.AppendUint(b, generation, 10)
	b = appendJSONField(b, "op", c.Op.String())
	b = appendJSONField(b, "address", c.Addr.String())
	b = appendJSONField(b, "attribute", c.Attr)
	b = appendJSONField(b, "old", before)
	b = appendJSONField(b, "new", after)
	b = appendJSONField(b, "impact", c.Impact.String())
	b = appendJSONField(b, "reason", c.Reason)
	return append(b, "}\n"...)
}

// appendChangeText appends c's "change applied" record at time now, as
// slog's TextHandler writes it (logfmt).
func appendChangeText(b []byte, now time.Time, generation uint64, c reconcile.Change) []byte {
	before, after := c.Values()
	b = append(b, "time="...)
	b = appendTextValue(b, now.Format(logTimeFormat))
	b = append(b, ` level=INFO msg="change applied" generation=`...)
	b = strconv.AppendUint(b, generation, 10)
	for _, f := range [...]struct{ key, value string }{
		{"op", c.Op.String()}, {"address", c.Addr.String()}, {"attribute", c.Attr}, {"old", before}, {"new", after},
		{"impact", c.Impact.String()}, {"reason", c.Reason},
	} {
		b = append(b, ' ')
		b = append(b, f.key...)
		b = append(b, '=')
		b = appendTextValue(b, f.value)
	}
	return append(b, '\n')
}

// appendTextValue appends s as slog's TextHandler writes a string: as it
// is, or quoted (strconv.Quote) when it is empty or holds a space, '=',
// '"', a control character, invalid UTF-8 or a rune that is a space or
// not printable.
func appendTextValue(b []byte, s string) []byte {
	quote := s == ""
	for i := 0; i < len(s) && !quote; {
		c := s[i]
		if c < utf8.RuneSelf {
			quote = c == ' ' || c == '=' || c == '"' || c < 0x20
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		quote = r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r)
		i += size
	}
	if quote {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// appendJSONField appends `,"key":"value"`; key needs no escaping.
func appendJSONField(b []byte, key, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":"`...)
	b = appendJSONString(b, value)
	return append(b, '"')
}

// appendJSONString appends s escaped as slog's JSON handler escapes a
// string: '"', '\\' and control characters, invalid UTF-8 as U+FFFD,
// and U+2028 and U+2029; not '<', '>' or '&'.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}
