package main

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scstd/scstd/admin"
)

// TestReloader: reloads run one at a time off the caller's goroutine;
// requests that arrive while one runs are served together by the next,
// except that a forced request is never merged with unforced ones; every
// requester gets the outcome of a reload that started after its request.
func TestReloader(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan string, 16)
	var running, maxRunning atomic.Int32
	var n atomic.Uint64
	rl := newReloader(func(ctx context.Context, b *reloadBatch) admin.ReloadReply {
		r := running.Add(1)
		if r > maxRunning.Load() {
			maxRunning.Store(r)
		}
		trig := b.trigger()
		if b.force {
			trig += " (forced)"
		}
		started <- trig
		<-gate
		running.Add(-1)
		return admin.ReloadReply{OK: true, Generation: n.Add(1), Trigger: b.trigger(), Forced: b.force}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rl.loop(ctx)

	first := rl.request(triggerSIGHUP, false)
	if got := receive(t, started); got != "sighup" {
		t.Fatalf("first reload: %q, want sighup", got)
	}
	// While it hangs, requests queue without blocking the caller.
	watch := rl.request(triggerWatch, false)
	rl.request(triggerSIGHUP, false)
	adm := rl.request(triggerAdmin, false)
	forced := rl.request(triggerAdmin, true)
	rl.request(triggerWatch, false)

	gate <- struct{}{}
	if r := receive(t, first); r.Generation != 1 || r.Trigger != "sighup" {
		t.Errorf("first request's outcome: %+v", r)
	}
	if got := receive(t, started); got != "watch+sighup+admin" {
		t.Errorf("second reload: %q, want the unforced requests in one reload, in order of arrival", got)
	}
	gate <- struct{}{}
	for _, ch := range []<-chan admin.ReloadReply{watch, adm} {
		if r := receive(t, ch); r.Generation != 2 || r.Forced {
			t.Errorf("outcome of a coalesced request: %+v, want generation 2, not forced", r)
		}
	}
	if got := receive(t, started); got != "admin (forced)" {
		t.Errorf("third reload: %q, want the forced request alone", got)
	}
	gate <- struct{}{}
	if r := receive(t, forced); r.Generation != 3 || !r.Forced {
		t.Errorf("forced request's outcome: %+v", r)
	}
	if m := maxRunning.Load(); m != 1 {
		t.Errorf("%d reloads ran at once, want 1", m)
	}
	select {
	case got := <-started:
		t.Errorf("an extra reload ran: %q", got)
	case <-time.After(100 * time.Millisecond):
	}
}

func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received within 5s")
	}
	var zero T
	return zero
}

func TestTriggerPhrase(t *testing.T) {
	for in, want := range map[string]string{
		"watch":        "by the file watch",
		"sighup+admin": "on SIGHUP and by `scstd reload`",
		"start":        "at start",
	} {
		if got := triggerPhrase(in); got != want {
			t.Errorf("triggerPhrase(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReloaderAfter: the after hook (the daemon's collection of a
// reload's garbage) runs once a batch's requesters have their reply and
// before the next batch starts, never beside a reload.
func TestReloaderAfter(t *testing.T) {
	var inReload atomic.Bool
	var events []string // written by the loop's goroutine only
	done := make(chan struct{})
	rl := newReloader(func(ctx context.Context, b *reloadBatch) admin.ReloadReply {
		inReload.Store(true)
		defer inReload.Store(false)
		events = append(events, "run "+b.trigger())
		return admin.ReloadReply{OK: true, Trigger: b.trigger()}
	})
	release := make(chan struct{})
	rl.after = func(b *reloadBatch) {
		if inReload.Load() {
			t.Error("after ran during a reload")
		}
		events = append(events, "after "+b.trigger())
		if b.trigger() == triggerSIGHUP {
			<-release // the next request arrives while after runs
		} else {
			close(done)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rl.loop(ctx)

	first := rl.request(triggerSIGHUP, false)
	receive(t, first) // the reply comes before after ends
	second := rl.request(triggerAdmin, false)
	close(release)
	receive(t, second)
	receive(t, done)
	want := []string{"run sighup", "after sighup", "run admin", "after admin"}
	if !slices.Equal(events, want) {
		t.Errorf("order %q, want %q", events, want)
	}
}
