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
	relevant := configEventFilter(path, dir != path)
	go func() {
		defer w.Close()
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if relevant(ev) {
					fire = time.After(watchDebounce)
				}
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

// configEventFilter returns whether an event in the watched directory may
// change the configuration. Writes to other files (a busy backing file
// kept beside the config) must not keep restarting the debounce; renames,
// creations and removals of any name may (an editor's temporary file, a
// ConfigMap's ..data symlink), and so may writes to the config itself.
func configEventFilter(path string, isFile bool) func(fsnotify.Event) bool {
	base := filepath.Base(path)
	return func(ev fsnotify.Event) bool {
		if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
			return true
		}
		name := filepath.Base(ev.Name)
		if isFile {
			return name == base
		}
		return filepath.Ext(name) == ".hcl"
	}
}
