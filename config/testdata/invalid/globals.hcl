disruptive_changes = "maybe"

iscsi {
  portals = []
}

iscsi {
  enabled = false
}
