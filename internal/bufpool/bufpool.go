// Package bufpool lends byte buffers for the data path: iSCSI data
// segments and data-in buffers, and the scratch buffers of SCSI commands
// that read the medium back (VERIFY, COMPARE AND WRITE, XCOPY, ...).
// Buffers come in power-of-two size classes from 512 bytes to 16 MiB, one
// sync.Pool each, so that a command allocates nothing once the pools are
// warm. Get and Put pass *[]byte, so that giving a buffer back does not
// allocate either.
//
// The capacity of a buffer is its class size; the iSCSI send budget
// counts it as the memory a queued PDU holds. Buffers are not zeroed.
//
// vdisk's O_DIRECT bounce buffers are not from here: they must be aligned
// to the device's block size, which Go's allocator does not promise.
package bufpool

import (
	"math/bits"
	"sync"
)

// The size classes: 1<<MinShift to 1<<MaxShift bytes.
const (
	MinShift = 9
	MaxShift = 24
)

var pools [MaxShift + 1]sync.Pool

// class returns the size class of n bytes: the shift of the smallest
// class that holds n.
func class(n int) int {
	if n <= 1<<MinShift {
		return MinShift
	}
	return bits.Len(uint(n - 1))
}

// Get returns a buffer of length n (contents undefined) whose capacity is
// n rounded up to its size class. A buffer larger than the largest class
// is allocated, and Put drops it.
func Get(n int) *[]byte {
	c := class(n)
	if c > MaxShift {
		b := make([]byte, n)
		return &b
	}
	if v := pools[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// Put gives back a buffer from Get; b must not be used afterwards.
// Buffers whose capacity is not a class size are dropped.
func Put(b *[]byte) {
	c := cap(*b)
	if c&(c-1) != 0 || c < 1<<MinShift || c > 1<<MaxShift {
		return
	}
	pools[bits.Len(uint(c-1))].Put(b)
}
