cluster {
  etcd      = ["http://127.0.0.1:2379"]
  gateway   = env("SCSTD_GATEWAY")
  lease_ttl = "1s"
  ca_file   = "ca.pem"
  cert_file = "client.pem"
  password  = env("JOE_SECRET")
}

target "iqn.2026-11.org.example:a" {}
