package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/internal/scstconf"
)

// maxSCSTConf bounds what import reads: an scst.conf with thousands of
// LUNs is a few hundred KiB.
const maxSCSTConf = 16 << 20

// cmdImport converts an scst.conf to HCL on standard output. Notes (what
// was kept as a comment, what needs a look) go to standard error; so do
// errors, and the output is printed only when the input converted.
func cmdImport(o *options, fset *flag.FlagSet) (int, error) {
	if fset.NArg() > 1 {
		return 2, errUsage
	}
	name := "-"
	if fset.NArg() == 1 {
		name = fset.Arg(0)
	}
	src, err := readInput(name, o)
	if err != nil {
		return 1, err
	}
	display := name
	if name == "-" {
		display = "<stdin>"
	}
	f, err := scstconf.Parse(src, display)
	if err != nil {
		fmt.Fprintln(o.stderr, err)
		return 1, nil
	}
	opt := scstconf.Options{}
	if o.secretsDir != "" {
		if opt.SecretsDir, err = filepath.Abs(o.secretsDir); err != nil {
			return 1, err
		}
	}
	r, err := scstconf.Convert(f, opt)
	if err != nil {
		fmt.Fprintln(o.stderr, err)
		return 1, nil
	}
	if err := writeSecrets(r.Secrets); err != nil {
		return 1, err
	}
	kept := 0
	for _, n := range r.Notes {
		fmt.Fprintln(o.stderr, n)
		if n.Kept {
			kept++
		}
	}
	o.stdout.Write(r.HCL)

	// Check the result as validate would, storage aside: the backing
	// files are usually on the SCST host, not here.
	l := config.NewLoader()
	cfg, diags := l.Parse(r.HCL, "(converted)")
	if diags.HasErrors() {
		l.WriteDiagnostics(o.stderr, diags)
		return 1, errors.New("the converted configuration does not validate; fix the output as the diagnostics above say")
	}
	fmt.Fprintf(o.stderr, "scstd import: %d device(s) and %d target(s) converted; %d entr%s kept as comments.\n",
		len(cfg.Devices), len(cfg.Targets), kept, map[bool]string{true: "y", false: "ies"}[kept == 1])
	return 0, nil
}

// readInput reads the file name, or standard input for "-", refusing
// anything larger than maxSCSTConf.
func readInput(name string, o *options) ([]byte, error) {
	var r io.Reader = o.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, fmt.Errorf("%s is a directory; expected an scst.conf file", name)
		}
		r = f
	}
	src, err := io.ReadAll(io.LimitReader(r, maxSCSTConf+1))
	if err != nil {
		return nil, err
	}
	if len(src) > maxSCSTConf {
		return nil, fmt.Errorf("%s is larger than %d MiB; that is not an scst.conf", name, maxSCSTConf>>20)
	}
	return src, nil
}

// writeSecrets writes each secret to its file (mode 0600, directory 0700).
// It never replaces a file that holds something else: it checks them all
// before it writes any.
func writeSecrets(secrets []scstconf.SecretFile) error {
	var todo []scstconf.SecretFile
	for _, s := range secrets {
		old, err := os.ReadFile(s.Path)
		switch {
		case err == nil && bytes.Equal(bytes.TrimSuffix(old, []byte("\n")), []byte(s.Secret.Reveal())):
			continue // already there, from an earlier import
		case err == nil:
			return fmt.Errorf("%s exists and holds another secret for %s; remove it or choose another -secrets-dir", s.Path, s.User)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		todo = append(todo, s)
	}
	for _, s := range todo {
		if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(s.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = f.WriteString(s.Secret.Reveal())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
