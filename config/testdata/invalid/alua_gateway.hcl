# A target group names a gateway, without a cluster block.
handler "vdisk_nullio" {
  device "null0" { size = "1GiB" }
}

target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null0" }
}

device_group "dg" {
  devices = ["null0"]
  target_group "one" {
    group_id = 1
    gateway  = "gw1"
    targets  = ["iqn.2026-11.org.example:a"]
  }
}
