// Package config reads scstd's HCL configuration: it decodes the schema
// (every attribute is in the table under Defaults below; examples/ holds
// complete files) into plain Go values, fills in every default, and checks
// it, reporting each problem as an hcl.Diagnostic whose Subject points at
// the offending file, line and column and whose Detail says what is
// expected. It knows nothing about the engine: besides hcl and the
// standard library it imports only two of scstd's packages, which use
// nothing else either: internal/access (the typed values of access rules,
// which it decodes into) and internal/hctl (SCSI addresses).
//
// # Loading
//
// Load (or Loader.Load) takes a file or a directory. A directory
// contributes its *.hcl files (symlinks followed, names starting with "."
// skipped) in name order, merged as one: devices, targets and handler
// blocks may be spread over files; a name declared twice is an error that
// names both places ("also declared at file:line"). A handler block may
// appear several times. Parse decodes bytes, for tests and fuzzing.
//
// Load is ReadSources then LoadSources. ReadSources refuses, before
// reading, a path that is not a regular file or a directory whose *.hcl
// entries are all regular files (a FIFO would block, /dev/zero never
// ends), and a configuration of more than MaxConfigSize (16 MiB) in all;
// it opens with O_NONBLOCK and reads with a limit. The daemon reads once
// with ReadSources and uses the same bytes for the content hash
// (Sources.Hash), the empty-file rule (Sources.EmptyFiles) and decoding.
// LoadSources then refuses, before decoding, a run of more than 1,000
// digits and a number (a literal, or arithmetic on literals) beyond
// 10^±1000, which math/big takes seconds to read or print (numbers.go).
//
// Each file is parsed by parseFast when it is written in the plain part
// of HCL that configurations mostly use (blocks; strings without escapes
// or templates, whole numbers, booleans and lists as values; line
// comments): it builds the very syntax tree hclsyntax would, ten times
// faster on a 10,000-LUN file, and FuzzParseFast holds it to that. A file
// with anything else (a function call, an expression, a heredoc, a syntax
// error) is parsed by hclsyntax, which gives every syntax diagnostic. The
// decoder then reads the tree; attributes that are plain literals are
// taken as they are, not evaluated. The device blocks of a handler and
// the LUN blocks of a target, when plain (one label, attributes of their
// schema set to literals), are left out of the tree (parseFastItems):
// only where each starts is kept, and the decoder parses it again
// straight into a Device or LUN, with the ranges the tree would have
// given. A 10,000-LUN file so allocates 12 MB to decode instead of 59;
// TestDecodeFast and FuzzDecodeFast hold the diagnostics and the Config
// to those of hclsyntax's tree.
//
// Use a Loader when diagnostics must be printed: Loader.Files (and
// Config.Files) return the parsed sources for hcl.NewDiagnosticTextWriter,
// and Loader.WriteDiagnostics prints them with no colour or wrapping. Load
// returns a nil Config whenever there is an error.
//
// Relative paths (a device's filename, the argument of file()) resolve
// against the directory of the file that contains them, so a configuration
// directory can be moved as a whole. A vcdrom's filename may be "" (or
// absent): an empty drive, online without a disc; changing it by reload
// changes the disc.
//
// # Reading a Config
//
// Every default is filled in, so the engine reads values without knowing
// the defaults. Where "unset" must be told apart from "set to the default",
// each object's Attrs holds the range of every attribute the file set
// (`_, set := t.Attrs["queued_commands"]`; devices and LUNs, of which
// there may be tens of thousands, keep a slice instead of a map:
// `d.Attrs.Has("size")`), and Range(name) returns that
// range or, when unset, the block's DeclRange: a diagnostic about an
// attribute always has a place to point at. Blocks keep DeclRange (the
// header) and, when labelled, NameRange (the label).
//
// # Functions
//
//	file(path)  the file's contents without one trailing newline; an error if unreadable
//	env(name)   the environment variable's value; an error if it is unset
//
// They keep secrets out of files that live in git.
//
// # What is checked, and when
//
// Load checks syntax, unknown blocks and attributes, types, value syntax
// (sizes, addresses, redirects, digests, CHAP algorithms, iSCSI names, LUN
// numbers), numeric ranges, and with Validate the rules across objects
// (unique names, LUN references, CHAP secrets, portals that can all be
// bound). It never touches storage: at run time a missing backing file is
// not a configuration error, the device just goes offline. Two separate
// steps look at the file system:
//
//   - CheckStorageSafety, wherever a configuration is loaded (validate,
//     run, reload, plan): a backing file that is a configuration file or
//     inside a configuration directory, two devices on one file or block
//     device (unless both are read-only), a dev_disk device's disk behind
//     another device (another dev_disk device naming it otherwise, or a
//     vdisk_blockio device on it or a partition of it, unless both are
//     read-only), an existing file smaller than size (allowed for a
//     device the running daemon serves from that file: a resize). The
//     daemon passes what it serves as Served.
//   - CheckStorage, which `scstd validate` adds: backing files exist (or
//     can be created), are of the right kind and open; a dev_disk disk
//     exists (a SCSI device's node, or a SCSI address with an sg node),
//     and a warning when the disk, as sysfs tells, is not the one the
//     device recorded in state_dir (package diskid) or its record is
//     corrupt: at run time that device stays offline.
//
// `scstd validate -no-storage`, for a CI runner that has the configuration
// but not the storage, runs neither: CheckStorageNames applies the rules
// of CheckStorageSafety that the names alone decide, and stats nothing.
//
// # The log level
//
// The top-level log_level ("debug", "info", "warn" or "error") is the
// least severe record the daemon logs: SCST's trace_level, as a level. It
// is a setting of the running daemon, not of the iSCSI service, so it
// stands outside the iscsi block. A reload changes it at once (a hot
// change in the plan). Config.LogLevel is "" when no file sets it: the
// daemon then logs at the level of `scstd run -log-level` (default
// "info"). So the flag sets the level at start, a file that sets
// log_level wins once it is applied, and removing log_level from the file
// returns to the flag's level.
//
// # Metrics
//
// The metrics block turns on the daemon's Prometheus endpoint:
//
//	metrics {
//	  listen = "127.0.0.1:9470"   # host[:port], port 9470 if omitted; "" for none
//	}
//
// Without the block, or with listen = "", nothing listens. A reload
// starts, moves or stops the endpoint (a hot change in the plan): the new
// address is bound before anything else changes, so an address that
// cannot be bound rejects the reload and the endpoint stays where it was.
// Moving it to another address on the same port (127.0.0.1:9470 to
// 0.0.0.0:9470) needs two reloads, through listen = "" or another port,
// since both would hold the port at once. The address may not be a portal's,
// nor share a wildcard portal's port. The endpoint serves /metrics to
// anyone who reaches it and has no authentication: keep it on loopback or
// a management network. Package metrics lists what it exports.
//
// # Defaults
//
// Target defaults are iSCSI-SCST's, which are within RFC 7143's ranges:
//
//	attribute                      default        range / values
//	disruptive_changes             "refuse"       "refuse", "allow"
//	iscsi.enabled                  true
//	iscsi.portals                  ["0.0.0.0:3260"] host[:port], port 3260 if omitted
//	iscsi.max_connections          4096           1..1048576: connections in all (logins, discovery, sessions)
//	iscsi.max_connections_per_address 256         1..1048576, <= max_connections: per IPv4 address / IPv6 /64
//	iscsi.login_timeout            15 (seconds)   1..3600: from the connection to the last Login Response
//	iscsi.discovery_idle_timeout   30 (seconds)   1..86400: an idle discovery session is closed
//	isns_server label port         3205
//	isns_server.access_control     false
//	log_level                      unset: the -log-level flag   "debug", "info", "warn", "error"
//	metrics.listen                 "": no endpoint   host[:port], port 9470 if omitted
//	device.blocksize               512 (vcdrom 2048) 512, 1024, 2048, 4096 (vcdrom: 2048 only)
//	device.nv_cache, write_through, o_direct, read_only, removable
//	                               false (vcdrom: read_only and removable true)
//	device.t10_dev_id              device name    1..64 printable ASCII
//	device.usn                     %08x of FNV-1a-32(device name) 1..64 printable ASCII
//	device.naa_id                  derived: NAA 6h from the seed and t10_dev_id   32 hex digits of NAA 6h, or 16 of NAA 2h/3h/5h ("naa." or "0x" prefix allowed)
//	state_dir                      "/var/lib/scstd"   a directory; relative to the file that sets it
//	device_group.devices                          devices (not dev_disk), each in one device group
//	device_group.explicit          false: SET TARGET PORT GROUPS refused (TPGS 01b); true: TPGS 11b
//	target_group.group_id          required       0..65535, unique in its device group
//	target_group.state             "active/optimized"   "active/non-optimized", "standby", "unavailable", "offline", "transitioning"
//	target_group.preferred         false
//	target_group.targets                          targets, each in one target group of a device group
//	dev_disk device.path           the label, when it is H:C:T:L   absolute device node, or H:C:T:L
//	dev_disk device.timeout        30 (seconds)   1..65535, per command passed to the disk
//	dev_disk device.read_only      false
//	target.enabled                 true
//	header_digest, data_digest     ["None"]       "CRC32C", "None"
//	immediate_data                 true
//	initial_r2t                    false
//	max_recv_data_segment_length   1048576        512..16777215
//	max_xmit_data_segment_length   1048576        512..16777215
//	max_burst_length               1048576        512..16777215
//	first_burst_length             65536          512..16777215, <= max_burst_length
//	max_outstanding_r2t            32             1..65535
//	queued_commands                32             1..2048
//	nop_in_interval                30 (seconds)   0..65535, 0 disables NOP-In pings
//	nop_in_timeout                 30 (seconds)   1..65535
//	rsp_timeout                    90 (seconds)   1..65535
//	allowed_portals                none: every portal
//	per_portal_acl                 false
//	redirect                       none           "addr[:port] temp|perm", port 3260 if omitted
//	rel_tgt_id                     0: assigned by the engine   0..65535, unique when set
//	max_sessions                   0: no cap      0..65535: sessions of the target (istgt's MaxSessions)
//	chap_algorithms                ["SHA3-256", "SHA-256", "SHA-1", "MD5"]
//	lun label                                     0..16383
//	lun.read_only                  false
//	cluster.etcd                   required       http:// or https:// URLs, one scheme; port 2379 if omitted
//	cluster.gateway                required       1..64 letters, digits, '-', '_', '.'
//	cluster.lease_ttl              "5s"           "2s".."300s", whole seconds
//	cluster.dial_timeout           "5s"           "100ms".."5m"
//	cluster.prefix                 "/scstd/"      starts and ends with "/"
//	cluster.ca_file, cert_file, key_file  none   PEM files, https only; cert_file and key_file together
//	cluster.username, password     none           together; password is a secret
//
// A dev_disk device passes commands through to a real SCSI disk (SCST's
// pass-through mode): it takes path, timeout and read_only only, its
// identity and block size being the disk's. Its label may be the disk's
// SCSI address ("0:0:1:0"), as SCST names pass-through devices; then path
// may be left out. One disk backs at most one dev_disk device.
//
// # The cluster block
//
// A cluster block makes the daemon one of several gateways that export the
// same logical units from shared storage, their common state kept in etcd
// (docs/scale-out.md). Every gateway runs the same file; only gateway, the
// name of this gateway in the cluster, differs, and is best taken from the
// environment: gateway = env("SCSTD_GATEWAY") (the systemd unit can set
// SCSTD_GATEWAY=%H, the host name; names with dots are fine). etcd lists
// the etcd client URLs; with https:// URLs ca_file names the certificate
// authorities to trust (the system's when unset), and cert_file and
// key_file a client certificate for etcd's client certificate
// authentication. username and password log in to etcd's own
// authentication; the password is a Secret like CHAP secrets (file() or
// env() keep it out of git; it prints as "(redacted)"), and over http:// it
// draws a warning. lease_ttl is the time to live of the gateway's lease: a
// gateway that stops refreshing it leaves the others' member lists that
// long after. prefix starts every etcd key of the cluster: clusters that
// share an etcd use different prefixes. Relative file paths resolve
// against the configuration file's directory.
//
// Sources.HashExcept(Cluster.GatewayValue) is the hash that gateways
// compare to find configuration drift: the configuration's hash with the
// gateway's own name left out. A reload applies a change of etcd, the TLS
// files, username, password, dial_timeout or lease_ttl by reconnecting; a
// change of gateway or prefix, or a cluster block added or removed,
// applies at the next start (package reconcile says how the plan shows
// it).
//
// # Multipath: identity, ALUA, state
//
// A device's NAA designator (VPD page 83h) is what Linux takes as the
// disk's wwid and udev as its ID_SERIAL. By default it is an NAA IEEE
// Registered Extended designator (6h) derived from a random seed that the
// daemon keeps in state_dir and from t10_dev_id: unique across hosts,
// stable across restarts. naa_id pins it: the same LU exported by several
// gateways pins the same value on each, and a device can keep the
// identity it had before scstd derived NAA 6h designators by pinning its
// old NAA 3h designator. t10_dev_id and naa_id are unique across devices.
//
// A device_group gathers devices that share ALUA target port groups, as
// SCST's DEVICE_GROUP does: each target_group lists the targets whose
// ports belong to it (each target is one SCSI target port, for all its
// portals), with its group_id, state and preference. Every target that
// maps a device of a device group must be in one of its target groups.
//
// state_dir holds the seed and the persistent reservations of devices
// whose initiators asked for APTPL; the daemon creates it (mode 0750) at
// start and keeps it until it stops: a reload that names another one
// warns, and the new one is used from the next start.
//
// # Values
//
// allowed_portals and a group's initiators are wildcard patterns: "*" any
// run of characters, "?" one character, a leading "!" excludes. A name or
// portal matches a list when no "!" pattern matches it and some other
// pattern does (or there is none). Case does not matter, as in SCST,
// whose wildcmp compares both sides in lower case. Package access says
// the details.
//
// Sizes are whole numbers with an optional unit: B; KB, MB, GB, TB, PB
// (powers of 1000); KiB, MiB, GiB, TiB, PiB (powers of 1024); case does not
// matter. A size must be a multiple of the device's blocksize.
//
// CHAP secrets are at least 12 bytes, and a scope's outgoing secret differs
// from all its incoming ones (RFC 7143 §12.1.3). They are held in Secret,
// which prints as "(redacted)" everywhere. Diagnostics about a secret point
// at the user's name, not the secret; note that a one-line user block still
// shows its line, literal secret included, in the printed source snippet.
package config
