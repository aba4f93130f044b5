package config

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// checkDecodeFast decodes src with the blocks parseFastItems leaves out
// of the tree and with hclsyntax alone, requires the same diagnostics
// (printed, so every range and message counts) and the same Config, and
// reports whether any block took the fast way.
func checkDecodeFast(t *testing.T, src []byte) bool {
	t.Helper()
	fast, slow := testLoader(), testLoader()
	slow.slow = true
	fcfg, fdiags := fast.Parse(src, "x.hcl")
	scfg, sdiags := slow.Parse(src, "x.hcl")
	if fout, sout := printedDiags(fast, fdiags), printedDiags(slow, sdiags); fout != sout {
		t.Fatalf("diagnostics differ on\n%s\nfast:\n%s\nhclsyntax:\n%s", src, fout, sout)
	}
	if (fcfg == nil) != (scfg == nil) {
		t.Fatalf("fast config nil = %t, hclsyntax config nil = %t on\n%s", fcfg == nil, scfg == nil, src)
	}
	if fcfg != nil {
		// The files differ by construction: the fast tree lacks the blocks.
		fcfg.files, scfg.files = nil, nil
		if !reflect.DeepEqual(fcfg, scfg) {
			t.Fatalf("configs differ on\n%s\nfast:\n%+v\nhclsyntax:\n%+v", src, fcfg, scfg)
		}
	}
	return len(fast.fast) > 0
}

// printedDiags prints diags as the CLI does. hclsyntax's Content reports
// the unexpected attributes of a body in the order of a map; so within
// each run of diagnostics with the same summary the printed diagnostics
// are sorted.
func printedDiags(l *Loader, diags hcl.Diagnostics) string {
	var out []string
	for k := 0; k < len(diags); {
		run := k
		for run < len(diags) && diags[run].Summary == diags[k].Summary {
			run++
		}
		var group []string
		for _, d := range diags[k:run] {
			var b bytes.Buffer
			_ = l.WriteDiagnostics(&b, hcl.Diagnostics{d})
			group = append(group, b.String())
		}
		slices.Sort(group)
		out = append(out, group...)
		k = run
	}
	return strings.Join(out, "")
}

// decodeFastCases are device and LUN blocks around the edges of what
// parseFastItems leaves out of the tree: each decodes as hclsyntax's tree
// does, and fast says whether a block took the fast way.
var decodeFastCases = []struct {
	name string
	src  string
	fast bool
}{
	{"one-line device and LUN", "handler \"vdisk_nullio\" {\n  device \"n1\" { size = \"1GiB\" }\n}\ntarget \"iqn.2026-11.org.example:t\" {\n  lun \"0\" { device = \"n1\" }\n}\n", true},
	{"multi-line blocks, comments, blank lines", "handler \"vdisk_fileio\" {\n  # disks\n  device \"d1\" {\n\n    filename = \"/tmp/d1\" // backing\n    size = \"4MiB\"\n    blocksize = 4096\n    read_only = true\n  }\n}\ntarget \"iqn.2026-11.org.example:t\" {\n  header_digest = [\"CRC32C\", \"None\"]\n  lun \"0\" {\n    device = \"d1\"\n    read_only = false\n  }\n  incoming_user \"u\" { secret = \"0123456789ab\" }\n  lun \"1\" { device = \"d1\" }\n}\n", true},
	{"bare label", "handler \"vdisk_nullio\" {\n  device n1 { size = \"1GiB\" }\n}\n", true},
	{"empty device body", "handler \"vdisk_nullio\" {\n  device \"n1\" {}\n}\n", true},
	{"empty multi-line body", "handler \"vdisk_nullio\" {\n  device \"n1\" {\n  }\n}\n", true},
	{"relative filename", "handler \"vdisk_fileio\" {\n  device \"d\" { filename = \"d.img\" }\n}\n", true},
	{"fast and slow devices interleaved", "handler \"vdisk_nullio\" {\n  device \"a\" { size = \"1GiB\" }\n  device \"b\" { size = [\"1GiB\"] }\n  device \"c\" { size = \"1GiB\" }\n  device \"a\" { size = \"2GiB\" }\n}\n", true},
	{"unknown handler", "handler \"vdisk_nope\" {\n  device \"n1\" { size = \"1GiB\" }\n}\n", true},
	{"attribute not for the handler", "handler \"vdisk_nullio\" {\n  device \"n1\" { filename = \"/x\" }\n}\n", true},
	{"wrong types", "handler \"vdisk_nullio\" {\n  device \"n1\" {\n    size = 5\n    read_only = \"yes\"\n    blocksize = \"512\"\n  }\n}\n", true},
	{"string as bool", "handler \"vdisk_nullio\" {\n  device \"n1\" {\n    size = \"1GiB\"\n    read_only = \"true\"\n  }\n}\n", true},
	{"invalid size and blocksize", "handler \"vdisk_nullio\" {\n  device \"n1\" {\n    size = \"1 parsec\"\n    blocksize = 511\n  }\n}\n", true},
	{"huge number", "handler \"vdisk_nullio\" {\n  device \"n1\" {\n    size = \"1GiB\"\n    blocksize = 123456789012345678901234567890\n  }\n}\n", true},
	{"invalid LUN number", "target \"iqn.2026-11.org.example:t\" {\n  lun \"x\" { device = \"n1\" }\n  lun \"99999\" { device = \"n1\" }\n}\n", true},
	{"dangling and duplicate LUNs", "handler \"vdisk_nullio\" {\n  device \"n1\" { size = \"1GiB\" }\n}\ntarget \"iqn.2026-11.org.example:t\" {\n  lun \"0\" { device = \"n1\" }\n  lun \"0\" { device = \"n2\" }\n}\n", true},
	{"LUN without device", "target \"iqn.2026-11.org.example:t\" {\n  lun \"0\" { read_only = true }\n}\n", false},
	{"unknown attribute", "handler \"vdisk_nullio\" {\n  device \"n1\" { colour = \"red\" }\n}\n", false},
	{"two labels", "handler \"vdisk_nullio\" {\n  device \"n1\" \"n2\" { size = \"1GiB\" }\n}\n", false},
	{"no label", "handler \"vdisk_nullio\" {\n  device { size = \"1GiB\" }\n}\n", false},
	{"null", "handler \"vdisk_nullio\" {\n  device \"n1\" { size = null }\n}\n", false},
	{"nested block", "handler \"vdisk_nullio\" {\n  device \"n1\" {\n    size = \"1GiB\"\n    x {}\n  }\n}\n", false},
	{"LUNs of a group", "target \"iqn.2026-11.org.example:t\" {\n  group \"g\" {\n    lun \"0\" { device = \"n1\" }\n  }\n}\n", false},
	{"handler with two labels", "handler \"vdisk_nullio\" \"x\" {\n  device \"n1\" { size = \"1GiB\" }\n}\n", false},
	{"device outside a handler", "device \"n1\" { size = \"1GiB\" }\n", false},
	{"device in a target", "target \"iqn.2026-11.org.example:t\" {\n  device \"n1\" { size = \"1GiB\" }\n}\n", false},
	{"duplicate attribute", "handler \"vdisk_nullio\" {\n  device \"n1\" {\n    size = \"1GiB\"\n    size = \"2GiB\"\n  }\n}\n", false},
	{"expression", "handler \"vdisk_nullio\" {\n  device \"n1\" { size = \"${1}GiB\" }\n}\n", false},
	{"closing brace on the attribute's line", "handler \"vdisk_nullio\" {\n  device \"n1\" {\n    size = \"1GiB\" }\n}\n", false},
	{"end of file in a block", "handler \"vdisk_nullio\" {\n  device \"n1\" {\n    size = \"1GiB\"\n", false},
	{"no newline after a block", "handler \"vdisk_nullio\" {\n  device \"n1\" { size = \"1GiB\" } device \"n2\" {}\n}\n", false},
}

func TestDecodeFast(t *testing.T) {
	for _, c := range decodeFastCases {
		t.Run(c.name, func(t *testing.T) {
			if got := checkDecodeFast(t, []byte(c.src)); got != c.fast {
				t.Errorf("took the fast way: %t, want %t", got, c.fast)
			}
		})
	}
}

// TestDecodeFastFiles holds the fast way to hclsyntax's on every
// configuration of the project, and checks that the 10,000-LUN file of
// the benchmarks takes it.
func TestDecodeFastFiles(t *testing.T) {
	paths := projectConfigs()
	took := 0
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if checkDecodeFast(t, src) {
			took++
		}
	}
	if took < 10 {
		t.Errorf("only %d of %d files took the fast way", took, len(paths))
	}
	if !checkDecodeFast(t, scaleSrc(true)) {
		t.Error("the 10,000-LUN configuration did not take the fast way")
	}
}

// FuzzDecodeFast: whatever the bytes, decoding with the blocks
// parseFastItems leaves out of the tree gives the diagnostics and the
// Config that hclsyntax's tree gives (checkDecodeFast).
//
//	go test ./config -run '^$' -fuzz FuzzDecodeFast -fuzztime 60s
func FuzzDecodeFast(f *testing.F) {
	for _, c := range decodeFastCases {
		f.Add([]byte(c.src))
	}
	for _, c := range fastCases {
		f.Add([]byte(c.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		checkDecodeFast(t, src)
	})
}

// TestDefaultUSN holds defaultUSN to the FNV-1a hash of hash/fnv in 8
// hex digits: a device's default serial number must not change.
func TestDefaultUSN(t *testing.T) {
	for _, name := range []string{"", "n1", "disk0", "iqn.2026-11.org.example:t", "Ü-名前", strings.Repeat("x", 300)} {
		h := fnv.New32a()
		h.Write([]byte(name))
		if got, want := defaultUSN(name), fmt.Sprintf("%08x", h.Sum32()); got != want {
			t.Errorf("defaultUSN(%q) = %s, want %s", name, got, want)
		}
	}
}
