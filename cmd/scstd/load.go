package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/reconcile"
)

// loaded is one attempt to load the configuration: the files as read, the
// result, its diagnostics, and the loader that can print them with source
// lines.
type loaded struct {
	src   *config.Sources // nil when the path could not be read
	cfg   *config.Config
	diags hcl.Diagnostics
	hash  string
	// clusterHash is hash without the cluster's gateway name: what the
	// gateways compare (config.Sources.HashExcept).
	clusterHash string
	loader      *config.Loader
}

// loadConfig reads path once (config.ReadSources: regular files only, at
// most 16 MiB, never blocking on a FIFO), hashes what it read, decodes it
// and checks its storage safety against what the daemon serves (served is
// nil without a daemon; see config.CheckStorageSafety).
func loadConfig(path string, served config.Served) *loaded {
	return loadChecked(path, func(c *config.Config) hcl.Diagnostics { return c.CheckStorageSafety(served) })
}

// loadChecked is loadConfig with the storage checks of check.
func loadChecked(path string, check func(*config.Config) hcl.Diagnostics) *loaded {
	ld := &loaded{loader: config.NewLoader()}
	ld.src, ld.diags = config.ReadSources(path)
	if ld.diags.HasErrors() {
		return ld
	}
	ld.hash = ld.src.Hash()
	ld.cfg, ld.diags = ld.loader.LoadSources(ld.src)
	if ld.cfg != nil && ld.cfg.Cluster != nil {
		ld.clusterHash = ld.src.HashExcept(ld.cfg.Cluster.GatewayValue)
	}
	if ld.cfg != nil {
		ld.diags = append(ld.diags, check(ld.cfg)...)
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

// lines is the diagnostics of severity sev, one line each
// (file:line:col: summary: detail): the errors for the log, the warnings
// for the reload's reply.
func (ld *loaded) lines(sev hcl.DiagnosticSeverity) []string {
	var out []string
	for _, d := range ld.diags {
		if d.Severity != sev {
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

// logWarnings logs the warnings among the diagnostics, one record each
// (the errors are in the record of the failed start or reload).
func (ld *loaded) logWarnings(log *slog.Logger) {
	for _, d := range ld.diags {
		if d.Severity != hcl.DiagWarning {
			continue
		}
		at := ""
		if d.Subject != nil {
			at = d.Subject.String()
		}
		log.Warn("configuration warning", "at", at, "summary", d.Summary, "detail", d.Detail)
	}
}

// loadAndReport loads path as `scstd validate` does and prints its
// diagnostics to w; ok is false when there are errors. With storage the
// backing files are checked (safe, and they exist, as at run time a
// missing file only takes its device offline); without, only the rules
// the backing paths' names decide (config.CheckStorageNames).
func loadAndReport(path string, w io.Writer, storage bool) (*loaded, bool) {
	check := (*config.Config).CheckStorageNames
	if storage {
		check = func(c *config.Config) hcl.Diagnostics {
			return append(c.CheckStorageSafety(nil), c.CheckStorage()...)
		}
	}
	ld := loadChecked(path, check)
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
