// Package metrics exports scstd's state to Prometheus: a Collector that
// reads the live engine at each scrape, the HTTP Endpoint that serves it
// on the address of the configuration's metrics block, and Reloads, the
// record of reload outcomes.
//
// What it exports (names.go holds the families, the README lists them):
//
//	scstd_build_info, scstd_config_generation     the daemon and the configuration running
//	scstd_reload*                                 reloads: results, the last one, changes by impact class
//	scstd_target_*{target}                        enabled, sessions, logins and login failures by reason
//	scstd_session_*{target,initiator,isid,tsih}   per live session: commands, bytes, errors, latency, queue depth
//	scstd_lun_*{target,group,lun,device}          per LUN of every LUN map: the same counters
//	scstd_device_*{device}                        online, why offline, served and configured size
//	go_*, process_*                               the Go runtime and the process
//
// Nothing is registered per session or per LUN: the counters live with
// what they count (scsi.IOStats in each session and each LUN map entry,
// login counts in the iSCSI server) and the Collector turns the live
// state into constant metrics at scrape time, so a session that ends or a
// LUN that goes takes its series with it. Counting costs the command path
// a few atomic additions and no allocation; a scrape costs one
// reconcile.Engine.Status.
//
// The package does not decide where the endpoint listens: package
// reconcile binds the configured address while it prepares a reload and
// hands the listener to Endpoint.Serve when it commits.
package metrics
