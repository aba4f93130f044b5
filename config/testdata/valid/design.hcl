disruptive_changes = "allow" # or "refuse": session-dropping reloads need `scstd reload -force`

iscsi {
  enabled = true
  portals = ["0.0.0.0:3260"] # listen addresses; "[::]:3260" for IPv6
  isns_server "192.0.2.10:3205" { access_control = true }
  incoming_user "joeD" { secret = "12charsecret" }       # discovery CHAP, repeatable
  outgoing_user "jackD" { secret = env("JACKD_SECRET") } # discovery mutual CHAP
  max_connections             = 4096 # in all; over it a connection is closed at once
  max_connections_per_address = 256  # per IPv4 address or IPv6 /64
  login_timeout               = 15   # seconds to finish a login
  discovery_idle_timeout      = 30   # seconds a discovery session may stay idle
}

handler "vdisk_fileio" {
  device "disk1" {
    filename      = "/var/lib/scst/disk1.img"
    size          = "10GiB" # creates a sparse file when missing; never shrinks one
    blocksize     = 512
    nv_cache      = false # true: ignore SYNCHRONIZE CACHE/FUA (unsafe, fast)
    write_through = false
    o_direct      = false
    read_only     = false
    t10_dev_id    = "disk1"
  }
}
handler "vdisk_blockio" {
  device "blk1" { filename = "/dev/sdb" }
}
handler "vdisk_nullio" {
  device "null1" { size = "1TiB" }
}
handler "vcdrom" {
  device "cd1" { filename = "/srv/iso/install.iso" }
}

target "iqn.2026-11.org.example:storage" {
  enabled                      = true
  header_digest                = ["CRC32C", "None"]
  data_digest                  = ["None"]
  immediate_data               = true
  initial_r2t                  = false
  max_recv_data_segment_length = 262144
  max_xmit_data_segment_length = 262144
  max_burst_length             = 1048576
  first_burst_length           = 65536
  max_outstanding_r2t          = 1
  queued_commands              = 32
  max_sessions                 = 0 # sessions of the target; 0: no cap
  nop_in_interval              = 30
  nop_in_timeout               = 30
  rsp_timeout                  = 90
  allowed_portals              = ["10.170.7?.*", "!10.170.77.2"]
  per_portal_acl               = false
  redirect                     = "192.0.2.20:3260 temp" # or "... perm"; "" or absent: none
  rel_tgt_id                   = 1

  incoming_user "joe" { secret = env("JOE_SECRET") }
  outgoing_user "jim" { secret = "12charpasswd" }
  chap_algorithms = ["SHA3-256", "SHA-256", "SHA-1", "MD5"]

  lun "0" { device = "disk1" }
  lun "1" { device = "cd1" }

  group "special_ini" {
    initiators = ["iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest"]
    lun "0" {
      device    = "blk1"
      read_only = true
    }
  }
}
