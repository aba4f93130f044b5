# vcdrom drives: one with a disc, one empty (filename = ""), one empty
# without a filename at all.
handler "vcdrom" {
  device "cd-iso" {
    filename  = "/srv/iso/install.iso"
    blocksize = 2048
  }
  device "cd-empty" {
    filename = ""
  }
  device "cd-none" {}
}

target "iqn.2026-11.org.example:install" {
  lun "0" { device = "cd-iso" }
  lun "1" { device = "cd-empty" }
  lun "2" { device = "cd-none" }
}
