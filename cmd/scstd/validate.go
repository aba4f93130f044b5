package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/scstd/scstd/config"
)

// cmdValidate loads everything and starts nothing (Caddy's validate): the
// file, its references, and the backing files it names.
func cmdValidate(o *options, fs *flag.FlagSet) (int, error) {
	path, err := pathArg(fs, defaultConfigPath)
	if err != nil {
		return 2, err
	}
	ld, ok := loadAndReport(path, o.stderr, true)
	if !ok {
		return 1, nil
	}
	fmt.Fprintf(o.stdout, "%s: valid (%d device(s), %d target(s))\n", path, len(ld.cfg.Devices), len(ld.cfg.Targets))
	return 0, nil
}

// cmdFmt rewrites each configuration file in canonical format, or with
// -check lists the files that are not and exits 1.
func cmdFmt(o *options, fs *flag.FlagSet) (int, error) {
	path, err := pathArg(fs, defaultConfigPath)
	if err != nil {
		return 2, err
	}
	files := []string{path}
	if st, err := os.Stat(path); err != nil {
		return 1, err
	} else if st.IsDir() {
		files, _ = filepath.Glob(filepath.Join(path, "*.hcl"))
		sort.Strings(files)
	}
	code := 0
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return 1, err
		}
		out, diags := config.Format(src, name)
		if diags.HasErrors() {
			l := config.NewLoader()
			l.Parse(src, name)
			l.WriteDiagnostics(o.stderr, diags)
			code = 1
			continue
		}
		if bytes.Equal(src, out) {
			continue
		}
		if o.check {
			fmt.Fprintln(o.stdout, name)
			code = 1
			continue
		}
		if err := writeFileAtomic(name, out); err != nil {
			return 1, err
		}
		fmt.Fprintln(o.stdout, name)
	}
	return code, nil
}

// writeFileAtomic replaces name with data through a temporary file and a
// rename, keeping the file's mode, so that a watching daemon never reads a
// half-written file.
func writeFileAtomic(name string, data []byte) error {
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
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
