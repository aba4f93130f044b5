# The iSCSI-SCST README's pass-through sample: a local SCSI disk by its
# SCSI address (SCST's add_device 0:0:1:0), another by its sg node.
handler "dev_disk" {
  device "0:0:1:0" {}
  device "sdb" {
    path      = "/dev/sg2"
    timeout   = 60
    read_only = true
  }
}

target "iqn.2026-11.org.example:passthrough" {
  lun "0" { device = "0:0:1:0" }
  lun "1" { device = "sdb" }
}
