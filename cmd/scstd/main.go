// Command scstd is a userspace iSCSI target driven by one declarative HCL
// file. See DESIGN.md for the command-line contract.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Defaults from the command-line contract.
const (
	defaultConfigPath  = "/etc/scst.hcl"
	defaultAdminSocket = "/run/scstd.sock"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand: its flags are declared on fs, and run returns
// the process exit code (and an error to print, if any).
type command struct {
	name  string
	args  string
	short string
	flags func(fs *flag.FlagSet, o *options)
	run   func(o *options, fs *flag.FlagSet) (int, error)
}

// options are the flag values every subcommand may use.
type options struct {
	config      string
	adminSocket string
	check       bool
	force       bool
	json        bool
	watch       bool
	stdout      io.Writer
	stderr      io.Writer
}

func configFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.config, "config", defaultConfigPath, "configuration file or directory of *.hcl files")
}

func socketFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.adminSocket, "admin-socket", defaultAdminSocket, "admin socket of the running daemon")
}

var commands = []command{
	{name: "run", args: "[-config PATH] [-admin-socket PATH] [-watch=false]", short: "run the daemon",
		flags: func(fs *flag.FlagSet, o *options) {
			configFlag(fs, o)
			socketFlag(fs, o)
			fs.BoolVar(&o.watch, "watch", true, "reload when the configuration changes (following its symlinks); with -watch=false only SIGHUP and `scstd reload` do")
		}, run: cmdRun},
	{name: "validate", args: "[PATH]", short: "check a configuration: exit 0, or 1 with file:line:col diagnostics",
		run: cmdValidate},
	{name: "fmt", args: "[-check] [PATH]", short: "rewrite configuration files in canonical format",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.check, "check", false, "do not write; exit 1 when a file is not formatted")
		}, run: cmdFmt},
	{name: "plan", args: "[-config PATH]", short: "show what a reload would change: exit 0 none, 2 changes, 1 error",
		flags: func(fs *flag.FlagSet, o *options) { configFlag(fs, o); socketFlag(fs, o) }, run: cmdPlan},
	{name: "reload", args: "[-force]", short: "ask the daemon to reload its configuration and print the applied plan",
		flags: func(fs *flag.FlagSet, o *options) {
			socketFlag(fs, o)
			fs.BoolVar(&o.force, "force", false, "apply even a disruptive plan (disruptive_changes = \"refuse\") or an empty file")
		}, run: cmdReload},
	{name: "status", args: "[-json]", short: "print the live tree: devices, targets, LUNs, sessions, connections",
		flags: func(fs *flag.FlagSet, o *options) {
			socketFlag(fs, o)
			fs.BoolVar(&o.json, "json", false, "print JSON")
		}, run: cmdStatus},
	{name: "session", args: "close TARGET INITIATOR", short: "force-close the sessions of INITIATOR on TARGET",
		flags: socketFlag, run: cmdSession},
	{name: "version", short: "print the version", run: cmdVersion},
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks an error whose message is a usage problem (exit 2).
var errUsage = errors.New("usage")

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "scstd: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	o := &options{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("scstd "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: scstd %s %s\n\n%s\n", cmd.name, cmd.args, cmd.short)
		fs.PrintDefaults()
	}
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	code, err := cmd.run(o, fs)
	if err != nil {
		if errors.Is(err, errUsage) {
			fs.Usage()
			return 2
		}
		fmt.Fprintf(stderr, "scstd %s: %v\n", cmd.name, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: scstd COMMAND [flags] [args]")
	fmt.Fprintln(w, "\nscstd is a userspace iSCSI target driven by one declarative HCL file.\n\ncommands:")
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, fmt.Sprintf("  %-9s %s", c.name, c.short))
	}
	sort.Strings(names)
	fmt.Fprintln(w, strings.Join(names, "\n"))
	fmt.Fprintln(w, "\nRun 'scstd COMMAND -h' for the flags of a command.")
}

func cmdVersion(o *options, fs *flag.FlagSet) (int, error) {
	fmt.Fprintf(o.stdout, "scstd %s\n", version)
	return 0, nil
}

// pathArg returns the single optional PATH argument, or def.
func pathArg(fs *flag.FlagSet, def string) (string, error) {
	switch fs.NArg() {
	case 0:
		return def, nil
	case 1:
		return fs.Arg(0), nil
	}
	return "", errUsage
}
