handler "vdisk_fileio" {
  device "no-file" {
    size = "1GiB"
  }
  device "bad-unit" {
    filename = "/tmp/a.img"
    size     = "10XB"
  }
  device "not-aligned" {
    filename  = "/tmp/b.img"
    size      = "1000"
    blocksize = 512
  }
  device "bad-blocksize" {
    filename  = "/tmp/c.img"
    blocksize = 3000
  }
  device "zero" {
    filename = "/tmp/d.img"
    size     = "0"
  }
  device "bad name!" {
    filename = "/tmp/e.img"
  }
  device "bad-ids" {
    filename   = "/tmp/f.img"
    t10_dev_id = "has space"
    usn        = ""
  }
}

handler "vdisk_nullio" {
  device "null-no-size" {
    o_direct = true
  }
}

handler "vdisk_blockio" {
  device "blk-no-file" {
    size = "1GiB"
  }
}

handler "vcdrom" {
  device "cd" {
    filename  = "/srv/a.iso"
    read_only = false
  }
  device "cd-512" {
    filename  = "/srv/b.iso"
    blocksize = 512
  }
  device "cd-empty" {
    filename = ""
  }
}

handler "vdisk_fileio" {
  device "file-empty" {
    filename = ""
  }
}

handler "vdisk_foo" {
  device "x" {
  }
}
