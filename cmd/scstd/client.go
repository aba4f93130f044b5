package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/config"
)

// Exit codes of `scstd plan`.
const (
	planNoChanges = 0
	planError     = 1
	planChanges   = 2
)

func cmdReload(o *options, fs *flag.FlagSet) (int, error) {
	if fs.NArg() != 0 {
		return 2, errUsage
	}
	r, err := admin.NewClient(o.adminSocket).Reload(o.force)
	if err != nil {
		return 1, err
	}
	if !r.OK {
		if r.Diagnostics != "" {
			fmt.Fprint(o.stderr, r.Diagnostics)
		}
		return 1, fmt.Errorf("reload rejected, the daemon keeps running generation %d: %s", r.Generation, r.Error)
	}
	printReload(o.stdout, r)
	for _, w := range r.Warnings {
		fmt.Fprintf(o.stderr, "warning: %s\n", printable(w))
	}
	return 0, nil
}

// printReload says what the latest reload applied and by which trigger.
// When this reload found nothing to do because another one (the file
// watch, typically) already applied the file as it is, that one's plan is
// what the administrator wants to see.
func printReload(w io.Writer, r admin.ReloadReply) {
	shown := r
	if r.Changes == 0 && r.AlreadyApplied != nil {
		shown = *r.AlreadyApplied
		fmt.Fprintf(w, "already applied %s at %s, generation %d:\n", triggerPhrase(shown.Trigger),
			shown.Time.Local().Format(time.TimeOnly), shown.Generation)
	} else {
		forced := ""
		if r.Forced {
			forced = " (forced)"
		}
		fmt.Fprintf(w, "applied %s%s at %s, generation %d:\n", triggerPhrase(r.Trigger), forced,
			r.Time.Local().Format(time.TimeOnly), r.Generation)
	}
	printPlan(w, shown.Changes, shown.Plan)
	fmt.Fprintf(w, "applied: generation %d, config %s\n", r.Generation, shortHash(r.ConfigHash))
}

func cmdPlan(o *options, fs *flag.FlagSet) (int, error) {
	if fs.NArg() != 0 {
		return 2, errUsage
	}
	// Syntax and reference checks need no daemon: do them first, so that
	// a broken file is reported the same way with or without one. The
	// storage checks need to know what the daemon serves: it does them.
	l := config.NewLoader()
	if _, diags := l.Load(o.config); diags.HasErrors() {
		l.WriteDiagnostics(o.stderr, diags)
		return planError, nil
	}
	abs, err := filepath.Abs(o.config)
	if err != nil {
		return planError, err
	}
	r, err := admin.NewClient(o.adminSocket).Plan(abs)
	if err != nil {
		return planError, err
	}
	printDaemon(o.stdout, o.adminSocket, abs, r)
	if r.Error != "" {
		fmt.Fprint(o.stderr, r.Diagnostics)
		return planError, fmt.Errorf("%s", r.Error)
	}
	printPlan(o.stdout, r.Changes, r.Plan)
	for _, f := range r.EmptyFiles {
		fmt.Fprintf(o.stdout, "note: %s is empty: SIGHUP, the file watch and `scstd reload` ignore it; only `scstd reload -force` applies it.\n", f)
	}
	if r.Changes > 0 && r.Daemon.Watch && r.Daemon.Config == abs {
		fmt.Fprintln(o.stdout, "note: the daemon watches this file and applies edits on its own (run it with -watch=false to apply them only on SIGHUP or `scstd reload`).")
	}
	if r.Changes == 0 {
		return planNoChanges, nil
	}
	return planChanges, nil
}

// printDaemon says which daemon a plan was compared with.
func printDaemon(w io.Writer, socket, path string, r admin.PlanReply) {
	d := r.Daemon
	last := ""
	if !d.LastReload.Time.IsZero() {
		outcome := "applied"
		if !d.LastReload.OK {
			outcome = "rejected"
		}
		last = fmt.Sprintf(", last reload %s %s at %s", outcome, triggerPhrase(d.LastReload.Trigger),
			d.LastReload.Time.Local().Format(time.TimeOnly))
	}
	fmt.Fprintf(w, "Compared with the daemon at %s (pid %d): config %s, generation %d%s.\n",
		socket, d.PID, d.Config, d.Generation, last)
	if d.Config != path {
		fmt.Fprintf(w, "note: the daemon reloads from %s, not from %s.\n", d.Config, path)
	}
}

func printPlan(w io.Writer, changes int, plan string) {
	if changes == 0 {
		fmt.Fprintln(w, "No changes: the running engine matches the configuration.")
		return
	}
	for _, line := range strings.SplitAfter(plan, "\n") {
		fmt.Fprint(w, printable(strings.TrimSuffix(line, "\n")))
		if strings.HasSuffix(line, "\n") {
			fmt.Fprintln(w)
		}
	}
	if !strings.HasSuffix(plan, "\n") {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%d change(s).\n", changes)
}

func cmdStatus(o *options, fs *flag.FlagSet) (int, error) {
	if fs.NArg() != 0 {
		return 2, errUsage
	}
	raw, err := admin.NewClient(o.adminSocket).Status()
	if err != nil {
		return 1, err
	}
	if o.json {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return 1, err
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintln(o.stdout, string(b))
		return 0, nil
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return 1, err
	}
	printTree(o.stdout, tree, 0)
	return 0, nil
}

// printTree prints a JSON tree as indented "key: value" lines, the way
// SCST's sysfs reads: scalars inline, objects and lists nested.
func printTree(w io.Writer, v any, depth int) {
	indent := strings.Repeat("  ", depth)
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := t[k].(string); ok && strings.Contains(strings.TrimRight(s, "\n"), "\n") {
				fmt.Fprintf(w, "%s%s: |\n", indent, printable(k))
				for _, line := range splitLines(s) {
					fmt.Fprintf(w, "%s  %s\n", indent, printable(line))
				}
				continue
			}
			if isScalar(t[k]) {
				fmt.Fprintf(w, "%s%s: %s\n", indent, printable(k), scalar(t[k]))
				continue
			}
			if isEmpty(t[k]) {
				continue
			}
			fmt.Fprintf(w, "%s%s:\n", indent, printable(k))
			printTree(w, t[k], depth+1)
		}
	case []any:
		for _, e := range t {
			if isScalar(e) {
				fmt.Fprintf(w, "%s- %s\n", indent, scalar(e))
				continue
			}
			fmt.Fprintf(w, "%s-\n", indent)
			printTree(w, e, depth+1)
		}
	default:
		fmt.Fprintf(w, "%s%s\n", indent, scalar(v))
	}
}

func isScalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}

func scalar(v any) string {
	if v == nil {
		return "-"
	}
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		return fmt.Sprintf("%d", int64(f))
	}
	return printable(fmt.Sprint(v))
}

// printable escapes what a terminal would act on instead of showing: C0
// and C1 control characters, DEL, bidirectional overrides and invalid
// UTF-8, as \xNN or \uNNNN. Names come from initiators; a crafted one
// must not clear the screen or forge a line.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if unprintable(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unprintable(r) && r < 0x100:
			fmt.Fprintf(&b, "\\x%02x", r)
		case unprintable(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unprintable reports whether printable escapes r.
func unprintable(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

func cmdSession(o *options, fs *flag.FlagSet) (int, error) {
	if fs.NArg() != 3 || fs.Arg(0) != "close" {
		return 2, errUsage
	}
	r, err := admin.NewClient(o.adminSocket).CloseSession(fs.Arg(1), fs.Arg(2))
	if err != nil {
		return 1, err
	}
	if r.Error != "" {
		return 1, fmt.Errorf("%s", r.Error)
	}
	fmt.Fprintf(o.stdout, "closed %d session(s) of %s on %s\n", r.Closed, fs.Arg(2), fs.Arg(1))
	return 0, nil
}

func cmdCluster(o *options, fs *flag.FlagSet) (int, error) {
	if fs.NArg() != 2 {
		return 2, errUsage
	}
	switch fs.Arg(0) {
	case "drain", "undrain", "evict":
	default:
		return 2, errUsage
	}
	r, err := admin.NewClient(o.adminSocket).Cluster(fs.Arg(0), fs.Arg(1))
	if err != nil {
		return 1, err
	}
	if r.Error != "" {
		return 1, fmt.Errorf("%s", r.Error)
	}
	fmt.Fprintln(o.stdout, r.Message)
	return 0, nil
}
