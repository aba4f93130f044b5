# Two targets, one per portal, in two target port groups of one device
# group: multipath sees an optimized and a standby path to disk1.
state_dir = "/var/lib/scstd-test"

iscsi {
  portals = ["127.0.0.1:3260", "127.0.0.2:3260"]
}

handler "vdisk_nullio" {
  device "disk1" {
    size   = "1GiB"
    naa_id = "naa.6001405ABCDEF0123456789ABCDEF012"
  }
  device "disk2" {
    size   = "1GiB"
    naa_id = "0x3123456789abcdef"
  }
}

target "iqn.2026-11.org.example:a" {
  allowed_portals = ["127.0.0.1"]
  lun "0" { device = "disk1" }
  lun "1" { device = "disk2" }
}

target "iqn.2026-11.org.example:b" {
  allowed_portals = ["127.0.0.2"]
  lun "0" { device = "disk1" }
}

device_group "dg1" {
  devices  = ["disk1", "disk2"]
  explicit = true
  target_group "local" {
    group_id  = 1
    state     = "active/optimized"
    preferred = true
    targets   = ["iqn.2026-11.org.example:a"]
  }
  target_group "remote" {
    group_id = 2
    state    = "standby"
    targets  = ["iqn.2026-11.org.example:b"]
  }
}
