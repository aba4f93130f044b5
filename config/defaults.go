package config

import "time"

// Defaults filled in for attributes a file leaves unset. doc.go explains
// where each comes from.
const (
	DefaultPortal                   = "0.0.0.0:3260"
	DefaultBlockSize                = 512
	DefaultMaxRecvDataSegmentLength = 1048576
	DefaultMaxXmitDataSegmentLength = 1048576
	DefaultMaxBurstLength           = 1048576
	DefaultFirstBurstLength         = 65536
	DefaultMaxOutstandingR2T        = 32
	DefaultQueuedCommands           = 32
	DefaultNopInInterval            = 30 * time.Second
	DefaultNopInTimeout             = 30 * time.Second
	DefaultRspTimeout               = 90 * time.Second
	DefaultMaxSessions              = 0
	DefaultMaxConnections           = 4096
	DefaultMaxConnectionsPerAddress = 256
	DefaultLoginTimeout             = 15 * time.Second
	DefaultDiscoveryIdleTimeout     = 30 * time.Second

	// MaxLUN is the highest LUN number (flat space addressing, SAM-5).
	MaxLUN = 16383
	// MinCHAPSecret is the shortest CHAP secret accepted, in bytes
	// (RFC 7143 §12.1.3 requires at least 96 bits).
	MinCHAPSecret = 12
)
