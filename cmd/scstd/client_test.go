package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestStatusEscapesControlCharacters: what status and plan print from
// the daemon (names that came from initiators) cannot move the cursor,
// clear the screen or forge a line.
func TestStatusEscapesControlCharacters(t *testing.T) {
	raw := `{"sessions":[{"initiator":"iqn.x:\u001b[2J\u001b[H","initiator_alias":"a\rengine: forged",` +
		`"target":"t\u202eevil","tsih":1}],"note":"line1\nline2\u0007\n"}`
	var tree any
	if err := json.Unmarshal([]byte(raw), &tree); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	printTree(&b, tree, 0)
	out := b.String()
	for _, bad := range []string{"\x1b", "\r", "\u202e", "\a"} {
		if strings.Contains(out, bad) {
			t.Errorf("status prints %q raw:\n%s", bad, out)
		}
	}
	for _, want := range []string{`initiator: iqn.x:\x1b[2J\x1b[H`, `initiator_alias: a\x0dengine: forged`,
		`target: t\u202eevil`, "  line1\n", `  line2\x07`} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printPlan(&b, 1, "~ target[\"t\x1b]0;pwned\x07\"]  enabled true -> false  (next login)\n")
	if out := b.String(); strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `t\x1b]0;pwned\x07`) {
		t.Errorf("plan prints control characters raw: %q", out)
	}
}
