iscsi {
  portals = ["0.0.0.0:3260", "0.0.0.0", "::1:3260", "[::1]:", "host:port", "", "0.0.0.0:3260"]
  isns_server "192.0.2.10:70000" {
  }
  isns_server "192.0.2.10" {
    access_control = true
  }
  isns_server "192.0.2.10:3205" {
  }
}

target "iqn.2026-11.org.example:a" {
  allowed_portals = []
  group "g" {
    initiators = ["", "!"]
  }
  group "h" {
  }
  group "i" {
    initiators = ["iqn.2026-11.org.example:\u0007bell"]
  }
}
