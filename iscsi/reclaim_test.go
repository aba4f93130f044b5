package iscsi

import (
	"testing"

	"github.com/scstd/scstd/internal/bufpool"
)

// TestReclaimReturnsPooledMemory: buffers left in the pools by a
// connection that is gone go back to the system at the next reclaim,
// although nothing allocates to make the collector run.
func TestReclaimReturnsPooledMemory(t *testing.T) {
	var r reclaimer
	bufs := make([]*[]byte, 0, 24)
	for range cap(bufs) {
		b := bufpool.Get(8 << 20)
		clear(*b) // touch the pages: resident
		bufs = append(bufs, b)
	}
	for _, b := range bufs {
		bufpool.Put(b)
	}
	bufs = nil
	before := r.held()
	if before < reclaimAbove {
		t.Fatalf("the runtime holds %d MiB with 192 MiB pooled", before>>20)
	}
	r.run()
	after := r.held()
	t.Logf("held %d MiB before the reclaim, %d MiB after", before>>20, after>>20)
	if before-after < 128<<20 {
		t.Errorf("the reclaim gave back %d MiB of 192 MiB pooled", (before-after)>>20)
	}
}
