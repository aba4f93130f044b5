cluster {
  etcd         = ["http://127.0.0.1:2379", "https://10.0.0.2:2379", "etcd3:2379", "http://[::1]:2379/v3", "ftp://x"]
  gateway      = "gw 1"
  prefix       = "scstd"
  lease_ttl    = "2500ms"
  dial_timeout = "1h"
}

cluster {
  etcd    = ["http://127.0.0.1:2379"]
  gateway = "gw2"
}
