handler "vdisk_fileio" {
  device "disk1" {
    filename = "/tmp/disk1.img"
  }
}

target "iqn.2026-11.org.example:a" {
  lun "16384" {
    device = "disk1"
  }
  lun "x" {
    device = "disk1"
  }
  lun "-1" {
    device = "disk1"
  }
  lun "1" {
    device = "disk2"
  }
  lun "2" {
    device = "nothing-like-it"
  }
  lun "3" {
  }
}
