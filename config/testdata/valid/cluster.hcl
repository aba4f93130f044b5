# One of several gateways that export the same LUs; the only difference
# between the gateways' files is the environment's SCSTD_GATEWAY.
cluster {
  etcd         = ["https://127.0.0.1:2379", "https://[::1]:2380", "https://etcd3.example.com"]
  gateway      = env("SCSTD_GATEWAY")
  lease_ttl    = "10s"
  dial_timeout = "2s"
  prefix       = "/scstd/site-a/"
  ca_file      = "etcd/ca.pem"
  cert_file    = "/etc/scstd/etcd-client.pem"
  key_file     = "/etc/scstd/etcd-client.key"
  username     = "scstd"
  password     = env("JOE_SECRET")

  member "gw1" { id = 1 }
  member "gw2.example.com" { id = 2 }
}

handler "vdisk_nullio" {
  device "null0" {
    size = "1GiB"
  }
}

target "iqn.2026-11.org.example:shared" {
  rel_tgt_id = 1
  lun "0" { device = "null0" }
}

# Each gateway's ports of the target are one target port group.
device_group "shared" {
  devices = ["null0"]
  target_group "gw1" {
    group_id = 1
    gateway  = "gw1"
    targets  = ["iqn.2026-11.org.example:shared"]
  }
  target_group "gw2" {
    group_id = 2
    gateway  = "gw2.example.com"
    state    = "active/non-optimized"
    targets  = ["iqn.2026-11.org.example:shared"]
  }
}
