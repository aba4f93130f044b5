disruptive_changes = "refuse"

iscsi {
}

handler "vdisk_nullio" {
  device "disk1" {
    size = "2GiB"
  }
}

target "iqn.2026-11.org.example:a" {
}
