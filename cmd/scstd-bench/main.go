// Command scstd-bench measures scstd, side by side with tgtd and the
// loopback ceiling, and prints issue 13's figures as one table; `make
// bench` runs it. docs/benchmarks.md says what each figure is and how it
// is measured. It is a tool of the repository, not part of the package.
//
// Environment (all optional):
//
//	SCSTD_BIN        the daemon (default bin/scstd)
//	BENCH_ROUNDS     interleaved rounds; medians are printed (default 3)
//	BENCH_QUICK=1    one round, 2 s a run, 1 s a latency case
//	BENCH_SECONDS    length of each throughput run (default 6; quick 2; profile 20)
//	BENCH_CASES      regular expression selecting cases by name (default all)
//	BENCH_VARIANTS   scstd variants side by side: base, metrics (the metrics endpoint on,
//	                 scraped every second), NAME=FILE.hcl, NAME:VAR=VALUE, NAME@BINARY
//	BENCH_DIR        where the backing files live (default /dev/shm)
//	BENCH_SIZE_MIB   size of the disk LUNs (default 1024)
//	BENCH_OUT        where raw figures go (default .state/bench)
//	BENCH_SESSIONS   sessions of the many-sessions case (default 16)
//	BENCH_IDLE       sessions of the idle-sessions case (default 1000)
//	TGTD_IOTHREADS   tgtd's -t (default: tgtd's own, 16)
//	BENCH_PROFILE=1  profile scstd instead (see profile.go)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// settings are one run's knobs, from the environment.
type settings struct {
	scstdBin       string
	dir, out       string
	sizeMiB        int
	seconds        float64
	latencySeconds float64
	rounds         int
	quick          bool
	cases          *regexp.Regexp
	variants       []variant
	tgtdThreads    string
	manySessions   int
	idleSessions   int
	profile        bool
}

func loadSettings(getenv func(string) string) (*settings, error) {
	s := &settings{
		scstdBin: or(getenv("SCSTD_BIN"), "bin/scstd"),
		dir:      or(getenv("BENCH_DIR"), "/dev/shm"),
		out:      or(getenv("BENCH_OUT"), ".state/bench"),
		quick:    getenv("BENCH_QUICK") == "1",
		profile:  getenv("BENCH_PROFILE") == "1",

		tgtdThreads: getenv("TGTD_IOTHREADS"),
	}
	defRounds, defSeconds := 3, 6.0
	s.latencySeconds = 3
	switch {
	case s.profile:
		defSeconds = 20 // enough samples at pprof's 100 Hz
	case s.quick:
		defRounds, defSeconds, s.latencySeconds = 1, 2, 1
	}
	var err error
	ints := []struct {
		env string
		p   *int
		def int
	}{
		{"BENCH_ROUNDS", &s.rounds, defRounds},
		{"BENCH_SIZE_MIB", &s.sizeMiB, 1024},
		{"BENCH_SESSIONS", &s.manySessions, 16},
		{"BENCH_IDLE", &s.idleSessions, 1000},
	}
	for _, i := range ints {
		*i.p = i.def
		if v := getenv(i.env); v != "" {
			if *i.p, err = strconv.Atoi(v); err != nil || *i.p < 1 {
				return nil, fmt.Errorf("%s=%q: expected a whole number above 0", i.env, v)
			}
		}
	}
	s.seconds = defSeconds
	if v := getenv("BENCH_SECONDS"); v != "" {
		if s.seconds, err = strconv.ParseFloat(v, 64); err != nil || s.seconds <= 0 {
			return nil, fmt.Errorf("BENCH_SECONDS=%q: expected seconds above 0", v)
		}
	}
	if s.cases, err = regexp.Compile(or(getenv("BENCH_CASES"), ".")); err != nil {
		return nil, fmt.Errorf("BENCH_CASES: %v", err)
	}
	if s.variants, err = parseVariants(getenv("BENCH_VARIANTS"), os.ReadFile, statFile); err != nil {
		return nil, err
	}
	return s, nil
}

// statFile fails when path names nothing.
func statFile(path string) error {
	_, err := os.Stat(path)
	return err
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

// logf reports progress on standard error; the table goes to standard
// output.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context) int {
	set, err := loadSettings(os.Getenv)
	if err != nil {
		logf("%v", err)
		return 2
	}
	if _, err := os.Stat(set.scstdBin); err != nil {
		logf("%v (make build)", err)
		return 2
	}
	if set.profile {
		return runProfile(ctx, set)
	}
	began := time.Now()
	if err := os.MkdirAll(set.out, 0o755); err != nil {
		logf("%v", err)
		return 1
	}
	stamp := began.Format("20060102-150405")
	rawPath := filepath.Join(set.out, stamp+".tsv")
	raw, err := os.Create(rawPath)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer raw.Close()
	env := environment(set)
	res := newResults(raw, env)
	work, err := os.MkdirTemp(set.dir, "scstd-bench.")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(work)

	b := &bench{set: set, res: res, ctx: ctx, counts: map[string]int{}}
	defer b.stopAll()
	if err := b.startSystems(work); err != nil {
		logf("%v", err)
		return 1
	}
	loads := []string{"start " + loadAverage()}
	rounds := set.rounds
	if len(b.systems) == 0 && !set.cases.MatchString(caseLoopback) {
		rounds = 0 // no case of the rounds is selected
	}
	for round := 1; round <= rounds && ctx.Err() == nil; round++ {
		b.round(round)
		loads = append(loads, fmt.Sprintf("after round %d %s", round, loadAverage()))
		logf("load average %s", loads[len(loads)-1])
	}
	b.stopAll()
	if set.cases.MatchString(caseIdle) && ctx.Err() == nil {
		b.idle(work)
	}
	if set.cases.MatchString(caseScale) && ctx.Err() == nil {
		b.scale(work)
	}
	if set.cases.MatchString(caseCluster) && ctx.Err() == nil {
		b.cluster(work)
	}
	loads = append(loads, "end "+loadAverage())
	took := time.Since(began).Round(time.Second)
	res.write("# load average (1, 5, 15 min): " + strings.Join(loads, "; ") + "\n")
	res.write(fmt.Sprintf("# took %v\n", took))

	var report strings.Builder
	for _, e := range env {
		fmt.Fprintln(&report, e)
	}
	if v, ok := res.median(caseLoopback, sysIperf, "mbps"); ok {
		fmt.Fprintf(&report, "loopback ceiling (iperf3, one stream, -l 1M, 127.0.0.1): %s MB/s\n", fmtInt(v))
	}
	fmt.Fprintf(&report, "load average (1, 5, 15 min): %s\n\n", strings.Join(loads, "; "))
	printReport(&report, res, b.systems)
	fmt.Fprintf(&report, "\n%d rounds, took %v; raw figures: %s\n", set.rounds, took, rawPath)
	os.Stdout.WriteString(report.String())
	txt := filepath.Join(set.out, stamp+".txt")
	if err := os.WriteFile(txt, []byte(report.String()), 0o644); err != nil {
		logf("%v", err)
	}
	if res.err != nil {
		logf("raw file: %v", res.err)
		return 1
	}
	if b.failures > 0 || ctx.Err() != nil {
		logf("%d runs failed (see above)", b.failures)
		return 1
	}
	return 0
}

// environment describes the machine and the tools, for the report and
// the raw file.
func environment(set *settings) []string {
	first := func(argv ...string) string {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil && len(out) == 0 {
			return "not available"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	host, _ := os.Hostname()
	mode := fmt.Sprintf("%d interleaved rounds (medians), ~%gs a throughput run, %gs a latency case", set.rounds, set.seconds, set.latencySeconds)
	switch {
	case set.profile:
		mode = fmt.Sprintf("BENCH_PROFILE: ~%gs a profiled run", set.seconds)
	case set.quick:
		mode = "BENCH_QUICK: " + mode
	}
	fs := "?"
	if out, err := exec.Command("df", "--output=fstype", set.dir).Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) > 0 {
			fs = f[len(f)-1]
		}
	}
	lines := []string{
		"scstd bench " + time.Now().Format(time.RFC3339) + " on " + host + fmt.Sprintf(" (%d CPUs, %s)", runtime.NumCPU(), first("uname", "-r")),
		mode + fmt.Sprintf("; LUNs of %d MiB on %s (%s)", set.sizeMiB, set.dir, fs),
		"scstd: " + first(set.scstdBin, "version"),
	}
	for _, v := range set.variants {
		if v.Bin != "" {
			lines = append(lines, "scstd["+v.Name+"]: "+v.Bin+": "+first(v.Bin, "version"))
		}
	}
	return append(lines, "qemu-img: "+first("qemu-img", "--version")+"; iperf3: "+first("iperf3", "--version"))
}

// bench is one run in progress.
type bench struct {
	set       *settings
	res       *results
	ctx       context.Context
	instances []*instance
	systems   []*system
	counts    map[string]int // calibrated request counts by case and system
	failures  int
}

func (b *bench) fail(what string, err error) {
	if errors.Is(err, context.Canceled) || b.ctx.Err() != nil {
		return
	}
	b.failures++
	logf("%s: %v", what, err)
}

func (b *bench) startSystems(work string) error {
	wants := func(names ...string) bool {
		for _, n := range names {
			if b.set.cases.MatchString(n) {
				return true
			}
		}
		return false
	}
	var names []string
	for _, c := range ioCases {
		names = append(names, c.Name)
	}
	for _, c := range latencyCases {
		names = append(names, c.Name)
	}
	if !wants(append(names, caseManySessions)...) {
		return nil
	}
	for _, v := range b.set.variants {
		dir := filepath.Join(work, "scstd"+v.Name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		in, err := startScstd(b.set, v, dir)
		if err != nil {
			return fmt.Errorf("scstd %s: %v", v.Name, err)
		}
		b.instances = append(b.instances, in)
		b.systems = append(b.systems, in.sys...)
	}
	if _, err := exec.LookPath("tgtd"); err != nil {
		logf("tgtd not installed: scstd measured alone")
		return nil
	}
	in, err := startTgtd(b.ctx, b.set, work)
	if err != nil {
		logf("tgtd not measured: %v", err)
		return nil
	}
	b.instances = append(b.instances, in)
	b.systems = append(b.systems, in.sys...)
	return nil
}

func (b *bench) stopAll() {
	for _, in := range b.instances {
		in.stop()
	}
	b.instances = nil
}

// round measures every selected throughput and latency case once on
// every system, the systems in an order that rotates from round to round.
func (b *bench) round(n int) {
	set, res := b.set, b.res
	order := make([]*system, 0, len(b.systems))
	for i := range b.systems {
		order = append(order, b.systems[(i+n-1)%len(b.systems)])
	}
	logf("round %d of %d (load average %s)", n, set.rounds, loadAverage())
	if set.cases.MatchString(caseLoopback) {
		if v, err := loopback(b.ctx, set.seconds); err != nil {
			b.fail("loopback", err)
		} else {
			res.add(n, caseLoopback, sysIperf, "mbps", v)
			logf("  %-22s %-20s %8s MB/s", caseLoopback, sysIperf, fmtInt(v))
		}
	}
	for _, c := range ioCases {
		if !set.cases.MatchString(c.Name) {
			continue
		}
		for _, s := range order {
			r, err := b.measure(s, c)
			if err != nil {
				b.fail(c.Name+" on "+s.Name, err)
				continue
			}
			res.add(n, c.Name, s.Key, "iops", r.IOPS())
			res.add(n, c.Name, s.Key, "mbps", r.MBps(c.Size))
			res.add(n, c.Name, s.Key, "target_cpu_us_per_io", r.TargetCPUPerIO())
			res.add(n, c.Name, s.Key, "initiator_cpu_us_per_io", r.InitiatorCPUPerIO())
			res.add(n, c.Name, s.Key, "target_syscalls_per_io", r.SyscallsPerIO())
			res.add(n, c.Name, s.Key, "target_ctxsw_per_io", r.CtxSwPerIO())
			res.add(n, c.Name, s.Key, "seconds", r.Seconds)
			logf("  %-22s %-20s %8.1fk IOPS %7s MB/s  target %5.1f µs/IO  initiator %5.1f µs/IO  syscalls %.2f  ctxsw %.2f",
				c.Name, s.Name, r.IOPS()/1000, fmtInt(r.MBps(c.Size)), r.TargetCPUPerIO(), r.InitiatorCPUPerIO(), r.SyscallsPerIO(), r.CtxSwPerIO())
		}
	}
	if set.cases.MatchString(caseManySessions) {
		for _, s := range order {
			if len(s.Sessions) == 0 {
				continue
			}
			r, err := b.manySessions(s)
			if err != nil {
				b.fail(caseManySessions+" on "+s.Name, err)
				continue
			}
			res.add(n, caseManySessions, s.Key, "iops", r.IOPS())
			res.add(n, caseManySessions, s.Key, "target_cpu_us_per_io", r.TargetCPUPerIO())
			res.add(n, caseManySessions, s.Key, "initiator_cpu_us_per_io", r.InitiatorCPUPerIO())
			logf("  %-22s %-20s %8.1fk IOPS (%d sessions)  target %5.1f µs/IO", caseManySessions, s.Name, r.IOPS()/1000, len(s.Sessions), r.TargetCPUPerIO())
		}
	}
	for _, c := range latencyCases {
		if !set.cases.MatchString(c.Name) {
			continue
		}
		for _, s := range order {
			xs, err := latencyProbe(b.ctx, s, c.Write, time.Duration(set.latencySeconds*float64(time.Second)))
			if err != nil {
				b.fail(c.Name+" on "+s.Name, err)
				continue
			}
			us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
			p50, p99 := percentile(xs, 50), percentile(xs, 99)
			res.add(n, c.Name, s.Key, "p50_us", us(p50))
			res.add(n, c.Name, s.Key, "p99_us", us(p99))
			res.add(n, c.Name, s.Key, "p999_us", us(percentile(xs, 99.9)))
			res.add(n, c.Name, s.Key, "samples", float64(len(xs)))
			logf("  %-22s %-20s p50 %6.1f µs  p99 %6.1f µs  (%d commands)", c.Name, s.Name, us(p50), us(p99), len(xs))
		}
	}
}

// count is the request count of c on s, calibrated on first use.
func (b *bench) count(s *system, c ioCase) (int, error) {
	key := c.Name + " " + s.Key
	if n, ok := b.counts[key]; ok {
		return n, nil
	}
	n, err := calibrate(b.ctx, s.URL(), c, b.set.seconds)
	if err == nil {
		b.counts[key] = n
	}
	return n, err
}

// measure runs c on s.
func (b *bench) measure(s *system, c ioCase) (ioResult, error) {
	count, err := b.count(s, c)
	if err != nil {
		return ioResult{}, err
	}
	return measure(b.ctx, s.pid(), s.URL(), c, count)
}

// manySessions runs the 4 KiB QD32 read on every session URL of s at
// once, each session 1/n of the single-session request count (so the run
// lasts as long when the aggregate equals the single-session figure).
func (b *bench) manySessions(s *system) (ioResult, error) {
	c := ioCases[0]
	count, err := b.count(s, c)
	if err != nil {
		return ioResult{}, err
	}
	return manySessions(b.ctx, s.pid(), s.Sessions, c, max(count/len(s.Sessions), c.Depth*4))
}

func (b *bench) idle(work string) {
	logf("%s: %d sessions", caseIdle, b.set.idleSessions)
	r, err := idleSessions(b.ctx, b.set, work, b.set.idleSessions)
	if err != nil {
		b.fail(caseIdle, err)
		return
	}
	b.res.add(0, caseIdle, sysScstd, "rss_before_bytes", float64(r.Before))
	b.res.add(0, caseIdle, sysScstd, "rss_after_bytes", float64(r.After))
	b.res.add(0, caseIdle, sysScstd, "bytes_per_session", r.PerSessionBytes)
	b.res.add(0, caseIdle, sysScstd, "login_seconds", r.Login.Seconds())
	logf("  RSS %.1f → %.1f MiB: %.1f KiB a session; %d logins in %v", float64(r.Before)/(1<<20), float64(r.After)/(1<<20),
		r.PerSessionBytes/1024, r.Sessions, r.Login.Round(time.Millisecond))
}

func (b *bench) scale(work string) {
	reps := b.set.rounds
	for i := 1; i <= reps && b.ctx.Err() == nil; i++ {
		logf("%s: %d targets, %d LUNs (%d of %d)", caseScale, scaleTargets, scaleLUNs, i, reps)
		r, err := configScale(b.ctx, b.set, work)
		if err != nil {
			b.fail(caseScale, err)
			return
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
		add := func(metric string, ds ...time.Duration) {
			for _, d := range ds {
				b.res.add(i, caseScale, sysScstd, metric, ms(d))
			}
		}
		add("validate_ms", r.Validate)
		add("start_portal_ms", r.StartPortal...)
		add("start_running_ms", r.StartRunning...)
		add("reload_admin_ms", r.ReloadAdmin...)
		add("reload_unchanged_ms", r.ReloadUnchanged...)
		add("reload_watch_ms", r.ReloadWatch...)
		b.res.add(i, caseScale, sysScstd, "rss_bytes", float64(r.RSS))
		b.res.add(i, caseScale, sysScstd, "baseline_rss_bytes", float64(r.BaselineRSS))
		b.res.add(i, caseScale, sysScstd, "bytes_per_lun", float64(r.RSS-r.BaselineRSS)/scaleLUNs)
		b.res.add(i, caseScale, sysScstd, "peak_rss_bytes", float64(r.Peak))
		b.res.add(i, caseScale, sysScstd, "peak_bytes_per_lun", float64(r.Peak-r.BaselinePeak)/scaleLUNs)
		logf("  validate %v, start %v / %v, reload %v (unchanged %v), watch %v, RSS %.0f MiB (peak %.0f MiB)",
			r.Validate.Round(time.Millisecond), r.StartPortal, r.StartRunning, r.ReloadAdmin, r.ReloadUnchanged, r.ReloadWatch,
			float64(r.RSS)/(1<<20), float64(r.Peak)/(1<<20))
	}
}
