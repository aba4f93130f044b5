package scsi

// statusError is a handler outcome that is neither GOOD nor CHECK
// CONDITION but a bare status: RESERVATION CONFLICT from PERSISTENT
// RESERVE OUT and RESERVE/RELEASE. The dispatcher (task.run) answers it
// with that status and no sense data.
type statusError struct{ status Status }

// Error names the status.
func (e *statusError) Error() string { return "scsi: status " + e.status.String() }

// errReservationConflict answers RESERVATION CONFLICT.
var errReservationConflict = &statusError{ReservationConflict}
