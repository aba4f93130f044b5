# Numbers beyond 10^±1000, which HCL would take seconds to print or to
# turn into text, are refused where they are written.
iscsi {
  portals = ["127.0.0.1:${1E2551617}"]
}

handler "vdisk_fileio" {
  device "d" {
    filename = 1E2551617
    size     = 7E-2551617
  }
}

target "iqn.2026-11.org.example:a" {
  rel_tgt_id      = 18446744073E09551617
  queued_commands = 1E999999999
  rsp_timeout     = -(1E600 * 1E600)
  nop_in_interval = 1E600 * 1E600 * 1E600
  lun "0" {
    device = "d"
  }
}
