package config

import (
	"strconv"
	"strings"
	"time"
)

// DefaultDevDiskTimeout is the default timeout of a command passed to a
// dev_disk device: the Linux sd driver's.
const DefaultDevDiskTimeout = 30 * time.Second

// IsHCTL reports whether s is a SCSI address host:channel:target:lun, as
// lsscsi prints it and SCST's add_device takes it ("0:0:1:0").
func IsHCTL(s string) bool {
	f := strings.Split(s, ":")
	if len(f) != 4 {
		return false
	}
	for _, x := range f {
		if _, err := strconv.ParseUint(x, 10, 32); err != nil {
			return false
		}
	}
	return true
}
