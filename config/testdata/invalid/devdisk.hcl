handler "dev_disk" {
  device "no-path" {
  }
  device "relative" {
    path = "sg2"
  }
  device "slow" {
    path    = "/dev/sg3"
    timeout = 0
  }
  device "blocky" {
    path      = "/dev/sg4"
    blocksize = 4096
  }
  device "again" {
    path = "/dev/sg3"
  }
  device "1:0:0:0" {
  }
  device "bad:name" {
    path = "1:0:0:0"
  }
}

target "iqn.2026-11.org.example:t" {
  lun "0" { device = "no-path" }
}
