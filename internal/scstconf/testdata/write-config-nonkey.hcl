# Converted from write-config-nonkey.conf by `scstd import`. What has no scstd
# counterpart is kept below as comments; `scstd import` listed it too.

# write-config-nonkey.conf:4: max_tasklet_cmd 10  (not imported: SCST core tuning; scstd has no such setting)
# write-config-nonkey.conf:5: setup_id 0x0  (not imported: SCST core setting (seeds the default t10_dev_id and usn); scstd has none)
# write-config-nonkey.conf:6: suspend 0  (not imported: SCST core state; scstd has no such setting)
# write-config-nonkey.conf:7: threads 2  (not imported: SCST core tuning; scstd has no thread settings)

handler "vdisk_blockio" {
  device "lun_db" {
    filename      = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"
    blocksize     = 512
    nv_cache      = false
    write_through = true
    read_only     = false
    removable     = false
    t10_dev_id    = "1a2b3c4d-lun_db"
    usn           = "1a2b3c4d"
    # write-config-nonkey.conf:20: rotational 0  (not imported: scstd has no rotation rate setting)
    # write-config-nonkey.conf:21: size 107374182400  (not imported: SCST reports the size of the backing file or device; scstd takes it from there too)
    # write-config-nonkey.conf:22: size_mb 102400  (not imported: SCST reports the size of the backing file or device; scstd takes it from there too)
    # write-config-nonkey.conf:23: t10_vend_id SCST_BIO  (not imported: scstd reports its own INQUIRY vendor identification)
    # write-config-nonkey.conf:24: thin_provisioned 1  (not imported: scstd has no thin provisioning setting)
    # write-config-nonkey.conf:25: threads_num 1  (not imported: SCST per-device threads; scstd has no thread settings)
    # write-config-nonkey.conf:26: threads_pool_type per_initiator  (not imported: SCST per-device threads; scstd has no thread settings)
    # write-config-nonkey.conf:27: tst 1  (not imported: SCST task set type; scstd has no such setting)
  }
}

handler "vdisk_fileio" {
  # write-config-nonkey.conf:46: trace_level "out_of_mem | minor | pid | line | function | special | mgmt | mgmt_dbg | flow_control | conn"  (not imported: SCST tracing; scstd's logging is set on its command line)

  device "lun_log" {
    filename   = "/var/lib/scst/log.img"
    blocksize  = 4096
    o_direct   = true
    t10_dev_id = "5e6f7a8b-lun_log"
    usn        = "5e6f7a8b"
    # write-config-nonkey.conf:40: async 0  (not imported: SCST asynchronous I/O switch; scstd has no such setting)
    # write-config-nonkey.conf:42: size_mb 20480  (not imported: SCST reports the size of the backing file or device; scstd takes it from there too)
    # write-config-nonkey.conf:43: type 0  (not imported: read-only in SCST (the SCSI device type follows from the handler))
  }
}

# iSCSI-SCST listens on every address (port 3260) and scst.conf does not say
# otherwise; scstd's default is portals = ["0.0.0.0:3260"]. Name the portals to
# narrow it, for example portals = ["192.0.2.1:3260"].
iscsi {
  enabled = true
  # write-config-nonkey.conf:58: open_state established  (not imported: read-only in SCST)
  # write-config-nonkey.conf:59: trace_level "out_of_mem | minor | pid | line | function | special | mgmt | mgmt_dbg | flow_control | conn"  (not imported: SCST tracing; scstd's logging is set on its command line)
  # write-config-nonkey.conf:60: version 3.7.0  (not imported: read-only in SCST)

  incoming_user "disco" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "discoSecret0001"
  }
  incoming_user "disco2" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "discoSecret0002"
  }

  outgoing_user "disco-out" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "discoOutSecret1"
  }

  isns_server "192.0.2.10" {
    access_control = false
  }
}

target "iqn.2026-11.org.example:db" {
  enabled                      = true
  header_digest                = ["CRC32C", "None"]
  data_digest                  = ["None"]
  immediate_data               = true
  initial_r2t                  = false
  max_recv_data_segment_length = 1048576
  max_xmit_data_segment_length = 1048576
  max_burst_length             = 1048576
  first_burst_length           = 65536
  max_outstanding_r2t          = 32
  queued_commands              = 64
  nop_in_interval              = 30
  nop_in_timeout               = 30
  rsp_timeout                  = 90
  allowed_portals              = ["10.170.7?.*", "!10.170.77.2"]
  per_portal_acl               = false
  rel_tgt_id                   = 3
  # write-config-nonkey.conf:86: addr_method PERIPHERAL  (not imported: SCSI LUN addressing method; scstd always uses flat addressing)
  # write-config-nonkey.conf:87: cpu_mask ffffffff  (not imported: SCST thread CPU affinity; scstd has no such setting)
  # write-config-nonkey.conf:88: io_grouping_type auto  (not imported: SCST I/O context grouping; scstd has no such setting)
  # write-config-nonkey.conf:89: tid 1  (not imported: read-only in SCST (the target id); scstd assigns its own)

  incoming_user "db-host" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "dbSecret000001"
  }

  outgoing_user "db-target" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "dbOutSecret0001"
  }

  lun "0" {
    device = "lun_db"
  }
  lun "1" {
    device    = "lun_log"
    read_only = true
  }

  group "portal_block" {
    initiators = ["iqn.2026-11.org.example.host:db1#10.170.77.2"]
    # write-config-nonkey.conf:100: addr_method PERIPHERAL  (not imported: SCSI LUN addressing method; scstd always uses flat addressing)
  }
  group "admins" {
    initiators = ["iqn.2026-11.org.example.admin:*", "!iqn.2026-11.org.example.admin:test"]

    lun "0" {
      device = "lun_db"
    }
    lun "1" {
      device = "lun_log"
    }
  }
}

target "iqn.2026-11.org.example:moved" {
  enabled        = true
  per_portal_acl = true
  redirect       = "[2001:db8::5]:3260 perm"
  rel_tgt_id     = 4
}
