package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func scaleSrc(extra bool) []byte {
	var b strings.Builder
	b.WriteString("iscsi { portals = [\"127.0.0.1:3260\"] }\nhandler \"vdisk_nullio\" {\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "  device \"n%d\" { size = \"1GiB\" }\n", i)
	}
	b.WriteString("}\n")
	for t := range 1000 {
		fmt.Fprintf(&b, "target \"iqn.2026-11.org.example:t%d\" {\n", t)
		for l := range 10 {
			fmt.Fprintf(&b, "  lun \"%d\" { device = \"n%d\" }\n", l, t*10+l)
		}
		if extra && t == 0 {
			b.WriteString("  lun \"99\" { device = \"n5\" }\n")
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

func BenchmarkScaleParse(b *testing.B) {
	src := scaleSrc(false)
	name := filepath.Join(b.TempDir(), "scst.hcl")
	b.ReportAllocs()
	for b.Loop() {
		if _, diags := Parse(src, name); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}
