package reconcile_test

import (
	"fmt"
	"os"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/reconcile"
)

func ExampleDiff() {
	load := func(src string) reconcile.Model {
		cfg, diags := config.Parse([]byte(src), "/etc/scst.hcl")
		if diags.HasErrors() {
			panic(diags.Error())
		}
		return reconcile.FromConfig(cfg)
	}
	running := load(`
handler "vdisk_nullio" {
  device "null1" { size = "1GiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
}
`)
	desired := load(`
handler "vdisk_nullio" {
  device "null1" { size = "2GiB" }
  device "null2" { size = "1GiB" }
}
target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null1" }
  lun "1" { device = "null2" }
}
`)
	plan := reconcile.Diff(running, desired)
	plan.Print(os.Stdout)
	fmt.Println(plan.Summary())
	// Output:
	// + device.null2                                handler = "vdisk_nullio", size = 1GiB  (hot)
	// + target["iqn.2026-11.org.example:a"].lun[1]  device = "null2"                       (unit attention: reported luns changed)
	// ~ device.null1                                size 1GiB -> 2GiB                      (unit attention: capacity changed)
	// 2 to add, 1 to change, 0 to replace, 0 to remove
}
