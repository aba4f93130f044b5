// Package iscsi is scstd's iSCSI target (RFC 7143): PDU encoding and
// framing, login with security and operational negotiation, discovery
// sessions, and normal sessions that carry SCSI commands to package scsi.
//
// It does not implement error recovery levels above 0, multiple
// connections per session (MaxConnections=1), markers, or iSER. It does
// not parse configuration: its access rules and negotiation offers are
// values of package access. Nor does it speak iSNS: logins and SendTargets
// ask the snapshot's AccessControl, which package reconcile sets to its
// iSNS client (package isns).
//
// # Wire format
//
// Every PDU is a 48-byte basic header segment (BHS), optional additional
// header segments (AHS), an optional CRC32C header digest, a data segment
// padded to a multiple of 4 bytes, and an optional CRC32C data digest:
//
//	 0               1               2               3
//	 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//	+-+-+-----------+-+-------------+---------------+---------------+
//	|.|I|  Opcode   |F| opcode-specific fields                      |  0
//	+-+-+-----------+-+-------------+---------------+---------------+
//	|TotalAHSLength |          DataSegmentLength                    |  4
//	+---------------+-----------------------------------------------+
//	|                 LUN or opcode-specific fields                 |  8
//	+                                                               +
//	|                                                               | 12
//	+---------------------------------------------------------------+
//	|                     Initiator Task Tag                        | 16
//	+---------------------------------------------------------------+
//	|                                                               | 20
//	/                   opcode-specific fields                      /
//	|                                                               | 44
//	+---------------------------------------------------------------+
//	/ AHS: TotalAHSLength 4-byte words, each segment                /
//	/      AHSLength(2) AHSType(1) specific(AHSLength) padding      /
//	+---------------------------------------------------------------+
//	| header digest: CRC32C of BHS and AHS (if HeaderDigest=CRC32C)  |
//	+---------------------------------------------------------------+
//	/ data segment: DataSegmentLength bytes, zero padded to 4       /
//	+---------------------------------------------------------------+
//	| data digest: CRC32C of data and padding (if DataDigest=CRC32C) |
//	+---------------------------------------------------------------+
//
// Multi-byte fields are big-endian; the digests go out least significant
// byte first (32 zero bytes digest to aa 36 91 8a on the wire). The
// per-opcode layouts are the structs of pdu.go (SCSICommand, DataIn,
// LoginRequest, ...), each with Decode and Encode. FrameReader reads PDUs,
// checking DataSegmentLength against MaxRecvDataSegmentLength before
// taking a pooled buffer; AppendFrame and FrameWriter write them.
//
// # Login and text
//
// Login and Text data segments are NUL-terminated key=value pairs that
// may be split across PDUs with the C bit (text.go). A login moves
// through the security stage (AuthMethod, CHAP), the operational stage
// (negotiate.go: the target's Params are its offers) and then full feature
// phase:
//
//	initiator                                    target
//	Login CSG=0 NSG=1 T=1 InitiatorName, TargetName, AuthMethod=None
//	                                        Login T=1 TargetPortalGroupTag, AuthMethod=None
//	Login CSG=1 NSG=3 T=1 HeaderDigest, MaxRecvDataSegmentLength, ...
//	                                        Login T=1 TSIH answers + MaxRecvDataSegmentLength
//
// A Discovery session then serves Text SendTargets, NOP-Out and Logout
// (discovery.go); a Normal session runs SCSI commands (session.go,
// conn.go; per RFC concern: window.go the CmdSN window, task.go the task
// table, dataout.go Data-Out and R2T, datain.go Data-In, executor.go the
// execution). A command that waits for nothing (scsi.TryExecute: a read
// or write served from memory) runs on the connection's reader, and the
// answers of the commands of one socket read leave in one writev
// (rawwrite.go); the others run on executor goroutines. (A write the page
// cache took in part is finished there too, waiting: its bytes are on the
// medium, so it is never handed back to be checked again.)
//
// # Peers on a budget
//
// Every peer is bounded in what it can make the target hold. Before login
// a connection holds no buffer and is counted against Limits (caps.go:
// connections in all and per address, login and discovery timeouts), and
// the names it gives are checked (name.go). A full-feature connection has
// one budget (budget.go): the bytes queued for its socket, the data-in
// reserved by commands about to run, the data-out solicited by R2Ts and
// the PDUs held for a missing CmdSN, each with a limit, and server-wide
// totals. CHAP responses are checked under a throttle per user, per
// source prefix and in all (throttle.go). A panic while executing a
// command is logged, answered INTERNAL TARGET FAILURE and counted.
//
// # Ending a connection
//
// No answer is lost to the end of a connection the initiator asks for.
// A Logout Response follows the answers of every command the connection
// had running, written before it (logout.go); commands that do not
// complete within the write timeout make it CLEANUP_FAILED, and the
// connection closes all the same. An initiator that half-closes its
// connection gets the answers queued and those of the commands running,
// then the connection closes at once; a write still waiting for
// data-out, which can no longer come, ends with the session.
//
// # Counters
//
// metrics.go counts, at one place per event, what status and metrics
// show: a completed SCSI command in its session's and its LUN's
// scsi.IOStats (class, bytes sent and received, status and sense key,
// time from arrival to answer; the LUN's queue depth from execution to
// completion), and a login, successful or not (by reason), under its
// target. Counting takes a few atomic additions and allocates nothing.
package iscsi
