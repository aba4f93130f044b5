// Package vdisk holds the storage backends behind SCSI devices.
//
// Open turns a Spec into a Backend according to its Handler:
//
//	vdisk_fileio   a regular file, read and written with pread/pwrite.
//	               A missing file is created sparse when Spec.Size is set;
//	               an existing smaller file is refused, or extended with
//	               Spec.Extend (a resize of a device already serving from
//	               it); a larger one is never shrunk.
//	               Unmap punches holes (fallocate PUNCH_HOLE|KEEP_SIZE) and
//	               MapStatus reports holes (lseek SEEK_DATA/SEEK_HOLE).
//	vdisk_blockio  a block device, always opened O_DIRECT. Size comes from
//	               BLKGETSIZE64, Unmap is BLKDISCARD.
//	vdisk_nullio   no storage: reads return zeroes, writes are discarded.
//	vcdrom         an image file opened read-only, never created or resized.
//
// Backends opened with O_DIRECT accept any buffer, offset and length: what
// the kernel cannot take directly bounces through aligned pooled buffers
// (partial blocks by read-modify-write). AlignedBuffer gives callers buffers
// that skip the bounce.
//
// Optional capabilities are small interfaces a Backend may implement:
// Unmapper (deallocate a range), Zeroer (make a range read as zeroes,
// deallocating it where possible), Mapper (which ranges hold data) and
// NoWaiter (try a read or write without waiting for a device: nullio
// always; fileio when the file lives in memory, tmpfs without swap, or
// through RWF_NOWAIT where the file system takes it; never with O_DIRECT)
// and Lender (lend the bytes of a read of LendMin or more instead of
// copying them: nullio from a read-only mapping of zero pages; fileio in
// tmpfs or ramfs without swap from a shared read-only mapping of the
// file, or from the zero pages over a hole, as cachestat(2) says; the
// transport hands them to writev, and no Go code ever reads them, since
// a file truncated underneath would make that a SIGBUS).
//
// The package does not know about SCSI: block sizes, LBA ranges and sense
// data belong to package scsi, which maps the plain errors returned here
// (ErrReadOnly, ENOSPC, EIO, EOPNOTSUPP) to sense codes.
package vdisk
