package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/scstd/scstd/config"
)

// cmdValidate loads everything and starts nothing (Caddy's validate): the
// file, its references, and the backing files it names (no daemon is
// asked, so a short backing file is an error even where a running daemon
// would grow it: `scstd plan` tells). With -no-storage the backing files
// are not looked at, for CI runners that lack them. An empty file is not
// valid either: it exits 1 with a warning that applying it removes every
// target, since a daemon applies it only with `scstd reload -force`.
func cmdValidate(o *options, fs *flag.FlagSet) (int, error) {
	path, err := pathArg(fs, defaultConfigPath)
	if err != nil {
		return 2, err
	}
	ld, ok := loadAndReport(path, o.stderr, !o.noStorage)
	if !ok {
		return 1, nil
	}
	if empty := ld.emptyFiles(); len(empty) > 0 {
		ld.loader.WriteDiagnostics(o.stderr, config.EmptyWarning(empty))
		fmt.Fprintf(o.stderr, "%s: empty; a running daemon applies it only with `scstd reload -force`\n", path)
		return 1, nil
	}
	unchecked := ""
	if o.noStorage {
		unchecked = "; backing files not checked (-no-storage)"
	}
	fmt.Fprintf(o.stdout, "%s: valid (%d device(s), %d target(s))%s\n", path, len(ld.cfg.Devices), len(ld.cfg.Targets), unchecked)
	return 0, nil
}

// cmdFmt rewrites each configuration file in canonical format, or with
// -check lists the files that are not and exits 1.
func cmdFmt(o *options, fs *flag.FlagSet) (int, error) {
	path, err := pathArg(fs, defaultConfigPath)
	if err != nil {
		return 2, err
	}
	src, diags := config.ReadSources(path)
	if diags.HasErrors() {
		config.NewLoader().WriteDiagnostics(o.stderr, diags)
		return 1, nil
	}
	code := 0
	for _, f := range src.Files {
		out, diags := config.Format(f.Bytes, f.Name)
		if diags.HasErrors() {
			l := config.NewLoader()
			l.Parse(f.Bytes, f.Name)
			l.WriteDiagnostics(o.stderr, diags)
			code = 1
			continue
		}
		if bytes.Equal(f.Bytes, out) {
			continue
		}
		if o.check {
			fmt.Fprintln(o.stdout, f.Name)
			code = 1
			continue
		}
		if err := writeFileAtomic(f.Name, out); err != nil {
			return 1, err
		}
		fmt.Fprintln(o.stdout, f.Name)
	}
	return code, nil
}

// writeFileAtomic replaces name with data through a temporary file, synced,
// and a rename, keeping the file's mode and owner, so that a watching
// daemon never reads a half-written file and a crash leaves the old file or
// the new one. A symbolic link stays a link: the file it leads to is
// replaced.
func writeFileAtomic(name string, data []byte) error {
	name, err := filepath.EvalSymlinks(name)
	if err != nil {
		return err
	}
	st, err := os.Stat(name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if own, ok := st.Sys().(*syscall.Stat_t); ok && (int(own.Uid) != os.Geteuid() || int(own.Gid) != os.Getegid()) {
		if err := tmp.Chown(int(own.Uid), int(own.Gid)); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
