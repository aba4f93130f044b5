package scsi

// Placeholders for the command tables and hooks that the reservations and
// provisioning work defines in its own files; that work deletes this file.

// reservationCommands are RESERVE/RELEASE(6/10) and PERSISTENT RESERVE
// IN/OUT.
var reservationCommands []commandDesc

// provisioningCommands are UNMAP, WRITE SAME, COMPARE AND WRITE, GET LBA
// STATUS, ORWRITE, PRE-FETCH, SANITIZE, WRITE ATOMIC and EXTENDED COPY.
var provisioningCommands []commandDesc

// resetReservations drops the device's SPC-2 reservation (logical unit
// reset, SPC-4 §5.13.2); persistent reservations survive it.
func (d *Device) resetReservations() {}
