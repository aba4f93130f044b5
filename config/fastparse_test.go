package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// dumpBody prints a syntax tree with every range and value, to show where
// parseFast and hclsyntax differ.
func dumpBody(b *strings.Builder, body *hclsyntax.Body, indent string) {
	fmt.Fprintf(b, "%sbody src=%v end=%v attrs=%t blocks=%t\n", indent, rng(body.SrcRange), rng(body.EndRange),
		body.Attributes == nil, body.Blocks == nil)
	names := make([]string, 0, len(body.Attributes))
	for n := range body.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := body.Attributes[n]
		fmt.Fprintf(b, "%s  attr %q src=%v name=%v eq=%v\n", indent, a.Name, rng(a.SrcRange), rng(a.NameRange), rng(a.EqualsRange))
		dumpExpr(b, a.Expr, indent+"    ")
	}
	for _, bl := range body.Blocks {
		fmt.Fprintf(b, "%s  block %s %q labels=%v type=%v open=%v close=%v\n", indent, bl.Type, bl.Labels,
			ranges(bl.LabelRanges), rng(bl.TypeRange), rng(bl.OpenBraceRange), rng(bl.CloseBraceRange))
		dumpBody(b, bl.Body, indent+"    ")
	}
}

func dumpExpr(b *strings.Builder, e hclsyntax.Expression, indent string) {
	switch e := e.(type) {
	case *hclsyntax.TemplateExpr:
		fmt.Fprintf(b, "%stemplate src=%v parts=%t\n", indent, rng(e.SrcRange), e.Parts == nil)
		for _, p := range e.Parts {
			dumpExpr(b, p, indent+"  ")
		}
	case *hclsyntax.LiteralValueExpr:
		fmt.Fprintf(b, "%sliteral %s src=%v\n", indent, e.Val.GoString(), rng(e.SrcRange))
	case *hclsyntax.TupleConsExpr:
		fmt.Fprintf(b, "%stuple src=%v open=%v exprs=%t\n", indent, rng(e.SrcRange), rng(e.OpenRange), e.Exprs == nil)
		for _, x := range e.Exprs {
			dumpExpr(b, x, indent+"  ")
		}
	default:
		fmt.Fprintf(b, "%s%T %v\n", indent, e, rng(e.Range()))
	}
}

func rng(r hcl.Range) string {
	return fmt.Sprintf("%s:%d.%d(%d)-%d.%d(%d)", r.Filename, r.Start.Line, r.Start.Column, r.Start.Byte,
		r.End.Line, r.End.Column, r.End.Byte)
}

func ranges(rs []hcl.Range) string {
	var out []string
	for _, r := range rs {
		out = append(out, rng(r))
	}
	return fmt.Sprintf("%v (nil %t)", out, rs == nil)
}

// checkFast compares parseFast with hclsyntax on src and reports whether
// the fast parser took it.
func checkFast(t *testing.T, src []byte) bool {
	t.Helper()
	fast := parseFast(src, "x.hcl")
	if fast == nil {
		return false
	}
	slow, diags := hclsyntax.ParseConfig(src, "x.hcl", hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		t.Fatalf("parseFast took a file that hclsyntax rejects (%s):\n%s", diags.Error(), src)
	}
	fb, sb := fast.Body.(*hclsyntax.Body), slow.Body.(*hclsyntax.Body)
	if !reflect.DeepEqual(fb, sb) {
		var fd, sd strings.Builder
		dumpBody(&fd, fb, "")
		dumpBody(&sd, sb, "")
		t.Fatalf("parseFast and hclsyntax differ on\n%s\nfast:\n%s\nhclsyntax:\n%s", src, fd.String(), sd.String())
	}
	return true
}

// fastCases are inputs around the edges of parseFast's subset: each is
// either taken and then identical to hclsyntax's tree, or left to it.
var fastCases = []struct {
	src  string
	fast bool // whether parseFast must take it
}{
	{"", true},
	{"\n\n", true},
	{"# only a comment", true},
	{"# comment\nstate_dir = \"x\"\n", true},
	{"a = 1", true},
	{"a = 1\nb = true\nc = false\nd = null\n", true},
	{"a = \"\"\n", true},
	{"a = []\nb = [\"x\"]\nc = [\"x\", \"y\",]\n", true},
	{"a = [\n  \"x\", # one\n  // two\n  \"y\"\n]\n", true},
	{"x {\n}\n", true},
	{"x {}\n", true},
	{"x \"\" {\n}\n", true},
	{"x \"a\" { y = \"\" }\n", true},
	{"x \"a\" \"b\" {\n  y = 1\n}", true},
	{"x a b {\n  y = 1\n}\n", true},
	{"x \"a\" { y = \"z\" }\n", true},
	{"x \"a\" { y = [1, 2] }\n", true},
	{"x \"a\" { y = [\n1,\n2] }\n", true},
	{"handler \"vdisk_nullio\" {\n\tdevice \"n1\" { size = \"1GiB\" } # the first\n}\n", true},
	{"target \"iqn.2026-11.org.example:t\" {\n  lun \"0\" { device = \"n1\" }\n  lun \"1\" {\n    device = \"n2\"\n    read_only = true\n  }\n}\n", true},
	{"# Übersicht\na = 1\n", true},
	{"a = 1 # trailing\n// other\n", true},

	{"a = \"x\\ny\"\n", false},
	{"a = \"${b}\"\n", false},
	{"a = \"%{if x}y%{endif}\"\n", false},
	{"a = \"Ü\"\n", false},
	{"a = env(\"X\")\n", false},
	{"a = b\n", false},
	{"a = 1.5\n", false},
	{"a = 1e3\n", false},
	{"a = -1\n", false},
	{"a = 1 + 2\n", false},
	{"a = 1\na = 2\n", false},
	{"a = 1 b = 2\n", false},
	{"x { a = 1\n}\n", false},
	{"x {\n", false},
	{"x { a = 1 }y\n", false},
	{"/* block */\na = 1\n", false},
	{"a = 1\r\n", false},
	{"a = <<EOT\nx\nEOT\n", false},
	{"a = {b = 1}\n", false},
	{"a = [for x in y: x]\n", false},
	{"\"a\" = 1\n", false},
	{"a = \"unterminated\n", false},
	{"x \"a\" = {\n}\n", false},
	{"a = \"x\"[0]\n", false},
	{"a = 10GiB\n", false},
}

func TestParseFast(t *testing.T) {
	for _, c := range fastCases {
		if got := checkFast(t, []byte(c.src)); got != c.fast {
			t.Errorf("parseFast took %q: %t, want %t", c.src, got, c.fast)
		}
	}
}

// TestParseFastFiles holds parseFast to hclsyntax on every configuration
// of the project, and checks that the examples and the 10,000-LUN file
// of the benchmarks take the fast path.
func TestParseFastFiles(t *testing.T) {
	paths := projectConfigs()
	if len(paths) < 20 {
		t.Fatalf("found only %d configuration files", len(paths))
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		took := checkFast(t, src)
		if strings.HasPrefix(p, "../examples/") && !strings.Contains(string(src), "(") && !took {
			t.Errorf("%s: the fast parser did not take this example", p)
		}
	}
	if !checkFast(t, scaleSrc(false)) {
		t.Error("the fast parser did not take the 10,000-LUN configuration")
	}
}

// FuzzParseFast: whatever the bytes, the fast parser either gives up or
// builds the syntax tree hclsyntax builds (checkFast).
func FuzzParseFast(f *testing.F) {
	for _, c := range fastCases {
		f.Add([]byte(c.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		checkFast(t, src)
	})
}

// projectConfigs returns the paths of every .hcl file of the project's
// tests and examples.
func projectConfigs() []string {
	var paths []string
	for _, dir := range []string{"testdata", "../examples", "../test"} {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".hcl") {
				paths = append(paths, p)
			}
			return nil
		})
	}
	return paths
}
