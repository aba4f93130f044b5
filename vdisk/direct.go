package vdisk

import (
	"io"
	"os"
	"sync"
	"unsafe"
)

// O_DIRECT I/O must use memory, offsets and lengths aligned to the device's
// logical block size. The SCSI layer hands us blocks of the exported block
// size, which may be smaller than the device's (512 on a 4Kn disk), and
// buffers that Go allocated without regard to alignment. directFile takes
// any buffer and offset: aligned requests go straight to the file, the rest
// bounce through an aligned pooled buffer, with read-modify-write of the
// partial blocks at either end.

// pageAlign is the alignment of every buffer AlignedBuffer and the bounce
// pool return; it satisfies every logical block size up to a page.
const pageAlign = 4096

// bounceSize is the size of one pooled bounce buffer; larger requests are
// carried out in pieces of this size.
const bounceSize = 1 << 20

// AlignedBuffer returns a zeroed buffer of n bytes whose first byte is
// aligned to 4096. Callers that pass such buffers, at block-aligned offsets,
// to a backend opened with ODirect avoid a copy through a bounce buffer.
func AlignedBuffer(n int) []byte {
	b := make([]byte, n+pageAlign)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % pageAlign); r != 0 {
		skip = pageAlign - r
	}
	return b[skip : skip+n : skip+n]
}

// bouncePool holds the bounce buffers. It is not the data path's shared
// pool (internal/bufpool, which vdisk, below the command layer, does not
// use): O_DIRECT wants memory aligned to the device's block size, and Go's
// allocator gives no alignment, so these buffers are cut out of larger
// allocations by AlignedBuffer, all of one size.
var bouncePool = sync.Pool{New: func() any {
	b := AlignedBuffer(bounceSize)
	return &b
}}

// directFile performs I/O on a file opened with O_DIRECT.
type directFile struct {
	f        *os.File
	align    int64 // offset and length alignment, a power of two
	memAlign uintptr
	// rmw orders read-modify-write cycles of partial blocks (exclusive)
	// against every other write (shared), so that a neighbour's write
	// landing between our read and write is never undone.
	rmw sync.RWMutex
}

func (d *directFile) aligned(p []byte, off int64) bool {
	if len(p) == 0 {
		return true
	}
	return off&(d.align-1) == 0 && int64(len(p))&(d.align-1) == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))&(d.memAlign-1) == 0
}

// ReadAt reads len(p) bytes at off.
func (d *directFile) ReadAt(p []byte, off int64) (int, error) {
	if d.aligned(p, off) {
		return d.f.ReadAt(p, off)
	}
	bp := bouncePool.Get().(*[]byte)
	defer bouncePool.Put(bp)
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		start := pos &^ (d.align - 1)
		end := min(roundUp(off+int64(len(p)), d.align), start+bounceSize)
		buf := (*bp)[:end-start]
		n, err := d.f.ReadAt(buf, start)
		avail := int64(n) - (pos - start)
		if avail < 0 {
			avail = 0
		}
		c := copy(p[done:], buf[pos-start:pos-start+min(avail, end-pos)])
		done += c
		if err != nil {
			if done == len(p) && err == io.EOF {
				return done, nil
			}
			return done, err
		}
	}
	return done, nil
}

// WriteAt writes p at off.
func (d *directFile) WriteAt(p []byte, off int64) (int, error) {
	partial := off&(d.align-1) != 0 || int64(len(p))&(d.align-1) != 0
	if partial {
		d.rmw.Lock()
		defer d.rmw.Unlock()
	} else {
		d.rmw.RLock()
		defer d.rmw.RUnlock()
	}
	if d.aligned(p, off) {
		return d.f.WriteAt(p, off)
	}
	bp := bouncePool.Get().(*[]byte)
	defer bouncePool.Put(bp)
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		start := pos &^ (d.align - 1)
		end := min(roundUp(off+int64(len(p)), d.align), start+bounceSize)
		buf := (*bp)[:end-start]
		n := min(int64(len(p)-done), end-pos)
		if pos > start {
			if err := d.readBlock(buf[:d.align], start); err != nil {
				return done, err
			}
		}
		if tail := end - d.align; pos+n < end && (tail > start || pos == start) {
			if err := d.readBlock(buf[tail-start:], tail); err != nil {
				return done, err
			}
		}
		copy(buf[pos-start:], p[done:done+int(n)])
		if _, err := d.f.WriteAt(buf, start); err != nil {
			return done, err
		}
		done += int(n)
	}
	return done, nil
}

// readBlock reads one aligned block into b, zero-filling past end of file.
func (d *directFile) readBlock(b []byte, off int64) error {
	n, err := d.f.ReadAt(b, off)
	if err == io.EOF {
		clear(b[n:])
		return nil
	}
	return err
}

func roundUp(x, a int64) int64 { return (x + a - 1) &^ (a - 1) }
