package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const value = "very-secret-value"
	u := &User{Name: "joe", Secret: NewSecret(value)}
	outputs := map[string]string{
		"%v":         fmt.Sprintf("%v", u.Secret),
		"%s":         fmt.Sprintf("%s", u.Secret),
		"%q":         fmt.Sprintf("%q", u.Secret),
		"%x":         fmt.Sprintf("%x", u.Secret),
		"%#v":        fmt.Sprintf("%#v", u.Secret),
		"%+v":        fmt.Sprintf("%+v", *u),
		"%#v struct": fmt.Sprintf("%#v", *u),
		"String":     u.Secret.String(),
	}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(b)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("user", "secret", u.Secret)
	outputs["slog"] = logged.String()
	for how, out := range outputs {
		if strings.Contains(out, value) || !strings.Contains(out, "(redacted)") {
			t.Errorf("%s printed %q", how, out)
		}
	}
	if u.Secret.Reveal() != value || u.Secret.Len() != len(value) {
		t.Error("Reveal or Len lost the value")
	}
	if !u.Secret.Equal(NewSecret(value)) || u.Secret.Equal(NewSecret(value+"x")) {
		t.Error("Equal is wrong")
	}
}
