package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/reconcile"
)

// loaded is one attempt to load the configuration: the result, its
// diagnostics, and the loader that can print them with source lines.
type loaded struct {
	cfg    *config.Config
	diags  hcl.Diagnostics
	hash   string
	loader *config.Loader
}

// loadConfig loads path and hashes its content.
func loadConfig(path string) *loaded {
	ld := &loaded{loader: config.NewLoader()}
	ld.hash, _ = configHash(path)
	ld.cfg, ld.diags = ld.loader.Load(path)
	if ld.diags.HasErrors() {
		ld.cfg = nil
	}
	return ld
}

// diagnosticText prints the diagnostics as file:line:col with the source
// line and a caret.
func (ld *loaded) diagnosticText() string {
	var b bytes.Buffer
	ld.loader.WriteDiagnostics(&b, ld.diags)
	return b.String()
}

// diagnosticSummary is the diagnostics on one line each, for the log.
func (ld *loaded) diagnosticSummary() []string {
	var out []string
	for _, d := range ld.diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := ""
		if d.Subject != nil {
			where = d.Subject.String() + ": "
		}
		out = append(out, where+d.Summary+": "+d.Detail)
	}
	return out
}

// loadAndReport loads path and prints its diagnostics to w; ok is false
// when there are errors. storage also checks that backing files exist, as
// `validate` does (at run time a missing file only takes its device
// offline, so the daemon passes false).
func loadAndReport(path string, w io.Writer, storage bool) (*loaded, bool) {
	ld := loadConfig(path)
	if storage && ld.cfg != nil {
		ld.diags = append(ld.diags, ld.cfg.CheckStorage()...)
	}
	if len(ld.diags) > 0 {
		ld.loader.WriteDiagnostics(w, ld.diags)
	}
	return ld, !ld.diags.HasErrors()
}

// configHash identifies the configuration's content, so that tooling can
// tell whether the running daemon matches the file (drift). For a file it
// is the SHA-256 of the file, what `sha256sum FILE` prints; for a
// directory, the SHA-256 of each *.hcl file's name, length and content, in
// name order.
func configHash(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if !st.IsDir() {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		h.Write(b)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	names, err := filepath.Glob(filepath.Join(path, "*.hcl"))
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(n), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func marshalDetail(p reconcile.Plan) json.RawMessage {
	b, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	return b
}

func splitLines(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
}
