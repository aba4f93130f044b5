package scstconf

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// dump prints entries compactly: name, quoted arguments, lines, section.
func dump(entries []*Entry) string {
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s%q@%d", e.Name, e.Args, e.Line)
		if e.HasSection {
			fmt.Fprintf(&b, "-%d{%s}", e.EndLine, dump(e.Section))
		}
	}
	return b.String()
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		want     string
		warnings []int // lines with a warning
	}{
		{name: "empty", src: "", want: ""},
		{name: "comments and blank lines", src: "# a comment\n\n   # indented\n", want: ""},
		{name: "attribute", src: "setup_id 0x1234\n", want: `setup_id["0x1234"]@1`},
		{name: "no final newline", src: "setup_id 0x1234", want: `setup_id["0x1234"]@1`},
		{name: "section", src: "HANDLER vdisk_fileio {\n\tDEVICE disk1 {\n\t\tfilename /disk1\n\t}\n}\n",
			want: `HANDLER["vdisk_fileio"]@1-5{DEVICE["disk1"]@2-4{filename["/disk1"]@3}}`},
		{name: "entry without section", src: "HANDLER vdisk_nullio {\n\tDEVICE null0\n}\n",
			want: `HANDLER["vdisk_nullio"]@1-3{DEVICE["null0"]@2}`},
		{name: "quoted value with blanks", src: "IncomingUser \"joe 12charsecret\"\n", want: `IncomingUser["joe 12charsecret"]@1`},
		{name: "unquoted words", src: "IncomingUser joe 12charsecret\n", want: `IncomingUser["joe" "12charsecret"]@1`},
		{name: "empty quotes", src: "redirect \"\"\n", want: `redirect[""]@1`},
		{name: "quote inside a word", src: "a b\"c d\"e\n", want: `a["bc de"]@1`},
		{name: "escaped hash is not a comment", src: "INITIATOR iqn.2026-11.org.example:h\\#10.0.0.1\n",
			want: `INITIATOR["iqn.2026-11.org.example:h#10.0.0.1"]@1`},
		{name: "escapes in quotes", src: "comment \"a \\\"b\\\" \\\\ \\# c\"\n", want: `comment["a \"b\" \\ # c"]@1`},
		{name: "backslash at the end of a line stays", src: "a b\\\nc d\n", want: `a["b\\"]@1 c["d"]@2`},
		{name: "trailing comment", src: "enabled 1 # on\n", want: `enabled["1"]@1`},
		{name: "hash right after a word drops a character", src: "INITIATOR ini#10.0.0.1\n",
			want: `INITIATOR["in"]@1`, warnings: []int{1}},
		{name: "wildcards", src: "allowed_portal 10.170.7?.*\nallowed_portal !10.170.77.2\n",
			want: `allowed_portal["10.170.7?.*"]@1 allowed_portal["!10.170.77.2"]@2`},
		{name: "repeated attribute", src: "IncomingUser \"a 111111111111\"\nIncomingUser \"b 222222222222\"\n",
			want: `IncomingUser["a 111111111111"]@1 IncomingUser["b 222222222222"]@2`},
		{name: "section on one line", src: "TARGET_DRIVER iscsi {\n\tTARGET t {}\n}\n",
			want: `TARGET_DRIVER["iscsi"]@1-3{TARGET["t"]@2-2{}}`},
		{name: "entries and close on one line", src: "LUN 0 disk1 { read_only 1 }\n",
			want: `LUN["0" "disk1"]@1-1{read_only["1"]@1}`},
		{name: "brace right after a word", src: "TARGET t{\n}\n", want: `TARGET["t"]@1-2{}`},
		{name: "words after a closing brace start an entry", src: "A {\n} B 1\n", want: `A[]@1-2{} B["1"]@2`},
		{name: "CRLF line ends", src: "HANDLER vcdrom {\r\n\tDEVICE cd\r\n}\r\n", want: `HANDLER["vcdrom"]@1-3{DEVICE["cd"]@2}`},
		{name: "UTF-8 text", src: "comment \"Zürich Ω\"\n", want: `comment["Zürich Ω"]@1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.src), "scst.conf")
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(f.Entries); got != tt.want {
				t.Errorf("Parse:\n got %s\nwant %s", got, tt.want)
			}
			var lines []int
			for _, w := range f.Warnings {
				lines = append(lines, w.Line)
			}
			if !reflect.DeepEqual(lines, tt.warnings) {
				t.Errorf("warnings on lines %v, want %v: %v", lines, tt.warnings, f.Warnings)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the error starts with this
	}{
		{"brace alone on its line", "HANDLER vdisk_fileio\n{\n}\n", "scst.conf:2:1: '{' must end the line that names its section"},
		{"unmatched close", "HANDLER vcdrom {\n}\n}\n", "scst.conf:3:1: '}' closes no section"},
		{"section not closed", "HANDLER vcdrom {\n\tDEVICE cd {\n\t\tfilename /x\n}\n", "scst.conf:1: the section HANDLER vcdrom is not closed"},
		{"unterminated quote", "a \"b c\nd\n", "scst.conf:1:3: unterminated quoted value"},
		{"hash in quotes", "comment \"a # b\"\n", "scst.conf:1:12: '#' inside quotes starts a comment"},
		{"brace in quotes", "comment \"a { b\"\n", "scst.conf:1:12: '{' inside quotes"},
		{"escaped brace", "comment a\\}\n", "scst.conf:1:11: '}' cannot be escaped"},
		{"NUL byte", "setup_id 0x1\x00\n", "scst.conf:1:13: control character 0x00"},
		{"escape character", "a \x1b[31mred\n", "scst.conf:1:3: control character 0x1b"},
		{"invalid UTF-8", "a \xff\xfe\n", "scst.conf:1:3: byte 0xff is not UTF-8 text"},
		{"binary after a comment", "# x\x00y\n", "scst.conf:1:4: control character 0x00"},
		{"pre-2.0 format", "[HANDLER vdisk]\nDEVICE disk1,/disk1,,512\n", "scst.conf:1:1: \"[HANDLER\" looks like the pre-2.0 scst.conf format"},
		{"too deep", strings.Repeat("a {\n", maxDepth+1), "scst.conf:17:3: sections nested deeper than 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "scst.conf")
			if err == nil {
				t.Fatalf("Parse accepted %q", tt.src)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse error:\n got %s\nwant %s...", err, tt.want)
			}
			if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x00\x1b") {
				t.Errorf("the error echoes unprintable bytes: %q", err)
			}
		})
	}
}

// TestParseBinaryFile: a binary file gets one error, not one per byte.
func TestParseBinaryFile(t *testing.T) {
	src := make([]byte, 4096)
	for i := range src {
		src[i] = byte(i * 7)
	}
	_, err := Parse(src, "blob")
	if err == nil || strings.Count(err.Error(), "\n") != 0 || len(err.Error()) > 200 {
		t.Errorf("Parse of 4 KiB of binary: %q, want one short error", err)
	}
}

// TestFormatRoundTrip: Format writes what Parse reads back unchanged.
func TestFormatRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.conf")
	if len(files) == 0 {
		t.Fatal("no testdata/*.conf")
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(src, name)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, f.Entries)
		})
	}
}

func checkRoundTrip(t *testing.T, entries []*Entry) {
	t.Helper()
	out := Format(entries)
	g, err := Parse(out, "formatted")
	if err != nil {
		t.Fatalf("Format wrote what Parse rejects: %v\n%s", err, out)
	}
	if a, b := shape(entries), shape(g.Entries); a != b {
		t.Fatalf("round trip changed the entries:\n got %s\nwant %s\nformatted:\n%s", b, a, out)
	}
}

// shape is dump without line numbers.
func shape(entries []*Entry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%s%q", e.Name, e.Args)
		if e.HasSection {
			fmt.Fprintf(&b, "{%s}", shape(e.Section))
		}
		b.WriteByte(';')
	}
	return b.String()
}
