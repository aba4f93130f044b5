# Multipath with ALUA: one disk exported through two targets, one per
# portal, whose ports are in two target port groups of one device group.
# dm-multipath (prio alua) sees an optimized path through 192.0.2.1 and a
# standby one through 192.0.2.2:
#
#   iscsiadm -m discovery -t st -p 192.0.2.1 && iscsiadm -m discovery -t st -p 192.0.2.2
#   iscsiadm -m node -L all && multipath -ll
#
# A planned failover is one edit (swap the two states) and `scstd reload`:
# the plan shows one SetALUAState change per group, each reaching only the
# sessions through that group's ports, and no session is dropped.

# The daemon listens on every address; allowed_portals puts each target on
# one of the host's two addresses.
iscsi {
  portals = ["0.0.0.0:3260"]
}

handler "vdisk_blockio" {
  device "vm-store" {
    filename = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d5"
    # The same LU exported by another gateway pins the same designator
    # there; `scstd status -json` shows the one in force (naa_id).
    naa_id = "naa.6025344a0b1c2d3e4f5061728394a5b6"
  }
}

target "iqn.2026-11.org.example:store-a" {
  allowed_portals = ["192.0.2.1"]
  lun "0" { device = "vm-store" }
}

target "iqn.2026-11.org.example:store-b" {
  allowed_portals = ["192.0.2.2"]
  lun "0" { device = "vm-store" }
}

device_group "store" {
  devices  = ["vm-store"]
  explicit = true # initiators may fail over with SET TARGET PORT GROUPS

  target_group "a" {
    group_id  = 1
    state     = "active/optimized"
    preferred = true
    targets   = ["iqn.2026-11.org.example:store-a"]
  }

  target_group "b" {
    group_id = 2
    state    = "standby"
    targets  = ["iqn.2026-11.org.example:store-b"]
  }
}
