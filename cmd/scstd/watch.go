package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce is how long the watch waits for a burst of events (an
// editor's write + rename, a ConfigMap's symlink swap) to end.
const watchDebounce = 300 * time.Millisecond

// watchConfig reports on the returned channel each time the content of the
// configuration at path changes. It watches the directory that holds the
// file (or the directory itself), so that editors that write a temporary
// file and rename it over the original, and Kubernetes ConfigMap ..data
// symlink swaps, are both seen; it compares content hashes so that events
// that change nothing trigger nothing.
func watchConfig(ctx context.Context, path string, log *slog.Logger) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	dir := path
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		dir = filepath.Dir(path)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	out := make(chan struct{}, 1)
	last, _ := configHash(path)
	go func() {
		defer w.Close()
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				fire = time.After(watchDebounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config watch", "err", err)
			case <-fire:
				fire = nil
				h, err := configHash(path)
				if err != nil || h == last {
					continue
				}
				last = h
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, nil
}
