package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// writeInitramfs writes the guest's initramfs to name: an uncompressed
// cpio archive in the "newc" format the kernel unpacks (see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst).
func writeInitramfs(name string, cfg Config) error {
	files := []File{
		{Path: "/init", Data: []byte(initScript), Mode: 0o755},
		{Path: "/vmtest-start", Data: []byte("#!/bin/sh\n" + cfg.Start + "\n"), Mode: 0o755},
	}
	bb, err := os.ReadFile(cfg.Assets.Busybox)
	if err != nil {
		return err
	}
	files = append(files, File{Path: "/bin/busybox", Data: bb, Mode: 0o755})
	var order []string
	for _, m := range cfg.Assets.Modules {
		b, err := os.ReadFile(m)
		if err != nil {
			return err
		}
		base := strings.TrimSuffix(filepath.Base(m), ".ko")
		order = append(order, base)
		files = append(files, File{Path: "/lib/modules/" + base + ".ko", Data: b, Mode: 0o644})
	}
	files = append(files, File{Path: "/lib/modules/order", Data: []byte(strings.Join(order, "\n") + "\n"), Mode: 0o644})
	files = append(files, cfg.Files...)

	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := writeCPIO(w, files); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeCPIO writes files, and the directories above them, as a newc
// archive ending with its TRAILER!!! entry.
func writeCPIO(w io.Writer, files []File) error {
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "/" && d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names) // parents before children
	ino := 1
	for _, d := range names {
		if err := cpioEntry(w, ino, d, 0o040755, nil); err != nil {
			return err
		}
		ino++
	}
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := cpioEntry(w, ino, f.Path, 0o100000|uint32(mode.Perm()), f.Data); err != nil {
			return err
		}
		ino++
	}
	return cpioEntry(w, 0, "TRAILER!!!", 0, nil)
}

// cpioEntry writes one newc header (110 bytes of "070701" and thirteen
// 8-digit hex fields), the NUL-terminated name padded to 4 bytes, and the
// data padded to 4 bytes.
func cpioEntry(w io.Writer, ino int, name string, mode uint32, data []byte) error {
	name = strings.TrimPrefix(name, "/")
	nlink := 1
	if mode&0o040000 != 0 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	pad := func(n int) []byte { return make([]byte, (4-n%4)%4) }
	for _, b := range [][]byte{[]byte(hdr), []byte(name), {0}, pad(len(hdr) + len(name) + 1), data, pad(len(data))} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
