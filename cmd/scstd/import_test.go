package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scstConf = `HANDLER vdisk_nullio {
	DEVICE null0 {
		size_mb 64
		rotational 0
	}
}

TARGET_DRIVER iscsi {
	enabled 1
	IncomingUser "joe 12charsecret"

	TARGET iqn.2026-11.org.example:t1 {
		enabled 1
		LUN 0 null0
	}
}
`

func TestImport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scst.conf")
	if err := os.WriteFile(path, []byte(scstConf), 0o644); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, "import", path)
	if code != 0 {
		t.Fatalf("scstd import: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{`device "null0"`, `size = "64MiB"`, `target "iqn.2026-11.org.example:t1"`, `secret = "12charsecret"`,
		"# scst.conf:4: rotational 0  (not imported: scstd has no rotation rate setting)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	for _, want := range []string{path + ":4: kept as a comment: rotational", "1 device(s) and 1 target(s) converted; 1 entry kept as comments"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "12charsecret") {
		t.Errorf("stderr shows the secret:\n%s", stderr)
	}
	// The output is what `scstd validate` accepts and `scstd fmt` keeps.
	out := filepath.Join(dir, "scst.hcl")
	if err := os.WriteFile(out, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "validate", out); code != 0 {
		t.Errorf("scstd validate on the output: exit %d\n%s", code, stderr)
	}
	if code, _, _ := runCLI(t, "fmt", "-check", out); code != 0 {
		t.Errorf("scstd fmt -check on the output: exit %d", code)
	}

	// Standard input, with the secret moved to a file.
	stdin = strings.NewReader(scstConf)
	defer func() { stdin = os.Stdin }()
	secrets := filepath.Join(dir, "chap")
	code, fromStdin, stderr := runCLI(t, "import", "-", "-secrets-dir", secrets)
	if code != 0 || !strings.Contains(fromStdin, `secret = file("`+secrets+`/joe")`) || strings.Contains(fromStdin, "12charsecret") {
		t.Fatalf("scstd import - -secrets-dir: exit %d\n%s\n%s", code, fromStdin, stderr)
	}
	st, err := os.Stat(filepath.Join(secrets, "joe"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(secrets, "joe")); string(b) != "12charsecret" {
		t.Errorf("secret file holds %q", b)
	}
	// Again: the same secret is already there. A different one is not
	// overwritten.
	stdin = strings.NewReader(scstConf)
	if code, _, stderr := runCLI(t, "import", "-secrets-dir", secrets); code != 0 {
		t.Errorf("second import into the same -secrets-dir: exit %d\n%s", code, stderr)
	}
	stdin = strings.NewReader(strings.Replace(scstConf, "12charsecret", "another-secret", 1))
	if code, stdout, stderr := runCLI(t, "import", "-secrets-dir", secrets); code != 1 || stdout != "" || !strings.Contains(stderr, "holds another secret for joe") {
		t.Errorf("import over a different secret: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout bool // something on stdout
		stderr string
	}{
		{"syntax", []string{write("syntax.conf", "HANDLER vcdrom {\n")}, 1, false, "syntax.conf:1: the section HANDLER vcdrom is not closed"},
		{"binary", []string{write("blob.conf", "\x7fELF\x02\x01\x01\x00")}, 1, false, "blob.conf:1:1: control character 0x7f"},
		{"bad value", []string{write("value.conf", "HANDLER vdisk_fileio {\n DEVICE d {\n  filename /d\n  nv_cache on\n }\n}\n")}, 1, false, `value.conf:4: nv_cache: expected 0 or 1, got "on"`},
		{"does not validate", []string{write("short.conf", "TARGET_DRIVER iscsi {\n enabled 1\n IncomingUser \"joe short\"\n}\n")}, 1, true, "CHAP secret too short"},
		{"missing file", []string{filepath.Join(dir, "nope.conf")}, 1, false, "no such file"},
		{"directory", []string{dir}, 1, false, "is a directory"},
		{"two files", []string{"a", "b"}, 2, false, "usage: scstd import"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"import"}, tt.args...)...)
			if code != tt.code || (stdout != "") != tt.stdout || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d (want %d), stdout %q, stderr:\n%s\nwant it to contain %q", code, tt.code, stdout, stderr, tt.stderr)
			}
			if strings.ContainsAny(stderr, "\x00\x7f") || strings.Contains(stderr, "short\"") {
				t.Errorf("stderr echoes raw bytes or the secret: %q", stderr)
			}
		})
	}
}
