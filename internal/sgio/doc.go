// Package sgio is the backend of the dev_disk handler: it passes SCSI
// commands to a real logical unit through the Linux SCSI generic driver's
// SG_IO ioctl (version 3 interface), and implements scsi.Passthrough.
//
// A device is named by a device node that accepts SG_IO (/dev/sg2, a
// SCSI disk's block node such as /dev/disk/by-id/wwn-…), or by the SCSI
// address H:C:T:L that lsscsi prints and SCST's add_device takes, which
// Open resolves through sysfs each time (/sys/bus/scsi/devices/H:C:T:L/
// scsi_generic/sgN, so a device that comes back under another sg number
// is found again). Open checks that the unit is a disk (peripheral device
// type 00h, qualifier 000b) and reads its block size (READ CAPACITY), the
// largest transfer its queue accepts, and its identity (Identity: standard
// INQUIRY, VPD pages 80h and 83h, see package diskid), by which the engine
// tells whether the name still leads to the disk the device exported.
//
// # sg_io_hdr
//
// Pass fills one sg_io_hdr (include/scsi/sg.h) per command; on amd64 and
// arm64 it is 88 bytes:
//
//	off  size  field            in/out
//	  0   4    interface_id     in   'S'
//	  4   4    dxfer_direction  in   -1 none, -2 to device, -3 from device
//	  8   1    cmd_len          in
//	  9   1    mx_sb_len        in   sense buffer size
//	 10   2    iovec_count      in   0: dxferp is one buffer
//	 12   4    dxfer_len        in
//	 16   8    dxferp           in   data buffer
//	 24   8    cmdp             in   CDB
//	 32   8    sbp              in   sense buffer
//	 40   4    timeout          in   milliseconds
//	 44   4    flags            in
//	 48   4    pack_id          in/out
//	 56   8    usr_ptr          in/out
//	 64   1    status           out  SCSI status byte
//	 65   1    masked_status    out
//	 66   1    msg_status       out
//	 67   1    sb_len_wr        out  sense bytes written
//	 68   2    host_status      out  DID_* of the host adapter
//	 70   2    driver_status    out  DRIVER_* of the mid level
//	 72   4    resid            out  dxfer_len less what was transferred
//	 76   4    duration         out  milliseconds
//	 80   4    info             out  SG_INFO_* bits
//
// # Outcomes
//
// The device's status and sense data are returned as they came (a CHECK
// CONDITION's sense verbatim, fixed or descriptor format); data-in is
// dxfer_len less resid. What the device did not report is mapped here:
//
//	ioctl ENODEV, ENXIO; DID_NO_CONNECT,  the device is gone: an error wrapping ENXIO/ENODEV,
//	DID_BAD_TARGET                        which takes the scsi.Device offline (NOT READY)
//	                                      until the engine's retries reopen it
//	DID_TIME_OUT, DRIVER_TIMEOUT          ABORTED COMMAND, LOGICAL UNIT COMMUNICATION TIME-OUT (08h/01h)
//	DID_BUS_BUSY, DID_SOFT_ERROR, DID_IMM_RETRY, DID_REQUEUE,
//	DID_TRANSPORT_DISRUPTED, DID_TRANSPORT_MARGINAL, ioctl EDOM, EAGAIN, ENOMEM, EBUSY, EINTR
//	                                      status BUSY: the initiator retries
//	DID_PARITY                            ABORTED COMMAND, SCSI PARITY ERROR (47h/00h)
//	DID_ABORT, DID_ERROR, DID_RESET, DID_BAD_INTR, DID_PASSTHROUGH, DID_TRANSPORT_FAILFAST
//	                                      ABORTED COMMAND, LOGICAL UNIT COMMUNICATION FAILURE (08h/00h)
//	DID_ALLOC_FAILURE                     DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (27h/07h)
//	DID_MEDIUM_ERROR                      MEDIUM ERROR, UNRECOVERED READ ERROR (11h/00h) or WRITE ERROR (0Ch/00h)
//	DID_TARGET_FAILURE, DID_NEXUS_FAILURE, any other host or driver error
//	                                      HARDWARE ERROR, INTERNAL TARGET FAILURE (44h/00h)
//	ioctl EINVAL                          ILLEGAL REQUEST, INVALID FIELD IN CDB (24h/00h)
//
// Every command carries the device's timeout (Options.Timeout); the
// kernel aborts a command that exceeds it and reports DID_TIME_OUT.
//
// The package does not serialize commands, apply task attributes
// (the kernel sends every command SIMPLE), nor pass task management
// functions to the device: an aborted task's command runs to completion
// or to its timeout.
package sgio
