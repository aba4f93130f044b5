disruptive_changes = "maybe"

iscsi {
  portals                     = []
  max_connections             = 100
  max_connections_per_address = 200
  login_timeout               = 0
}

iscsi {
  enabled = false
}
