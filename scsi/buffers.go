package scsi

import "sync"

// Scratch buffers for reading back blocks to compare (VERIFY, WRITE AND
// VERIFY, COMPARE AND WRITE), pooled by power-of-two size classes from
// 512 bytes to maxTransferBytes so that the data path does not allocate.
const (
	minBufShift = 9
	maxBufShift = 23 // maxTransferBytes
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

// bufClass returns the pool index for n bytes, or -1 when n is larger
// than any class.
func bufClass(n int) int {
	c := 0
	for size := 1 << minBufShift; size < n; size <<= 1 {
		c++
	}
	if c >= len(bufPools) {
		return -1
	}
	return c
}

// getBuffer returns a buffer of length n (contents undefined). Give it
// back with putBuffer.
func getBuffer(n int) []byte {
	c := bufClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(minBufShift+c))
}

// putBuffer returns a buffer from getBuffer to its pool.
func putBuffer(b []byte) {
	c := bufClass(cap(b))
	if c < 0 || cap(b) != 1<<(minBufShift+c) {
		return
	}
	bufPools[c].Put(&b)
}
