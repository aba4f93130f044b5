package scstconf

import (
	"fmt"
	"strings"
)

// SCST's spellings of the asymmetric access states, and scstd's.
var aluaStates = map[string]string{
	"active":        "active/optimized",
	"nonoptimized":  "active/non-optimized",
	"standby":       "standby",
	"unavailable":   "unavailable",
	"offline":       "offline",
	"transitioning": "transitioning",
}

// deviceGroup converts DEVICE_GROUP:
//
//	DEVICE_GROUP dg1 {                   device_group "dg1" {
//	    DEVICE disk1                       devices = ["disk1"]
//	    TARGET_GROUP local {               target_group "local" {
//	        group_id 1                       group_id  = 1
//	        state active                     state     = "active/optimized"
//	        preferred 1                      preferred = true
//	        TARGET iqn...:a                  targets   = ["iqn...:a"]
//	    }                                  }
//	}                                    }
//
// A DEVICE that scstd does not serve (a handler it lacks, a pass-through
// disk) and a TARGET that is not one of the file's iSCSI targets (another
// node's port, which SCST lists with its rel_tgt_id) are kept as
// comments; a device group left with no device is kept whole.
func (c *converter) deviceGroup(root *node, e *Entry) {
	if len(e.Args) != 1 {
		c.errorf(e, "DEVICE_GROUP takes one device group name")
		return
	}
	dg := &node{typ: "device_group", labels: e.Args}
	var devices []string
	for _, a := range e.Section {
		switch a.Name {
		case "DEVICE":
			if len(a.Args) != 1 {
				c.errorf(a, "DEVICE takes one device name")
				continue
			}
			d, ok := c.devices[a.Args[0]]
			switch {
			case !ok:
				c.errorf(a, "device group %s names the device %s, which no HANDLER section declares", printable(e.Args[0]), printable(a.Args[0]))
			case !supported(d.handler):
				c.keep(dg, a, fmt.Sprintf("its handler %s has no scstd counterpart", d.handler))
			case d.handler == handlerDevDisk:
				c.keep(dg, a, "scstd does not serve ALUA for a pass-through (dev_disk) device")
			default:
				devices = append(devices, a.Args[0])
			}
		case "TARGET_GROUP":
			c.targetGroup(dg, a)
		default:
			c.keep(dg, a, reasonFor(a.Name))
		}
	}
	if len(devices) == 0 {
		c.keep(root, e, "none of its devices is one scstd serves")
		return
	}
	dg.set("devices", strList(devices))
	root.blocks = append(root.blocks, dg)
}

// targetGroup converts TARGET_GROUP into dg.
func (c *converter) targetGroup(dg *node, e *Entry) {
	if len(e.Args) != 1 {
		c.errorf(e, "TARGET_GROUP takes one target group name")
		return
	}
	tg := dg.block("target_group", e.Args[0])
	tg.order = []string{"group_id", "state", "preferred", "targets"}
	var targets []string
	for _, a := range e.Section {
		switch {
		case a.Name == "group_id" && !a.HasSection:
			if v, ok := c.value(a, kindInt); ok {
				tg.set("group_id", v)
			}
		case a.Name == "state" && !a.HasSection:
			s, ok := aluaStates[strings.ToLower(a.Value())]
			if !ok {
				c.errorf(a, "state: expected active, nonoptimized, standby, unavailable, offline or transitioning, got %q", printable(a.Value()))
				continue
			}
			tg.set("state", str(s))
		case a.Name == "preferred" && !a.HasSection:
			if v, ok := c.value(a, kindFlag); ok {
				tg.set("preferred", v)
			}
		case a.Name == "TARGET" && len(a.Args) == 1:
			if !c.iscsiTargets[a.Args[0]] {
				c.keep(tg, a, "not one of this file's iSCSI targets: scstd lists its own target ports only")
				continue
			}
			targets = append(targets, a.Args[0])
			for _, x := range a.Section {
				c.keep(tg, x, "scstd takes a target's relative port identifier from its target block (rel_tgt_id)")
			}
		default:
			c.keep(tg, a, reasonFor(a.Name))
		}
	}
	if !tg.has("group_id") {
		c.errorf(e, "target group %s has no group_id; SCST needs one too", printable(e.Args[0]))
	}
	tg.set("targets", strList(targets))
}
