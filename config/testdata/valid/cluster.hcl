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
}

handler "vdisk_nullio" {
  device "null0" {
    size = "1GiB"
  }
}

target "iqn.2026-11.org.example:shared" {
  lun "0" { device = "null0" }
}
