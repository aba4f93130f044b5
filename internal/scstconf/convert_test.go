package scstconf

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scstd/scstd/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestConvertGolden converts each testdata/NAME.conf and compares the HCL
// with NAME.hcl and the notes with NAME.notes; the HCL must also load
// without errors (references, CHAP rules, value syntax).
func TestConvertGolden(t *testing.T) {
	tests := []struct {
		golden string
		conf   string
		opt    Options
	}{
		{golden: "readme-advanced", conf: "readme-advanced"},
		{golden: "readme-advanced-secrets-dir", conf: "readme-advanced", opt: Options{SecretsDir: "/etc/scst/chap"}},
		{golden: "many-drivers", conf: "many-drivers"},
		{golden: "write-config-nonkey", conf: "write-config-nonkey"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			r := convertFile(t, filepath.Join("testdata", tt.conf+".conf"), tt.opt)
			var notes bytes.Buffer
			for _, n := range r.Notes {
				notes.WriteString(n.String() + "\n")
			}
			golden(t, filepath.Join("testdata", tt.golden+".hcl"), r.HCL)
			golden(t, filepath.Join("testdata", tt.golden+".notes"), notes.Bytes())

			src := r.HCL
			if tt.opt.SecretsDir != "" {
				dir := t.TempDir()
				for _, s := range r.Secrets {
					if err := os.WriteFile(filepath.Join(dir, filepath.Base(s.Path)), []byte(s.Secret.Reveal()), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				src = bytes.ReplaceAll(src, []byte(`"`+tt.opt.SecretsDir+"/"), []byte(`"`+dir+"/"))
			}
			l := config.NewLoader()
			if _, diags := l.Parse(src, "import.hcl"); diags.HasErrors() {
				var b bytes.Buffer
				l.WriteDiagnostics(&b, diags)
				t.Errorf("the converted configuration does not load:\n%s", b.String())
			}
			again, _ := config.Format(r.HCL, "import.hcl")
			if !bytes.Equal(again, r.HCL) {
				t.Errorf("the output is not in `scstd fmt` format")
			}
		})
	}
}

func convertFile(t *testing.T, name string, opt Options) *Result {
	t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(src, filepath.Base(name))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Convert(f, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(name, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// convert parses and converts src, failing the test on a syntax error.
func convert(t *testing.T, src string, opt Options) (*Result, error) {
	t.Helper()
	f, err := Parse([]byte(src), "scst.conf")
	if err != nil {
		t.Fatal(err)
	}
	return Convert(f, opt)
}

// TestConvertMapping checks single mappings, each as the HCL it yields.
func TestConvertMapping(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want []string // each appears in the HCL
		not  []string // none appears in the HCL
	}{
		{name: "target disabled by default",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n }\n}\n",
			want: []string{"enabled = false", "SCST leaves it disabled"}},
		{name: "driver disabled by default",
			conf: "TARGET_DRIVER iscsi {\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n }\n}\n",
			want: []string{"iscsi {\n  # scst.conf has no \"enabled 1\" for the iscsi driver: SCST leaves it disabled.\n  enabled = false"}},
		{name: "device group",
			conf: "HANDLER vdisk_nullio {\n DEVICE n {\n  naa_id 0x6001405abcdef0123456789abcdef012\n }\n}\nHANDLER dev_disk {\n DEVICE 1:0:0:0\n}\n" +
				"TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:a {\n  enabled 1\n  LUN 0 n\n }\n TARGET iqn.2026-11.org.example:b {\n  enabled 1\n  LUN 0 n\n }\n}\n" +
				"DEVICE_GROUP dg {\n DEVICE n\n DEVICE 1:0:0:0\n TARGET_GROUP local {\n  group_id 1\n  state active\n  preferred 1\n  TARGET iqn.2026-11.org.example:a\n }\n" +
				" TARGET_GROUP remote {\n  group_id 2\n  state nonoptimized\n  TARGET iqn.2026-11.org.example:b\n  TARGET iqn.2026-11.org.example:elsewhere {\n   rel_tgt_id 9\n  }\n }\n}\n",
			want: []string{`naa_id = "0x6001405abcdef0123456789abcdef012"`, "device_group \"dg\" {\n  devices = [\"n\"]",
				"target_group \"local\" {\n    group_id  = 1\n    state     = \"active/optimized\"\n    preferred = true\n    targets   = [\"iqn.2026-11.org.example:a\"]",
				"state    = \"active/non-optimized\"", "DEVICE 1:0:0:0  (not imported: scstd does not serve ALUA for a pass-through (dev_disk) device)",
				"iqn.2026-11.org.example:elsewhere", "not one of this file's iSCSI targets"}},
		{name: "device group of devices scstd does not serve",
			conf: "HANDLER vdisk_blockio {\n DEVICE b {\n  filename /dev/sdb\n }\n}\nHANDLER dev_disk {\n DEVICE 1:0:0:0\n}\nDEVICE_GROUP dg {\n DEVICE 1:0:0:0\n}\n",
			want: []string{"# DEVICE_GROUP dg {", "none of its devices is one scstd serves"}, not: []string{"device_group \"dg\""}},
		{name: "empty redirect is none",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  redirect \"\"\n }\n}\n",
			not:  []string{"redirect"}},
		{name: "numbered users and portals",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  IncomingUser \"a 111111111111\"\n  IncomingUser7 \"b 222222222222\"\n  allowed_portal 10.0.0.*\n  allowed_portal3 !10.0.0.9\n }\n}\n",
			want: []string{`incoming_user "a"`, `incoming_user "b"`, `allowed_portals = ["10.0.0.*", "!10.0.0.9"]`}},
		{name: "iSNS with a bare IPv6 address",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n iSNSServer 2001:db8::10\n}\n",
			want: []string{`isns_server "[2001:db8::10]" {`, "access_control = false"}},
		{name: "empty iSNSServer is none",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n iSNSServer \"\"\n}\n",
			not:  []string{"isns_server"}},
		{name: "nullio size_mb",
			conf: "HANDLER vdisk_nullio {\n DEVICE n {\n  size_mb 64\n  blocksize 4096\n }\n}\n",
			want: []string{`size      = "64MiB"`, "blocksize = 4096"}},
		{name: "nullio size in bytes",
			conf: "HANDLER vdisk_nullio {\n DEVICE n {\n  size 1048576\n }\n}\n",
			want: []string{`size = "1048576"`}},
		{name: "fileio size is the file's",
			conf: "HANDLER vdisk_fileio {\n DEVICE d {\n  filename /d\n  size_mb 64\n }\n}\n",
			want: []string{"# scst.conf:4: size_mb 64  (not imported: SCST reports the size"}, not: []string{"size ="}},
		{name: "o_direct is fileio's only",
			conf: "HANDLER vdisk_blockio {\n DEVICE b {\n  filename /dev/sdb\n  o_direct 1\n }\n}\n",
			want: []string{"o_direct 1  (not imported: scstd's vdisk_blockio devices have no o_direct)"}},
		{name: "vcdrom is read-only anyway",
			conf: "HANDLER vcdrom {\n DEVICE cd {\n  filename /x.iso\n  read_only 1\n }\n}\n",
			want: []string{"read_only 1  (not imported: scstd's vcdrom devices are always read-only and removable)"}},
		{name: "digests are case-insensitive",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  DataDigest crc32c, none\n }\n}\n",
			want: []string{`data_digest = ["CRC32C", "None"]`}},
		{name: "global per_portal_acl",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n per_portal_acl 1\n TARGET iqn.2026-11.org.example:a {\n  enabled 1\n }\n TARGET iqn.2026-11.org.example:b {\n  enabled 1\n  per_portal_acl 0\n }\n}\n",
			want: []string{"enabled        = true\n  per_portal_acl = true", "enabled        = true\n  per_portal_acl = false"}},
		{name: "LUN of an undeclared device",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  LUN 0 ghost\n }\n}\n",
			want: []string{"# scst.conf:5: LUN 0 ghost  (not imported: no HANDLER section declares the device ghost)"}},
		{name: "group without initiators",
			conf: "HANDLER vdisk_nullio {\n DEVICE n\n}\nTARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  GROUP g {\n   LUN 0 n\n  }\n }\n}\n",
			want: []string{"# scst.conf:8-10, not imported: a group without INITIATOR entries", "#   LUN 0 n"},
			not:  []string{`group "g"`}},
		{name: "per-portal initiator",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  GROUP block {\n   INITIATOR iqn.2026-11.org.example:h\\#10.0.0.1\n  }\n }\n}\n",
			want: []string{`initiators = ["iqn.2026-11.org.example:h#10.0.0.1"]`}},
		{name: "allowed_portal belongs to targets",
			conf: "TARGET_DRIVER iscsi {\n enabled 1\n allowed_portal 10.0.0.*\n}\n",
			want: []string{"# scst.conf:3: allowed_portal 10.0.0.*  (not imported: a target attribute in iSCSI-SCST; set allowed_portals on the targets)"}},
		{name: "an attribute with a section is kept",
			conf: "HANDLER vdisk_fileio {\n DEVICE d {\n  filename /d\n  nv_cache 1 {\n  }\n }\n}\n",
			want: []string{"# scst.conf:4-5, not imported: an attribute does not open a section."}, not: []string{"nv_cache ="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := convert(t, tt.conf, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(r.HCL), w) {
					t.Errorf("the HCL lacks %q:\n%s", w, r.HCL)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(string(r.HCL), w) {
					t.Errorf("the HCL has %q:\n%s", w, r.HCL)
				}
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want []string // the errors, in order
	}{
		{"flag", "HANDLER vdisk_fileio {\n DEVICE d {\n  filename /d\n  nv_cache yes\n }\n}\n",
			[]string{`scst.conf:4: nv_cache: expected 0 or 1, got "yes"`}},
		{"yes/no", "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  ImmediateData 1\n }\n}\n",
			[]string{`scst.conf:5: ImmediateData: expected Yes or No, got "1"`}},
		{"number", "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  QueuedCommands many\n  MaxBurstLength -1\n }\n}\n",
			[]string{`scst.conf:5: QueuedCommands: expected a whole number, got "many"`, `scst.conf:6: MaxBurstLength: expected a whole number, got "-1"`}},
		{"digest", "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  HeaderDigest CRC32\n }\n}\n",
			[]string{`scst.conf:5: HeaderDigest: expected a list of CRC32C and None`}},
		{"LUN number", "HANDLER vdisk_nullio {\n DEVICE n\n}\nTARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  LUN 16384 n\n  LUN x n\n  LUN 0\n }\n}\n",
			[]string{"scst.conf:8: LUN: LUN 16384 is out of range", `scst.conf:9: LUN: "x" is not a LUN number`, "scst.conf:10: LUN takes a number and a device name"}},
		{"ALUA state", "DEVICE_GROUP dg {\n TARGET_GROUP t {\n  state lba_dependent\n }\n}\n",
			[]string{"scst.conf:2: target group t has no group_id; SCST needs one too",
				`scst.conf:3: state: expected active, nonoptimized, standby, unavailable, offline or transitioning, got "lba_dependent"`}},
		{"attribute twice", "TARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2026-11.org.example:t {\n  enabled 1\n  QueuedCommands 8\n  QueuedCommands 16\n }\n}\n",
			[]string{"scst.conf:6: target iqn.2026-11.org.example:t: QueuedCommands is also set at line 5"}},
		{"size twice", "HANDLER vdisk_nullio {\n DEVICE n {\n  size 1048576\n  size_mb 1\n }\n}\n",
			[]string{"scst.conf:4: device n: size_mb repeats size of line 3"}},
		{"two outgoing users", "TARGET_DRIVER iscsi {\n enabled 1\n OutgoingUser \"a 111111111111\"\n OutgoingUser1 \"b 222222222222\"\n}\n",
			[]string{"scst.conf:4: OutgoingUser1: only one OutgoingUser is allowed, and line 3 has one"}},
		{"user without secret", "TARGET_DRIVER iscsi {\n enabled 1\n IncomingUser lonely\n}\n",
			[]string{`scst.conf:3: IncomingUser: expected "name secret" (two words), got 1 words`}},
		{"iSNS options", "TARGET_DRIVER iscsi {\n enabled 1\n iSNSServer \"10.0.0.1 Frobnicate\"\n}\n",
			[]string{`scst.conf:3: iSNSServer: expected "host" or "host AccessControl"`}},
		{"iscsi twice", "TARGET_DRIVER iscsi {\n enabled 1\n}\nTARGET_DRIVER iscsi {\n}\n",
			[]string{"scst.conf:4: TARGET_DRIVER iscsi is also declared at line 1"}},
		{"names", "HANDLER {\n}\nHANDLER vdisk_fileio {\n DEVICE a b\n}\nTARGET_DRIVER iscsi {\n enabled 1\n TARGET\n}\n",
			[]string{"scst.conf:1: HANDLER takes one handler name", "scst.conf:4: DEVICE takes one device name", "scst.conf:8: TARGET takes one target name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convert(t, tt.conf, Options{})
			list, ok := err.(ErrorList)
			if !ok {
				t.Fatalf("Convert: %v, want an ErrorList", err)
			}
			if len(list) != len(tt.want) {
				t.Fatalf("Convert: %d errors, want %d:\n%v", len(list), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(list[i].Error(), w) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, list[i], w)
				}
			}
		})
	}
}

// TestConvertKeepsSecretsOut: secrets appear only as secret values (or,
// with SecretsDir, not at all) and never in notes, errors or comments,
// even in sections kept as comments.
func TestConvertKeepsSecretsOut(t *testing.T) {
	const conf = `TARGET_DRIVER iscsi {
	enabled 1
	IncomingUser "disco SECRETdisco01"
	TARGET iqn.2026-11.org.example:t {
		enabled 1
		IncomingUser "joe SECRETjoe0001"
		OutgoingUser "jim SECRETjim0001"
		HW_TARGET {
			IncomingUser "kept SECRETkept01"
		}
	}
}
TARGET_DRIVER isert {
	IncomingUser "iser SECRETiser01"
	TARGET iqn.2026-11.org.example:x {
		IncomingUser1 "iser2 SECRETiser02"
	}
}
`
	for _, opt := range []Options{{}, {SecretsDir: "/etc/scst/chap"}} {
		r, err := convert(t, conf, opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range r.Notes {
			if strings.Contains(n.String(), "SECRET") {
				t.Errorf("a note shows a secret: %s", n)
			}
		}
		var inValues int
		for _, line := range strings.Split(string(r.HCL), "\n") {
			if !strings.Contains(line, "SECRET") {
				continue
			}
			if strings.HasPrefix(strings.TrimSpace(line), `secret = "SECRET`) && opt.SecretsDir == "" {
				inValues++
				continue
			}
			t.Errorf("a secret outside a secret value (SecretsDir %q): %s", opt.SecretsDir, line)
		}
		if want := map[bool]int{true: 3, false: 0}[opt.SecretsDir == ""]; inValues != want {
			t.Errorf("SecretsDir %q: %d inline secrets, want %d:\n%s", opt.SecretsDir, inValues, want, r.HCL)
		}
		if !strings.Contains(string(r.HCL), `IncomingUser "kept (redacted)"`) {
			t.Errorf("the kept section does not show the user with a redacted secret:\n%s", r.HCL)
		}
	}
	// A malformed user line is an error that does not quote the value.
	_, err := convert(t, "TARGET_DRIVER iscsi {\n IncomingUser \"joe SECRET with blanks\"\n}\n", Options{})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("Convert of a malformed user: %v", err)
	}
}

// TestConvertSecretFiles: users with the same name and secret share a
// file; a name reused with another secret gets a file of its own.
func TestConvertSecretFiles(t *testing.T) {
	const conf = `TARGET_DRIVER iscsi {
	enabled 1
	IncomingUser "joe 111111111111"
	IncomingUser1 "../etc/passwd 222222222222"
	TARGET iqn.2026-11.org.example:a {
		enabled 1
		IncomingUser "joe 111111111111"
	}
	TARGET iqn.2026-11.org.example:b {
		enabled 1
		IncomingUser "joe 333333333333"
	}
}
`
	r, err := convert(t, conf, Options{SecretsDir: "/etc/scst/chap"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.Secrets {
		got = append(got, s.Path+"="+s.Secret.Reveal())
	}
	want := []string{
		"/etc/scst/chap/joe=111111111111",
		"/etc/scst/chap/_._etc_passwd=222222222222",
		"/etc/scst/chap/joe@iqn.2026-11.org.example:b=333333333333",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("secret files:\n got %v\nwant %v", got, want)
	}
	if n := strings.Count(string(r.HCL), `file("/etc/scst/chap/joe")`); n != 2 {
		t.Errorf("%d references to the shared file, want 2:\n%s", n, r.HCL)
	}
}

// TestConvertNotesSorted: notes come in file order.
func TestConvertNotesSorted(t *testing.T) {
	r := convertFile(t, "testdata/write-config-nonkey.conf", Options{})
	for i := 1; i < len(r.Notes); i++ {
		if r.Notes[i].Line < r.Notes[i-1].Line {
			t.Errorf("note %d (line %d) after line %d", i, r.Notes[i].Line, r.Notes[i-1].Line)
		}
	}
}
