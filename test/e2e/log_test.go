package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/testtarget"
)

// logConfig is one nullio LUN, open to every initiator, and (for the
// failed CHAP login) a target that needs CHAP. Tests put log_level in
// front of it.
const logConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_nullio" {
  device "n0" { size = "16MiB" }
}

target "iqn.2026-11.org.example:log" {
  lun "0" { device = "n0" }
}

target "iqn.2026-11.org.example:chap" {
  incoming_user "alice" { secret = "alice-log-secret-01" }
  lun "0" { device = "n0" }
}
`

// logRecord is one line of `scstd run -log-format json`.
type logRecord map[string]any

func (r logRecord) str(k string) string { s, _ := r[k].(string); return s }

// rfc3339Millis is a record's time: a date, a time with milliseconds and
// a zone.
var rfc3339Millis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$`)

// jsonLog parses the daemon's stderr: every line must be a JSON object
// with time (RFC 3339 with milliseconds), level and msg.
func jsonLog(t *testing.T, out string) []logRecord {
	t.Helper()
	var recs []logRecord
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var r logRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("stderr line %d is not a JSON object: %q", i+1, line)
		}
		if !rfc3339Millis.MatchString(r.str("time")) || r.str("level") == "" || r.str("msg") == "" {
			t.Fatalf("stderr line %d lacks time (RFC 3339, ms), level or msg: %q", i+1, line)
		}
		recs = append(recs, r)
	}
	return recs
}

// discoveryLogged reports whether the daemon logged the debug record of a
// discovery session by initiator.
func discoveryLogged(recs []logRecord, initiator string) bool {
	for _, r := range recs {
		if r.str("msg") == "discovery session" && r.str("initiator") == initiator {
			return r.str("level") == "DEBUG"
		}
	}
	return false
}

// TestLogJSONAndLevel: with -log-format json every line the daemon writes
// is a JSON object with time, level and msg. The level follows the flag
// until the file sets log_level, follows the file on each reload, and
// returns to the flag's when the file drops it: debug records (a
// discovery session) appear and disappear with it. Each reload's plan is
// logged one record a change, with its fields.
func TestLogJSONAndLevel(t *testing.T) {
	requireTools(t, "iscsi-ls")
	tgt := testtarget.New(t, logConfig)
	// A daemon's run, step by step: each step (but the first) reloads
	// with extra in front of the configuration, then discovers as an
	// initiator of its own, whose discovery session is logged at debug.
	type step struct {
		name  string
		extra string // log_level, or "" for none
		level string // the level in force, as status reports it
		debug bool   // whether debug records are logged
	}
	var recs []logRecord
	run := func(flags []string, steps []step) {
		t.Helper()
		tgt.SetRunFlags(flags...)
		tgt.Start()
		for i, s := range steps {
			if i > 0 {
				text, err := testtarget.Render(s.extra+"\n"+logConfig, tgt.Params())
				if err != nil {
					t.Fatal(err)
				}
				if r := tgt.Reconfigure(text); !r.OK {
					t.Fatalf("%s: reload: %s\n%s", s.name, r.Error, r.Diagnostics)
				}
			}
			if st := daemonLogLevel(t, tgt); st != s.level {
				t.Errorf("%s: status says log_level %q", s.name, st)
			}
			initiator := "iqn.2026-11.org.example:" + strings.ReplaceAll(s.name, " ", "-")
			if out, err := run(t, toolTimeout, "iscsi-ls", "-i", initiator, tgt.URL()); err != nil {
				t.Fatalf("iscsi-ls as %s: %v\n%s", initiator, err, out)
			}
		}
		// Once the daemon has exited, everything it wrote is read.
		tgt.Stop()
		got := jsonLog(t, tgt.Stderr())
		for _, s := range steps {
			initiator := "iqn.2026-11.org.example:" + strings.ReplaceAll(s.name, " ", "-")
			if logged := discoveryLogged(got, initiator); logged != s.debug {
				t.Errorf("%s: debug record of the discovery session logged %v, want %v", s.name, logged, s.debug)
			}
		}
		recs = append(recs, got...)
	}
	run([]string{"-log-format", "json"}, []step{
		{name: "flag default info", level: "info", debug: false},
		{name: "file debug", extra: `log_level = "debug"`, level: "debug", debug: true},
		{name: "file warn", extra: `log_level = "warn"`, level: "warn", debug: false},
		{name: "file drops it", extra: "", level: "info", debug: false},
	})
	run([]string{"-log-format", "json", "-log-level", "debug"}, []step{
		{name: "flag debug", level: "debug", debug: true},
		{name: "file info wins over the flag", extra: `log_level = "info"`, level: "info", debug: false},
		{name: "back to the flag", extra: "", level: "debug", debug: true},
	})

	// The change of log_level, as the plan record of the reload that
	// applied it: file info over the flag's debug.
	var change logRecord
	for _, r := range recs {
		if r.str("msg") == "change applied" && r.str("attribute") == "log_level" && r.str("new") == "info" {
			change = r
		}
	}
	want := map[string]string{"level": "INFO", "op": "SetGlobal", "address": "iscsi", "old": "(unset)", "impact": "hot", "reason": ""}
	for k, v := range want {
		if change.str(k) != v {
			t.Errorf("plan record of log_level: %s = %q, want %q (record %v)", k, change.str(k), v, change)
		}
	}
	// Every plan record carries the fields, unpadded.
	for _, r := range recs {
		if r.str("msg") != "change applied" {
			continue
		}
		for _, k := range []string{"op", "address", "attribute", "old", "new", "impact", "reason", "generation"} {
			if _, ok := r[k]; !ok {
				t.Errorf("plan record without %s: %v", k, r)
			}
		}
		if strings.Contains(r.str("address"), "  ") || strings.HasSuffix(r.str("new"), " ") {
			t.Errorf("padded plan record: %v", r)
		}
	}
}

// TestLogStartFailed: a start that fails is logged as a failed start, in
// the format asked for: JSON lines only, no text.
func TestLogStartFailed(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "scst.hcl")
	writeFile(t, cfg, "target {\n")
	out, code := testtarget.Run(t, "run", "-config", cfg, "-admin-socket", filepath.Join(dir, "a.sock"), "-log-format", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	var failed logRecord
	for _, r := range jsonLog(t, out) {
		if r.str("level") == "ERROR" {
			failed = r
		}
	}
	if failed.str("msg") != "start failed" || failed["trigger"] != nil || failed.str("config") != cfg ||
		!strings.Contains(strings.Join(toStrings(failed["errors"]), "\n"), cfg+":1,8-9: Unclosed configuration block") {
		t.Errorf("error record %v, want msg=start failed with the config's errors and no trigger", failed)
	}

	// In text, the diagnostics are printed with their source line, and the
	// record says the same.
	out, code = testtarget.Run(t, "run", "-config", cfg, "-admin-socket", filepath.Join(dir, "a.sock"))
	if code != 1 || !strings.Contains(out, cfg+":1:8: error: Unclosed configuration block") ||
		!regexp.MustCompile(`(?m)^time=\S+ level=ERROR msg="start failed" config=`).MatchString(out) || strings.Contains(out, "reload rejected") {
		t.Errorf("text: exit %d\n%s", code, out)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestLogLoginRefused: a login with a wrong CHAP secret is one WARN
// record naming the target, the initiator, its address and the reason,
// and never the secrets.
func TestLogLoginRefused(t *testing.T) {
	requireTools(t, "iscsi-inq")
	tgt := testtarget.New(t, logConfig)
	tgt.SetRunFlags("-log-format", "json")
	tgt.Start()
	const initiator = "iqn.2026-11.org.example:wrong-secret"
	const wrong = "not-alices-secret-7"
	url := chapURL(tgt.Portal(), "alice", wrong, "/iqn.2026-11.org.example:chap/0", "", "")
	if out, err := run(t, toolTimeout, "iscsi-inq", "-i", initiator, url); err == nil {
		t.Fatalf("iscsi-inq with a wrong secret logged in:\n%s", out)
	}
	tgt.Stop()
	out := tgt.Stderr()
	if strings.Contains(out, wrong) || strings.Contains(out, "alice-log-secret-01") {
		t.Fatalf("a secret in the log:\n%s", out)
	}
	var refused []logRecord
	for _, r := range jsonLog(t, out) {
		if r.str("msg") == "login refused" {
			refused = append(refused, r)
		}
	}
	if len(refused) != 1 {
		t.Fatalf("%d login refused records, want 1:\n%s", len(refused), out)
	}
	r := refused[0]
	for k, want := range map[string]string{"level": "WARN", "target": "iqn.2026-11.org.example:chap", "initiator": initiator,
		"status": "AUTHENTICATION_FAILURE", "chap_user": "alice"} {
		if r.str(k) != want {
			t.Errorf("%s = %q, want %q (record %v)", k, r.str(k), want, r)
		}
	}
	if !strings.HasPrefix(r.str("remote"), tgt.Params().Host+":") || r.str("reason") == "" {
		t.Errorf("remote %q (want the initiator's address), reason %q", r.str("remote"), r.str("reason"))
	}
}

// daemonLogLevel is the level the daemon's status reports.
func daemonLogLevel(t *testing.T, tgt *testtarget.Target) string {
	t.Helper()
	raw, err := tgt.Admin().Status()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		LogLevel string `json:"log_level"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st.LogLevel
}
