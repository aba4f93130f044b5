package config

import (
	"bytes"
	"strings"
	"testing"
)

func TestDiagnosticsNeverPrintSecrets(t *testing.T) {
	src := `target "iqn.2026-11.org.example:a" {
  incoming_user "joe" { secret = "short" }
  lun "0" { device = "d" }
}
handler "vdisk_nullio" {
  device "d" {
    size = "1MiB"
  }
}
`
	l := NewLoader()
	_, diags := l.Parse([]byte(src), "one-line.hcl")
	if !diags.HasErrors() {
		t.Fatal("a 5-byte CHAP secret was accepted")
	}
	var b bytes.Buffer
	if err := l.WriteDiagnostics(&b, diags); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, `"short"`) {
		t.Errorf("diagnostics print the secret:\n%s", out)
	}
	if !strings.Contains(out, "one-line.hcl:2:") || !strings.Contains(out, "^") {
		t.Errorf("diagnostics lack file:line:col or a caret:\n%s", out)
	}
}
