package metrics

import "github.com/prometheus/client_golang/prometheus"

// Label sets of the metric families.
var (
	// A session is its target, initiator and ISID; its TSIH tells it from
	// the session it reinstated or that comes after it.
	sessionLabels = []string{"target", "initiator", "isid", "tsih"}
	lunLabels     = []string{"target", "group", "lun", "device"}
)

// with returns labels followed by more, in a new slice.
func with(labels []string, more ...string) []string {
	return append(append([]string(nil), labels...), more...)
}

// family is one metric family scstd exports (the Go runtime's and the
// process's come from client_golang's collectors).
type family struct {
	desc  *prometheus.Desc
	name  string
	typ   string // "counter", "gauge", "histogram"
	help  string
	label []string
}

func newFamily(name, typ, help string, labels ...string) *family {
	return &family{desc: prometheus.NewDesc(name, help, labels, nil), name: name, typ: typ, help: help, label: labels}
}

// The metric families, in the order the README lists them.
var (
	buildInfo = newFamily("scstd_build_info", "gauge",
		"Always 1; version is the daemon's version.", "version")

	configGeneration = newFamily("scstd_config_generation", "gauge",
		"Generation of the configuration running: 1 after the start, one more for each reload that changed something.")
	reloadsTotal = newFamily("scstd_reloads_total", "counter",
		"Reloads (the start included) by result: success (applied, or nothing to change) or failure (rejected: errors, a disruptive plan, storage or an address that could not be bound).", "result")
	reloadLastSuccess = newFamily("scstd_reload_last_success", "gauge",
		"1 if the last reload applied, 0 if it was rejected.")
	reloadLastTimestamp = newFamily("scstd_reload_last_timestamp_seconds", "gauge",
		"When the last reload ended, in seconds since the Unix epoch.")
	reloadLastDuration = newFamily("scstd_reload_last_duration_seconds", "gauge",
		"How long the last reload took, from reading the file to its outcome.")
	reloadChanges = newFamily("scstd_reload_changes_total", "counter",
		"Changes applied by reloads, by impact class as plans print it (hot, next-login, unit-attention, medium-locked, identity-change, device-swap, session-drop).", "impact")

	targetEnabled = newFamily("scstd_target_enabled", "gauge",
		"1 if the target is enabled, 0 if not.", "target")
	targetSessions = newFamily("scstd_target_sessions", "gauge",
		"Live sessions of the target.", "target")
	targetLogins = newFamily("scstd_target_logins_total", "counter",
		"Successful logins to the target since it was added; target=\"\" counts discovery sessions.", "target")
	targetLoginFailures = newFamily("scstd_target_login_failures_total", "counter",
		"Failed logins by reason; target=\"\" counts discovery sessions and logins naming no target scstd has.", "target", "reason")

	sessionInfo = newFamily("scstd_session_info", "gauge",
		"Always 1 for a live session: the LUN map it sees (default, group[\"name\"] or none) and the initiator's address.",
		with(sessionLabels, "lun_map", "remote")...)
	sessionCommands = newFamily("scstd_session_commands_total", "counter",
		"SCSI commands the session completed, by class (read, write, other).", with(sessionLabels, "class")...)
	sessionReadBytes = newFamily("scstd_session_read_bytes_total", "counter",
		"Data-in bytes sent to the session's initiator.", sessionLabels...)
	sessionWrittenBytes = newFamily("scstd_session_written_bytes_total", "counter",
		"Data-out bytes received from the session's initiator.", sessionLabels...)
	sessionErrors = newFamily("scstd_session_errors_total", "counter",
		"Commands of the session that did not end GOOD, by status and, for CHECK_CONDITION, sense key; only those that happened.", with(sessionLabels, "status", "sense_key")...)
	sessionDuration = newFamily("scstd_session_command_duration_seconds", "histogram",
		"Time from a command's arrival to its answer, by class.", with(sessionLabels, "class")...)
	sessionQueueDepth = newFamily("scstd_session_queue_depth", "gauge",
		"Commands of the session in the target now (receiving data-out, executing or being answered).", sessionLabels...)

	lunCommands = newFamily("scstd_lun_commands_total", "counter",
		"SCSI commands completed on the LUN by every session that sees it, by class (read, write, other); group=\"\" is the target's own LUN map.", with(lunLabels, "class")...)
	lunReadBytes = newFamily("scstd_lun_read_bytes_total", "counter",
		"Data-in bytes the LUN's commands sent.", lunLabels...)
	lunWrittenBytes = newFamily("scstd_lun_written_bytes_total", "counter",
		"Data-out bytes the LUN's commands received.", lunLabels...)
	lunErrors = newFamily("scstd_lun_errors_total", "counter",
		"Commands on the LUN that did not end GOOD, by status and, for CHECK_CONDITION, sense key; only those that happened.", with(lunLabels, "status", "sense_key")...)
	lunDuration = newFamily("scstd_lun_command_duration_seconds", "histogram",
		"Time from a command's arrival to its answer, by class.", with(lunLabels, "class")...)
	lunQueueDepth = newFamily("scstd_lun_queue_depth", "gauge",
		"Commands executing on the LUN now.", lunLabels...)

	deviceOnline = newFamily("scstd_device_online", "gauge",
		"1 if the device serves from its storage, 0 if it is offline (its LUNs answer NOT READY).", "device", "handler")
	deviceOfflineInfo = newFamily("scstd_device_offline_info", "gauge",
		"Always 1 for an offline device, with why (the error that keeps it offline).", "device", "reason")
	deviceSize = newFamily("scstd_device_size_bytes", "gauge",
		"Capacity the device serves (0 while offline).", "device")
	deviceConfiguredSize = newFamily("scstd_device_configured_size_bytes", "gauge",
		"The device's size attribute, when set; it differs from scstd_device_size_bytes when the file holds more (see scstd status).", "device")
)

// families lists every family, in the order of the README.
var families = []*family{
	buildInfo,
	configGeneration, reloadsTotal, reloadLastSuccess, reloadLastTimestamp, reloadLastDuration, reloadChanges,
	targetEnabled, targetSessions, targetLogins, targetLoginFailures,
	sessionInfo, sessionCommands, sessionReadBytes, sessionWrittenBytes, sessionErrors, sessionDuration, sessionQueueDepth,
	lunCommands, lunReadBytes, lunWrittenBytes, lunErrors, lunDuration, lunQueueDepth,
	deviceOnline, deviceOfflineInfo, deviceSize, deviceConfiguredSize,
}
