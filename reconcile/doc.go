// Package reconcile turns a configuration into the running engine and
// keeps the two in step across reloads.
//
// It works in three steps, as a level-based controller does:
//
//	config.Config --FromConfig--> Model (desired)
//	Diff(running Model, desired Model, live sessions) --> Plan   (pure: no I/O)
//	Engine.Apply: prepare (can fail) --> commit (cannot fail)
//
// A Model is the normalized description of what runs: devices, targets
// with their parameters, LUN maps and groups, CHAP users and portal
// rules, keyed by name. A Plan is plain data, an ordered list of Changes
// (AddDevice, RenameDevice, ResizeDevice, SetDeviceAttr, ChangeMedium,
// ReplaceDevice, RemoveDevice, AddTarget, SetTargetParam, EnableTarget, DisableTarget,
// RemoveTarget, AddLUN, SetLUNAttr, RemoveLUN, AddGroup,
// SetGroupInitiators, RemoveGroup, SetChapUsers, SetPortals, SetGlobal,
// SetCluster, and for ALUA AddDeviceGroup, SetDeviceGroupAttr,
// RemoveDeviceGroup, AddTargetGroup, SetTargetGroupAttr, SetALUAState,
// RemoveTargetGroup).
//
// The cluster block (cluster.go) is carried, not run, by the engine: the
// start takes it as it is, and a later change is one SetCluster change
// per attribute (or one for the block coming or going), Hot, whose reason
// tells the daemon what to do: "reconnects to etcd" (etcd endpoints, TLS
// files, credentials, timeouts, lease TTL) or "applies at the next start"
// (gateway, prefix, the block itself).
//
// # Impact per live session
//
// Diff knows the live sessions (target, initiator, ISID, TSIH, portal,
// the vcdrom drives whose disc each holds in with PREVENT ALLOW MEDIUM
// REMOVAL) and, for each, the LUN map it sees before and after: the first group in
// name order whose initiators match it, else the target's own LUNs. Each
// change is labelled by what the sessions it reaches see, and lists them:
//
//	hot              nothing a live session notices
//	next login       new logins only (negotiation, CHAP, portals)
//	unit attention   a LUN added or removed, read_only, capacity, mode
//	                 parameters, a vcdrom's disc (medium changed), an
//	                 ALUA state or group of the session's port (alua.go):
//	                 the sessions get that unit attention
//	medium locked    a vcdrom's disc changes or goes while the session
//	                 holds it in (PREVENT ALLOW MEDIUM REMOVAL)
//	identity change  a LUN a session uses reaches the same storage under
//	                 another identity (usn, t10_dev_id, naa_id, removable):
//	                 the plan says which values to pin to keep it
//	device swap      a LUN number a session uses reaches another device
//	session drop     the session's target is removed or disabled
//
// The last four are disruptive: Apply refuses them while the running
// configuration says disruptive_changes = "refuse" (the default), unless
// forced. A change that acts on sessions and reaches none is hot. A plan
// prints like a Terraform plan, with the sessions under each change:
//
//	~ target["iqn.2026-11.org.example:a"].lun[0]  device "d0" -> "d1"  (device swap: inquiry data changed, reported luns changed)
//	    affects iqn.1994-05.com.redhat:host1 (tsih 3) lun 0: d0 -> d1
//
// # The plan is what runs
//
// Commit computes, from the running state and the plan alone, the next
// running model (Model.apply), the device table (new, renamed, replaced,
// retired devices), the next snapshot (targets and LUN maps the plan does
// not name are reused as they are, so that their sessions see nothing)
// and the effects per session (effectsOf: what the plan printed). A
// runner then publishes the snapshot with the effects (Server.Commit),
// which the iSCSI server turns into unit attentions posted to each nexus
// before the new maps are visible (scsi.Nexus.PostLUNChange), Async
// Messages, and logout requests. A property test holds the real engine
// to it: random configuration pairs, live sessions, and the effects
// checked against what each session's LUN maps really changed.
//
// # Storage
//
// The Engine keeps one scsi.Device per device, across reloads for as long
// as its identity (handler, filename, blocksize, removable, t10_dev_id,
// usn, the file on disk) holds, so that its reservations and unit
// attention state survive, and under a new name when it is renamed with
// that identity. Backing storage is opened and stat'ed outside the engine
// lock, each call within Options.OpenTimeout: storage that cannot be
// opened, or does not answer, is not a configuration error; that device
// alone is offline (its LUNs answer NOT READY), Status and the log say
// why, and it is retried periodically and on every Apply (a file that
// hangs is not touched again until it answers). A fileio file that exists
// is never extended at its device's first open; a serving device grows
// its file when its size is raised. Backing files and block devices are
// polled for growth, which raises CAPACITY DATA HAS CHANGED. Removed and
// replaced backends are closed when the last command using them has
// completed (scsi.Drain), never on a timer.
//
// A vcdrom's filename and image are its disc, not its identity: a change
// of either is a ChangeMedium that reopens the same scsi.Device with the
// new image (scsi.Device.SetBackend loads it: NOT READY TO READY CHANGE,
// MEDIUM MAY HAVE CHANGED for every session, a media event for GET EVENT
// STATUS NOTIFICATION), and filename = "" is a drive without a disc:
// nothing is opened, the device is online (scsi.Device.RemoveMedium) and
// is not retried. An image that cannot be opened leaves the old disc in,
// as any reopen with new attributes that fails does, and is retried.
//
// A dev_disk device serves from a pass-through disk (scsi.Passthrough,
// opened through package sgio or Options.OpenDisk) as others serve from a
// vdisk backend: opened by the same opener with the same time limit,
// drained by reference, offline alone when missing. Its identity is the
// disk's; its path replaces the device, its timeout reopens the disk
// (hot). A disk that reports itself gone takes its device offline by
// itself (scsi marks the state lost); the engine sees it, retries it like
// any offline device, and closes the lost disk when it replaces it. Every
// open holds the disk to the identity recorded when the device first
// opened one (diskid.go): another disk at the same path keeps the device
// offline until an administrator removes the record, or removes the device
// from the configuration (which forgets it). A path changed by a reload
// must lead to the recorded disk too.
//
// # iSNS
//
// The engine owns one iSNS client (package isns) per isns_server block:
// each registration follows the configuration that runs, sent in the
// background after every Apply and kept alive by the client; a removed
// block's client deregisters and closes. The snapshot's AccessControl is
// the client of the first server with access_control, which logins and
// SendTargets ask.
//
// # State
//
// The first Apply opens the state directory (state_dir, package
// internal/state); later ones keep it, with a warning when the
// configuration names another. Its seed gives
// every device that does not pin naa_id its NAA 6h designator (identify,
// before Diff: the designator is part of the device's identity), and
// each device gets its persistent reservation file (pr.go), restored
// when the device is made.
//
// # Metrics
//
// The metrics block's listen address is a hot global (metrics.listen in
// plans). Prepare binds a new address before the portals, so that one
// that cannot be bound rejects the reload with nothing changed; commit
// hands the listener to Options.Metrics (metrics.go). Each LUN of a LUN
// map counts its commands (scsi.LogicalUnit.Stats); a map rebuilt by a
// reload passes those counters on for every LUN that still reaches the
// same device, and Status shows them, with each device's size drift.
//
// The package does not parse files (package config does) nor speak iSCSI
// or iSNS (packages iscsi and isns); it drives the iSCSI server through
// the small Server interface.
package reconcile
