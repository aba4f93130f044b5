package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Keys of the figures measured outside the systems' columns.
const (
	caseLoopback = "loopback"
	caseIdle     = "idle-sessions"
	caseScale    = "config-scale"
	sysIperf     = "iperf3"
	sysScstd     = "scstd"
)

// tableRow is one line of the main table: a figure per system.
type tableRow struct {
	Label string
	// Value is the row's figure for a system; ok false prints "-".
	Value  func(r *results, sys string) (float64, bool)
	Format func(float64) string
	// NoRatio leaves the ratio columns empty (for rows that are ratios).
	NoRatio bool
}

func fig(cas, metric string) func(*results, string) (float64, bool) {
	return func(r *results, sys string) (float64, bool) { return r.median(cas, sys, metric) }
}

// ofLoopback is a throughput figure as a fraction of the loopback ceiling.
func ofLoopback(cas string) func(*results, string) (float64, bool) {
	return func(r *results, sys string) (float64, bool) {
		v, ok := r.median(cas, sys, "mbps")
		l, lok := r.median(caseLoopback, sysIperf, "mbps")
		return v / l, ok && lok && l > 0
	}
}

// ofSingle is the many-sessions figure over the single-session one.
func ofSingle(r *results, sys string) (float64, bool) {
	many, ok := r.median(caseManySessions, sys, "iops")
	one, ok1 := r.median("4k-qd32-read", sys, "iops")
	return many / one, ok && ok1 && one > 0
}

func tableRows() []tableRow {
	rows := []tableRow{}
	for _, c := range ioCases {
		if c.Size >= 1<<20 {
			rows = append(rows,
				tableRow{Label: c.Label + " MB/s", Value: fig(c.Name, "mbps"), Format: fmtInt},
				tableRow{Label: "  ÷ loopback ceiling", Value: ofLoopback(c.Name), Format: fmtPct, NoRatio: true})
		} else {
			rows = append(rows, tableRow{Label: c.Label + " IOPS", Value: fig(c.Name, "iops"), Format: fmtKilo})
		}
	}
	for _, c := range ioCases {
		rows = append(rows, tableRow{Label: "target CPU µs / " + c.Label, Value: fig(c.Name, "target_cpu_us_per_io"), Format: fmtF1})
	}
	rows = append(rows,
		tableRow{Label: "initiator CPU µs / 4 KiB QD32 read", Value: fig("4k-qd32-read", "initiator_cpu_us_per_io"), Format: fmtF1},
		tableRow{Label: "target read+write calls / 4 KiB read", Value: fig("4k-qd32-read", "target_syscalls_per_io"), Format: fmtF2},
		tableRow{Label: "target read+write calls / 4 KiB write", Value: fig("4k-qd32-write", "target_syscalls_per_io"), Format: fmtF2},
		tableRow{Label: "target context switches / 4 KiB read", Value: fig("4k-qd32-read", "target_ctxsw_per_io"), Format: fmtF2},
		tableRow{Label: "target context switches / 4 KiB write", Value: fig("4k-qd32-write", "target_ctxsw_per_io"), Format: fmtF2})
	for _, c := range latencyCases {
		rows = append(rows,
			tableRow{Label: c.Label + " p50 µs", Value: fig(c.Name, "p50_us"), Format: fmtF1},
			tableRow{Label: c.Label + " p99 µs", Value: fig(c.Name, "p99_us"), Format: fmtF1})
	}
	return append(rows,
		tableRow{Label: "16 sessions 4 KiB QD32 read IOPS", Value: fig(caseManySessions, "iops"), Format: fmtKilo},
		tableRow{Label: "  ÷ 1 session", Value: ofSingle, Format: fmtRatio, NoRatio: true},
		tableRow{Label: "target CPU µs / I/O, 16 sessions", Value: fig(caseManySessions, "target_cpu_us_per_io"), Format: fmtF1},
	)
}

// goal is one target of issue 13, checked against a figure.
type goal struct {
	Label  string
	Value  func(r *results) (float64, bool)
	Format func(float64) string
	// Op is "<=", "<" or ">=" against Want; "" is a figure without a goal.
	Op   string
	Want float64
}

func one(cas, sys, metric string) func(*results) (float64, bool) {
	return func(r *results) (float64, bool) { return r.median(cas, sys, metric) }
}

func goals() []goal {
	ms := func(metric string) func(*results) (float64, bool) { return one(caseScale, sysScstd, metric) }
	return []goal{
		{"nullio 1 MiB QD8 read ÷ loopback ceiling", func(r *results) (float64, bool) {
			return ofLoopback("1m-qd8-read")(r, "scstd-nullio")
		}, fmtPct, ">=", 0.9},
		{"fileio ÷ nullio, 1 MiB QD8 read", func(r *results) (float64, bool) {
			f, ok := r.median("1m-qd8-read", "scstd-fileio", "mbps")
			n, ok2 := r.median("1m-qd8-read", "scstd-nullio", "mbps")
			return f / n, ok && ok2 && n > 0
		}, fmtPct, ">=", 0.9},
		{"target CPU µs per 4 KiB read, nullio", one("4k-qd32-read", "scstd-nullio", "target_cpu_us_per_io"), fmtF1, "<=", 8},
		{"target CPU µs per 4 KiB read, fileio", one("4k-qd32-read", "scstd-fileio", "target_cpu_us_per_io"), fmtF1, "<=", 10},
		{"target CPU µs per 4 KiB write, fileio", one("4k-qd32-write", "scstd-fileio", "target_cpu_us_per_io"), fmtF1, "<=", 12},
		{"16 sessions ÷ 1 session, 4 KiB QD32 read, nullio", func(r *results) (float64, bool) {
			return ofSingle(r, "scstd-nullio")
		}, fmtRatio, ">=", 1},
		{"RSS per idle session", one(caseIdle, sysScstd, "bytes_per_session"), fmtKiB, "<=", 64 << 10},
		{"10,000 LUNs: scstd validate", ms("validate_ms"), fmtMs, "<", 150},
		{"10,000 LUNs: start to portal accepting", ms("start_portal_ms"), fmtMs, "<", 500},
		{"10,000 LUNs: start to \"scstd running\"", ms("start_running_ms"), fmtMs, "<", 500},
		{"10,000 LUNs: reload of one LUN, scstd reload", ms("reload_admin_ms"), fmtMs, "<", 100},
		{"10,000 LUNs: reload of one LUN, rename → applied", ms("reload_watch_ms"), fmtMs, "<", 100},
		{"10,000 LUNs: reload that changes nothing", ms("reload_unchanged_ms"), fmtMs, "", 0},
		{"10,000 LUNs: RSS per configured LUN", ms("bytes_per_lun"), fmtKiB, "<=", 4 << 10},
		{"10,000 LUNs: peak RSS per configured LUN", ms("peak_bytes_per_lun"), fmtKiB, "", 0},
		{"PR OUT, one daemon", one(caseCluster, "scstd", "pr_out_ms"), fmtMs2, "", 0},
		{"PR OUT, two gateways and etcd", one(caseCluster, "scstd-cluster", "pr_out_ms"), fmtMs2, "", 0},
		{"COMPARE AND WRITE, one daemon", one(caseCluster, "scstd", "caw_ms"), fmtMs2, "", 0},
		{"COMPARE AND WRITE, two gateways, token held", one(caseCluster, "scstd-cluster", "caw_ms"), fmtMs2, "", 0},
		{"COMPARE AND WRITE, two gateways, token moving", one(caseCluster, "scstd-cluster", "caw_moving_ms"), fmtMs2, "", 0},
	}
}

// met says whether v reaches g.
func (g goal) met(v float64) string {
	ok := false
	switch g.Op {
	case "<=":
		ok = v <= g.Want
	case "<":
		ok = v < g.Want
	case ">=":
		ok = v >= g.Want
	default:
		return ""
	}
	if ok {
		return "yes"
	}
	return "no"
}

// printReport writes the table of medians: one column per system, the
// ratios of scstd (without variant) to tgtd, and the goals.
func printReport(w io.Writer, r *results, systems []*system) {
	byKey := map[string]*system{}
	for _, s := range systems {
		byKey[s.Key] = s
	}
	type ratioCol struct{ head, num, den string }
	var ratios []ratioCol
	for _, k := range []string{"scstd-fileio", "scstd-nullio"} {
		if s := byKey[k]; s != nil && byKey[s.Peer] != nil {
			ratios = append(ratios, ratioCol{strings.TrimPrefix(s.Name, "scstd ") + "÷" + strings.TrimPrefix(byKey[s.Peer].Name, "tgtd "), k, s.Peer})
		}
	}
	const labelW, colW = 36, 14
	// A system's column is wider when its name needs it.
	width := func(s *system) int { return max(colW, utf8.RuneCountInString(s.Name)+2) }
	cell := func(s string, width int) string {
		return strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s))) + s
	}
	line := pad("figure (median)", labelW)
	for _, s := range systems {
		line += cell(s.Name, width(s))
	}
	for _, c := range ratios {
		line += cell(c.head, colW)
	}
	if len(systems) > 0 {
		fmt.Fprintln(w, line)
	}
	for _, row := range tableRows() {
		line := pad(row.Label, labelW)
		any := false
		for _, s := range systems {
			v, ok := row.Value(r, s.Key)
			if ok {
				line += cell(row.Format(v), width(s))
				any = true
			} else {
				line += cell("-", width(s))
			}
		}
		if !any {
			continue
		}
		for _, c := range ratios {
			a, ok := row.Value(r, c.num)
			b, ok2 := row.Value(r, c.den)
			if row.NoRatio || !ok || !ok2 || b == 0 {
				line += cell("", colW)
				continue
			}
			line += cell(fmtRatio(a/b), colW)
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if len(systems) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, pad("issue 13's goals", 52)+cell("measured", 12)+cell("goal", 12)+cell("met", 6))
	for _, g := range goals() {
		v, ok := g.Value(r)
		if !ok {
			continue
		}
		want := ""
		if g.Op != "" {
			want = strings.Replace(strings.Replace(g.Op, "<=", "≤", 1), ">=", "≥", 1) + " " + g.Format(g.Want)
		}
		fmt.Fprintln(w, strings.TrimRight(pad(g.Label, 52)+cell(g.Format(v), 12)+cell(want, 12)+cell(g.met(v), 6), " "))
	}
}

func pad(s string, width int) string {
	return s + strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s)))
}

func fmtKilo(v float64) string  { return fmt.Sprintf("%.1fk", v/1000) }
func fmtF1(v float64) string    { return fmt.Sprintf("%.1f", v) }
func fmtF2(v float64) string    { return fmt.Sprintf("%.2f", v) }
func fmtPct(v float64) string   { return fmt.Sprintf("%.0f%%", v*100) }
func fmtRatio(v float64) string { return fmt.Sprintf("%.2f×", v) }
func fmtMs(v float64) string    { return fmt.Sprintf("%.0f ms", v) }
func fmtKiB(v float64) string   { return fmt.Sprintf("%.1f KiB", v/1024) }

// fmtInt writes v rounded, with thousands separated by commas.
func fmtInt(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
