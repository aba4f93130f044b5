package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by a release build:
//
//	go build -ldflags "-X main.version=1.2.0 -X main.commit=$(git rev-parse HEAD) -X main.modified=false"
//
// Left empty, they come from the build information the Go toolchain
// records (the module version, and vcs.revision and vcs.modified for a
// build in a git checkout), or read "dev" and "unknown".
var (
	version  = ""
	commit   = ""
	modified = "" // "true" when the tree had uncommitted changes
)

// buildInfo is what `scstd version` prints.
type buildInfo struct {
	version  string
	commit   string
	modified bool
	time     string // vcs.time, when known
	goVer    string // "go1.26.8 linux/amd64"
}

func init() {
	// Resolve once, so that every user of version (the daemon's start log
	// line among them) sees the same string.
	bi := readBuildInfo()
	version, commit = bi.version, bi.commit
}

func readBuildInfo() buildInfo {
	b := buildInfo{version: version, commit: commit, modified: modified == "true",
		goVer: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if ok {
		if b.version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.commit == "" {
					b.commit = s.Value
				}
			case "vcs.modified":
				if modified == "" {
					b.modified = s.Value == "true"
				}
			case "vcs.time":
				b.time = s.Value
			}
		}
	}
	if b.version == "" {
		b.version = "dev"
	}
	if b.commit == "" {
		b.commit = "unknown"
	}
	return b
}

func cmdVersion(o *options, fs *flag.FlagSet) (int, error) {
	if fs.NArg() != 0 {
		return 2, errUsage
	}
	b := readBuildInfo()
	fmt.Fprintf(o.stdout, "scstd %s\n", b.version)
	mod := ""
	if b.modified {
		mod = " (modified)"
	}
	fmt.Fprintf(o.stdout, "commit  %s%s\n", b.commit, mod)
	if b.time != "" {
		fmt.Fprintf(o.stdout, "time    %s\n", b.time)
	}
	fmt.Fprintf(o.stdout, "go      %s\n", b.goVer)
	return 0, nil
}
