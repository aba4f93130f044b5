package iscsi

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Memory that connections held comes back to the system once they are
// gone. The buffer pools are sync.Pools, which the garbage collector
// empties over two cycles; but an idle daemon allocates nothing, so no
// cycle runs, and the Go runtime hands freed pages back slowly. After
// connections end, the reclaimer looks at what the Go runtime holds from
// the system and, past reclaimAbove, runs two collections (emptying the
// pools) and returns the freed pages at once. (The pools' buffers count
// as live until the collections, so the live heap cannot tell how much
// would come back.)
const (
	// reclaimAfter is how long after the last connection ended the
	// reclaimer looks.
	reclaimAfter = time.Second
	// reclaimEvery is the least time between two reclaims.
	reclaimEvery = 10 * time.Second
	// reclaimAbove is what the runtime may hold without a reclaim.
	reclaimAbove = 64 << 20
)

// reclaimer schedules the reclaims of one server.
type reclaimer struct {
	mu      sync.Mutex
	pending bool // a look is scheduled
	last    time.Time
	samples []metrics.Sample
}

// reclaimSoon schedules a look at the memory reclaimAfter from now, or
// at most reclaimEvery after the last reclaim; a look already scheduled
// is not postponed, so that connections ending all the time (an
// innocent initiator that logs in and out) do not keep it from running.
func (s *Server) reclaimSoon() {
	r := &s.reclaim
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending {
		return
	}
	r.pending = true
	wait := max(reclaimAfter, reclaimEvery-time.Since(r.last))
	time.AfterFunc(wait, r.run)
}

// run reclaims when the runtime holds more than reclaimAbove.
func (r *reclaimer) run() {
	r.mu.Lock()
	r.pending = false
	r.mu.Unlock()
	if r.held() < reclaimAbove {
		return
	}
	runtime.GC() // the pools' objects become their victim caches
	debug.FreeOSMemory()
	r.mu.Lock()
	r.last = time.Now()
	r.mu.Unlock()
}

// held is what the Go runtime holds from the system: heap (live, free
// and pooled), stacks and its own structures, less what it released.
func (r *reclaimer) held() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.samples == nil {
		r.samples = []metrics.Sample{
			{Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/released:bytes"},
		}
	}
	metrics.Read(r.samples)
	for _, s := range r.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return 0
		}
	}
	return int64(r.samples[0].Value.Uint64()) - int64(r.samples[1].Value.Uint64())
}
