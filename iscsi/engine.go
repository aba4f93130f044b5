package iscsi

import (
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
)

// Snapshot is the engine state that sessions read on every command and at
// every login. It is immutable once published through Server.Publish; a
// reload builds a new one and swaps it in.
type Snapshot struct {
	// Generation counts published snapshots (1 for the first).
	Generation uint64
	// Enabled is the global iscsi { enabled } switch: when false no new
	// login (discovery or normal) is accepted.
	Enabled bool
	// Targets by IQN.
	Targets map[string]*Target
	// Auth is the discovery CHAP configuration (iscsi { incoming_user,
	// outgoing_user }).
	Auth Auth
	// LogoutGrace is how long the sessions of a target this snapshot
	// removes or disables have to log out before they are closed (0: 5s).
	LogoutGrace time.Duration
	// Limits are the connection caps and login timeouts (caps.go).
	Limits Limits
	// AccessControl, when not nil, is asked too whether an initiator may
	// see and log in to a target: the iSNS server's discovery domains
	// (isns_server { access_control = true }).
	AccessControl AccessControl
	// TPGT is the target portal group tag of every portal (0:
	// DefaultTPGT). Each gateway of a cluster has its own, so that the
	// same target through two gateways is two SCSI target ports.
	TPGT uint16
}

// tpgt returns the snapshot's target portal group tag.
func (s *Snapshot) tpgt() uint16 {
	if s.TPGT == 0 {
		return DefaultTPGT
	}
	return s.TPGT
}

// AccessControl decides, beyond a target's own rules, whether an
// initiator may see a target in SendTargets and log in to it. Allowed is
// called at logins and discoveries, from many goroutines at once; it may
// take a network round trip.
type AccessControl interface {
	Allowed(initiator, target string) bool
}

// allowed reports whether the snapshot's AccessControl, if any, lets
// initiator see target.
func (s *Snapshot) allowed(initiator, target string) bool {
	return s.AccessControl == nil || s.AccessControl.Allowed(initiator, target)
}

// Target is one iSCSI target as the engine runs it.
type Target struct {
	Name         string
	Enabled      bool
	TID          uint32
	RelTgtPortID uint16
	// Params are the target's negotiation offers and limits.
	Params Params
	// QueuedCommands is the command window: MaxCmdSN = ExpCmdSN +
	// QueuedCommands - 1 - commands still executing. Live sessions read
	// it from the current snapshot; the window never shrinks below what
	// was advertised.
	QueuedCommands uint32
	// NopInInterval is how long a connection may be idle before the
	// target pings it with a NOP-In (0: no pings); NopInTimeout how long
	// the answer may take before the connection is dropped (0: the
	// interval). Live sessions follow changes.
	NopInInterval time.Duration
	NopInTimeout  time.Duration
	// RspTimeout bounds how long a command may take, from its arrival to
	// its response; a connection with an older command is closed (0: no
	// limit).
	RspTimeout time.Duration
	// MaxSessions caps the target's sessions (0: no cap); a login beyond
	// it is refused with OUT OF RESOURCES.
	MaxSessions int
	// LUNs is the default LUN map.
	LUNs *scsi.LUNMap
	// Auth holds the target's CHAP users (incoming_user, outgoing_user).
	Auth Auth
	// Access holds initiator groups, allowed portals, per-portal ACLs and
	// redirection.
	Access Access
}

// Params are a target's operational negotiation defaults (RFC 7143 §13),
// named as in the config file.
type Params struct {
	HeaderDigest             []access.Digest // in order of preference
	DataDigest               []access.Digest
	ImmediateData            bool
	InitialR2T               bool
	MaxRecvDataSegmentLength uint32 // what the target can receive
	MaxXmitDataSegmentLength uint32 // cap on what the target sends
	MaxBurstLength           uint32
	FirstBurstLength         uint32
	MaxOutstandingR2T        uint32
	DefaultTime2Wait         uint32
	DefaultTime2Retain       uint32
}

// Negotiated is the outcome of a login's operational negotiation: what a
// session runs with.
type Negotiated struct {
	HeaderDigest bool
	DataDigest   bool
	// MaxRecvDSL is the largest data segment the target accepts (declared
	// by the target); MaxXmitDSL the largest it sends (declared by the
	// initiator, capped by the target's max_xmit_data_segment_length).
	MaxRecvDSL          uint32
	MaxXmitDSL          uint32
	MaxBurstLength      uint32
	FirstBurstLength    uint32
	InitialR2T          bool
	ImmediateData       bool
	MaxOutstandingR2T   uint32
	DataPDUInOrder      bool
	DataSequenceInOrder bool
	DefaultTime2Wait    uint32
	DefaultTime2Retain  uint32
	ErrorRecoveryLevel  uint32
	MaxConnections      uint32
}
