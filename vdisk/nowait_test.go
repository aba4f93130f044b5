package vdisk

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// tryOpen opens a fileio backend of 1 MiB in dir, holding pattern at 8 KiB.
func tryOpen(t *testing.T, dir string, s Spec) (Backend, NoWaiter) {
	t.Helper()
	s.Handler, s.Filename, s.Size = FileIO, filepath.Join(dir, "try.img"), 1<<20
	b, err := Open(s)
	if err != nil && s.ODirect && errors.Is(err, unix.EINVAL) {
		t.Skip("no O_DIRECT in the temporary directory's file system")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	nw, ok := b.(NoWaiter)
	if !ok {
		t.Fatal("fileio does not implement NoWaiter")
	}
	return b, nw
}

// I/O tried without waiting is done when the file lives in memory, and
// given up (ErrWouldBlock) when it would reach a device.
func TestTryIO(t *testing.T) {
	pattern := bytes.Repeat([]byte{0xc3}, 4096)
	shm := "/dev/shm"
	var st unix.Statfs_t
	if unix.Statfs(shm, &st) != nil || st.Type != unix.TMPFS_MAGIC {
		shm = ""
	}

	t.Run("tmpfs", func(t *testing.T) {
		if shm == "" {
			t.Skip("no tmpfs at /dev/shm")
		}
		dir, err := os.MkdirTemp(shm, "vdisk-try-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		b, nw := tryOpen(t, dir, Spec{})
		if !memoryStays() {
			if _, err := nw.TryReadAt(make([]byte, 4096), 0); !errors.Is(err, ErrWouldBlock) {
				t.Fatalf("tmpfs with swap: TryReadAt %v, want ErrWouldBlock", err)
			}
			t.Skip("swap is configured: tmpfs pages may be on a device")
		}
		if n, err := nw.TryWriteAt(pattern, 8192); n != len(pattern) || err != nil {
			t.Fatalf("TryWriteAt = %d, %v", n, err)
		}
		got := make([]byte, 4096)
		if n, err := nw.TryReadAt(got, 8192); n != len(got) || err != nil || !bytes.Equal(got, pattern) {
			t.Fatalf("TryReadAt = %d, %v", n, err)
		}
		// A hole reads as zeroes without waiting.
		if n, err := nw.TryReadAt(got, 65536); n != len(got) || err != nil || !bytes.Equal(got, make([]byte, 4096)) {
			t.Fatalf("TryReadAt of a hole = %d, %v", n, err)
		}
		if _, err := b.ReadAt(got, 8192); err != nil || !bytes.Equal(got, pattern) {
			t.Fatalf("ReadAt after TryWriteAt: %v", err)
		}
		// A write the kernel refuses is reported, not taken for done.
		if n, err := nw.TryWriteAt(pattern, -4096); err == nil || n != 0 {
			t.Fatalf("TryWriteAt at a negative offset = %d, %v; want an error", n, err)
		}
		// So is a read the kernel refuses, and one cut short by the end
		// of the file.
		if n, err := nw.TryReadAt(got, -4096); err == nil || n != 0 {
			t.Fatalf("TryReadAt at a negative offset = %d, %v; want an error", n, err)
		}
		size, _ := b.Size()
		if n, err := nw.TryReadAt(got, size-512); n != 512 || err == nil {
			t.Fatalf("TryReadAt across the end of the file = %d, %v; want 512 and an error", n, err)
		}
	})

	t.Run("page cache", func(t *testing.T) {
		dir := t.TempDir()
		if unix.Statfs(dir, &st) == nil && (st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC) {
			t.Skip("the temporary directory is in memory")
		}
		b, nw := tryOpen(t, dir, Spec{})
		if _, err := b.WriteAt(pattern, 8192); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4096)
		n, err := nw.TryReadAt(got, 8192)
		switch {
		case errors.Is(err, ErrWouldBlock):
			// A file system without RWF_NOWAIT reads.
		case err != nil || n != len(got) || !bytes.Equal(got, pattern):
			t.Fatalf("TryReadAt of cached pages = %d, %v", n, err)
		}
		// A buffered write is done only where the file system takes
		// RWF_NOWAIT writes; what it did is the whole write.
		if n, err := nw.TryWriteAt(pattern, 16384); err != nil && !errors.Is(err, ErrWouldBlock) || err == nil && n != len(pattern) {
			t.Fatalf("TryWriteAt = %d, %v", n, err)
		}
	})

	t.Run("O_DIRECT", func(t *testing.T) {
		_, nw := tryOpen(t, t.TempDir(), Spec{ODirect: true})
		if _, err := nw.TryReadAt(make([]byte, 4096), 0); !errors.Is(err, ErrWouldBlock) {
			t.Errorf("O_DIRECT TryReadAt: %v, want ErrWouldBlock", err)
		}
		if _, err := nw.TryWriteAt(pattern, 0); !errors.Is(err, ErrWouldBlock) {
			t.Errorf("O_DIRECT TryWriteAt: %v, want ErrWouldBlock", err)
		}
	})

	t.Run("write-through", func(t *testing.T) {
		_, nw := tryOpen(t, t.TempDir(), Spec{WriteThrough: true})
		if _, err := nw.TryWriteAt(pattern, 0); !errors.Is(err, ErrWouldBlock) {
			t.Errorf("write-through TryWriteAt: %v, want ErrWouldBlock", err)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "try.img"), make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		_, nw := tryOpen(t, dir, Spec{ReadOnly: true})
		if _, err := nw.TryWriteAt(pattern, 0); !errors.Is(err, ErrReadOnly) {
			t.Errorf("read-only TryWriteAt: %v, want ErrReadOnly", err)
		}
	})

	t.Run("nullio", func(t *testing.T) {
		b, err := Open(Spec{Handler: NullIO, Size: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		nw := b.(NoWaiter)
		got := bytes.Repeat([]byte{1}, 512)
		if n, err := nw.TryReadAt(got, 0); n != 512 || err != nil || !bytes.Equal(got, make([]byte, 512)) {
			t.Errorf("nullio TryReadAt = %d, %v", n, err)
		}
		if n, err := nw.TryWriteAt(got, 0); n != 512 || err != nil {
			t.Errorf("nullio TryWriteAt = %d, %v", n, err)
		}
	})
}

// A read tried without waiting allocates nothing.
func TestTryReadAllocs(t *testing.T) {
	_, nw := tryOpen(t, t.TempDir(), Spec{})
	buf := make([]byte, 4096)
	if n := testing.AllocsPerRun(100, func() { nw.TryReadAt(buf, 0) }); n > 0 {
		t.Errorf("TryReadAt allocates %v times", n)
	}
}
