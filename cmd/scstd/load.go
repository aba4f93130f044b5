package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/reconcile"
)

// loaded is one attempt to load the configuration: the files as read, the
// result, its diagnostics, and the loader that can print them with source
// lines.
type loaded struct {
	src    *config.Sources // nil when the path could not be read
	cfg    *config.Config
	diags  hcl.Diagnostics
	hash   string
	loader *config.Loader
}

// loadConfig reads path once (config.ReadSources: regular files only, at
// most 16 MiB, never blocking on a FIFO), hashes what it read, decodes it
// and checks its storage safety against what the daemon serves (served is
// nil without a daemon; see config.CheckStorageSafety).
func loadConfig(path string, served config.Served) *loaded {
	ld := &loaded{loader: config.NewLoader()}
	ld.src, ld.diags = config.ReadSources(path)
	if ld.diags.HasErrors() {
		return ld
	}
	ld.hash = ld.src.Hash()
	ld.cfg, ld.diags = ld.loader.LoadSources(ld.src)
	if ld.cfg != nil {
		ld.diags = append(ld.diags, ld.cfg.CheckStorageSafety(served)...)
	}
	if ld.diags.HasErrors() {
		ld.cfg = nil
	}
	return ld
}

// emptyFiles returns the configuration's zero-byte files.
func (ld *loaded) emptyFiles() []string {
	if ld.src == nil {
		return nil
	}
	return ld.src.EmptyFiles()
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

// loadAndReport loads path (storage safety checked with served) and prints
// its diagnostics to w; ok is false when there are errors. storage also
// checks that backing files exist, as `validate` does (at run time a
// missing file only takes its device offline).
func loadAndReport(path string, w io.Writer, served config.Served, storage bool) (*loaded, bool) {
	ld := loadConfig(path, served)
	if storage && ld.cfg != nil {
		ld.diags = append(ld.diags, ld.cfg.CheckStorage()...)
	}
	if len(ld.diags) > 0 {
		ld.loader.WriteDiagnostics(w, ld.diags)
	}
	return ld, !ld.diags.HasErrors()
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
