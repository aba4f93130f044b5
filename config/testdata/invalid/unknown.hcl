tagret "iqn.2026-11.org.example:a" {
}

handler "vdisk_fileio" {
  device "disk1" {
    filename  = "/tmp/disk1.img"
    blocksise = 4096
  }
}

target "iqn.2026-11.org.example:b" {
  queue_commands = 32
  lun "0" {
    device = "disk1"
    readonly = true
  }
}
