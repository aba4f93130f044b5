package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/scstd/scstd/config"
)

var discardLog = slog.New(slog.DiscardHandler)

// hashOf is the content hash of the configuration at path.
func hashOf(t *testing.T, path string) string {
	t.Helper()
	src, diags := config.ReadSources(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return src.Hash()
}

// expectChange waits for one report on ch, or fails after a timeout.
func expectChange(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the watch reported no change", what)
	}
}

func expectQuiet(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: the watch reported a change", what)
	case <-time.After(3 * watchDebounce):
	}
}

func TestWatchConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "scst.hcl")
	os.WriteFile(cfg, []byte("# one\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := watchConfig(ctx, cfg, hashOf(t, cfg), discardLog)
	if err != nil {
		t.Fatal(err)
	}

	// An editor: write a temporary file, rename it over the config.
	tmp := filepath.Join(dir, ".scst.hcl.swp")
	os.WriteFile(tmp, []byte("# two\n"), 0o644)
	if err := os.Rename(tmp, cfg); err != nil {
		t.Fatal(err)
	}
	expectChange(t, ch, "rename over")

	// Touching the file without changing its content triggers nothing.
	os.WriteFile(cfg, []byte("# two\n"), 0o644)
	expectQuiet(t, ch, "same content")

	// A busy backing file beside the config does not delay a real edit.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, _ := os.Create(filepath.Join(dir, "disk.img"))
		defer f.Close()
		for {
			select {
			case <-stop:
				return
			default:
				f.Write(make([]byte, 512))
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	time.Sleep(2 * watchDebounce) // let the Create event of disk.img pass
	select {
	case <-ch:
	default:
	}
	os.WriteFile(cfg, []byte("# three\n"), 0o644)
	expectChange(t, ch, "edit beside a busy file")
	close(stop)
	<-done
}

// TestWatchConfigEditBeforeWatch: an edit between the start's reading of
// the file and the watch's registration is reported, though it made no
// event the watch could see.
func TestWatchConfigEditBeforeWatch(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "scst.hcl")
	os.WriteFile(cfg, []byte("# applied at start\n"), 0o644)
	applied := hashOf(t, cfg)
	os.WriteFile(cfg, []byte("# edited before the watch\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := watchConfig(ctx, cfg, applied, discardLog)
	if err != nil {
		t.Fatal(err)
	}
	expectChange(t, ch, "edit before the watch")

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	ch2, err := watchConfig(ctx2, cfg, hashOf(t, cfg), discardLog)
	if err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, ch2, "no edit since the start")
}

func TestWatchConfigMapSymlinkSwap(t *testing.T) {
	// Kubernetes mounts a ConfigMap as dir/scst.hcl -> ..data/scst.hcl,
	// ..data -> ..2026_11_25_x; an update swaps the ..data symlink.
	dir := t.TempDir()
	mk := func(gen, content string) {
		os.Mkdir(filepath.Join(dir, gen), 0o755)
		os.WriteFile(filepath.Join(dir, gen, "scst.hcl"), []byte(content), 0o644)
	}
	mk("..gen1", "# one\n")
	os.Symlink("..gen1", filepath.Join(dir, "..data"))
	os.Symlink(filepath.Join("..data", "scst.hcl"), filepath.Join(dir, "scst.hcl"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := watchConfig(ctx, filepath.Join(dir, "scst.hcl"), hashOf(t, filepath.Join(dir, "scst.hcl")), discardLog)
	if err != nil {
		t.Fatal(err)
	}
	mk("..gen2", "# two\n")
	os.Symlink("..gen2", filepath.Join(dir, "..data_tmp"))
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	expectChange(t, ch, "..data symlink swap")
}

// TestWatchFollowsSymlinkChain: /etc/scst.hcl as a symlink to a file in
// another directory. An in-place edit of that file is seen; so is the
// link re-pointed to a third directory, and then an edit there (the watch
// resolves the chain again), while an edit of the file the link left is
// not a change of the configuration.
func TestWatchFollowsSymlinkChain(t *testing.T) {
	root := t.TempDir()
	etc, srv, other := filepath.Join(root, "etc"), filepath.Join(root, "srv"), filepath.Join(root, "other")
	for _, d := range []string{etc, srv, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(srv, "real.hcl"), []byte("# one\n"), 0o644)
	os.WriteFile(filepath.Join(other, "third.hcl"), []byte("# three\n"), 0o644)
	link := filepath.Join(etc, "scst.hcl")
	if err := os.Symlink(filepath.Join(srv, "real.hcl"), link); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := watchConfig(ctx, link, hashOf(t, link), discardLog)
	if err != nil {
		t.Fatal(err)
	}

	// Written in place, as `sed -i`-less editors and scripts do.
	f, err := os.OpenFile(filepath.Join(srv, "real.hcl"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("# two\n")
	f.Close()
	expectChange(t, ch, "in-place edit of the link's target in another directory")

	// The link re-pointed (rename over it) to a file in a third directory.
	tmp := filepath.Join(etc, ".scst.hcl.new")
	if err := os.Symlink(filepath.Join(other, "third.hcl"), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	expectChange(t, ch, "link re-pointed")
	os.WriteFile(filepath.Join(other, "third.hcl"), []byte("# four\n"), 0o644)
	expectChange(t, ch, "edit of the new target")
	os.WriteFile(filepath.Join(srv, "real.hcl"), []byte("# five\n"), 0o644)
	expectQuiet(t, ch, "edit of the old target")
}

// TestChainWalker: the directories the watch covers for a path, and the
// file it resolves to.
func TestChainWalker(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(dirs ...string) {
		for _, d := range dirs {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	ln := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	mk("etc", "srv/conf", "cm/..2026_1", "data")
	os.WriteFile(filepath.Join(root, "srv/conf/real.hcl"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "cm/..2026_1/scst.hcl"), nil, 0o644)
	ln(filepath.Join(root, "srv/conf/real.hcl"), "etc/abs.hcl") // absolute link to another directory
	ln("../srv/conf/real.hcl", "etc/rel.hcl")                   // relative link
	ln(filepath.Join(root, "srv"), "etc/srvlink")               // a symlinked ancestor
	ln("..2026_1", "cm/..data")                                 // ConfigMap layout
	ln("..data/scst.hcl", "cm/scst.hcl")                        //
	ln(filepath.Join(root, "etc/abs.hcl"), "data/twice.hcl")    // a link to a link
	for _, tc := range []struct {
		path  string
		final string
		dirs  []string
	}{
		{"etc/plain.hcl", "etc/plain.hcl", []string{"etc"}},
		{"etc/abs.hcl", "srv/conf/real.hcl", []string{"etc", "srv/conf"}},
		{"etc/rel.hcl", "srv/conf/real.hcl", []string{"etc", "srv/conf"}},
		{"etc/srvlink/conf/real.hcl", "srv/conf/real.hcl", []string{".", "etc", "srv/conf"}},
		{"cm/scst.hcl", "cm/..2026_1/scst.hcl", []string{"cm", "cm/..2026_1"}},
		{"data/twice.hcl", "srv/conf/real.hcl", []string{"data", "etc", "srv/conf"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := &chainWalker{dirs: map[string]bool{}, links: map[string]bool{}}
			final := w.follow(filepath.Join(root, tc.path), 0)
			if want := filepath.Join(root, tc.final); final != want {
				t.Errorf("resolves to %s, want %s", final, want)
			}
			var got []string
			for d := range w.dirs {
				rel, err := filepath.Rel(root, d)
				if err != nil || rel == ".." || len(rel) > 1 && rel[:2] == ".." {
					continue // the test's own ancestors
				}
				got = append(got, rel)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.dirs) {
				t.Errorf("watches %q, want %q", got, tc.dirs)
			}
		})
	}
}
