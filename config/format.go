package config

import (
	"github.com/hashicorp/hcl/v2"
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
	return hclwrite.Format(src), nil
}
