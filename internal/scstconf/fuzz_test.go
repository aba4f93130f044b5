package scstconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary bytes to Parse and Convert. Neither may panic;
// Format must write what Parse reads back the same; errors and notes must
// be printable text; Convert's output is in `scstd fmt` format (Convert
// checks that it parses).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.conf")
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse(src, "fuzz.conf")
		if err != nil {
			checkPrintable(t, err.Error())
			return
		}
		checkRoundTrip(t, file.Entries)
		for _, opt := range []Options{{}, {SecretsDir: "/etc/scst/chap"}} {
			r, err := Convert(file, opt)
			if err != nil {
				if _, ok := err.(ErrorList); !ok {
					t.Fatalf("Convert: %v", err)
				}
				checkPrintable(t, err.Error())
				continue
			}
			for _, n := range r.Notes {
				checkPrintable(t, n.String())
			}
		}
	})
}

func checkPrintable(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f }) {
		t.Fatalf("message with unprintable characters: %q", s)
	}
}
