package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// writeDiagnostics prints each diagnostic the way compilers do, so that
// editors and CI logs can jump to it:
//
//	scst.hcl:13:14: error: Unknown device
//	   13 |     device = "nope"
//	      |              ^^^^^^
//	  LUN 0 of target "iqn..." names the device "nope", which no handler block declares.
//
// Diagnostics without a subject print their summary and detail alone.
func writeDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	bw := bufio.NewWriter(w)
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		if d.Subject == nil {
			fmt.Fprintf(bw, "%s: %s\n", sev, d.Summary)
		} else {
			s := d.Subject
			fmt.Fprintf(bw, "%s:%d:%d: %s: %s\n", s.Filename, s.Start.Line, s.Start.Column, sev, d.Summary)
			if f := files[s.Filename]; f != nil {
				writeSourceLine(bw, f.Bytes, *s)
			}
		}
		if d.Detail != "" {
			fmt.Fprintf(bw, "  %s\n", strings.ReplaceAll(d.Detail, "\n", "\n  "))
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// secretLiteral finds a secret written inline, so that a printed source
// line never shows it.
var secretLiteral = regexp.MustCompile(`(secret\s*=\s*)"(?:[^"\\]|\\.)*"`)

// writeSourceLine prints the first line of rng with a caret line under the
// part of it that rng covers.
func writeSourceLine(w io.Writer, src []byte, rng hcl.Range) {
	lines := bytes.Split(src, []byte("\n"))
	if rng.Start.Line < 1 || rng.Start.Line > len(lines) {
		return
	}
	line := strings.TrimRight(string(lines[rng.Start.Line-1]), "\r")
	line = strings.ReplaceAll(line, "\t", " ")
	line = secretLiteral.ReplaceAllString(line, `${1}"(redacted)"`)
	start := rng.Start.Column - 1
	if start < 0 || start > len(line) {
		start = 0
	}
	end := len(line)
	if rng.End.Line == rng.Start.Line && rng.End.Column-1 <= len(line) && rng.End.Column-1 > start {
		end = rng.End.Column - 1
	}
	width := end - start
	if width < 1 {
		width = 1
	}
	num := fmt.Sprintf("%5d", rng.Start.Line)
	fmt.Fprintf(w, "%s | %s\n", num, line)
	fmt.Fprintf(w, "%s | %s%s\n", strings.Repeat(" ", len(num)), strings.Repeat(" ", start), strings.Repeat("^", width))
}
