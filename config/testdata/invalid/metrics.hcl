iscsi {
  portals = ["0.0.0.0:3260", "127.0.0.1:3261"]
}

# On a portal's address, then beside the IPv4 wildcard portal.
metrics {
  listen = "127.0.0.1:3261"
}

metrics {
  listen = "127.0.0.1:3260"
}
