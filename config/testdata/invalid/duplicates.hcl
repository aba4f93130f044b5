handler "vdisk_fileio" {
  device "disk1" {
    filename = "/tmp/disk1.img"
  }
}

handler "vdisk_nullio" {
  device "disk1" {
    size = "1GiB"
  }
}

target "iqn.2026-11.org.example:a" {
  rel_tgt_id = 7
  lun "0" {
    device = "disk1"
  }
  lun "0" {
    device = "disk1"
  }
  group "g" {
    initiators = ["iqn.1994-05.com.redhat:*"]
    lun "0" {
      device = "disk1"
    }
    lun "00" {
      device = "disk1"
    }
  }
  group "g" {
    initiators = ["*"]
  }
}

target "iqn.2026-11.org.example:a" {
}

target "iqn.2026-11.org.example:b" {
  rel_tgt_id = 7
}
