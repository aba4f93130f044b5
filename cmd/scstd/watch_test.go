package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

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
	ch, err := watchConfig(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	ch, err := watchConfig(ctx, filepath.Join(dir, "scst.hcl"), slog.New(slog.NewTextHandler(io.Discard, nil)))
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
