package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNotText: a binary file, or text in another encoding, gets one
// diagnostic that points at the first bad byte and echoes none of the file.
func TestNotText(t *testing.T) {
	binary := make([]byte, 4096)
	for i := range binary {
		binary[i] = byte(i*31 + 7)
	}
	tests := []struct {
		name string
		src  []byte
		want string
	}{
		{"binary", binary, "f.hcl:1:1: error: Not a text file\n  f.hcl is not UTF-8 text: it holds the control character 0x07 (line 1, column 1)."},
		{"Latin-1", []byte("iscsi {\n  enabled = true # caf\xe9\n}\n"), "f.hcl:2:23: error: Not a text file\n  f.hcl is not UTF-8 text: byte 0xe9 is not UTF-8 (line 2, column 23)."},
		{"NUL", []byte("iscsi {}\n\x00"), "f.hcl:2:1: error: Not a text file\n  f.hcl is not UTF-8 text: it holds a NUL byte (line 2, column 1)."},
		{"escape sequence", []byte("# \x1b[2J\n"), "f.hcl:1:3: error: Not a text file\n  f.hcl is not UTF-8 text: it holds the control character 0x1b (line 1, column 3)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.hcl")
			if err := os.WriteFile(path, tt.src, 0o644); err != nil {
				t.Fatal(err)
			}
			l := NewLoader()
			_, diags := l.Load(path)
			if len(diags) != 1 {
				t.Fatalf("%d diagnostics, want 1: %v", len(diags), diags)
			}
			var b bytes.Buffer
			l.WriteDiagnostics(&b, diags)
			got := strings.ReplaceAll(b.String(), dir+"/", "")
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("diagnostic:\n%s\nwant it to start with:\n%s", got, tt.want)
			}
			if strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 && r != '\n' || r >= 0x7f && r < 0xa0 || r == 0xfffd }) {
				t.Errorf("the diagnostic echoes unprintable bytes: %q", got)
			}
			if _, diags := Format(tt.src, "f.hcl"); len(diags) != 1 || diags[0].Summary != "Not a text file" {
				t.Errorf("Format: %v, want one \"Not a text file\"", diags)
			}
		})
	}
	// UTF-8 text with tabs and CRLF line ends is text.
	if d := checkText("ok.hcl", []byte("# Zürich Ω\r\niscsi {\r\n\tenabled = true\r\n}\r\n")); d != nil {
		t.Errorf("checkText on text: %v", d)
	}
}

// FuzzPlainText holds checkText's fast path to its rune by rune check:
// what plainText passes, textDiagnostic passes too.
func FuzzPlainText(f *testing.F) {
	for b := range 256 {
		f.Add([]byte{'a', byte(b), '\n'})
	}
	f.Add([]byte("# Zürich Ω\r\niscsi {\r\n\tenabled = true\r\n}\r\n"))
	f.Add([]byte("iscsi {\n  enabled = true\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if plainText(src) && textDiagnostic("f.hcl", src) != nil {
			t.Errorf("plainText passes %q, which is not text: %v", src, textDiagnostic("f.hcl", src))
		}
	})
}

// TestPlainText: plain ASCII text with tabs and CRLF takes the fast path;
// a control character, DEL or any byte above ASCII does not.
func TestPlainText(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want bool
	}{
		{"iscsi {\r\n\tenabled = true\r\n}\r\n", true},
		{"", true},
		{"# caf\xc3\xa9\n", false},
		{"a\x7f", false},
		{"a\x00", false},
		{"a\x1b", false},
	} {
		if got := plainText([]byte(tt.src)); got != tt.want {
			t.Errorf("plainText(%q) = %v, want %v", tt.src, got, tt.want)
		}
	}
}
