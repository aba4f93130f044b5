# Converted from many-drivers.conf by `scstd import`. What has no scstd
# counterpart is kept below as comments; `scstd import` listed it too.

# many-drivers.conf:6: setup_id 0x1234  (not imported: SCST core setting (seeds the default t10_dev_id and usn); scstd has none)

handler "dev_disk" {
  device "1:0:0:0" {
  }
  device "2:0:0:0" {
  }
}

handler "vdisk_fileio" {
  device "disk1" {
    filename = "/srv/scst/disk1.img"
    nv_cache = true
  }
  device "disk2" {
    filename  = "/srv/scst/disk2.img"
    blocksize = 4096
    removable = true
  }
}

handler "vdisk_nullio" {
  device "dummy" {
    size = "1024MiB"
    # many-drivers.conf:28: dummy 1  (not imported: scstd has no dummy LUN setting)
  }
}

handler "vcdrom" {
  device "cdrom1" {
    filename = "/srv/iso/install.iso"
  }
}

# many-drivers.conf:39-45, not imported: scstd is an iSCSI target; SCST's scst_local target driver has no counterpart.
# TARGET_DRIVER scst_local {
#   TARGET scst_local_tgt {
#     session_name scst_local_host
#     LUN 0 disk1
#   }
# }

# iSCSI-SCST listens on every address (port 3260) and scst.conf does not say
# otherwise; scstd's default is portals = ["0.0.0.0:3260"]. Name the portals to
# narrow it, for example portals = ["192.0.2.1:3260"].
iscsi {
  enabled = true

  incoming_user "joe" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "12charsecret"
  }
}

target "iqn.2006-10.net.vlnb:tgt" {
  enabled       = true
  header_digest = ["CRC32C", "None"]

  incoming_user "joe" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "12charsecret"
  }
  incoming_user "fred" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "12charsecret2"
  }

  lun "0" {
    device = "disk1"
  }
  lun "1" {
    device = "disk2"
  }
  lun "2" {
    device    = "1:0:0:0"
    read_only = true
  }
  lun "3" {
    device = "cdrom1"
  }
  lun "4" {
    device = "dummy"
  }
}

# many-drivers.conf:67-81, not imported: scstd is an iSCSI target; SCST's qla2x00t target driver has no counterpart.
# TARGET_DRIVER qla2x00t {
#   TARGET 25:00:00:f0:98:87:92:f3 {
#     enabled 1
#     LUN 0 dummy
#     GROUP INI1 {
#       LUN 0 disk2
#       LUN 1 1:0:0:0 {
#         read_only 1
#       }
#       INITIATOR 25:00:00:f0:99:87:94:a3
#     }
#   }
# }

device_group "dgroup1" {
  devices = ["disk1"]

  target_group "tgroup1" {
    group_id = 1
    state    = "active/optimized"
    targets  = ["iqn.2006-10.net.vlnb:tgt"]
    # many-drivers.conf:91: rel_tgt_id 1  (not imported: scstd takes a target's relative port identifier from its target block (rel_tgt_id))
  }
}
