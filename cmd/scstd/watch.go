package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/scstd/scstd/config"
)

// watchDebounce is how long the watch waits for a burst of events (an
// editor's write + rename, a ConfigMap's symlink swap) to end.
const watchDebounce = 300 * time.Millisecond

// maxLinkHops bounds how many symlinks the watch follows, as the kernel's
// ELOOP does.
const maxLinkHops = 40

// watchConfig reports on the returned channel each time the content of the
// configuration at path changes from what it was (first: the hash of the
// configuration applied at start). It follows the symlink chain of path:
// it watches every directory that holds a link on the chain or the file
// itself, and resolves the chain again when one of them changes. So an
// editor's rename over the file, a Kubernetes ConfigMap's ..data symlink
// swap, and an edit of the file a symlinked /etc/scst.hcl points to in
// another directory are all seen. For a directory of *.hcl files it
// follows each file's chain too. It compares content hashes (of what
// config.ReadSources reads, which never blocks), so events that change
// nothing trigger nothing.
func watchConfig(ctx context.Context, path, first string, log *slog.Logger) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	cw := &configWatch{path: path, w: w, watched: map[string]bool{}}
	if err := cw.resolve(); err != nil {
		w.Close()
		return nil, err
	}
	out := make(chan struct{}, 1)
	go func() {
		defer w.Close()
		last := first
		// An edit made after the start read the file and before the
		// watch was registered sent no event: compare once at once.
		fire := time.After(0)
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !cw.relevant(ev) {
					continue
				}
				if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
					if err := cw.resolve(); err != nil {
						log.Warn("config watch", "err", err)
					}
				}
				fire = time.After(watchDebounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config watch", "err", err)
			case <-fire:
				fire = nil
				// Resolve again: a link may have changed without an
				// event in a watched directory (a directory on the
				// chain replaced as a whole).
				if err := cw.resolve(); err != nil {
					log.Warn("config watch", "err", err)
				}
				src, diags := config.ReadSources(path)
				if diags.HasErrors() {
					continue // the next event tells; a reload would only be rejected
				}
				if h := src.Hash(); h != last {
					last = h
					select {
					case out <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return out, nil
}

// configWatch is the state of the watch: what it watches and which files
// it reads.
type configWatch struct {
	path string
	w    *fsnotify.Watcher
	// watched are the real directories watched; files the real paths of
	// the files the configuration reads, and dir the real directory when
	// the configuration is a directory.
	watched map[string]bool
	files   map[string]bool
	dir     string
}

// resolve follows the symlink chain of the configuration path again and
// makes the watch cover exactly the directories it now passes through.
func (cw *configWatch) resolve() error {
	w := &chainWalker{dirs: map[string]bool{}, links: map[string]bool{}}
	dirs, files := w.dirs, map[string]bool{}
	abs, err := filepath.Abs(cw.path)
	if err != nil {
		return err
	}
	final := w.follow(abs, 0)
	cw.dir = ""
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		cw.dir = final
		dirs[final] = true
		entries, _ := os.ReadDir(final)
		for _, e := range entries {
			n := e.Name()
			if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".hcl") {
				continue
			}
			files[w.follow(filepath.Join(final, n), 0)] = true
		}
	} else {
		files[final] = true
	}
	cw.files = files
	var firstErr error
	for d := range dirs {
		if cw.watched[d] {
			continue
		}
		if err := cw.w.Add(d); err != nil {
			if firstErr == nil && !os.IsNotExist(err) {
				firstErr = err
			}
			continue
		}
		cw.watched[d] = true
	}
	for d := range cw.watched {
		if !dirs[d] {
			cw.w.Remove(d)
			delete(cw.watched, d)
		}
	}
	if len(cw.watched) == 0 && firstErr == nil {
		firstErr = os.ErrNotExist
	}
	return firstErr
}

// relevant reports whether an event may change the configuration. Renames,
// creations and removals of any name in a watched directory may (an
// editor's temporary file, a re-pointed link); writes only to the files
// the configuration reads, or to a new *.hcl file of its directory. Writes
// to other files (a busy backing file kept beside the configuration) must
// not keep restarting the debounce.
func (cw *configWatch) relevant(ev fsnotify.Event) bool {
	if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
		return true
	}
	if !ev.Has(fsnotify.Write) {
		return false
	}
	if cw.files[ev.Name] {
		return true
	}
	return cw.dir != "" && filepath.Dir(ev.Name) == cw.dir && filepath.Ext(ev.Name) == ".hcl"
}

// chainWalker follows symlink chains, collecting the real directories
// whose entries decide where they lead.
type chainWalker struct {
	dirs map[string]bool
	// links are the symlinks already followed (a path with several
	// symlinked ancestors would otherwise be walked again for each).
	links map[string]bool
}

// follow adds to w.dirs the real directories whose entries decide what the
// absolute path p resolves to: the directory holding p's last element,
// and for every symlink on the way (p itself or one of its ancestors) the
// directory holding the link and, recursively, those of its target. It
// returns the real path p resolves to (as far as it resolves).
func (w *chainWalker) follow(p string, hops int) string {
	if hops > maxLinkHops {
		return p
	}
	parent := filepath.Dir(p)
	realParent := parent
	if parent != p {
		w.ancestors(parent, hops)
		if r, err := filepath.EvalSymlinks(parent); err == nil {
			realParent = r
		}
		w.dirs[realParent] = true
	}
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if target, err := os.Readlink(p); err == nil {
			if !filepath.IsAbs(target) {
				target = filepath.Join(realParent, target)
			}
			return w.follow(filepath.Clean(target), hops+1)
		}
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Join(realParent, filepath.Base(p))
}

// ancestors follows the symlinks among the ancestors of the absolute
// directory d (d included).
func (w *chainWalker) ancestors(d string, hops int) {
	cur := string(filepath.Separator)
	for _, part := range strings.Split(d, string(filepath.Separator)) {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		if w.links[cur] {
			continue
		}
		if fi, err := os.Lstat(cur); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			w.links[cur] = true
			w.follow(cur, hops+1)
		}
	}
}
