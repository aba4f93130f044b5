package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// evalContext returns the functions available in a file whose directory is
// dir: file(path) and env(name).
func evalContext(dir string, lookupEnv func(string) (string, bool)) *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"file": fileFunc(dir),
		"env":  envFunc(lookupEnv),
	}}
}

// fileFunc returns file(path): the contents of path (relative to dir) with
// one trailing newline ("\n" or "\r\n") removed. The file must be a
// regular file of at most 64 KiB.
func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the contents of a file, without one trailing newline.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if p == "" {
				return cty.NilVal, function.NewArgErrorf(0, "expected a file name, got an empty string")
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			b, err := readSmallFile(p)
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read %s: %v", p, err)
			}
			s := string(b)
			if t, ok := strings.CutSuffix(s, "\r\n"); ok {
				s = t
			} else {
				s = strings.TrimSuffix(s, "\n")
			}
			return cty.StringVal(s), nil
		},
	})
}

// envFunc returns env(name): the value of an environment variable, which
// must be set.
func envFunc(lookup func(string) (string, bool)) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, which must be set.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			v, ok := lookup(name)
			if !ok {
				return cty.NilVal, function.NewArgErrorf(0, "environment variable %s is not set", name)
			}
			return cty.StringVal(v), nil
		},
	})
}

// maxFileFunc is the largest file file() reads: it is meant for secrets.
const maxFileFunc = 64 << 10

// readSmallFile reads a regular file of at most maxFileFunc bytes, so that
// file("/dev/zero") or file() of a FIFO cannot hang or exhaust memory.
func readSmallFile(name string) ([]byte, error) {
	b, err := readRegular(name, maxFileFunc)
	var big *tooLargeError
	switch {
	case errors.As(err, &big):
		return nil, fmt.Errorf("larger than %d bytes", maxFileFunc)
	case err != nil:
		return nil, unwrapPathError(err)
	}
	return b, nil
}

// unwrapPathError drops the path from err, which the message already names.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
