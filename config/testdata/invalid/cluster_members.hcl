# Member blocks, ports and target groups in a cluster.
cluster {
  etcd    = ["http://127.0.0.1:2379"]
  gateway = "gw4"
  member "gw1" { id = 1 }
  member "gw1" { id = 3 }
  member "gw2" { id = 1 }
  member "gw 3" { id = 4 }
  member "gw5" { id = 256 }
  member "gw6" {}
  member "gw7" { id = 7 }
}

handler "vdisk_nullio" {
  device "null0" { size = "1GiB" }
}

target "iqn.2026-11.org.example:a" {
  lun "0" { device = "null0" }
}

target "iqn.2026-11.org.example:b" {
  rel_tgt_id = 300
}

device_group "dg" {
  devices  = ["null0"]
  explicit = true
  target_group "one" {
    group_id = 1
    gateway  = "gw1"
    targets  = ["iqn.2026-11.org.example:a"]
  }
  target_group "none" {
    group_id = 2
    targets  = ["iqn.2026-11.org.example:a"]
  }
  target_group "unknown" {
    group_id = 3
    gateway  = "gw9"
  }
}
