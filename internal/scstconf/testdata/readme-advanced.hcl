# Converted from readme-advanced.conf by `scstd import`. What has no scstd
# counterpart is kept below as comments; `scstd import` listed it too.

handler "vdisk_fileio" {
  device "disk1" {
    filename = "/disk1"
    nv_cache = true
  }
  device "disk2" {
    filename  = "/disk2"
    blocksize = 4096
    nv_cache  = true
  }
}

handler "vdisk_blockio" {
  device "blockio" {
    filename = "/dev/sda5"
  }
}

handler "vdisk_nullio" {
  device "nullio" {
    # SCST's default size for a vdisk_nullio device (2.5 TiB).
    size = "2560GiB"
  }
}

handler "vcdrom" {
  device "cdrom" {
    # No medium, as in scst.conf: filename = "/path/to.iso" inserts one.
  }
}

# iSCSI-SCST listens on every address (port 3260) and scst.conf does not say
# otherwise; scstd's default is portals = ["0.0.0.0:3260"]. Name the portals to
# narrow it, for example portals = ["192.0.2.1:3260"].
iscsi {
  enabled = true

  isns_server "192.168.1.16" {
    access_control = true
  }

  incoming_user "joeD" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "12charsecret"
  }

  outgoing_user "jackD" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "12charsecret1"
  }
}

target "iqn.2006-10.net.vlnb:tgt" {
  enabled = true

  lun "0" {
    device = "disk1"
  }
  lun "1" {
    device = "cdrom"
  }
}

target "iqn.2006-10.net.vlnb:tgt1" {
  enabled                      = true
  header_digest                = ["CRC32C", "None"]
  data_digest                  = ["CRC32C", "None"]
  immediate_data               = true
  initial_r2t                  = false
  max_recv_data_segment_length = 8192
  max_xmit_data_segment_length = 8192
  max_burst_length             = 131072
  first_burst_length           = 32768
  max_outstanding_r2t          = 1
  queued_commands              = 32

  incoming_user "joe2" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "12charsecret2"
  }
  incoming_user "joe" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "12charsecret"
  }

  outgoing_user "jim1" {
    # Inline as in scst.conf: before this file goes into git, use file() or env().
    secret = "12charpasswd"
  }

  lun "0" {
    device = "disk2"
  }
  lun "26" {
    device = "nullio"
  }

  group "special_ini" {
    initiators = ["iqn.2005-03.org.open-iscsi:cacdcd2520"]

    lun "0" {
      device    = "blockio"
      read_only = true
    }
  }
}
