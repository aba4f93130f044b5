// Command scstd is a userspace iSCSI target driven by one declarative HCL
// file. Its subcommands and their flags, the command-line contract, are
// the command table below; `scstd help` and the manual pages (make man)
// print it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// Defaults from the command-line contract.
const (
	defaultConfigPath  = "/etc/scst.hcl"
	defaultAdminSocket = "/run/scstd.sock"
)

// command is one subcommand: its flags are declared on fs, and run returns
// the process exit code (and an error to print, if any). The table below
// is also the source of the usage texts and the manual pages.
type command struct {
	name  string
	args  string
	short string
	// long is the description for `scstd help NAME` and the manual page:
	// paragraphs separated by blank lines.
	long   string
	flags  func(fs *flag.FlagSet, o *options)
	run    func(o *options, fs *flag.FlagSet) (int, error)
	hidden bool // not listed in the usage or the manual (tooling only)
}

// options are the flag values every subcommand may use.
type options struct {
	config      string
	adminSocket string
	check       bool
	force       bool
	json        bool
	watch       bool
	noStorage   bool
	logFormat   string
	logLevel    slog.Level
	secretsDir  string
	stdin       io.Reader
	stdout      io.Writer
	stderr      io.Writer
}

func configFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.config, "config", defaultConfigPath, "configuration file or directory of *.hcl files")
}

func socketFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.adminSocket, "admin-socket", defaultAdminSocket, "admin socket of the running daemon")
}

// commands is the command table. It is filled by init because the "man"
// command reads the table itself.
var commands []command

func init() {
	commands = []command{
		{name: "run", args: "[-config PATH] [-admin-socket PATH] [-watch=false] [-log-format text|json] [-log-level LEVEL]", short: "run the daemon",
			long: `Loads the configuration, serves it, and applies a changed file on SIGHUP, on a change of the file (the watch follows symlinks), or on "scstd reload" (-watch=false turns the watch off). Reloads run one at a time off the signal loop: a SIGTERM never waits for one. A configuration with errors is refused whole: at start nothing is started, on a reload the running generation keeps serving. Storage that cannot be opened is not a configuration error: that device alone goes offline and is retried.

The daemon logs to standard error, every record with its date and time (RFC 3339, milliseconds). -log-format text (the default) writes key=value lines (logfmt), coloured on a terminal unless NO_COLOR is set; -log-format json writes one JSON object a line with time, level and msg. -log-level sets the level at start (default info); a log_level setting in the configuration file overrides it once the file is applied and changes it on every reload; a file without log_level returns to the flag's level.

The daemon tells systemd when it is ready (Type=notify) and answers the admin API on a Unix socket of mode 0600.`,
			flags: func(fs *flag.FlagSet, o *options) {
				configFlag(fs, o)
				socketFlag(fs, o)
				fs.BoolVar(&o.watch, "watch", true, "reload when the configuration changes (following its symlinks); with -watch=false only SIGHUP and \"scstd reload\" do")
				o.logFormat, o.logLevel = logText, slog.LevelInfo
				fs.Var(logFormatFlag{&o.logFormat}, "log-format", "log as `FORMAT`: text (key=value; coloured on a terminal unless NO_COLOR is set) or json (one object a line)")
				fs.Var(logLevelFlag{&o.logLevel}, "log-level", "log records at `LEVEL` and above: debug, info, warn or error; the file's log_level wins once applied")
			}, run: cmdRun},
		{name: "validate", args: "[-no-storage] [PATH]", short: "check a configuration: exit 0, or 1 with file:line:col diagnostics",
			long: `Loads everything and starts nothing: syntax, types, references, CHAP rules, portals, and the backing files the devices name. PATH is a file or a directory of *.hcl files (default ` + defaultConfigPath + `). Diagnostics name the file, line and column, show the line, and say what is expected.

With -no-storage nothing is looked up on disk for the backing files: not whether they exist, nor their size, kind or identity (one file under two names). Everything else is checked, secrets read with file() and env() included: it is the check for a CI runner that has the configuration but not the storage. Backing paths are still checked by name: a path two devices name, or one that is a configuration file or lies in the configuration's directory, is an error.`,
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.noStorage, "no-storage", false, "check everything but the backing files (for CI runners without the storage)")
			},
			run: cmdValidate},
		{name: "fmt", args: "[-check] [PATH]", short: "rewrite configuration files in canonical format",
			long: `Rewrites each file in canonical layout (indentation, aligned equals signs), keeping comments, like "terraform fmt". It changes layout only, never meaning, and leaves a file with syntax errors alone.`,
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.check, "check", false, "do not write; exit 1 when a file is not formatted")
			}, run: cmdFmt},
		{name: "plan", args: "[-config PATH]", short: "show what a reload would change: exit 0 none, 2 changes, 1 error",
			long:  `Compares the file with the running daemon and prints the changes a reload would make, each with what live sessions would see (hot, next login, unit attention, disruptive). Nothing is applied. Exit 0 means no change, 2 changes, 1 an error.`,
			flags: func(fs *flag.FlagSet, o *options) { configFlag(fs, o); socketFlag(fs, o) }, run: cmdPlan},
		{name: "reload", args: "[-force]", short: "ask the daemon to reload its configuration and print the applied plan",
			long: `Asks the running daemon to load its configuration file again and apply the difference, then prints the plan it applied. Disruptive changes (a session would end, or a LUN a live session uses would reach another device or a device of another identity) are refused unless -force is given or the running configuration sets disruptive_changes = "allow". An empty file is applied only with -force. When the file watch or SIGHUP already applied the file, it prints what that reload applied and when.`,
			flags: func(fs *flag.FlagSet, o *options) {
				socketFlag(fs, o)
				fs.BoolVar(&o.force, "force", false, "apply even a disruptive plan (disruptive_changes = \"refuse\") or an empty file")
			}, run: cmdReload},
		{name: "status", args: "[-json]", short: "print the live tree: devices, targets, LUNs, sessions, connections",
			long: `Prints the running daemon's state as a tree, the way SCST's sysfs reads: devices and their backing files, targets, LUNs, groups, sessions with their negotiated parameters, and connections. CHAP secrets are never shown.`,
			flags: func(fs *flag.FlagSet, o *options) {
				socketFlag(fs, o)
				fs.BoolVar(&o.json, "json", false, "print JSON")
			}, run: cmdStatus},
		{name: "session", args: "close TARGET INITIATOR", short: "force-close the sessions of INITIATOR on TARGET",
			long:  `Closes every session of the initiator INITIATOR on the target TARGET at once (SCST's force_close). The initiator may log in again.`,
			flags: socketFlag, run: cmdSession},
		{name: "cluster", args: "drain|undrain|evict GATEWAY", short: "drain, undrain or evict a gateway of the daemon's cluster",
			long:  `Asks the running daemon, a gateway of a cluster (docs/scale-out.md), for an administrative change to gateway GATEWAY, which may be another gateway. drain moves GATEWAY's target ports to standby once every gateway has told its sessions (ASYMMETRIC ACCESS STATE CHANGED), so that multipathed initiators move to the other gateways with no I/O error, and waits until GATEWAY reports standby; undrain gives them back their configured states. A drain is kept in etcd: a drained gateway that restarts stays standby. evict is for a gateway that is down for good: reservation changes stop waiting for it; it is refused while the gateway runs.`,
			flags: socketFlag, run: cmdCluster},
		{name: "import", args: "[-secrets-dir DIR] [scst.conf]", short: "convert SCST's scst.conf to scstd's HCL",
			long: `Reads an SCST configuration file (standard input when no file or "-" is given) as scstadmin reads it and prints the equivalent scstd configuration, formatted as "scstd fmt" formats it. Devices of the vdisk_fileio, vdisk_blockio, vdisk_nullio, vcdrom and dev_disk handlers and the iSCSI target driver (targets, LUNs, initiator groups, CHAP users, negotiation keys, allowed_portal, per_portal_acl, redirect, rel_tgt_id, iSNS) are converted; everything else is kept in the output as comments and listed on standard error with its line, so that nothing is dropped silently.

CHAP secrets stay inline, where scst.conf had them, each with a comment; with -secrets-dir each is written to a file of mode 0600 in DIR and read with file(), so that the output can go into git. The output is checked as "scstd validate" would check it, except for storage: exit 0 when it is valid, 1 when the input or the output has errors.`,
			flags: func(fs *flag.FlagSet, o *options) {
				fs.StringVar(&o.secretsDir, "secrets-dir", "", "write CHAP secrets to files in `DIR` and reference them with file()")
			}, run: cmdImport},
		{name: "version", short: "print the version, the commit and the Go version",
			long: `Prints the version, the source commit (with "(modified)" for a build from a changed tree) and the Go release that built the binary.`,
			run:  cmdVersion},
		{name: "man", args: "DIR", short: "write the manual pages into DIR", hidden: true,
			long: `Writes scstd.8 and one page per command, scstd-NAME.8, into DIR, from the command table. "make man" runs it.`,
			run:  cmdMan},
	}
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// stdin is what commands read as standard input; tests replace it.
var stdin io.Reader = os.Stdin

// errUsage marks an error whose message is a usage problem (exit 2).
var errUsage = errors.New("usage")

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		return help(args[1:], stdout, stderr)
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "scstd: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	o := &options{stdin: stdin, stdout: stdout, stderr: stderr}
	fs := newFlagSet(cmd, o)
	if err := parseArgs(fs, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(stdout, cmd, fs)
			return 0
		}
		// The flag package printed the problem.
		fmt.Fprintf(stderr, "usage: scstd %s\nRun 'scstd help %s' for more.\n", synopsis(cmd), cmd.name)
		return 2
	}
	code, err := cmd.run(o, fs)
	if err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "usage: scstd %s\nRun 'scstd help %s' for more.\n", synopsis(cmd), cmd.name)
			return 2
		}
		fmt.Fprintf(stderr, "scstd %s: %v\n", cmd.name, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// newFlagSet returns cmd's flag set, with its flags bound to o.
func newFlagSet(cmd *command, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("scstd "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(o.stderr)
	fs.Usage = func() {} // runMain prints the usage itself
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	return fs
}

// help prints the usage of the command args names, or the general usage.
func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return 0
	}
	cmd := lookup(args[0])
	if cmd == nil || len(args) > 1 {
		fmt.Fprintf(stderr, "scstd help: unknown command %q\n\n", strings.Join(args, " "))
		usage(stderr)
		return 2
	}
	commandUsage(stdout, cmd, newFlagSet(cmd, &options{stderr: stderr}))
	return 0
}

// synopsis is "NAME ARGS".
func synopsis(c *command) string { return strings.TrimSpace(c.name + " " + c.args) }

// commandUsage prints one command's synopsis, description and flags.
func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: scstd %s\n\n%s.\n", synopsis(c), capitalize(c.short))
	for _, p := range paragraphs(c.long) {
		fmt.Fprintf(w, "\n%s\n", strings.Join(wrapText(p, 76), "\n"))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: scstd COMMAND [flags] [args]")
	fmt.Fprintln(w, "\nscstd is a userspace iSCSI target driven by one declarative HCL file.\n\ncommands:")
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		if !c.hidden {
			names = append(names, fmt.Sprintf("  %-9s %s", c.name, c.short))
		}
	}
	sort.Strings(names)
	fmt.Fprintln(w, strings.Join(names, "\n"))
	fmt.Fprintln(w, "\nRun 'scstd help COMMAND' (or 'scstd COMMAND -h') for the usage of a command.")
}

// paragraphs splits text at blank lines.
func paragraphs(text string) []string {
	var out []string
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.Join(strings.Fields(p), " "))
		}
	}
	return out
}

// wrapText breaks text into lines of at most width bytes at blanks.
func wrapText(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
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
