# 0.0.0.0:3260 and [::]:3260 coexist (the IPv6 wildcard is bound
# IPv6-only); everything below them on port 3260 does not.
iscsi {
  portals = [
    "0.0.0.0:3260",
    "[::]:3260",
    "127.0.0.1:3260",
    "[::1]:3260",
    "[::0]:3260",
    "[::ffff:10.0.0.1]:3260",
    "10.0.0.1:3261",
    "[::ffff:10.0.0.1]:3261",
    "storage.example.org:3262",
    "STORAGE.example.org:3262",
  ]
}
