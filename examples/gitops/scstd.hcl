# Managed by GitOps: edit in git, never in the pod.
disruptive_changes = "refuse"

iscsi {
  portals = ["0.0.0.0:3260"]
}

handler "vdisk_fileio" {
  device "vm-images" {
    filename = "/var/lib/scstd/vm-images.img"
    size     = "500GiB"
  }
}

target "iqn.2026-11.org.example:k8s-vm-images" {
  queued_commands = 64

  lun "0" {
    device = "vm-images"
  }
}
