// Package admin is scstd's control API: HTTP and JSON over a unix socket
// (mode 0600), served by the daemon and used by `scstd reload`, `plan`,
// `status` and `session close`.
//
// Endpoints (all JSON):
//
//	POST /v1/reload?force=1     reload the configuration; ReloadReply
//	GET  /v1/reload             the last reload's ReloadReply
//	POST /v1/plan               PlanRequest → PlanReply (nothing applied)
//	GET  /v1/status             the live tree (devices, targets, sessions)
//	POST /v1/sessions/close     CloseRequest → CloseReply
//
// A ReloadReply names the reload's trigger ("start", "sighup", "watch",
// "admin"); one that found nothing to change because an earlier reload
// applied the file as it is carries that reload as AlreadyApplied. A
// PlanReply says which daemon it was computed against (DaemonInfo).
//
// The package knows nothing about the engine: the daemon implements Handler.
package admin
