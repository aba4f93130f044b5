package main

import (
	"flag"
	"strings"
)

// parseArgs parses args with fs, accepting flags after positional
// arguments too ("scstd validate x.hcl -check"), which the flag package
// alone does not. "--" ends the flags: everything after it is positional,
// and so is "-" (standard input). Afterwards fs.Args() holds the
// positional arguments in order.
func parseArgs(fs *flag.FlagSet, args []string) error {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		// A flag that takes a value and has no "=value" takes the next
		// argument, whatever it looks like, as the flag package does.
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return fs.Parse(append(append(flags, "--"), positional...))
}

// isBoolFlag reports whether f is a flag that takes no value.
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
