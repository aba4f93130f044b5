package main

import (
	"flag"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCheck  bool
		wantConfig string
		wantArgs   []string
		wantErr    string
	}{
		{name: "flags first", args: []string{"-check", "a.hcl"}, wantCheck: true, wantArgs: []string{"a.hcl"}},
		{name: "flags after the argument", args: []string{"a.hcl", "-check"}, wantCheck: true, wantArgs: []string{"a.hcl"}},
		{name: "flag value after the argument", args: []string{"a.hcl", "-config", "b.hcl"}, wantConfig: "b.hcl", wantArgs: []string{"a.hcl"}},
		{name: "flag=value", args: []string{"a.hcl", "--config=b.hcl", "c"}, wantConfig: "b.hcl", wantArgs: []string{"a.hcl", "c"}},
		{name: "a value that looks like a flag", args: []string{"-config", "-check"}, wantConfig: "-check"},
		{name: "terminator", args: []string{"a", "--", "-check", "--"}, wantArgs: []string{"a", "-check", "--"}},
		{name: "stdin", args: []string{"-", "-check"}, wantCheck: true, wantArgs: []string{"-"}},
		{name: "bool with value", args: []string{"x", "-check=false"}, wantArgs: []string{"x"}},
		{name: "unknown flag", args: []string{"x", "-frobnicate"}, wantErr: "flag provided but not defined: -frobnicate"},
		{name: "help", args: []string{"x", "-h"}, wantErr: "flag: help requested"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			var errs strings.Builder
			fs.SetOutput(&errs)
			check := fs.Bool("check", false, "")
			config := fs.String("config", "", "")
			err := parseArgs(fs, tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseArgs: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *check != tt.wantCheck || *config != tt.wantConfig {
				t.Errorf("check=%v config=%q, want %v %q", *check, *config, tt.wantCheck, tt.wantConfig)
			}
			if got := fs.Args(); !reflect.DeepEqual(got, tt.wantArgs) && !(len(got) == 0 && len(tt.wantArgs) == 0) {
				t.Errorf("args %q, want %q", got, tt.wantArgs)
			}
		})
	}
}

// TestHelp: `scstd help CMD` and `scstd CMD -h` print that command's usage
// on stdout and exit 0; the general usage lists every visible command.
func TestHelp(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}, {c.name, "x", "--help"}} {
			code, stdout, stderr := runCLI(t, args...)
			if code != 0 || !strings.HasPrefix(stdout, "usage: scstd "+c.name) || stderr != "" {
				t.Errorf("scstd %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
			}
			fs := newFlagSet(&c, &options{})
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(stdout, "-"+f.Name) {
					t.Errorf("scstd %s does not describe -%s:\n%s", strings.Join(args, " "), f.Name, stdout)
				}
			})
		}
	}
	code, stdout, _ := runCLI(t, "help")
	if code != 0 {
		t.Errorf("scstd help: exit %d", code)
	}
	for _, c := range commands {
		if listed := strings.Contains(stdout, "\n  "+c.name+" "); listed == c.hidden {
			t.Errorf("scstd help lists %s: %v (hidden %v)", c.name, listed, c.hidden)
		}
	}
	if code, _, stderr := runCLI(t, "help", "frobnicate"); code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("scstd help frobnicate: exit %d, stderr %q", code, stderr)
	}
}

// TestFlagsAfterArguments runs real commands with their flags last.
func TestFlagsAfterArguments(t *testing.T) {
	unformatted := writeConfig(t, strings.Replace(validConfig, `size = "1GiB"`, `size   = "1GiB"`, 1))
	if code, stdout, _ := runCLI(t, "fmt", unformatted, "-check"); code != 1 || !strings.Contains(stdout, "scst.hcl") {
		t.Errorf("scstd fmt FILE -check: exit %d, stdout %q (want 1 and the file listed, the file untouched)", code, stdout)
	}
	if code, _, stderr := runCLI(t, "validate", unformatted, "-frobnicate"); code != 2 || !strings.Contains(stderr, "-frobnicate") {
		t.Errorf("scstd validate FILE -frobnicate: exit %d, stderr %q", code, stderr)
	}
}
