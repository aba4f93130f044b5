package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/reconcile"
)

// rfc3339Millis is a timestamp as every log format writes it: a date, a
// time with milliseconds and a zone.
var rfc3339Millis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$`)

// jsonRecords decodes out as one JSON object a line, failing the test on
// any other line.
func jsonRecords(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON object: %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestLoggerFormats: JSON is one object a line with time, level and msg;
// text off a terminal is logfmt; both stamp records with a date and
// milliseconds, and the level variable filters records as it changes.
func TestLoggerFormats(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		var b bytes.Buffer
		lv := newLogLevel(slog.LevelInfo)
		log := newLogger(&b, logJSON, lv, false)
		log.Debug("hidden")
		log.Info("shown", "target", "iqn.x:a", "n", 3)
		lv.Set(slog.LevelDebug)
		log.Debug("now shown")
		lv.Set(slog.LevelError)
		log.Warn("hidden again")
		log.Error("error shown", "err", fmt.Errorf("boom\nsecond line"))
		recs := jsonRecords(t, b.String())
		var msgs []string
		for _, r := range recs {
			msgs = append(msgs, fmt.Sprint(r["msg"]))
			ts, _ := r["time"].(string)
			if !rfc3339Millis.MatchString(ts) {
				t.Errorf("time %q is not RFC 3339 with milliseconds", r["time"])
			}
			if _, ok := r["level"].(string); !ok {
				t.Errorf("record without level: %v", r)
			}
		}
		if got := strings.Join(msgs, ","); got != "shown,now shown,error shown" {
			t.Errorf("records %s, want shown,now shown,error shown", got)
		}
		if recs[0]["target"] != "iqn.x:a" || recs[0]["n"] != 3.0 || recs[0]["level"] != "INFO" {
			t.Errorf("attributes: %v", recs[0])
		}
		if recs[2]["err"] != "boom\nsecond line" {
			t.Errorf("err %q", recs[2]["err"])
		}
	})
	t.Run("text", func(t *testing.T) {
		var b bytes.Buffer
		log := newLogger(&b, logText, newLogLevel(slog.LevelWarn), false)
		log.Info("hidden")
		log.Warn("login refused", "target", "iqn.x:a", "reason", "bad secret")
		line := strings.TrimSuffix(b.String(), "\n")
		m := regexp.MustCompile(`^time=(\S+) level=WARN msg="login refused" target=iqn.x:a reason="bad secret"$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("text record %q", line)
		}
		if !rfc3339Millis.MatchString(m[1]) {
			t.Errorf("time %q is not RFC 3339 with milliseconds", m[1])
		}
	})
}

// TestLoggerTerminal: on a terminal, text is tint's, coloured, with a
// dated timestamp; NO_COLOR takes the colour away and keeps the rest;
// JSON stays JSON.
func TestLoggerTerminal(t *testing.T) {
	for _, tt := range []struct {
		name      string
		format    string
		noColor   bool
		wantColor bool
	}{
		{"colour", logText, false, true},
		{"NO_COLOR", logText, true, false},
		{"json", logJSON, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			master, tty := openPTY(t)
			log := newLogger(tty, tt.format, newLogLevel(slog.LevelInfo), tt.noColor)
			log.Info("portal listening", "addr", "127.0.0.1:3260")
			out := readPTY(t, master)
			if got := strings.Contains(out, "\x1b["); got != tt.wantColor {
				t.Errorf("colour escapes %v, want %v: %q", got, tt.wantColor, out)
			}
			if tt.format == logJSON {
				jsonRecords(t, strings.ReplaceAll(out, "\r\n", "\n"))
				return
			}
			plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, "")
			fields := strings.Fields(plain)
			if len(fields) < 4 || !rfc3339Millis.MatchString(fields[0]) || fields[1] != "INF" ||
				!strings.Contains(plain, "portal listening") || !strings.Contains(plain, "addr=127.0.0.1:3260") {
				t.Errorf("terminal record %q", plain)
			}
		})
	}
}

// openPTY opens a pseudo-terminal: what is written to tty is read from
// master.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	if !isTerminal(tty) {
		t.Fatal("the pseudo-terminal is not a terminal")
	}
	return master, tty
}

// readPTY reads what has been written to the terminal so far.
func readPTY(t *testing.T, master *os.File) string {
	t.Helper()
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := master.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// TestNoColor follows no-color.org: set and not empty.
func TestNoColor(t *testing.T) {
	for v, want := range map[string]bool{"": false, "1": true, "0": true, "true": true} {
		if got := noColor(func(string) string { return v }); got != want {
			t.Errorf("NO_COLOR=%q: noColor %v, want %v", v, got, want)
		}
	}
}

// TestLogFlags: -log-format and -log-level take their documented values
// only, and a wrong one is a usage error that names the flag.
func TestLogFlags(t *testing.T) {
	for _, tt := range []struct {
		args       []string
		wantFormat string
		wantLevel  slog.Level
		wantErr    string
	}{
		{args: nil, wantFormat: logText, wantLevel: slog.LevelInfo},
		{args: []string{"-log-format", "json", "-log-level", "debug"}, wantFormat: logJSON, wantLevel: slog.LevelDebug},
		{args: []string{"-log-level=warn"}, wantFormat: logText, wantLevel: slog.LevelWarn},
		{args: []string{"-log-level=error"}, wantFormat: logText, wantLevel: slog.LevelError},
		{args: []string{"-log-format", "logfmt"}, wantErr: `invalid value "logfmt" for flag -log-format: expected text or json`},
		{args: []string{"-log-level", "WARN"}, wantErr: `invalid value "WARN" for flag -log-level: expected debug, info, warn or error`},
		{args: []string{"-log-level", "trace"}, wantErr: `for flag -log-level`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var errb bytes.Buffer
			o := &options{stderr: &errb}
			fs := newFlagSet(lookup("run"), o)
			err := parseArgs(fs, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(errb.String(), tt.wantErr) {
					t.Errorf("err %v, stderr %q; want %q", err, errb.String(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.logFormat != tt.wantFormat || o.logLevel != tt.wantLevel {
				t.Errorf("format %q level %v, want %q %v", o.logFormat, o.logLevel, tt.wantFormat, tt.wantLevel)
			}
		})
	}
	// A bad value on the command line exits 2 before anything starts.
	if code, _, stderr := runCLI(t, "run", "-log-level", "loud", "-config", "/nonexistent"); code != 2 || !strings.Contains(stderr, "-log-level") {
		t.Errorf("run -log-level loud: exit %d\n%s", code, stderr)
	}
}

// logLevelChange is the plan change of log_level from before to after.
func logLevelChange(before, after string) reconcile.Plan {
	return reconcile.Plan{Changes: []reconcile.Change{{Op: reconcile.SetGlobal, Addr: reconcile.GlobalAddr,
		Attr: "log_level", Before: before, After: after, Impact: reconcile.Hot}}}
}

// TestApplyLogLevel: the flag's level holds until a plan sets log_level;
// the file's level then holds until a plan unsets it, which returns to
// the flag's. Each change is announced under the level that shows it.
func TestApplyLogLevel(t *testing.T) {
	var b bytes.Buffer
	lv := newLogLevel(slog.LevelWarn) // -log-level warn
	d := &daemonState{level: lv, log: newLogger(&b, logJSON, lv, false)}
	steps := []struct {
		plan  reconcile.Plan
		want  slog.Level
		setBy string // of the announcement; "" when the levels hide it
	}{
		{reconcile.Plan{}, slog.LevelWarn, ""},
		{logLevelChange("", "debug"), slog.LevelDebug, "log_level"},
		{logLevelChange("debug", "error"), slog.LevelError, "log_level"}, // announced before it hides Info
		{logLevelChange("error", "info"), slog.LevelInfo, "log_level"},   // announced after it shows Info
		{logLevelChange("info", ""), slog.LevelWarn, "-log-level"},       // back to the flag's, announced first
		{logLevelChange("", "warn"), slog.LevelWarn, ""},                 // Info hidden before and after
	}
	for i, s := range steps {
		b.Reset()
		d.applyLogLevel(s.plan)
		if got := lv.Level(); got != s.want {
			t.Errorf("step %d: level %v, want %v", i, got, s.want)
		}
		recs := jsonRecords(t, b.String())
		if s.setBy == "" {
			if len(recs) != 0 {
				t.Errorf("step %d: announced %v under levels that hide it", i, recs)
			}
			continue
		}
		if len(recs) != 1 || recs[0]["msg"] != "log level" || recs[0]["level"] != "INFO" ||
			recs[0]["log_level"] != levelName(s.want) || recs[0]["set_by"] != s.setBy {
			t.Errorf("step %d: records %v, want one announcement of %s set by %s", i, recs, levelName(s.want), s.setBy)
		}
	}
}

// TestLogChanges: an applied plan is logged one record a change, with
// op, address, attribute, old, new, impact and reason as attributes and
// no padding; secrets are not in it.
func TestLogChanges(t *testing.T) {
	var b bytes.Buffer
	lv := newLogLevel(slog.LevelInfo)
	d := &daemonState{level: lv, log: newLogger(&b, logJSON, lv, false)}
	joe := reconcile.User{Name: "joe", Secret: config.NewSecret("joe-secret-123")}
	plan := reconcile.Plan{Changes: []reconcile.Change{
		{Op: reconcile.AddDevice, Addr: reconcile.DeviceAddr("n1"), After: reconcile.Device{Handler: "vdisk_nullio", Size: 1 << 30}, Impact: reconcile.Hot},
		{Op: reconcile.ResizeDevice, Addr: reconcile.DeviceAddr("disk1"), Attr: "size", Before: int64(1 << 30), After: int64(2 << 30),
			Impact: reconcile.UnitAttention, Reason: "capacity changed"},
		{Op: reconcile.SetChapUsers, Addr: reconcile.TargetAddr("iqn.2026-11.org.example:a"), Attr: "incoming_user",
			After: []reconcile.User{joe}, Impact: reconcile.NextLogin},
	}}
	d.logChanges(plan, 7)
	if strings.Contains(b.String(), "joe-secret-123") {
		t.Fatalf("a secret in the log:\n%s", b.String())
	}
	recs := jsonRecords(t, b.String())
	want := []map[string]any{
		{"op": "AddDevice", "address": "device.n1", "attribute": "", "old": "", "new": `handler = "vdisk_nullio", size = 1GiB`, "impact": "hot", "reason": ""},
		{"op": "ResizeDevice", "address": "device.disk1", "attribute": "size", "old": "1GiB", "new": "2GiB", "impact": "unit-attention", "reason": "capacity changed"},
		{"op": "SetChapUsers", "address": `target["iqn.2026-11.org.example:a"]`, "attribute": "incoming_user", "old": "(none)", "new": `["joe"]`, "impact": "next-login", "reason": ""},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(recs), len(want), b.String())
	}
	for i, w := range want {
		if recs[i]["msg"] != "change applied" || recs[i]["generation"] != 7.0 {
			t.Errorf("record %d: %v", i, recs[i])
		}
		for k, v := range w {
			if recs[i][k] != v {
				t.Errorf("record %d: %s = %q, want %q", i, k, recs[i][k], v)
			}
		}
	}
}

// TestLogFailure: a start that fails says so; a reload that fails names
// its trigger.
func TestLogFailure(t *testing.T) {
	var b bytes.Buffer
	lv := newLogLevel(slog.LevelInfo)
	d := &daemonState{level: lv, log: newLogger(&b, logJSON, lv, false), path: "/etc/scst.hcl"}
	d.logFailure(triggerStart, "errors", []string{"scst.hcl:1,1-2: Unsupported block"})
	d.logFailure(triggerSIGHUP, "err", "portals: address in use")
	recs := jsonRecords(t, b.String())
	if len(recs) != 2 {
		t.Fatalf("records: %v", recs)
	}
	if r := recs[0]; r["msg"] != "start failed" || r["level"] != "ERROR" || r["trigger"] != nil || r["config"] != "/etc/scst.hcl" || r["errors"] == nil {
		t.Errorf("start failure: %v", r)
	}
	if r := recs[1]; r["msg"] != "reload rejected" || r["trigger"] != "sighup" || r["err"] != "portals: address in use" {
		t.Errorf("reload failure: %v", r)
	}
}

// TestBatchWriter: held, the log output gathers records and writes them
// in order, in chunks of batchChunk at most one record over; released,
// it writes the rest and then each record at once again.
func TestBatchWriter(t *testing.T) {
	var calls []int
	var all bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		calls = append(calls, len(p))
		return all.Write(p)
	})
	b := &batchWriter{w: w}
	b.Write([]byte("before\n"))
	b.hold()
	rec := bytes.Repeat([]byte("x"), 1000)
	rec[len(rec)-1] = '\n'
	n := 2*batchChunk/len(rec) + 10
	for range n {
		b.Write(rec)
	}
	if len(calls) != 3 {
		t.Errorf("%d writes while held (after one before), want 2 chunks", len(calls)-1)
	}
	b.release()
	b.Write([]byte("after\n"))
	want := "before\n" + strings.Repeat(string(rec), n) + "after\n"
	if all.String() != want {
		t.Errorf("written %d bytes, want %d in order", all.Len(), len(want))
	}
	if len(calls) != 5 {
		t.Errorf("%d writes in all, want 5 (before, 2 chunks, the rest, after)", len(calls))
	}
	for _, c := range calls[1:3] {
		if c < batchChunk || c >= batchChunk+len(rec) {
			t.Errorf("a chunk of %d bytes, want %d to %d", c, batchChunk, batchChunk+len(rec))
		}
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestChangeRecordsAsSlog: with -log-format json, and text off a
// terminal, logChanges writes the records of a plan itself
// (writeChanges); each must be, but for its time, the very line slog's
// handler writes for it, whatever the strings hold (quotes, '=', control
// characters, invalid UTF-8, U+2028, HTML's special characters, DEL,
// non-ASCII), and nothing is written when the level hides them.
func TestChangeRecordsAsSlog(t *testing.T) {
	odd := "a\"b\\c=d\n\r\t\x01\x1f\x7f <>& \u2028\u2029 \xff\xfe é 日本\u00a0"
	plan := reconcile.Plan{Changes: []reconcile.Change{
		{Op: reconcile.AddDevice, Addr: reconcile.DeviceAddr("n1"), After: reconcile.Device{Handler: "vdisk_nullio", Size: 1 << 30}, Impact: reconcile.Hot},
		{Op: reconcile.SetTargetParam, Addr: reconcile.TargetAddr("iqn.2026-11.org.example:" + odd), Attr: "redirect" + odd,
			Before: odd, After: "x" + odd, Impact: reconcile.NextLogin, Reason: odd},
		{Op: reconcile.ResizeDevice, Addr: reconcile.DeviceAddr("disk " + odd), Attr: "size", Before: int64(1 << 30), After: int64(2 << 30),
			Impact: reconcile.UnitAttention, Reason: "capacity changed"},
		{Op: reconcile.AddLUN, Addr: reconcile.LUNAddr("iqn.2026-11.org.example:t", "g1", 7), After: reconcile.LUN{Device: odd},
			Impact: reconcile.UnitAttention, Reason: "reported luns changed"},
		{Op: reconcile.SetGlobal, Addr: reconcile.GlobalAddr, Attr: "log_level", Before: "", After: "debug", Impact: reconcile.Hot},
	}}
	for _, format := range []string{logJSON, logText} {
		level := map[string]string{logJSON: `","level"`, logText: ` level=`}[format]
		untimed := func(out string) []string {
			var lines []string
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				i := strings.Index(l, level)
				if !strings.HasPrefix(l, `{"time":"`) && !strings.HasPrefix(l, "time=") || i < 0 {
					t.Fatalf("%s: not a record: %q", format, l)
				}
				lines = append(lines, l[i:])
			}
			return lines
		}
		lv := newLogLevel(slog.LevelInfo)
		var want bytes.Buffer
		slow := &daemonState{level: lv, log: newLogger(&want, format, lv, false)}
		slow.logChanges(plan, 12)

		var got bytes.Buffer
		out := &batchWriter{w: &got}
		fast := &daemonState{level: lv, logOut: out, changesFormat: changesFormat(out, format), log: newLogger(out, format, lv, false)}
		if fast.changesFormat != format {
			t.Fatalf("changesFormat(%s) = %q", format, fast.changesFormat)
		}
		fast.logChanges(plan, 12)
		g, w := untimed(got.String()), untimed(want.String())
		if len(g) != len(w) {
			t.Fatalf("%s: %d records, want %d:\n%s", format, len(g), len(w), got.String())
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s: record %d:\n got %s\nwant %s", format, i, g[i], w[i])
			}
		}
		stamp := strings.TrimPrefix(strings.TrimPrefix(got.String(), `{"time":"`), "time=")
		if ts, err := time.Parse(logTimeFormat, stamp[:strings.IndexAny(stamp, `" `)]); err != nil || time.Since(ts) > time.Minute {
			t.Errorf("%s: time %v, %v", format, ts, err)
		}

		got.Reset()
		lv.Set(slog.LevelWarn)
		fast.logChanges(plan, 13)
		if got.Len() != 0 {
			t.Errorf("%s: records written at level warn:\n%s", format, got.String())
		}
	}
	if recs := jsonRecords(t, func() string {
		var b bytes.Buffer
		writeChanges(&b, logJSON, plan, 1)
		return b.String()
	}()); recs[1]["reason"] != strings.ReplaceAll(odd, "\xff\xfe", "\uFFFD\uFFFD") {
		t.Errorf("reason read back as %q", recs[1]["reason"])
	}
}

// TestChangeRecordEscaping: every byte below 0x80 and the runes around
// the escaped or quoted ones come out of appendJSONString and
// appendTextValue as from slog's JSON and text handlers.
func TestChangeRecordEscaping(t *testing.T) {
	var all []string
	for c := range 0x80 {
		all = append(all, "x"+string(rune(c))+"y", string(rune(c)))
	}
	all = append(all, "\u2027\u2028\u2029\u202a", "\xc3", "\xed\xa0\x80", "\U0001F600", "", "a\u00a0b", "a\u3000b", "a\u200bb", "\\")
	for _, s := range all {
		checkEscapedAsSlog(t, s)
	}
}

// FuzzChangeRecordEscaping holds scstd's own encoding of a record's
// values to slog's JSON and text handlers for any string.
func FuzzChangeRecordEscaping(f *testing.F) {
	for _, s := range []string{"", "disk1", "a b", "x\"y", "\xc3", "\u2028", "k=v", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(checkEscapedAsSlog)
}

// checkEscapedAsSlog compares appendJSONString and appendTextValue of s
// with what slog's handlers write for it.
func checkEscapedAsSlog(t *testing.T, s string) {
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("", "k", s)
	line := b.String()
	i := strings.Index(line, `"k":"`)
	want := line[i+len(`"k":"`) : len(line)-len("\"}\n")]
	if got := string(appendJSONString(nil, s)); got != want {
		t.Errorf("JSON %q: got %s, want %s", s, got, want)
	}
	b.Reset()
	slog.New(slog.NewTextHandler(&b, nil)).Info("", "k", s)
	line = b.String()
	want = line[strings.Index(line, " k=")+len(" k=") : len(line)-1]
	if got := string(appendTextValue(nil, s)); got != want {
		t.Errorf("text %q: got %s, want %s", s, got, want)
	}
}
