package scstconf

import "strings"

// valueKind says how an scst.conf value is read.
type valueKind uint8

const (
	kindString  valueKind = iota // as is
	kindFlag                     // SCST's 0 or 1
	kindYesNo                    // iSCSI's Yes or No
	kindInt                      // a whole number
	kindDigests                  // "CRC32C,None"
	kindBytes                    // a size in bytes
	kindMiB                      // a size in MiB
)

// mapping is where an scst.conf attribute goes in scstd's schema.
type mapping struct {
	// hcl is the attribute's name in scstd's schema.
	hcl  string
	kind valueKind
}

// The handlers scstd has, by their SCST names (which scstd kept).
const (
	handlerFileIO  = "vdisk_fileio"
	handlerBlockIO = "vdisk_blockio"
	handlerNullIO  = "vdisk_nullio"
	handlerCDROM   = "vcdrom"
	handlerDevDisk = "dev_disk"
)

// deviceAttrs maps, per handler, the DEVICE attributes that scstd has.
// Anything else is kept as a comment. A fileio device's size is not
// mapped: SCST takes it from the file (scstadmin writes size and size_mb
// only as a report of it), and so does scstd when size is unset.
var deviceAttrs = map[string]map[string]mapping{
	handlerFileIO: {
		"filename": {"filename", kindString}, "blocksize": {"blocksize", kindInt},
		"nv_cache": {"nv_cache", kindFlag}, "write_through": {"write_through", kindFlag},
		"o_direct": {"o_direct", kindFlag}, "read_only": {"read_only", kindFlag},
		"removable": {"removable", kindFlag}, "t10_dev_id": {"t10_dev_id", kindString},
		"usn": {"usn", kindString}, "naa_id": {"naa_id", kindString},
	},
	handlerBlockIO: {
		"filename": {"filename", kindString}, "blocksize": {"blocksize", kindInt},
		"nv_cache": {"nv_cache", kindFlag}, "write_through": {"write_through", kindFlag},
		"read_only": {"read_only", kindFlag}, "removable": {"removable", kindFlag},
		"t10_dev_id": {"t10_dev_id", kindString}, "usn": {"usn", kindString},
		"naa_id": {"naa_id", kindString},
	},
	handlerNullIO: {
		"size": {"size", kindBytes}, "size_mb": {"size", kindMiB}, "blocksize": {"blocksize", kindInt},
		"read_only": {"read_only", kindFlag}, "removable": {"removable", kindFlag},
		"t10_dev_id": {"t10_dev_id", kindString}, "usn": {"usn", kindString},
		"naa_id": {"naa_id", kindString},
	},
	handlerCDROM: {
		"filename": {"filename", kindString}, "t10_dev_id": {"t10_dev_id", kindString},
		"usn": {"usn", kindString}, "naa_id": {"naa_id", kindString},
	},
	// A pass-through device is named by its SCSI address, as scstd's
	// dev_disk label may be; its identity is the disk's.
	handlerDevDisk: {"read_only": {"read_only", kindFlag}},
}

// nullioDefaultSize is the size SCST gives a vdisk_nullio device created
// without one (2.5 TiB); scstd needs the size spelled out.
const nullioDefaultSize = "2560GiB"

// targetAttrs maps the iSCSI TARGET attributes that scstd has; users,
// allowed_portal, LUN and GROUP are handled apart.
var targetAttrs = map[string]mapping{
	"enabled":                  {"enabled", kindFlag},
	"HeaderDigest":             {"header_digest", kindDigests},
	"DataDigest":               {"data_digest", kindDigests},
	"ImmediateData":            {"immediate_data", kindYesNo},
	"InitialR2T":               {"initial_r2t", kindYesNo},
	"MaxRecvDataSegmentLength": {"max_recv_data_segment_length", kindInt},
	"MaxXmitDataSegmentLength": {"max_xmit_data_segment_length", kindInt},
	"MaxBurstLength":           {"max_burst_length", kindInt},
	"FirstBurstLength":         {"first_burst_length", kindInt},
	"MaxOutstandingR2T":        {"max_outstanding_r2t", kindInt},
	"QueuedCommands":           {"queued_commands", kindInt},
	"NopInInterval":            {"nop_in_interval", kindInt},
	"NopInTimeout":             {"nop_in_timeout", kindInt},
	"RspTimeout":               {"rsp_timeout", kindInt},
	"per_portal_acl":           {"per_portal_acl", kindFlag},
	"redirect":                 {"redirect", kindString},
	"rel_tgt_id":               {"rel_tgt_id", kindInt},
}

// targetOrder is the order target attributes are written in: the order of
// the configuration schema (config's documentation).
var targetOrder = []string{
	"enabled", "header_digest", "data_digest", "immediate_data", "initial_r2t",
	"max_recv_data_segment_length", "max_xmit_data_segment_length",
	"max_burst_length", "first_burst_length", "max_outstanding_r2t",
	"queued_commands", "nop_in_interval", "nop_in_timeout", "rsp_timeout",
	"allowed_portals", "per_portal_acl", "redirect", "rel_tgt_id",
}

// deviceOrder is the order device attributes are written in.
var deviceOrder = []string{
	"filename", "size", "blocksize", "nv_cache", "write_through", "o_direct",
	"read_only", "removable", "t10_dev_id", "usn", "naa_id",
}

// reasons explains, for SCST attributes and sections scstd does not have,
// why they are kept as comments. Attributes not listed get a generic
// reason.
var reasons = map[string]string{
	// SCST core (top level).
	"setup_id":               "SCST core setting (seeds the default t10_dev_id and usn); scstd has none",
	"threads":                "SCST core tuning; scstd has no thread settings",
	"max_tasklet_cmd":        "SCST core tuning; scstd has no such setting",
	"suspend":                "SCST core state; scstd has no such setting",
	"poll_us":                "SCST core tuning; scstd has no such setting",
	"force_global_sgv_pool":  "SCST memory tuning; scstd has no such setting",
	"measure_latency":        "SCST statistics switch; scstd has no such setting",
	"cluster_name":           "SCST cluster setting; scstd's scale-out has its own configuration",
	"trace_level":            "SCST tracing; scstd's logging is set on its command line",
	"last_sysfs_mgmt_res":    "read-only in SCST",
	"version":                "read-only in SCST",
	"open_state":             "read-only in SCST",
	"link_local":             "iSCSI-SCST setting; scstd has no such setting",
	"internal_portal":        "iSCSI-SCST setting; scstd has no such setting",
	"isns_entity_timeout":    "iSCSI-SCST setting; scstd has no such setting",
	"allowed_portal":         "a target attribute in iSCSI-SCST; set allowed_portals on the targets",
	"tid":                    "read-only in SCST (the target id); scstd assigns its own",
	"addr_method":            "SCSI LUN addressing method; scstd always uses flat addressing",
	"io_grouping_type":       "SCST I/O context grouping; scstd has no such setting",
	"cpu_mask":               "SCST thread CPU affinity; scstd has no such setting",
	"black_hole":             "SCST black hole mode; scstd has no such setting",
	"forwarding":             "SCST forwarding mode; scstd has no such setting",
	"aen_disabled":           "SCST asynchronous event setting; scstd has no such setting",
	"comment":                "SCST free-text comment; kept here as one",
	"session_name":           "scst_local setting; scstd has no such setting",
	"threads_num":            "SCST per-device threads; scstd has no thread settings",
	"threads_pool_type":      "SCST per-device threads; scstd has no thread settings",
	"type":                   "read-only in SCST (the SCSI device type follows from the handler)",
	"exported":               "read-only in SCST",
	"resync_size":            "SCST action, not a setting",
	"size_mb":                "SCST reports the size of the backing file or device; scstd takes it from there too",
	"size":                   "SCST reports the size of the backing file or device; scstd takes it from there too",
	"active":                 "SCST active/passive opening; scstd has no such setting",
	"async":                  "SCST asynchronous I/O switch; scstd has no such setting",
	"bind_alua_state":        "SCST ALUA binding; scstd has no ALUA settings",
	"cluster_mode":           "SCST cluster mode; scstd's scale-out has its own configuration",
	"dif_mode":               "T10-PI (DIF); scstd has no protection information support",
	"dif_type":               "T10-PI (DIF); scstd has no protection information support",
	"dif_static_app_tag":     "T10-PI (DIF); scstd has no protection information support",
	"dif_filename":           "T10-PI (DIF); scstd has no protection information support",
	"lb_per_pb_exp":          "READ CAPACITY(16) tuning; scstd has no such setting",
	"numa_node_id":           "SCST NUMA placement; scstd has no such setting",
	"opt_trans_len":          "block limits tuning; scstd has no such setting",
	"rotational":             "scstd has no rotation rate setting",
	"thin_provisioned":       "scstd has no thin provisioning setting",
	"tst":                    "SCST task set type; scstd has no such setting",
	"t10_vend_id":            "scstd reports its own INQUIRY vendor identification",
	"vend_specific_id":       "scstd has no vendor specific designator setting",
	"prod_id":                "scstd reports its own INQUIRY product identification",
	"prod_rev_lvl":           "scstd reports its own INQUIRY product revision",
	"inq_vend_specific":      "scstd has no INQUIRY vendor specific data setting",
	"scsi_device_name":       "scstd has no SCSI device name setting",
	"eui64_id":               "scstd has no EUI-64 designator setting",
	"pr_file_name":           "scstd keeps persistent reservations itself",
	"dummy":                  "scstd has no dummy LUN setting",
	"read_zero":              "scstd's nullio devices always read zeroes",
	"zero_copy":              "SCST zero copy switch; scstd has no such setting",
	"expl_alua":              "scstd takes SET TARGET PORT GROUPS per device group: explicit = true in its device_group",
	"write_same_max_lbas":    "scstd has no WRITE SAME limit setting",
	"filename_for_read_only": "scstd has no such setting",
	"HW_TARGET":              "hardware target marker of SCST's FC and SRP drivers",
}

// reasonFor returns why the attribute name was not imported.
func reasonFor(name string) string {
	if r := reasons[name]; r != "" {
		return r
	}
	return "no scstd counterpart"
}

// numbered reports whether name is base or base followed by digits, as
// sysfs names the second and later values of a repeatable attribute
// (IncomingUser, IncomingUser1, ...; allowed_portal, allowed_portal1, ...).
func numbered(name, base string) bool {
	rest, ok := strings.CutPrefix(name, base)
	return ok && isDigits(rest, true)
}
