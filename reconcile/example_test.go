package reconcile_test

import (
	"fmt"
	"os"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/iscsi"
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
	// One initiator is logged in to the target.
	live := []reconcile.Session{{SessionID: iscsi.SessionID{
		Target: "iqn.2026-11.org.example:a", Initiator: "iqn.1994-05.com.redhat:host1", ISID: "400001370000", TSIH: 3,
	}}}
	plan := reconcile.Diff(running, desired, live)
	plan.Print(os.Stdout)
	fmt.Println(plan.Summary())
	// Output:
	// + device.null2                                handler = "vdisk_nullio", size = 1GiB  (hot)
	// + target["iqn.2026-11.org.example:a"].lun[1]  device = "null2"                       (unit attention: reported luns changed)
	//     affects iqn.1994-05.com.redhat:host1 (tsih 3) lun 1: (none) -> null2
	// ~ device.null1                                size 1GiB -> 2GiB                      (unit attention: capacity changed)
	//     affects iqn.1994-05.com.redhat:host1 (tsih 3) lun 0: null1
	// 2 to add, 1 to change, 0 to replace, 0 to remove
}
