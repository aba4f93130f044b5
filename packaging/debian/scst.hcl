# /etc/scst.hcl: the configuration of scstd (from the scstd package).
#
# As installed, scstd serves one sparse 1 GiB disk on the loopback address
# only, so that it can be tried without exposing anything:
#
#   systemctl enable --now scstd
#   iscsi-ls iscsi://127.0.0.1:3260
#
# To serve the network: list the portals (["0.0.0.0:3260"]), rename the
# target (iqn.YYYY-MM.reversed.domain:name), add CHAP users with their
# secrets in /etc/scst/chap (secret = file("/etc/scst/chap/NAME")) and your
# devices. Check an edited file with `scstd validate`, see what it would
# change with `scstd plan -config /etc/scst.hcl`, apply it with
# `systemctl reload scstd`. Coming from SCST: `scstd import /etc/scst.conf`.
# More: scstd(8) and /usr/share/doc/scstd/examples.

iscsi {
  portals = ["127.0.0.1:3260"]
}

handler "vdisk_fileio" {
  device "disk0" {
    filename = "/var/lib/scstd/disk0.img"
    size     = "1GiB"
  }
}

target "iqn.2026-11.org.example:scstd" {
  lun "0" {
    device = "disk0"
  }
}
