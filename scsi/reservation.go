package scsi

import "sync"

// reservations is a device's SPC-2 and persistent reservation state.
// (Owned by the reservations work; this placeholder keeps the package
// building until it lands.)
type reservations struct {
	mu sync.Mutex
}

// reservationConflict reports whether t may not run because another I_T
// nexus holds a reservation on the device (SPC-4 §5.13).
func (d *Device) reservationConflict(t *task) bool { return false }
