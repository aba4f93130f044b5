target "iqn.2026-11.org.example:a" {
  header_digest                = ["CRC32C", "CRC32C"]
  data_digest                  = ["MD5", "none"]
  max_recv_data_segment_length = 100
  max_xmit_data_segment_length = 16777216
  max_burst_length             = 65536
  first_burst_length           = 262144
  max_outstanding_r2t          = 0
  queued_commands              = 5000
  nop_in_interval              = -1
  nop_in_timeout               = 0
  rsp_timeout                  = 1e10
}

target "iqn.2026-11.org.example:b" {
  first_burst_length = 2097152
}

target "iqn.2026-11.org.example:c" {
  data_digest = []
}
