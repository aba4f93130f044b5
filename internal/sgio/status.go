package sgio

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/scstd/scstd/scsi"
)

// Host adapter status codes (host_status, DID_* in
// include/scsi/scsi_status.h).
const (
	didOK                 = 0x00
	didNoConnect          = 0x01
	didBusBusy            = 0x02
	didTimeOut            = 0x03
	didBadTarget          = 0x04
	didAbort              = 0x05
	didParity             = 0x06
	didError              = 0x07
	didReset              = 0x08
	didBadIntr            = 0x09
	didPassthrough        = 0x0a
	didSoftError          = 0x0b
	didImmRetry           = 0x0c
	didRequeue            = 0x0d
	didTransportDisrupted = 0x0e
	didTransportFailfast  = 0x0f
	didTargetFailure      = 0x10
	didNexusFailure       = 0x11
	didAllocFailure       = 0x12
	didMediumError        = 0x13
	didTransportMarginal  = 0x14
)

// Mid-level driver status codes (the low nibble of driver_status).
const (
	driverError   = 0x04 // DRIVER_ERROR; DRIVER_INVALID 05h, DRIVER_HARD 07h above it
	driverTimeout = 0x06
)

var hostNames = map[uint16]string{
	didNoConnect: "DID_NO_CONNECT", didBusBusy: "DID_BUS_BUSY", didTimeOut: "DID_TIME_OUT",
	didBadTarget: "DID_BAD_TARGET", didAbort: "DID_ABORT", didParity: "DID_PARITY",
	didError: "DID_ERROR", didReset: "DID_RESET", didBadIntr: "DID_BAD_INTR",
	didPassthrough: "DID_PASSTHROUGH", didSoftError: "DID_SOFT_ERROR", didImmRetry: "DID_IMM_RETRY",
	didRequeue: "DID_REQUEUE", didTransportDisrupted: "DID_TRANSPORT_DISRUPTED",
	didTransportFailfast: "DID_TRANSPORT_FAILFAST", didTargetFailure: "DID_TARGET_FAILURE",
	didNexusFailure: "DID_NEXUS_FAILURE", didAllocFailure: "DID_ALLOC_FAILURE",
	didMediumError: "DID_MEDIUM_ERROR", didTransportMarginal: "DID_TRANSPORT_MARGINAL",
}

// hostName names a host status for errors and logs.
func hostName(h uint16) string {
	if n, ok := hostNames[h]; ok {
		return n
	}
	return fmt.Sprintf("host status %#02x", h)
}

// Sense conditions of failures the device did not report itself.
var (
	// errTimeout is ABORTED COMMAND, LOGICAL UNIT COMMUNICATION TIME-OUT.
	errTimeout = &scsi.SenseError{Key: scsi.AbortedCommand, ASC: 0x08, ASCQ: 0x01}
	// errCommFailure is ABORTED COMMAND, LOGICAL UNIT COMMUNICATION FAILURE.
	errCommFailure = &scsi.SenseError{Key: scsi.AbortedCommand, ASC: 0x08, ASCQ: 0x00}
	// errParity is ABORTED COMMAND, SCSI PARITY ERROR.
	errParity = &scsi.SenseError{Key: scsi.AbortedCommand, ASC: 0x47, ASCQ: 0x00}
)

// errBusy asks the initiator to retry: Pass reports it as status BUSY.
var errBusy = errors.New("sgio: busy")

// hostError maps a host status to Pass's outcome, nil for DID_OK:
// errBusy for the conditions a retry cures, an error wrapping ENXIO for a
// device that is not there, else a *scsi.SenseError.
func hostError(path string, h uint16, write bool) error {
	switch h {
	case didOK:
		return nil
	case didNoConnect, didBadTarget:
		return fmt.Errorf("dev_disk %s: %s: %w", path, hostName(h), syscall.ENXIO)
	case didBusBusy, didSoftError, didImmRetry, didRequeue, didTransportDisrupted, didTransportMarginal:
		return errBusy
	case didTimeOut:
		return errTimeout
	case didParity:
		return errParity
	case didAbort, didError, didReset, didBadIntr, didPassthrough, didTransportFailfast:
		return errCommFailure
	case didAllocFailure:
		return scsi.ErrSpaceAllocationFailed
	case didMediumError:
		if write {
			return scsi.ErrWriteError
		}
		return scsi.ErrReadError
	}
	return scsi.ErrInternalTarget
}

// ioctlError maps an SG_IO ioctl failure to Pass's outcome.
func ioctlError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return fmt.Errorf("dev_disk %s: %w", path, err)
	case errors.Is(err, syscall.EDOM), errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.ENOMEM),
		errors.Is(err, syscall.EBUSY), errors.Is(err, syscall.EINTR):
		return errBusy
	case errors.Is(err, syscall.EINVAL):
		return scsi.ErrInvalidFieldInCDB
	}
	return scsi.ErrInternalTarget
}
