package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in canonical layout (indentation, aligned equals
// signs, spacing), like `terraform fmt`. It changes layout only, never
// meaning, and reports syntax errors instead of formatting a broken file.
func Format(src []byte, filename string) ([]byte, hcl.Diagnostics) {
	if d := checkText(filename, src); d != nil {
		return nil, hcl.Diagnostics{d}
	}
	if d := checkDigitRuns(filename, src); d != nil {
		return nil, hcl.Diagnostics{d}
	}
	if _, diags := hclwrite.ParseConfig(src, filename, hcl.InitialPos); diags.HasErrors() {
		return nil, diags
	}
	out := hclwrite.Format(src)
	// hclwrite lays out tokens without parsing them again, and can join
	// two that must stay apart ("(0.0. 0)", an index on a number, becomes
	// "(0.0.0)", which does not parse): such a layout is refused, and the
	// file left as it is.
	if _, diags := hclsyntax.ParseConfig(out, filename, hcl.InitialPos); diags.HasErrors() {
		d := diags[0]
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot format this file",
			Detail: fmt.Sprintf("Formatted, it would no longer parse (%s, at line %d of the formatted text): the formatter would join tokens that must stay apart. The file is left as it is; write that expression with parentheses or without spaces inside it.",
				d.Summary, d.Subject.Start.Line),
			Subject: &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
		}}
	}
	return out, nil
}
