package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Target names of the benchmark configurations.
const (
	iqnScstd = "iqn.2026-11.org.example:bench"
	iqnTgtd  = "iqn.2026-11.org.example:bench-tgtd"
)

// system is one column of the table: a daemon and the LUN the throughput
// and latency cases use on it.
type system struct {
	Name   string // the column's heading: "scstd fileio"
	Key    string // its name in the raw file: "scstd-fileio"
	Portal string
	Target string
	LUN    int
	// Sessions are the LUN URLs of the many-sessions case, one target
	// each (so that no two sessions are one I_T nexus whatever ISID
	// libiscsi picks); empty for the systems that do not run it.
	Sessions []string
	// Peer is the Key of the tgtd system it is compared with.
	Peer string
	pid  func() int
}

// URL is the system's LUN as qemu-img names it.
func (s *system) URL() string { return lunURL(s.Portal, s.Target, s.LUN) }

func lunURL(portal, target string, lun int) string {
	return fmt.Sprintf("iscsi://%s/%s/%d", portal, target, lun)
}

// variant is a configuration of scstd measured side by side with the
// others (the hook for "what does X cost": metrics on vs off, say): HCL
// appended to the top level of the benchmark configuration, environment
// variables for the daemon (GOMAXPROCS=1, GOGC=off), or another scstd
// binary (a build of another commit: an A/B of a code change in one run).
type variant struct {
	Name string // "" is scstd as configured by benchConfig alone
	HCL  string
	Env  []string
	Bin  string // the daemon's binary; "" is SCSTD_BIN
	// Scrape, when set, turns the metrics endpoint on and scrapes it at
	// that interval while the daemon runs (scrape.go).
	Scrape time.Duration
}

// builtinVariants are the variants BENCH_VARIANTS may name without a file.
var builtinVariants = map[string]variant{}

// parseVariants reads BENCH_VARIANTS: a comma-separated list of "base"
// (scstd as benchConfig writes it), a builtin variant's name,
// NAME=FILE (whose HCL is appended to the configuration),
// NAME:VAR=VALUE[ VAR=VALUE...] (the daemon runs with that environment),
// or NAME@BINARY (that scstd binary runs instead of SCSTD_BIN).
func parseVariants(spec string, readFile func(string) ([]byte, error), stat func(string) error) ([]variant, error) {
	if strings.TrimSpace(spec) == "" {
		return []variant{{}}, nil
	}
	var vs []variant
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		var v variant
		if name, bin, ok := strings.Cut(item, "@"); ok {
			if err := stat(bin); err != nil {
				return nil, fmt.Errorf("BENCH_VARIANTS: %s: %v", name, err)
			}
			v = variant{Name: name, Bin: bin}
		} else if name, env, ok := strings.Cut(item, ":"); ok {
			v = variant{Name: name, Env: strings.Fields(env)}
			for _, kv := range v.Env {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
					return nil, fmt.Errorf("BENCH_VARIANTS: %s: %q is not VAR=VALUE", name, kv)
				}
			}
		} else if name, file, ok := strings.Cut(item, "="); ok {
			b, err := readFile(file)
			if err != nil {
				return nil, fmt.Errorf("BENCH_VARIANTS: %s: %v", name, err)
			}
			v = variant{Name: name, HCL: string(b)}
		} else if item != "base" {
			bv, ok := builtinVariants[item]
			if !ok {
				return nil, fmt.Errorf("BENCH_VARIANTS: no variant %q (base, NAME=FILE.hcl, NAME:VAR=VALUE, or one of %v)", item, keys(builtinVariants))
			}
			v = bv
			v.Name = item
		}
		if strings.ContainsAny(v.Name, " \t-") || (item != "base" && v.Name == "") {
			return nil, fmt.Errorf("BENCH_VARIANTS: %q: a name, without blanks or '-'", item)
		}
		if seen[v.Name] {
			return nil, fmt.Errorf("BENCH_VARIANTS: %q named twice", item)
		}
		seen[v.Name] = true
		vs = append(vs, v)
	}
	return vs, nil
}

// benchConfig is scstd's benchmark configuration: LUN 0 a vdisk_fileio
// disk on img, LUN 1 a vdisk_nullio device, and sessions targets with one
// nullio LUN each for the many-sessions case. queued_commands is above
// every queue depth the cases use, as tgtd's default (128) is.
func benchConfig(portal, img string, sizeMiB, sessions int, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir = \"state\"\niscsi { portals = [%q] }\n", portal) // state beside the file
	fmt.Fprintf(&b, "handler \"vdisk_fileio\" {\n  device \"disk0\" {\n    filename = %q\n    size     = \"%dMiB\"\n  }\n}\n", img, sizeMiB)
	b.WriteString("handler \"vdisk_nullio\" {\n")
	for i := range sessions + 1 {
		fmt.Fprintf(&b, "  device \"null%d\" { size = \"%dMiB\" }\n", i, sizeMiB)
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "target %q {\n  queued_commands = 64\n  lun \"0\" { device = \"disk0\" }\n  lun \"1\" { device = \"null0\" }\n}\n", iqnScstd)
	for i := range sessions {
		fmt.Fprintf(&b, "target \"%s-s%02d\" {\n  queued_commands = 64\n  lun \"0\" { device = \"null%d\" }\n}\n", iqnScstd, i, i+1)
	}
	if extra != "" {
		b.WriteString(extra)
		if !strings.HasSuffix(extra, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// instance is a running daemon and the two systems (disk and null LUN) it
// serves.
type instance struct {
	d    *daemon
	stop func()
	sys  []*system
}

// startScstd starts scstd on v's configuration in dir.
func startScstd(set *settings, v variant, dir string) (*instance, error) {
	return startScstdEnv(set, v, dir, nil)
}

// startScstdEnv is startScstd with env added to the daemon's environment.
func startScstdEnv(set *settings, v variant, dir string, env []string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	portal := fmt.Sprintf("127.0.0.1:%d", port)
	img := filepath.Join(dir, "disk0.img")
	if err := disk(img, int64(set.sizeMiB)<<20); err != nil {
		return nil, err
	}
	extra, metricsAddr := v.HCL, ""
	if v.Scrape > 0 {
		mp, err := freePort()
		if err != nil {
			return nil, err
		}
		metricsAddr = fmt.Sprintf("127.0.0.1:%d", mp)
		extra += "\n" + metricsBlock(metricsAddr)
	}
	cfg := filepath.Join(dir, "scstd.hcl")
	if err := os.WriteFile(cfg, []byte(benchConfig(portal, img, set.sizeMiB, set.manySessions, extra)), 0o644); err != nil {
		return nil, err
	}
	bin := set.scstdBin
	if v.Bin != "" {
		bin = v.Bin
	}
	d, err := startDaemon("scstd", append(slices.Clone(v.Env), env...), bin, "run", "-config", cfg, "-admin-socket", filepath.Join(dir, "scstd.sock"),
		"-watch=false", "-log-format", "json")
	if err != nil {
		return nil, err
	}
	if _, _, err := d.waitRecord("scstd running", 0, 60*time.Second); err != nil {
		d.stop(15 * time.Second)
		return nil, err
	}
	head, key := "scstd", "scstd"
	if v.Name != "" {
		head, key = "scstd["+v.Name+"]", "scstd."+v.Name
	}
	var urls []string
	for i := range set.manySessions {
		urls = append(urls, lunURL(portal, fmt.Sprintf("%s-s%02d", iqnScstd, i), 0))
	}
	in := &instance{d: d, stop: func() { d.stop(15 * time.Second) }}
	if v.Scrape > 0 {
		stopScrape := scrapeEvery(head, metricsAddr, v.Scrape)
		in.stop = func() { stopScrape(); d.stop(15 * time.Second) }
	}
	in.sys = []*system{
		{Name: head + " fileio", Key: key + "-fileio", Portal: portal, Target: iqnScstd, LUN: 0, Peer: "tgtd-rdwr", pid: d.PID},
		{Name: head + " nullio", Key: key + "-nullio", Portal: portal, Target: iqnScstd, LUN: 1, Sessions: urls, Peer: "tgtd-null", pid: d.PID},
	}
	return in, nil
}

// startTgtd starts tgtd with the same disk (its default "rdwr" store:
// pread/pwrite through the page cache, as scstd's fileio defaults) and a
// "null" store LUN, and the many-sessions targets.
func startTgtd(ctx context.Context, set *settings, dir string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	portal := fmt.Sprintf("127.0.0.1:%d", port)
	img := filepath.Join(dir, "tgtd.img")
	if err := disk(img, int64(set.sizeMiB)<<20); err != nil {
		return nil, err
	}
	// tgtd's control port names an abstract socket, not a TCP port, and
	// tgtd takes it below 32768.
	ctl := fmt.Sprint(20000 + port%10000)
	argv := []string{"tgtd", "-f", "--iscsi", "portal=" + portal, "--control-port", ctl}
	if set.tgtdThreads != "" {
		argv = append(argv, "-t", set.tgtdThreads)
	}
	d, err := startDaemon("tgtd", nil, argv...)
	if err != nil {
		return nil, err
	}
	tids := set.manySessions + 1
	stop := func() {
		// tgtd ignores SIGTERM; it exits on "delete system" once it
		// has no targets left.
		for tid := 1; tid <= tids; tid++ {
			exec.Command("tgtadm", "-C", ctl, "--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid", fmt.Sprint(tid), "--force").Run()
		}
		exec.Command("tgtadm", "-C", ctl, "--op", "delete", "--mode", "system").Run()
		d.stop(10 * time.Second)
	}
	fail := func(err error) (*instance, error) {
		stop()
		return nil, err
	}
	if _, err := d.waitPort(portal, 30*time.Second); err != nil {
		return fail(err)
	}
	// The portal opens before the control socket does.
	for range 100 {
		if exec.Command("tgtadm", "-C", ctl, "--op", "show", "--mode", "sys").Run() == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	adm := func(args ...string) error {
		_, _, err := runTool(ctx, append([]string{"tgtadm", "-C", ctl, "--lld", "iscsi"}, args...)...)
		return err
	}
	target := func(tid int, iqn string) error {
		if err := adm("--op", "new", "--mode", "target", "--tid", fmt.Sprint(tid), "-T", iqn); err != nil {
			return err
		}
		return adm("--op", "bind", "--mode", "target", "--tid", fmt.Sprint(tid), "-I", "ALL")
	}
	lu := func(tid, lun int, args ...string) error {
		return adm(append([]string{"--op", "new", "--mode", "logicalunit", "--tid", fmt.Sprint(tid), "--lun", fmt.Sprint(lun)}, args...)...)
	}
	if err := target(1, iqnTgtd); err != nil {
		return fail(err)
	}
	if err := lu(1, 1, "-b", img); err != nil {
		return fail(err)
	}
	if err := lu(1, 2, "--bstype", "null", "-b", "null0"); err != nil {
		return fail(err)
	}
	var urls []string
	for i := range set.manySessions {
		iqn := fmt.Sprintf("%s-s%02d", iqnTgtd, i)
		if err := target(i+2, iqn); err != nil {
			return fail(err)
		}
		if err := lu(i+2, 1, "--bstype", "null", "-b", fmt.Sprintf("null%d", i+1)); err != nil {
			return fail(err)
		}
		urls = append(urls, lunURL(portal, iqn, 1))
	}
	in := &instance{d: d, stop: stop}
	in.sys = []*system{
		{Name: "tgtd rdwr", Key: "tgtd-rdwr", Portal: portal, Target: iqnTgtd, LUN: 1, pid: d.PID},
		{Name: "tgtd null", Key: "tgtd-null", Portal: portal, Target: iqnTgtd, LUN: 2, Sessions: urls, pid: d.PID},
	}
	return in, nil
}

// disk makes path a file of size bytes written all through, as a disk
// in use is: reads then copy the file's own pages, as they would on a
// real LUN, rather than the zero page a hole reads as (nullio's cost),
// and reads of 64 KiB or more are lent from the file (vdisk.LendMin).
// tgtd's disk and scstd's are made alike. A file already written all
// through (by an earlier round) is kept as it is.
func disk(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := writeAllThrough(f, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeAllThrough sizes f to size bytes and writes all of it, unless the
// file system already holds a block for every byte.
func writeAllThrough(f *os.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Blocks*512 >= size {
		return nil
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + 1)
	}
	for off := int64(0); off < size; off += int64(len(chunk)) {
		if _, err := f.WriteAt(chunk[:min(int64(len(chunk)), size-off)], off); err != nil {
			return err
		}
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
