# Several targets, CHAP and initiator groups.
#
# Secrets come from the environment (env) or from files (file, relative to
# this directory), so that this file can live in git:
#
#   export DB_CHAP_SECRET=... DB_MUTUAL_SECRET=... BACKUP_CHAP_SECRET=...

disruptive_changes = "refuse"

# The daemon's log level (SCST's trace_level): "debug", "info", "warn" or
# "error". A reload changes it at once; without it, `scstd run -log-level`
# decides (default "info").
log_level = "info"

# Every IPv4 and every IPv6 address: "[::]" listens IPv6-only, beside
# "0.0.0.0" on the same port.
iscsi {
  portals = ["0.0.0.0:3260", "[::]:3260"]
}

handler "vdisk_fileio" {
  device "db-data" {
    filename  = "/var/lib/scstd/db-data.img"
    size      = "200GiB"
    blocksize = 4096
  }
  device "db-log" {
    filename      = "/var/lib/scstd/db-log.img"
    size          = "20GiB"
    write_through = true
  }
}

handler "vdisk_blockio" {
  device "backup0" {
    filename = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"
  }
}

handler "vcdrom" {
  device "install-iso" {
    filename = "/srv/iso/install.iso"
  }
}

# A local SCSI disk passed through (SCST's dev_disk handler), named by its
# SCSI address as lsscsi prints it; its identity and data are the disk's.
# Left commented out so that this file validates on any host:
#
#   handler "dev_disk" {
#     device "0:0:1:0" {
#       timeout = 60
#     }
#   }

target "iqn.2026-11.org.example:db" {
  header_digest   = ["CRC32C", "None"]
  queued_commands = 64
  allowed_portals = ["10.0.1.*"]

  incoming_user "db-host" {
    secret = env("DB_CHAP_SECRET")
  }
  outgoing_user "db-target" {
    secret = env("DB_MUTUAL_SECRET")
  }

  lun "0" {
    device = "db-data"
  }
  lun "1" {
    device = "db-log"
  }
}

target "iqn.2026-11.org.example:backup" {
  incoming_user "backup" {
    secret = env("BACKUP_CHAP_SECRET")
  }

  lun "0" {
    device = "backup0"
  }
  lun "1" {
    device = "install-iso"
  }

  # Auditors see the backup disk read-only and no installer image.
  group "auditors" {
    initiators = ["iqn.2026-11.org.example.audit:*", "!iqn.2026-11.org.example.audit:test"]

    lun "0" {
      device    = "backup0"
      read_only = true
    }
  }
}
