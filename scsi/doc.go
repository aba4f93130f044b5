// Package scsi is scstd's SCSI device server: it executes the SPC-4 and
// SBC-3 commands that an iSCSI session hands over, against vdisk backends,
// and keeps the SCSI state that outlives one command: logical unit
// numbering, unit attentions per I_T nexus, reservations, mode parameters.
//
// It does not know about iSCSI PDUs, sessions or sockets: the iscsi
// package turns a SCSI Command PDU into a Command, calls Execute, and sends
// the Result back (status, sense, data-in, residuals). Nor does it open
// files: a Device is given a vdisk.Backend and can be taken offline and
// brought back.
//
// # Dispatch
//
// Every supported command is one commandDesc in a table (coreCommands,
// reservationCommands, provisioningCommands), indexed once at start-up by
// opcode and service action. Execute checks, in the order SAM-5 gives:
//
//	LUN addresses a logical unit?          no  → ILLEGAL REQUEST 25h/00h (INQUIRY, REPORT LUNS, REQUEST SENSE still run)
//	unit attention pending for the nexus?  yes → UNIT ATTENTION (not for INQUIRY, REPORT LUNS; REQUEST SENSE returns it)
//	opcode supported for the device type?  no  → ILLEGAL REQUEST 20h/00h
//	  (REPORT/SET TARGET PORT GROUPS: for a device in a device group)
//	port's ALUA state allows the command?  no  → NOT READY 04h/0Ah, 0Bh, 0Ch, 12h
//	device online, medium present?         no  → NOT READY 04h/03h, 3Ah/00h (CD-ROM: 3Ah/01h, 3Ah/02h)
//	shared state not held, or fenced?      yes → NOT READY 04h/0Ah, 04h/0Ch (a device that shares its reservations)
//	reservation held by another nexus?     yes → RESERVATION CONFLICT
//	write to a read-only device or LUN?    yes → DATA PROTECT 27h/00h
//	the command's own checks and work      (handler)
//
// # Counters
//
// IOStats (counters.go) are the I/O counters of a logical unit (each
// LogicalUnit of a LUN map has its own) or of an I_T nexus: commands by
// class (read, write, other), data-in and data-out bytes, failures by
// status and sense key, a latency histogram per class with fixed buckets,
// and the commands in flight. The transport records a command when it
// completes; everything is an atomic, so recording takes no lock and
// allocates nothing.
//
// # Identity, ALUA, persistence
//
// A device's VPD page 83h lists its NAA designator first: NAA 6h, derived
// by the engine from an installation seed (DeriveNAA) or pinned, which
// the Linux kernel and udev take as the disk's name; then the T10 vendor
// ID designator, then the port designators of the nexus. A device in a
// DeviceGroup (alua.go: SCST's device groups, one target port per
// target) reports TPGS, answers REPORT and SET TARGET PORT GROUPS, names
// its port's target port group in VPD 83h, refuses what its port's state
// refuses, and tells each nexus of a change of its port's group with
// ASYMMETRIC ACCESS STATE CHANGED. A device given a PRStore keeps its
// persistent reservations through power loss when the initiators ask for
// APTPL (prstore.go). A device given a SharedPR shares its reservation
// state with other device servers that export the same logical unit
// (the gateways of a cluster, shared.go): every change is a
// compare-and-swap in the shared store, applied everywhere before it
// completes, and COMPARE AND WRITE holds the logical unit's shared
// token.
//
// # Pass-through devices
//
// A Device made with DeviceConfig.Passthrough has no vdisk backend and no
// command table of its own: a Passthrough (the dev_disk handler's SG_IO
// backend, package internal/sgio) executes the initiators' commands on a
// real logical unit. The seam is one branch in the dispatcher: after the
// logical unit lookup and the unit attention check, which every device
// shares, a pass-through device's command goes to passThrough instead of
// the table. The target keeps only what the transport and the sharing of
// one device by many initiators need:
//
//	REPORT LUNS                  the target's LUN map, not the device's
//	INQUIRY VPD 83h              the device's logical unit designators, the target's
//	                             port designators (relative port, port group, names)
//	unit attentions              the target's own (power on per nexus, reported LUNs
//	                             changed, LU reset, reservations) come first; the
//	                             device's pass verbatim, and its CAPACITY DATA HAS
//	                             CHANGED and MODE PARAMETERS CHANGED reach every nexus
//	RESERVE/RELEASE(6/10),       the target's, as for virtual devices: the device sees
//	PERSISTENT RESERVE IN/OUT    one initiator (this host) for all, so its own
//	                             reservations could not tell initiators apart
//	read-only LU or device       commands not known to leave the medium alone are
//	                             refused (DATA PROTECT); MODE SENSE reports WP
//	device offline or gone       NOT READY 04h/03h; standard INQUIRY answers with
//	                             peripheral qualifier 001b
//
// Task management stays the target's: LOGICAL UNIT RESET resets the
// target's state of the device (SPC-2 reservation, unit attentions), not
// the disk, and an aborted command's SG_IO runs to completion or to its
// timeout while its answer is dropped.
//
// Everything else is passed as is, and the device's status and sense data
// (fixed or descriptor format) come back verbatim. Data-in is sized from
// the CDB for the commands SPC-4 and SBC-3 define (the initiator's
// expected length otherwise), so that an initiator expecting less gets an
// overflow residual rather than a failed transfer; a block write whose
// data-out falls short writes the whole blocks that arrived, as the
// target's own WRITE does. Transport failures (timeouts, host errors) are
// the Passthrough's to map to sense; an error wrapping ENODEV or ENXIO
// means the device is gone, and the Device goes offline until it is given
// a Passthrough again (the engine's retries do that).
//
// # Wire formats
//
// A LUN on the wire (SAM-5 §4.7), single level:
//
//	byte  0        1        2..7
//	     +--------+--------+--------+
//	     |00 bus=0|  LUN   |   0    |   peripheral device addressing, LUN 0..255
//	     +--------+--------+--------+
//	     |01 LUN hi| LUN lo|   0    |   flat space addressing, LUN 256..16383
//	     +--------+--------+--------+
//
// A 10-byte block command (READ(10), WRITE(10), VERIFY(10), ...):
//
//	byte  0       1                        2..5   6      7..8      9
//	     +------+------------------------+------+------+---------+-------+
//	     |opcode|PROTECT(3) DPO FUA/BYTCHK| LBA  |group |transfer |control|
//	     +------+------------------------+------+------+---------+-------+
//
// (6-byte: 21-bit LBA in bytes 1..3, length in byte 4, 0 meaning 256;
// 12-byte: 32-bit LBA, 32-bit length; 16-byte: 64-bit LBA, 32-bit length.)
//
// Fixed-format sense data, 18 bytes (SPC-4 §4.5.3):
//
//	byte  0          1  2        3..6         7        8..11  12   13    14  15..17
//	     +----------+--+--------+------------+--------+------+----+-----+---+------------+
//	     |V|70h     |0 |key     |INFORMATION |len=10  |  0   |ASC |ASCQ |0  |SKSV|field  |
//	     +----------+--+--------+------------+--------+------+----+-----+---+------------+
//
// # Unit attentions without a registry
//
// Device-wide events (capacity changed, mode parameters changed, logical
// unit reset, a medium loaded) increment counters in the Device. Each Nexus remembers, per
// LUN, the counter values it has reported and compares them on its next
// command to that LUN, so an event reaches every nexus without the device
// knowing which nexuses exist.
//
// A change of the LUN map a nexus sees is posted to that nexus
// (Nexus.PostLUNChange) before the new map is published, and takes effect
// on its first command through another map: REPORTED LUNS DATA HAS
// CHANGED (3Fh/0Eh) on every LUN, INQUIRY DATA HAS CHANGED (3Fh/03h) on a
// LUN that now reaches another device, and no POWER ON for a LUN new to
// an existing nexus (only a new nexus reports POWER ON, once per LUN).
//
// # Backends drain by reference
//
// A command takes a reference on the device state it picks its backend
// (or a pass-through device's Passthrough) from: one atomic add, and one
// to drop it when it completes. When a device changes storage or goes
// offline, the old state is retired and returned as a Drain, whose Done
// channel closes when the last command holding it completes: only then is
// the storage closed, so that a command in flight across a reload
// finishes on the storage it started on, and no timer decides when
// storage is released. A pass-through disk that reports itself gone
// marks its state lost (the device answers NOT READY) but stays in it, so
// that the engine closes it through the same Drain when it replaces it.
package scsi
