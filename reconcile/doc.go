// Package reconcile turns a configuration into the running engine and
// keeps the two in step across reloads.
//
// It works in three steps, as a level-based controller does:
//
//	config.Config --FromConfig--> Model (desired)
//	Diff(running Model, desired Model) --> Plan            (pure: no I/O)
//	Engine.Apply: prepare (can fail) --> commit (cannot fail)
//
// A Model is the normalized description of what runs: devices, targets
// with their parameters, LUN maps and groups, CHAP users and portal
// rules, keyed by name. A Plan is plain data, an ordered list of Changes
// (AddDevice, ResizeDevice, SetDeviceAttr, ReplaceDevice, RemoveDevice,
// AddTarget, SetTargetParam, EnableTarget, DisableTarget, RemoveTarget,
// AddLUN, SetLUNAttr, RemoveLUN, AddGroup, SetGroupInitiators,
// RemoveGroup, SetChapUsers, SetPortals, SetGlobal), each with its impact
// on live sessions: hot, next-login, unit-attention or session-drop. It
// prints like a Terraform plan:
//
//	~ device.disk1                        size 1GiB -> 2GiB  (unit attention: capacity changed)
//	+ target["iqn.2026-11.org.example:b"]                    (hot)
//	- target["iqn.2026-11.org.example:a"].lun[3]  device = "disk1"  (unit attention: reported luns changed)
//
// The Engine holds the running state: one scsi.Device per device, kept
// across reloads for as long as its identity (handler, filename,
// blocksize, removable, t10_dev_id, usn) holds, so that its reservations
// and unit attention state survive; the backend it serves from; and the
// last published iscsi.Snapshot, whose untouched targets and LUN maps the
// next snapshot reuses, so that a reload costs in proportion to what
// changed and untouched sessions see nothing.
//
// Storage that cannot be opened is not a configuration error: that device
// alone is offline (its LUNs answer NOT READY), Status and the log say
// why, and it is retried periodically and on every Apply. Backing files
// and block devices are polled for growth, which raises CAPACITY DATA HAS
// CHANGED. Removed and replaced backends are closed after a delay
// (Options.ReleaseDelay): commands already inside a read or write finish
// regardless (os.File defers close(2) until they return); the delay lets
// commands that looked the device up just before the swap reach it.
//
// The package does not parse files (package config does) nor speak iSCSI
// (package iscsi); it drives the server through the small Server
// interface.
package reconcile
