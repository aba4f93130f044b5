package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/scstd/scstd/internal/access"
)

var update = flag.Bool("update", false, "rewrite the .golden files in testdata/invalid")

// testEnv is the environment env() sees in tests.
var testEnv = map[string]string{
	"JOE_SECRET":         "joe-secret-123",
	"JACKD_SECRET":       "jackd-secret-456",
	"DB_CHAP_SECRET":     "db-chap-secret-1",
	"DB_MUTUAL_SECRET":   "db-mutual-secret-2",
	"BACKUP_CHAP_SECRET": "backup-chap-secret-3",
	"SCSTD_GATEWAY":      "gw1",
}

func testLoader() *Loader {
	l := NewLoader()
	l.LookupEnv = func(name string) (string, bool) {
		v, ok := testEnv[name]
		return v, ok
	}
	return l
}

// parseExpect parses src with testLoader. With wantErr it checks that an
// error's summary and detail contain it and returns nil; without, it fails
// on any error and returns the configuration.
func parseExpect(t *testing.T, src, name, wantErr string) *Config {
	t.Helper()
	cfg, diags := testLoader().Parse([]byte(src), name)
	if wantErr == "" {
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return cfg
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary+": "+d.Detail)
	}
	if !diags.HasErrors() || !strings.Contains(strings.Join(got, "\n"), wantErr) {
		t.Fatalf("diagnostics %q, want one containing %q", got, wantErr)
	}
	return nil
}

func diagText(t *testing.T, l *Loader, diags hcl.Diagnostics) string {
	t.Helper()
	var b bytes.Buffer
	if err := l.WriteDiagnostics(&b, diags); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestValid(t *testing.T) {
	paths, _ := filepath.Glob("testdata/valid/*")
	if len(paths) == 0 {
		t.Fatal("no fixtures in testdata/valid")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			l := testLoader()
			cfg, diags := l.Load(p)
			if len(diags) > 0 {
				t.Fatalf("unexpected diagnostics:\n%s", diagText(t, l, diags))
			}
			if cfg == nil || len(cfg.Targets) == 0 {
				t.Fatal("no targets loaded")
			}
		})
	}
}

// TestInvalid loads each file or directory in testdata/invalid and compares
// the printed diagnostics with its .golden file.
func TestInvalid(t *testing.T) {
	paths, _ := filepath.Glob("testdata/invalid/*")
	n := 0
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(p), ".hcl")
		t.Run(name, func(t *testing.T) {
			l := testLoader()
			cfg, diags := l.Load(p)
			if !diags.HasErrors() {
				t.Fatalf("loaded without error:\n%s", diagText(t, l, diags))
			}
			if cfg != nil {
				t.Error("Load returned a Config along with errors")
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a subject: %s: %s", d.Summary, d.Detail)
				}
			}
			compareGolden(t, "invalid/"+name, "", diagText(t, l, diags))
		})
	}
	if n == 0 {
		t.Fatal("no fixtures in testdata/invalid")
	}
}

// TestExamples keeps examples/ from rotting: every .hcl file loads without
// diagnostics and is canonically formatted, and every ```hcl block of every
// README.md loads without diagnostics.
func TestExamples(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../examples", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fence := regexp.MustCompile("(?s)```hcl\n(.*?)```")
	checked := 0
	for _, p := range files {
		switch {
		case strings.HasSuffix(p, ".hcl"):
			checked++
			t.Run(p, func(t *testing.T) {
				l := testLoader()
				if _, diags := l.Load(p); len(diags) > 0 {
					t.Fatalf("diagnostics:\n%s", diagText(t, l, diags))
				}
				src, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if out, _ := Format(src, p); !bytes.Equal(out, src) {
					t.Errorf("not in canonical format (run scstd fmt %s)", p)
				}
			})
		case strings.HasSuffix(p, ".md"):
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range fence.FindAllSubmatch(src, -1) {
				checked++
				t.Run(p, func(t *testing.T) {
					l := testLoader()
					if _, diags := l.Parse(m[1], p); len(diags) > 0 {
						t.Fatalf("diagnostics:\n%s", diagText(t, l, diags))
					}
				})
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d example configurations found", checked)
	}
}

func TestQuickstart(t *testing.T) {
	cfg, diags := testLoader().Load("../examples/quickstart.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := cfg.ISCSI.Portals; len(got) != 1 || got[0].Addr.String() != "127.0.0.1:3260" {
		t.Errorf("portals = %v", got)
	}
	d := cfg.Device("disk0")
	if d == nil || d.Handler != HandlerFileIO || d.Size.Bytes != 1<<30 {
		t.Fatalf("disk0 = %+v", d)
	}
	want, _ := filepath.Abs("../.state/quickstart/disk0.img")
	if got, _ := filepath.Abs(d.Filename); got != want {
		t.Errorf("filename resolves to %s, want %s", got, want)
	}
	tg := cfg.Target("iqn.2026-11.org.example:quickstart")
	if tg == nil || len(tg.LUNs) != 1 || tg.LUNs[0].Number != 0 || tg.LUNs[0].Device != "disk0" {
		t.Fatalf("target = %+v", tg)
	}
}

// TestDefaults checks that what a file leaves out is filled in.
func TestDefaults(t *testing.T) {
	src := `
handler "vdisk_nullio" {
  device "n" {
    size = "1MiB"
  }
}
handler "vcdrom" {
  device "cd" {}
}
target "iqn.2026-11.org.example:t" {
  lun "0" {
    device = "n"
  }
}
`
	cfg, diags := testLoader().Parse([]byte(src), "defaults.hcl")
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	if cfg.DisruptiveChanges != DisruptiveRefuse || !cfg.ISCSI.Enabled || len(cfg.ISCSI.Portals) != 1 || cfg.ISCSI.Portals[0].Addr.String() != DefaultPortal {
		t.Errorf("globals: %+v %+v", cfg, cfg.ISCSI)
	}
	if i := cfg.ISCSI; i.MaxConnections != DefaultMaxConnections || i.MaxConnectionsPerAddress != DefaultMaxConnectionsPerAddress ||
		i.LoginTimeout != DefaultLoginTimeout || i.DiscoveryIdleTimeout != DefaultDiscoveryIdleTimeout {
		t.Errorf("connection caps and timeouts: %+v", i)
	}
	if tg := cfg.Target("iqn.2026-11.org.example:t"); tg.MaxSessions != DefaultMaxSessions {
		t.Errorf("max_sessions %d", tg.MaxSessions)
	}
	n := cfg.Device("n")
	if n.BlockSize != 512 || n.T10DevID != "n" || len(n.USN) != 8 || n.ReadOnly || n.Filename != "" {
		t.Errorf("nullio device: %+v", n)
	}
	cd := cfg.Device("cd")
	if cd.BlockSize != 2048 || !cd.ReadOnly || !cd.Removable {
		t.Errorf("vcdrom device: %+v", cd)
	}
	got := cfg.Targets[0]
	want := NewTarget("iqn.2026-11.org.example:t")
	if !got.Enabled || got.QueuedCommands != 32 || got.NopInInterval != DefaultNopInInterval ||
		got.RspTimeout != DefaultRspTimeout || got.MaxRecvDataSegmentLength != want.MaxRecvDataSegmentLength ||
		got.FirstBurstLength != 65536 || got.MaxOutstandingR2T != 32 || !got.ImmediateData || got.InitialR2T ||
		len(got.HeaderDigest) != 1 || got.HeaderDigest[0] != access.DigestNone || !got.Redirect.IsZero() {
		t.Errorf("target defaults: %+v", got)
	}
	if _, set := got.Attrs["queued_commands"]; set {
		t.Error("queued_commands reported as set")
	}
	if got.Range("queued_commands") != got.DeclRange {
		t.Error("Range of an unset attribute is not the block's range")
	}
}

// TestDirectory loads a directory of files and checks that relative
// filenames resolve against the declaring file's directory.
func TestDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-devices.hcl", "handler \"vdisk_fileio\" {\n  device \"d\" {\n    filename = \"img/d.img\"\n    size = \"1MiB\"\n  }\n}\n")
	write("20-targets.hcl", "target \"iqn.2026-11.org.example:t\" {\n  lun \"0\" {\n    device = \"d\"\n  }\n}\n")
	write(".hidden.hcl", "this is not HCL")
	write("notes.txt", "neither is this")
	write("secret", "file-secret-42\n")
	write("30-chap.hcl", "target \"iqn.2026-11.org.example:u\" {\n  incoming_user \"u\" {\n    secret = file(\"secret\")\n  }\n}\n")
	cfg, diags := testLoader().Load(dir)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	if got, want := cfg.Device("d").Filename, filepath.Join(dir, "img/d.img"); got != want {
		t.Errorf("filename = %s, want %s", got, want)
	}
	if got := cfg.Target("iqn.2026-11.org.example:u").IncomingUsers[0].Secret.Reveal(); got != "file-secret-42" {
		t.Errorf("file() = %q", got)
	}
	if len(cfg.Files()) != 3 {
		t.Errorf("Files() has %d files, want 3", len(cfg.Files()))
	}
}

func TestLoadMissing(t *testing.T) {
	for _, p := range []string{"testdata/does-not-exist.hcl", t.TempDir()} {
		cfg, diags := Load(p)
		if cfg != nil || !diags.HasErrors() {
			t.Errorf("Load(%s) = %v, %v; want an error", p, cfg, diags)
		}
	}
}

// FuzzLoad checks that no input makes Parse, the diagnostic printer or
// Format panic, and that Format is idempotent. Seeds: the
// fixtures, the examples and testdata/fuzz/FuzzLoad. Each input is costly
// (a full decode), so limit minimisation when fuzzing:
//
//	go test ./config -run '^$' -fuzz FuzzLoad -fuzztime 30s -fuzzminimizetime 2s
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/valid/*.hcl", "testdata/invalid/*.hcl", "../examples/*.hcl"} {
		paths, _ := filepath.Glob(dir)
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		l := testLoader()
		cfg, diags := l.Parse(src, "fuzz.hcl")
		if (cfg == nil) != diags.HasErrors() {
			t.Fatalf("cfg nil = %v, errors = %v", cfg == nil, diags.HasErrors())
		}
		var b bytes.Buffer
		_ = l.WriteDiagnostics(&b, diags)
		if out, fd := Format(src, "fuzz.hcl"); !fd.HasErrors() {
			if again, _ := Format(out, "fuzz.hcl"); !bytes.Equal(again, out) {
				t.Fatalf("Format is not idempotent:\n%s\n---\n%s", out, again)
			}
		}
	})
}
