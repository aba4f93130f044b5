package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

func joinNames(list []string) string { return strings.Join(list, ", ") }

func quotedList[T ~string](list []T) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = `"` + string(s) + `"`
	}
	return strings.Join(q, ", ")
}

// sortedAttrs returns attrs in source order, so that diagnostics come out in
// a stable order.
func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Range.Start.Byte < out[j].Range.Start.Byte })
	return out
}

// diagf makes a diagnostic about subject whose detail is formatted.
func diagf(severity hcl.DiagnosticSeverity, subject hcl.Range, summary, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: severity, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: subject.Ptr()}
}
