package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/scstd/scstd/internal/access"
)

// Config is one loaded configuration: the merge of every file it was read
// from, decoded, defaulted and validated. A Config returned by Load without
// error diagnostics is complete: every default is filled in, so readers never
// need to know the defaults themselves.
type Config struct {
	// DisruptiveChanges says whether a reload may end live sessions or
	// change what they read (default: refuse). The engine holds a reload
	// to the running configuration's value, not the new file's.
	DisruptiveChanges DisruptivePolicy

	// LogLevel is the daemon's log level (SCST's trace_level, as a level):
	// LogDebug, LogInfo, LogWarn or LogError, or "" when the file does not
	// set log_level and the -log-level flag of `scstd run` decides.
	LogLevel LogLevel

	// ISCSI holds the global iSCSI settings. It is never nil after Load: when
	// the files have no iscsi block it holds the defaults and an empty
	// DeclRange.
	ISCSI *ISCSI

	// Devices lists every device of every handler block, in file order.
	// Device names are unique across handlers.
	Devices []*Device

	// Targets lists the targets in file order. Target names are unique.
	Targets []*Target

	// Cluster is the cluster block, nil when there is none (a gateway
	// on its own).
	Cluster *Cluster
	// StateDir is the directory where the daemon keeps its state (the
	// seed of NAA designators, persistent reservations with APTPL),
	// absolute (default DefaultStateDir).
	StateDir string

	// DeviceGroups lists the ALUA device groups in file order.
	DeviceGroups []*DeviceGroup

	// Metrics is the metrics block, nil when no file has one (no
	// endpoint, as with listen = "").
	Metrics *Metrics

	// Attrs holds the ranges of the top-level attributes that were set,
	// keyed by attribute name (e.g. "disruptive_changes").
	Attrs map[string]hcl.Range

	files map[string]*hcl.File
	// sourceFiles are the files the configuration was read from, and
	// sourceDir the directory, when it was read from one.
	sourceFiles []string
	sourceDir   string
}

// Files returns the parsed source files by name, for printing diagnostics
// with hcl.NewDiagnosticTextWriter. The map must not be modified.
func (c *Config) Files() map[string]*hcl.File { return c.files }

// Device returns the device named name, or nil.
func (c *Config) Device(name string) *Device {
	for _, d := range c.Devices {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// Target returns the target named name, or nil.
func (c *Config) Target(name string) *Target {
	for _, t := range c.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Range returns the range of the top-level attribute name when it was set,
// and the zero range otherwise.
func (c *Config) Range(name string) hcl.Range { return c.Attrs[name] }

// DisruptivePolicy is the value of disruptive_changes.
type DisruptivePolicy string

// The values of disruptive_changes.
const (
	// DisruptiveAllow lets a reload end live sessions (removed or
	// disabled targets) and change what they read (a LUN that reaches
	// another device, a device whose identity changes).
	DisruptiveAllow DisruptivePolicy = "allow"
	// DisruptiveRefuse, the default, makes such a reload fail unless it
	// is forced (scstd reload -force).
	DisruptiveRefuse DisruptivePolicy = "refuse"
)

// String returns the configuration spelling of p.
func (p DisruptivePolicy) String() string { return string(p) }

// LogLevel is the value of log_level: the least severe log record the
// daemon writes.
type LogLevel string

// The values of log_level.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// LogLevels lists the values of log_level, most verbose first.
var LogLevels = []LogLevel{LogDebug, LogInfo, LogWarn, LogError}

// String returns the configuration spelling of l.
func (l LogLevel) String() string { return string(l) }

// ISCSI is the iscsi block: settings shared by every target.
type ISCSI struct {
	// Enabled turns the iSCSI service on (default true).
	Enabled bool
	// Portals are the listen addresses (default ["0.0.0.0:3260"]).
	Portals []Portal
	// ISNSServers are the iSNS servers to register with.
	ISNSServers []*ISNSServer
	// IncomingUsers are the discovery-session CHAP users (initiator → target).
	IncomingUsers []*User
	// OutgoingUser is the discovery mutual-CHAP user (target → initiator), or nil.
	OutgoingUser *User
	// MaxConnections caps the iSCSI connections in all, logins and
	// discovery sessions included (default 4096).
	MaxConnections int
	// MaxConnectionsPerAddress caps the connections from one initiator
	// address, an IPv4 address or an IPv6 /64 (default 256).
	MaxConnectionsPerAddress int
	// LoginTimeout bounds a login, from the connection to its last Login
	// Response (default 15s).
	LoginTimeout time.Duration
	// DiscoveryIdleTimeout closes a discovery session that sends nothing
	// for this long (default 30s).
	DiscoveryIdleTimeout time.Duration

	// DeclRange is the range of the block header; zero when there is no block.
	DeclRange hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs map[string]hcl.Range
}

// Range returns the range of attribute name when it was set, and DeclRange
// otherwise.
func (i *ISCSI) Range(name string) hcl.Range { return rangeOr(i.Attrs, name, i.DeclRange) }

// Portal is one listen address.
type Portal struct {
	// Addr is the address, port 3260 when the file gives none.
	Addr access.HostPort
	// Range is the range of the list element that declared it.
	Range hcl.Range
}

// ISNSServer is one isns_server block.
type ISNSServer struct {
	// Addr is the server's address (port 3205 when the label has none).
	Addr access.HostPort
	// AccessControl makes the iSNS server's discovery domains the access
	// control list of every target (SCST's AccessControl, default false).
	AccessControl bool

	// DeclRange is the range of the block header.
	DeclRange hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs map[string]hcl.Range
}

// User is one CHAP user: an incoming_user or outgoing_user block.
type User struct {
	// Name is the CHAP name (the block label).
	Name string
	// Secret is the CHAP secret.
	Secret Secret

	// DeclRange is the range of the block header.
	DeclRange hcl.Range
	// NameRange is the range of the label. Diagnostics about the secret
	// point here, so that they never print the secret's source line.
	NameRange hcl.Range
}

// Handler is the name of a device handler (the label of a handler block).
type Handler string

// The device handlers.
const (
	// HandlerFileIO serves a regular file.
	HandlerFileIO Handler = "vdisk_fileio"
	// HandlerBlockIO serves a block device.
	HandlerBlockIO Handler = "vdisk_blockio"
	// HandlerNullIO serves no storage: reads return zeroes, writes vanish.
	HandlerNullIO Handler = "vdisk_nullio"
	// HandlerCDROM serves an ISO image as a read-only MMC CD-ROM.
	HandlerCDROM Handler = "vcdrom"
	// HandlerDevDisk passes commands through to a real SCSI disk (SG_IO).
	HandlerDevDisk Handler = "dev_disk"
)

// Handlers lists every known handler.
var Handlers = []Handler{HandlerFileIO, HandlerBlockIO, HandlerNullIO, HandlerCDROM, HandlerDevDisk}

// String returns the configuration spelling of h.
func (h Handler) String() string { return string(h) }

// Device is one device block, flattened out of its handler block.
type Device struct {
	// Name is the device name, unique across handlers.
	Name string
	// Handler is the handler block the device is declared in.
	Handler Handler
	// Filename is the backing file or block device, always absolute: a
	// relative name in the file is resolved against the directory of the
	// file that declares it. Empty for nullio and for a vcdrom device
	// without a medium.
	Filename string
	// Size is the device size; Size.Bytes is 0 when size was not set.
	Size Size
	// BlockSize is the logical block size in bytes (default 512).
	BlockSize int
	// NVCache ignores SYNCHRONIZE CACHE and FUA (default false).
	NVCache bool
	// WriteThrough makes every write synchronous (default false).
	WriteThrough bool
	// ODirect opens the backing file with O_DIRECT (default false).
	ODirect bool
	// ReadOnly rejects writes (default false; always true for vcdrom).
	ReadOnly bool
	// Removable sets the RMB bit in INQUIRY (default false; true for vcdrom).
	Removable bool
	// T10DevID is the T10 vendor identification designator (default: the
	// device name).
	T10DevID string
	// USN is the unit serial number (default: 8 hex digits of the FNV-1a
	// hash of the device name, stable across restarts).
	USN string
	// NAAID pins the logical unit's NAA designator, as lower-case hex
	// digits (32 for NAA 6h, 16 for NAA 2h, 3h or 5h); "" (the default)
	// derives an NAA 6h designator from the installation's seed and
	// t10_dev_id.
	NAAID string
	// Path is the real SCSI disk of a dev_disk device: an absolute device
	// node that takes SG_IO (/dev/sg2, /dev/disk/by-id/...) or a SCSI
	// address H:C:T:L (default: the device label when it is one, as
	// SCST names pass-through devices). Empty for other handlers.
	Path string
	// Timeout bounds each command passed to a dev_disk device (default
	// 30s). Zero for other handlers.
	Timeout time.Duration

	// DeclRange is the range of the device block header.
	DeclRange hcl.Range
	// NameRange is the range of the device label.
	NameRange hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs AttrRanges
}

// Range returns the range of attribute name when it was set, and DeclRange
// otherwise.
func (d *Device) Range(name string) hcl.Range { return d.Attrs.rangeOr(name, d.DeclRange) }

// Size is a size in bytes together with its spelling in the file.
type Size struct {
	// Bytes is the size in bytes; 0 when unset.
	Bytes int64
	// Text is the size as written ("10GiB"), for messages.
	Text string
}

// IsSet reports whether a size was given.
func (s Size) IsSet() bool { return s.Text != "" }

// String returns the size as written, or "unset".
func (s Size) String() string {
	if s.Text == "" {
		return "unset"
	}
	return s.Text
}

// Target is one target block.
type Target struct {
	// Name is the iSCSI name (iqn., eui. or naa.), unique across targets.
	Name string
	// Enabled makes the target visible to discovery and login (default true).
	Enabled bool

	// HeaderDigest and DataDigest are the digests offered, in order of
	// preference (default ["None"]).
	HeaderDigest []access.Digest
	DataDigest   []access.Digest
	// ImmediateData (default true) and InitialR2T (default false) are the
	// target's negotiation defaults.
	ImmediateData bool
	InitialR2T    bool
	// Negotiation limits in bytes; see doc.go for defaults and ranges.
	MaxRecvDataSegmentLength int
	MaxXmitDataSegmentLength int
	MaxBurstLength           int
	FirstBurstLength         int
	// MaxOutstandingR2T is the R2T limit per task (default 32).
	MaxOutstandingR2T int
	// QueuedCommands is the command window per session (default 32).
	QueuedCommands int
	// NopInInterval is the idle time before a NOP-In ping; 0 disables pings
	// (default 30s).
	NopInInterval time.Duration
	// NopInTimeout is how long a ping may stay unanswered (default 30s).
	NopInTimeout time.Duration
	// RspTimeout is how long a command may wait for the initiator before the
	// connection is closed (default 90s).
	RspTimeout time.Duration
	// MaxSessions caps the sessions of the target; 0 (the default) sets
	// no cap beyond the connection caps of the iscsi block.
	MaxSessions int

	// AllowedPortals are portal address patterns ("*", "?", "!" negation);
	// empty allows every portal.
	AllowedPortals access.Patterns
	// PerPortalACL registers initiators as "name#portal_ip" (default false).
	PerPortalACL bool
	// Redirect, unless zero, answers every login with a redirection.
	Redirect access.Redirect
	// RelTgtID is the relative target port identifier; 0 means "assign one".
	RelTgtID int

	// IncomingUsers are CHAP users (initiator → target); empty: no CHAP.
	IncomingUsers []*User
	// OutgoingUser is the mutual-CHAP user (target → initiator), or nil.
	OutgoingUser *User
	// CHAPAlgorithms are the CHAP algorithms the target accepts (default
	// SHA3-256, SHA-256, SHA-1, MD5); the strongest one the initiator
	// also offers is used, whatever the order here.
	CHAPAlgorithms []access.CHAPAlgorithm

	// LUNs is the default LUN map (initiators matching no group), in file order.
	LUNs []*LUN
	// Groups are the initiator groups, in file order.
	Groups []*Group

	// DeclRange is the range of the target block header.
	DeclRange hcl.Range
	// NameRange is the range of the target label.
	NameRange hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs map[string]hcl.Range
}

// Range returns the range of attribute name when it was set, and DeclRange
// otherwise.
func (t *Target) Range(name string) hcl.Range { return rangeOr(t.Attrs, name, t.DeclRange) }

// LUN maps a logical unit number to a device.
type LUN struct {
	// Number is the logical unit number, 0..16383.
	Number int
	// Device is the name of the device served.
	Device string
	// ReadOnly rejects writes through this LUN (default false).
	ReadOnly bool

	// DeclRange is the range of the lun block header.
	DeclRange hcl.Range
	// NumberRange is the range of the label.
	NumberRange hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs AttrRanges
}

// Range returns the range of attribute name when it was set, and DeclRange
// otherwise.
func (l *LUN) Range(name string) hcl.Range { return l.Attrs.rangeOr(name, l.DeclRange) }

// Group is an initiator group: initiators matching its patterns see its LUNs
// instead of the target's.
type Group struct {
	// Name is the group name, unique within the target.
	Name string
	// Initiators are initiator name patterns ("*", "?", "!" negation).
	Initiators access.Patterns
	// LUNs is the group's LUN map.
	LUNs []*LUN

	// DeclRange is the range of the group block header.
	DeclRange hcl.Range
	// NameRange is the range of the label.
	NameRange hcl.Range
	// Attrs holds the ranges of the attributes that were set.
	Attrs map[string]hcl.Range
}

// Range returns the range of attribute name when it was set, and DeclRange
// otherwise.
func (g *Group) Range(name string) hcl.Range { return rangeOr(g.Attrs, name, g.DeclRange) }

func rangeOr(attrs map[string]hcl.Range, name string, def hcl.Range) hcl.Range {
	if r, ok := attrs[name]; ok {
		return r
	}
	return def
}

// AttrRanges holds the ranges of the attributes a device or LUN block
// set. It is a slice rather than a map because a block
// sets one or two attributes and a configuration may hold tens of
// thousands of blocks: a map of one entry takes ~700 bytes, an
// AttrRange 80.
type AttrRanges []AttrRange

// AttrRange is the range of one attribute that was set.
type AttrRange struct {
	Name  string
	Range hcl.Range
}

// Get returns the range of attribute name and whether it was set.
func (a AttrRanges) Get(name string) (hcl.Range, bool) {
	for _, r := range a {
		if r.Name == name {
			return r.Range, true
		}
	}
	return hcl.Range{}, false
}

// Has reports whether attribute name was set.
func (a AttrRanges) Has(name string) bool {
	_, ok := a.Get(name)
	return ok
}

func (a AttrRanges) rangeOr(name string, def hcl.Range) hcl.Range {
	if r, ok := a.Get(name); ok {
		return r
	}
	return def
}
