package vdisk

import "golang.org/x/sys/unix"

// PhysicalBlocker is an optional Backend capability: the size in bytes of
// the storage's physical block, the unit below which writes cost a
// read-modify-write. The scsi package reports it as LOGICAL BLOCKS PER
// PHYSICAL BLOCK EXPONENT in READ CAPACITY(16).
type PhysicalBlocker interface {
	PhysicalBlockSize() int64
}

// defaultPhysicalBlock is the physical block size reported when the
// storage does not say: the page size of every file system and the
// sector size of Advanced Format disks.
const defaultPhysicalBlock = 4096

// PhysicalBlockSize returns the backing file system's preferred I/O block
// size (st_blksize), 4096 when it cannot be read.
func (b *fileBackend) PhysicalBlockSize() int64 {
	var st unix.Stat_t
	if err := unix.Fstat(int(b.f.Fd()), &st); err != nil || st.Blksize <= 0 {
		return defaultPhysicalBlock
	}
	return int64(st.Blksize)
}

// PhysicalBlockSize returns the block device's physical sector size
// (BLKPBSZGET), 4096 when it cannot be read.
func (b *blockBackend) PhysicalBlockSize() int64 {
	n, err := unix.IoctlGetUint32(int(b.f.Fd()), unix.BLKPBSZGET)
	if err != nil || n == 0 {
		return defaultPhysicalBlock
	}
	return int64(n)
}

// PhysicalBlockSize returns 4096: nullio has no storage, and 4096 is what
// initiators align to best.
func (b *nullBackend) PhysicalBlockSize() int64 { return defaultPhysicalBlock }
