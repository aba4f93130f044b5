package main

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/scstd/scstd/admin"
)

// What starts a reload, as the log and the admin API name it.
const (
	triggerStart  = "start"
	triggerSIGHUP = "sighup"
	triggerWatch  = "watch"
	triggerAdmin  = "admin"
)

// triggerPhrase says who applied a reload, for `scstd reload`: "by the
// file watch", "on SIGHUP and by `scstd reload`".
func triggerPhrase(trigger string) string {
	var parts []string
	for _, t := range strings.Split(trigger, "+") {
		switch t {
		case triggerStart:
			parts = append(parts, "at start")
		case triggerSIGHUP:
			parts = append(parts, "on SIGHUP")
		case triggerWatch:
			parts = append(parts, "by the file watch")
		case triggerAdmin:
			parts = append(parts, "by `scstd reload`")
		default:
			parts = append(parts, "by "+t)
		}
	}
	return strings.Join(parts, " and ")
}

// reloadBatch is the reload requests that one reload serves: those that
// arrived, with the same force, while no reload of them had started.
type reloadBatch struct {
	triggers []string
	force    bool
	waiters  []chan admin.ReloadReply
}

// trigger is the batch's triggers joined by "+", in order of arrival.
func (b *reloadBatch) trigger() string { return strings.Join(b.triggers, "+") }

// reloader runs reloads one at a time on its own goroutine, off the
// signal loop, so that a reload that hangs (a backing file on a dead NFS
// server) never keeps the daemon from handling SIGTERM. Requests queue
// and coalesce: every request is served by a reload that starts after it
// arrived (so it reads the file as it is now), and the requests that wait
// while one reload runs are served by one more. A forced request is never
// merged with unforced ones: SIGHUP and the watch never force.
type reloader struct {
	run func(ctx context.Context, b *reloadBatch) admin.ReloadReply
	// after, when set, runs once the waiters of a batch have its reply
	// and before the next batch starts (set it before loop runs).
	after func(b *reloadBatch)

	mu      sync.Mutex
	pending []*reloadBatch // at most one per value of force, in order
	wake    chan struct{}
}

func newReloader(run func(ctx context.Context, b *reloadBatch) admin.ReloadReply) *reloader {
	return &reloader{run: run, wake: make(chan struct{}, 1)}
}

// request queues a reload and returns the channel that receives its
// outcome; nobody needs to read it.
func (r *reloader) request(trigger string, force bool) <-chan admin.ReloadReply {
	ch := make(chan admin.ReloadReply, 1)
	r.mu.Lock()
	var b *reloadBatch
	for _, p := range r.pending {
		if p.force == force {
			b = p
		}
	}
	if b == nil {
		b = &reloadBatch{force: force}
		r.pending = append(r.pending, b)
	}
	if !slices.Contains(b.triggers, trigger) {
		b.triggers = append(b.triggers, trigger)
	}
	b.waiters = append(b.waiters, ch)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return ch
}

// loop runs the queued reloads until ctx is done. A reload in progress
// when ctx ends is left to finish or hang on its own: the daemon exits
// without waiting for it.
func (r *reloader) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for ctx.Err() == nil {
			r.mu.Lock()
			if len(r.pending) == 0 {
				r.mu.Unlock()
				break
			}
			b := r.pending[0]
			r.pending = r.pending[1:]
			r.mu.Unlock()
			reply := r.run(ctx, b)
			for _, w := range b.waiters {
				w <- reply
			}
			if r.after != nil {
				r.after(b)
			}
		}
	}
}
