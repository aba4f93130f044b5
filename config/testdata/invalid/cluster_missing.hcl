cluster {
  etcd     = []
  username = "scstd"
}
