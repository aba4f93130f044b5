package metrics

import (
	"sync"
	"time"

	"github.com/scstd/scstd/reconcile"
)

// Reloads keeps what the metrics say about reloads: how many succeeded
// and failed, the last one's outcome, end and duration, and the changes
// applied by impact class. Its methods are safe for concurrent use; the
// zero value is ready.
type Reloads struct {
	mu           sync.Mutex
	any          bool
	success      uint64
	failure      uint64
	lastOK       bool
	lastEnd      time.Time
	lastDuration time.Duration
	changes      map[reconcile.Impact]uint64
}

// Observe records one reload (the start included) that ended at end after
// d: applied when ok, with the changes of plan.
func (r *Reloads) Observe(ok bool, end time.Time, d time.Duration, plan reconcile.Plan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.any = true
	r.lastOK, r.lastEnd, r.lastDuration = ok, end, d
	if !ok {
		r.failure++
		return
	}
	r.success++
	for _, c := range plan.Changes {
		if r.changes == nil {
			r.changes = make(map[reconcile.Impact]uint64)
		}
		r.changes[c.Impact]++
	}
}

// collect sends the reload series. Changes are sent for every impact
// class, so that each series exists from the start.
func (r *Reloads) collect(gauge func(*family, float64, ...string), counter func(*family, uint64, ...string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	counter(reloadsTotal, r.success, "success")
	counter(reloadsTotal, r.failure, "failure")
	for i := reconcile.Hot; i <= reconcile.SessionDrop; i++ {
		counter(reloadChanges, r.changes[i], i.String())
	}
	if !r.any {
		return
	}
	gauge(reloadLastSuccess, boolValue(r.lastOK))
	gauge(reloadLastTimestamp, float64(r.lastEnd.UnixNano())/1e9)
	gauge(reloadLastDuration, r.lastDuration.Seconds())
}
