disruptive_changes = "allow"

iscsi {
  portals = ["127.0.0.1:3260"]
}

handler "vdisk_nullio" {
  device "disk1" {
    size = "1GiB"
  }
}

target "iqn.2026-11.org.example:a" {
  lun "0" {
    device = "disk1"
  }
}
