// Package hctl knows the SCSI addresses Linux gives its SCSI devices,
// host:channel:target:lun ("0:0:1:0"): the names of
// /sys/bus/scsi/devices, what lsscsi prints, and how SCST's dev_disk
// handler and scstd's dev_disk devices name a disk. It uses the standard
// library only, so that package config can check a dev_disk label with
// the same rule by which package sgio resolves it.
package hctl

import (
	"strconv"
	"strings"
)

// Valid reports whether s is a SCSI address: four decimal numbers
// separated by colons, the host, channel and target 32-bit and the LUN
// 64-bit, as the kernel holds them.
func Valid(s string) bool {
	f := strings.Split(s, ":")
	if len(f) != 4 {
		return false
	}
	for i, x := range f {
		bits := 32
		if i == 3 {
			bits = 64
		}
		if _, err := strconv.ParseUint(x, 10, bits); err != nil {
			return false
		}
	}
	return true
}
