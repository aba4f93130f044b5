state_dir = ""

handler "vdisk_nullio" {
  device "disk1" {
    size   = "1GiB"
    naa_id = "6001405"
  }
  device "disk2" {
    size       = "1GiB"
    t10_dev_id = "disk1"
    naa_id     = "4123456789abcdef"
  }
  device "disk3" {
    size   = "1GiB"
    naa_id = "0x5123456789ABCDEF"
  }
  device "disk4" {
    size   = "1GiB"
    naa_id = "5123456789abcdef"
  }
}

handler "dev_disk" {
  device "0:0:1:0" {}
}

target "iqn.2026-11.org.example:a" {
  lun "0" { device = "disk1" }
}

target "iqn.2026-11.org.example:c" {
  lun "0" { device = "disk3" }
}

device_group "dg1" {
  devices = ["disk1", "disk9", "0:0:1:0"]
  target_group "local" {
    group_id = 1
    state    = "active"
    targets  = ["iqn.2026-11.org.example:a", "iqn.2026-11.org.example:x"]
  }
  target_group "remote" {
    group_id = 1
    state    = "standby"
    targets  = ["iqn.2026-11.org.example:a"]
  }
  target_group "no_id" {
    state = "offline"
  }
}

device_group "dg2" {
  devices = ["disk1", "disk3"]
  target_group "t" {
    group_id = 70000
  }
}

device_group "dg1" {
  devices = ["disk4"]
}
