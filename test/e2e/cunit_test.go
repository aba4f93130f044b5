package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// This file reads iscsi-test-cu's output. iscsi-test-cu registers every
// family's suites with CUnit in order (ALL, SCSI, iSCSI, LINUX), and CUnit's
// basic mode prints "Suite: NAME" and "  Test: NAME ..." without the family,
// followed by the test's own log lines and the verdict, "passed" or "FAILED"
// at the start of a line. libiscsi logs "[SKIPPED] why" and then lets the
// test pass, so CUnit counts skipped tests as passed; this reader keeps them
// apart. The family of the k-th "Suite: S" is the k-th family whose listing
// (iscsi-test-cu -l) contains suite S.

// Outcome is what became of one iscsi-test-cu test.
type Outcome int

// Outcomes of a test.
const (
	Passed  Outcome = iota // ran and passed
	Skipped                // passed after logging [SKIPPED]: the feature is absent
	Failed                 // CUnit printed FAILED
	NotRun                 // listed but no verdict: the run stopped or the suite's setup failed
)

var outcomeNames = [...]string{Passed: "passed", Skipped: "skipped", Failed: "failed", NotRun: "not run"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// CUTest names one test: FAMILY.SUITE.TEST.
type CUTest struct {
	Family, Suite, Name string
}

func (c CUTest) String() string { return c.Family + "." + c.Suite + "." + c.Name }

// CUResult is the outcome of one test and the lines that explain it.
type CUResult struct {
	CUTest
	Outcome Outcome
	// Detail holds the test's first log line, its [SKIPPED] or [FAILED]
	// messages and CUnit's failed assertions, one per line, without
	// repeats.
	Detail string
}

// CUSummary is CUnit's own count from its "Run Summary" table; Found is
// false when the run ended before printing it.
type CUSummary struct {
	Found                                bool
	Total, Ran, Passed, Failed, Inactive int
}

// ParseCUList reads `iscsi-test-cu -l`: lines FAMILY, FAMILY.SUITE and
// FAMILY.SUITE.TEST, in registration order. It returns the tests.
func ParseCUList(out string) []CUTest {
	var tests []CUTest
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), ".")
		if len(f) == 3 && f[0] != "" && f[1] != "" && f[2] != "" {
			tests = append(tests, CUTest{Family: f[0], Suite: f[1], Name: f[2]})
		}
	}
	return tests
}

// maxDetail bounds the lines kept per test: a failing loop may log the same
// complaint hundreds of times.
const maxDetail = 12

var (
	reSuite   = regexp.MustCompile(`^Suite: (\S+)`)
	reTest    = regexp.MustCompile(`^  Test: (\S+) \.\.\.(.*)$`)
	reAssert  = regexp.MustCompile(`^\s+\d+\. (\S+:\d+)`)
	reSummary = regexp.MustCompile(`^\s+tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`)
)

// ParseCURun reads the output of an iscsi-test-cu run of the tests in list
// and returns one result per listed test, in list order, followed by any
// test the run printed that the listing lacks.
func ParseCURun(list []CUTest, out string) ([]CUResult, CUSummary) {
	results := make([]CUResult, len(list))
	index := make(map[CUTest]int, len(list))
	families := map[string][]string{} // suite → families in registration order
	for i, c := range list {
		results[i] = CUResult{CUTest: c, Outcome: NotRun}
		index[c] = i
		fs := families[c.Suite]
		if len(fs) == 0 || fs[len(fs)-1] != c.Family {
			families[c.Suite] = append(fs, c.Family)
		}
	}
	seen := map[string]int{} // suite → how often "Suite: S" was printed

	var (
		family, suite string
		cur           = -1 // index of the current test
		pending       bool // the current test has no verdict yet
		skipped       bool // the current test logged [SKIPPED]
		sum           CUSummary
		detail        []string
	)
	flush := func() {
		if cur >= 0 && len(detail) > 0 {
			results[cur].Detail = strings.Join(detail, "\n")
		}
		detail = nil
	}
	note := func(s string) {
		if s == "" || slices.Contains(detail, s) {
			return
		}
		if len(detail) == maxDetail {
			detail = append(detail, "...")
		}
		if len(detail) < maxDetail {
			detail = append(detail, s)
		}
	}
	text := func(s string) {
		if cur < 0 {
			return
		}
		trimmed := strings.TrimSpace(s)
		switch {
		case pending && strings.HasPrefix(s, "passed"):
			pending = false
			results[cur].Outcome = Passed
			if skipped {
				results[cur].Outcome = Skipped
			}
		case pending && strings.HasPrefix(s, "FAILED"):
			pending = false
			results[cur].Outcome = Failed
		case pending && strings.Contains(s, "[SKIPPED]"):
			skipped = true
			note(trimmed)
		case pending && (strings.Contains(s, "[FAILED]") || len(detail) == 0):
			// The [FAILED] lines, and the test's first log line, which
			// often says what it checked.
			note(trimmed)
		case !pending && results[cur].Outcome == Failed && reAssert.MatchString(s):
			// "  12. file.c:56  - CU_ASSERT..." without its number, so
			// that an assertion failed in a loop is kept once.
			note(reAssert.ReplaceAllString(s, "$1"))
		}
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := reSuite.FindStringSubmatch(line); m != nil {
			flush()
			suite = m[1]
			family = "?"
			if fs := families[suite]; seen[suite] < len(fs) {
				family = fs[seen[suite]]
			}
			seen[suite]++
			cur, pending = -1, false
			continue
		}
		if m := reTest.FindStringSubmatch(line); m != nil && suite != "" {
			flush()
			key := CUTest{Family: family, Suite: suite, Name: m[1]}
			i, ok := index[key]
			if !ok {
				results = append(results, CUResult{CUTest: key, Outcome: NotRun})
				i = len(results) - 1
				index[key] = i
			}
			cur, pending, skipped = i, true, false
			text(m[2])
			continue
		}
		if m := reSummary.FindStringSubmatch(line); m != nil {
			flush()
			cur = -1
			n := make([]int, 5)
			for i := range n {
				n[i], _ = strconv.Atoi(m[i+1])
			}
			sum = CUSummary{Found: true, Total: n[0], Ran: n[1], Passed: n[2], Failed: n[3], Inactive: n[4]}
			continue
		}
		text(line)
	}
	flush()
	return results, sum
}

// SuiteCount is the tally of one FAMILY.SUITE.
type SuiteCount struct {
	Family, Suite string
	Counts        [len(outcomeNames)]int
}

// Tally counts outcomes per suite, in the order the suites first appear.
func Tally(results []CUResult) []SuiteCount {
	var out []SuiteCount
	at := map[[2]string]int{}
	for _, r := range results {
		k := [2]string{r.Family, r.Suite}
		i, ok := at[k]
		if !ok {
			out = append(out, SuiteCount{Family: r.Family, Suite: r.Suite})
			i = len(out) - 1
			at[k] = i
		}
		out[i].Counts[r.Outcome]++
	}
	return out
}

// Totals adds up outcomes over results.
func Totals(results []CUResult) [len(outcomeNames)]int {
	var n [len(outcomeNames)]int
	for _, r := range results {
		n[r.Outcome]++
	}
	return n
}

// FormatReport prints the per-suite table, the totals and every failed or
// unrun test with its detail. inScope marks the suites whose failures fail
// the test.
func FormatReport(results []CUResult, inScope func(CUTest) bool) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "family\tsuite\tpassed\tskipped\tfailed\tnot run\tgated\t")
	for _, s := range Tally(results) {
		gated := ""
		if inScope(CUTest{Family: s.Family, Suite: s.Suite}) {
			gated = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t\n", s.Family, s.Suite,
			s.Counts[Passed], s.Counts[Skipped], s.Counts[Failed], s.Counts[NotRun], gated)
	}
	w.Flush()
	n := Totals(results)
	fmt.Fprintf(&b, "total: %d tests: %d passed, %d skipped, %d failed, %d not run\n",
		len(results), n[Passed], n[Skipped], n[Failed], n[NotRun])

	var bad []CUResult
	for _, r := range results {
		if r.Outcome == Failed || r.Outcome == NotRun {
			bad = append(bad, r)
		}
	}
	sort.SliceStable(bad, func(i, j int) bool { return inScope(bad[i].CUTest) && !inScope(bad[j].CUTest) })
	for _, r := range bad {
		mark := "   "
		if inScope(r.CUTest) {
			mark = "[gated]"
		}
		fmt.Fprintf(&b, "%s %s %s\n", r.Outcome, mark, r.CUTest)
		for _, d := range strings.Split(r.Detail, "\n") {
			if d != "" {
				fmt.Fprintf(&b, "        %s\n", d)
			}
		}
	}
	return b.String()
}
