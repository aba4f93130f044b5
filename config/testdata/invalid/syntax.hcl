target "iqn.2026-11.org.example:a" {
  lun "0" {
    device = "disk1"
