iscsi {
  enabled = "maybe"
  portals = "0.0.0.0:3260"
}

handler "vdisk_fileio" {
  device "disk1" {
    filename  = "/tmp/disk1.img"
    blocksize = "big"
    read_only = 1
    size      = ["1GiB"]
  }
}

target "iqn.2026-11.org.example:a" {
  queued_commands = 3.5
  rsp_timeout     = null
  header_digest   = "None"
  lun "0" {
    device = "disk1"
  }
}
