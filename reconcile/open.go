package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/scstd/scstd/internal/diskid"
)

// opener opens storage (backends, pass-through disks) and stats files
// with a time limit, so that storage that does not answer (a hung NFS
// server, a FIFO, a disk whose INQUIRY never returns) holds up nothing
// but its own device. A call that outlives the limit is left to
// finish on its own goroutine (what it opened is then closed); until it
// does, the same file is not tried again.
type opener struct {
	open    func(spec) (storage, error)
	timeout time.Duration
	stop    <-chan struct{}
	log     *slog.Logger

	mu   sync.Mutex
	hung map[string]time.Time // file → since when a call on it hangs
}

func newOpener(open func(spec) (storage, error), timeout time.Duration, stop <-chan struct{}, log *slog.Logger) *opener {
	return &opener{open: open, timeout: timeout, stop: stop, log: log, hung: map[string]time.Time{}}
}

// opened is the outcome of opening one device's storage: the storage, or
// why not, and the identity of the file it serves (see fileID). record
// is the identity record of a dev_disk device's disk to save when the
// open is committed (checkDisk, recordDisk); recorded says that it
// records the disk as the device's own for the first time.
type opened struct {
	spec     spec
	backend  storage
	fileID   string
	err      error
	record   *diskid.Record
	recorded bool
}

// Open opens the storage s describes and reads its file's identity,
// within the time limit, ctx, and until the engine closes. Storage that
// names no file or disk waits for nothing and is opened on the caller's
// goroutine.
func (o *opener) Open(ctx context.Context, s spec) opened {
	open := func() opened {
		b, err := o.open(s)
		r := opened{spec: s, backend: b, err: err}
		if err == nil && hasFile(s.Handler) {
			r.fileID = fileID(s.Filename)
		}
		return r
	}
	if s.where() == "" {
		return open()
	}
	r, ok := bounded(o, ctx, s.where(), open, func(r opened) {
		if r.backend != nil {
			r.backend.Close()
		}
	})
	if !ok {
		r = opened{spec: s, err: r.err}
	}
	return r
}

// FileID returns fileID(path) within the time limit, or "" when it
// takes longer or the file is known to hang.
func (o *opener) FileID(path string) string {
	r, ok := bounded(o, context.Background(), path, func() opened { return opened{fileID: fileID(path)} }, nil)
	if !ok {
		return ""
	}
	return r.fileID
}

// bounded runs f on its own goroutine and waits for it until the time
// limit, ctx or the engine's close. ok is false when it did not wait for
// the outcome (r.err says why); the outcome is then given to abandon
// whenever f returns. A file with a call still hanging is not touched.
func bounded(o *opener, ctx context.Context, file string, f func() opened, abandon func(opened)) (r opened, ok bool) {
	key := file
	if key != "" {
		o.mu.Lock()
		since, hung := o.hung[key]
		o.mu.Unlock()
		if hung {
			return opened{err: fmt.Errorf("reconcile: %s has not answered since %s; retried once it does", file, since.Format(time.TimeOnly))}, false
		}
	}
	var (
		mu        sync.Mutex
		abandoned bool
	)
	done := make(chan opened, 1)
	go func() {
		r := f()
		mu.Lock()
		if !abandoned {
			done <- r // buffered: the only send
			mu.Unlock()
			return
		}
		mu.Unlock()
		if key != "" {
			o.mu.Lock()
			delete(o.hung, key)
			o.mu.Unlock()
			o.log.Info("storage answered after its time limit", "file", key, "err", r.err)
		}
		if abandon != nil {
			abandon(r)
		}
	}()
	t := time.NewTimer(o.timeout)
	defer t.Stop()
	var why error
	select {
	case r := <-done:
		return r, true
	case <-t.C:
		why = fmt.Errorf("reconcile: %s did not answer within %s; retried once it does", file, o.timeout)
	case <-ctx.Done():
		why = ctx.Err()
	case <-o.stop:
		why = ErrClosed
	}
	mu.Lock()
	select {
	case r := <-done:
		// It answered just now after all.
		mu.Unlock()
		return r, true
	default:
	}
	abandoned = true
	mu.Unlock()
	if key != "" && why != ErrClosed {
		o.mu.Lock()
		o.hung[key] = time.Now()
		o.mu.Unlock()
		o.log.Warn("storage does not answer", "file", key, "err", why)
	}
	return opened{err: why}, false
}
