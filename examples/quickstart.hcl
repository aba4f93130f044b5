# Quickstart: one 1 GiB disk on 127.0.0.1:3260, no authentication.
#
#   make run                      # or: scstd run -config examples/quickstart.hcl
#   iscsi-ls iscsi://127.0.0.1:3260
#   iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-11.org.example:quickstart/0
#
# Relative file names resolve against this file's directory: the disk image
# is .state/quickstart/disk0.img at the top of the repository, created
# sparse on first start (the directory must exist; `make run` creates it).
# The state directory (the seed of the disk's NAA designator, persistent
# reservations kept through restarts) resolves the same way; scstd creates
# it on first start.

state_dir = "../.state/quickstart/state"

iscsi {
  portals = ["127.0.0.1:3260"]
}

handler "vdisk_fileio" {
  device "disk0" {
    filename = "../.state/quickstart/disk0.img"
    size     = "1GiB"
  }
}

target "iqn.2026-11.org.example:quickstart" {
  lun "0" {
    device = "disk0"
  }
}
