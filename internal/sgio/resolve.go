package sgio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// hostMaxSectors reads max_sectors of the SCSI host of the character
// device rdev (an sg node): /sys/dev/char/MAJ:MIN/device is the SCSI
// device, two levels below its host. 0 when sysfs does not say.
func hostMaxSectors(sys string, rdev uint64) int {
	dev, err := filepath.EvalSymlinks(filepath.Join(sys, "dev/char", fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev)), "device"))
	if err != nil {
		return 0
	}
	host := filepath.Dir(filepath.Dir(dev))
	b, err := os.ReadFile(filepath.Join(host, "scsi_host", filepath.Base(host), "max_sectors"))
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// resolveHCTL returns the sg node of the SCSI device at address hctl:
// /sys/bus/scsi/devices/H:C:T:L/scsi_generic/sgN names it, dev/sgN is it.
func resolveHCTL(sys, dev, hctl string) (string, error) {
	dir := filepath.Join(sys, "bus/scsi/devices", hctl)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("dev_disk %s: no SCSI device at %s (lsscsi lists the addresses): %w", hctl, hctl, fs.ErrNotExist)
		}
		return "", fmt.Errorf("dev_disk %s: %w", hctl, err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "scsi_generic"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("dev_disk %s: the SCSI device has no sg node (is the sg module loaded?): %w", hctl, fs.ErrNotExist)
		}
		return "", fmt.Errorf("dev_disk %s: %w", hctl, err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "sg") {
			return filepath.Join(dev, e.Name()), nil
		}
	}
	return "", fmt.Errorf("dev_disk %s: the SCSI device has no sg node: %w", hctl, fs.ErrNotExist)
}
