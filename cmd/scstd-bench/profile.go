package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/scstd/scstd/admin"
)

// The environment variables that make `scstd run` write profiles
// (cmd/scstd/profile.go).
const (
	envCPUProfile = "SCSTD_CPUPROFILE"
	envMemProfile = "SCSTD_MEMPROFILE"
)

// profileCase is one workload profiled on its own daemon.
type profileCase struct {
	Name string
	LUN  int // 0 fileio, 1 nullio (benchConfig)
	IO   ioCase
}

var profileCases = []profileCase{
	{"nullio-4k-read", 1, ioCases[0]},
	{"fileio-4k-read", 0, ioCases[0]},
	{"fileio-4k-write", 0, ioCases[1]},
	{"nullio-4k-write", 1, ioCases[1]},
	{"fileio-1m-read", 0, ioCases[2]},
	{"nullio-1m-read", 1, ioCases[2]},
}

// runProfile (BENCH_PROFILE=1) finds where scstd's CPU goes, case by
// case, each on a daemon of its own:
//
//   - a daemon that only starts and stops, profiled, for the baseline
//     (what starting costs in CPU and allocations);
//   - a plain daemon: the request count is calibrated, then `perf record
//     -e cpu-clock -g` samples it during one run (when perf works here),
//     and `strace -c -f` counts its system calls during a shorter one;
//   - a daemon with SCSTD_CPUPROFILE and SCSTD_MEMPROFILE: one measured
//     run of the calibrated count, then SIGTERM writes the profiles.
//
// Everything lands in BENCH_OUT/profile-STAMP, and a summary per I/O
// (CPU µs, allocations, bytes, system calls, top functions) is printed.
func runProfile(ctx context.Context, set *settings) int {
	stamp := time.Now().Format("20060102-150405")
	out, err := filepath.Abs(filepath.Join(set.out, "profile-"+stamp))
	if err == nil {
		err = os.MkdirAll(out, 0o755)
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	work, err := os.MkdirTemp(set.dir, "scstd-profile.")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(work)
	set.manySessions = 0
	var summary strings.Builder
	for _, e := range environment(set) {
		fmt.Fprintln(&summary, e)
	}
	fmt.Fprintf(&summary, "load average at start: %s\n", loadAverage())

	base, err := profileBaseline(set, work, out)
	if err != nil {
		logf("baseline: %v", err)
		return 1
	}
	failed := 0
	for _, pc := range profileCases {
		if !set.cases.MatchString(pc.Name) || ctx.Err() != nil {
			continue
		}
		logf("profiling %s", pc.Name)
		s, err := profileOne(ctx, set, work, out, pc, base)
		if err != nil {
			logf("%s: %v", pc.Name, err)
			failed++
			continue
		}
		summary.WriteString(s)
	}
	if set.cases.MatchString(caseScale) && ctx.Err() == nil {
		logf("profiling %s", caseScale)
		s, err := profileScale(set, work, out)
		if err != nil {
			logf("%s: %v", caseScale, err)
			failed++
		}
		summary.WriteString(s)
	}
	fmt.Fprintf(&summary, "\nload average at end: %s\nprofiles, perf and strace output: %s\n", loadAverage(), out)
	os.Stdout.WriteString(summary.String())
	if err := os.WriteFile(filepath.Join(out, "summary.txt"), []byte(summary.String()), 0o644); err != nil {
		logf("%v", err)
	}
	if failed > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// baseline is what a daemon that serves nothing costs, to subtract.
type baseline struct {
	allocObjects, allocBytes float64
}

// startProfiled starts scstd on the benchmark configuration in dir, with
// env added.
func startProfiled(set *settings, dir string, env []string) (*daemon, *system, *system, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, err
	}
	in, err := startScstdEnv(set, variant{}, dir, env)
	if err != nil {
		return nil, nil, nil, err
	}
	return in.d, in.sys[0], in.sys[1], nil
}

func profileBaseline(set *settings, work, out string) (baseline, error) {
	var b baseline
	allocs := filepath.Join(out, "baseline.allocs.pprof")
	d, _, _, err := startProfiled(set, filepath.Join(work, "baseline"), []string{envMemProfile + "=" + allocs})
	if err != nil {
		return b, err
	}
	d.stop(15 * time.Second)
	if b.allocObjects, err = pprofTotal(set.scstdBin, allocs, "alloc_objects"); err != nil {
		return b, err
	}
	b.allocBytes, err = pprofTotal(set.scstdBin, allocs, "alloc_space")
	return b, err
}

func profileOne(ctx context.Context, set *settings, work, out string, pc profileCase, base baseline) (string, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n=== %s (%s, LUN %d) ===\n", pc.Name, pc.IO.Label, pc.LUN)
	pick := func(fileio, nullio *system) *system {
		if pc.LUN == 0 {
			return fileio
		}
		return nullio
	}

	// Calibration, perf and strace on a plain daemon.
	d, f, n, err := startProfiled(set, filepath.Join(work, pc.Name+"-plain"), nil)
	if err != nil {
		return "", err
	}
	sys := pick(f, n)
	count, err := calibrate(ctx, sys.URL(), pc.IO, set.seconds)
	if err != nil {
		d.stop(15 * time.Second)
		return "", err
	}
	if _, err := exec.LookPath("perf"); err == nil {
		perfData := filepath.Join(out, pc.Name+".perf.data")
		r, err := underTool(ctx, d.PID(), sys.URL(), pc.IO, count, "perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
			"-p", strconv.Itoa(d.PID()), "-o", perfData)
		if err != nil {
			fmt.Fprintf(&sb, "perf: %v\n", err)
		} else {
			fmt.Fprintf(&sb, "under perf: %.1fk IOPS, target CPU %.1f µs/IO, %.2f read+write calls/IO, %.2f context switches/IO\n",
				r.IOPS()/1000, r.TargetCPUPerIO(), r.SyscallsPerIO(), r.CtxSwPerIO())
			sb.WriteString(perfSummary(perfData, filepath.Join(out, pc.Name+".perf.txt")))
		}
	}
	if _, err := exec.LookPath("strace"); err == nil {
		straceOut := filepath.Join(out, pc.Name+".strace.txt")
		n := max(count/10, pc.IO.Depth*4)
		if _, err := underTool(ctx, d.PID(), sys.URL(), pc.IO, n, "strace", "-c", "-f", "-q", "-o", straceOut,
			"-p", strconv.Itoa(d.PID())); err != nil {
			fmt.Fprintf(&sb, "strace: %v\n", err)
		} else {
			sb.WriteString(straceSummary(straceOut, n))
		}
	}
	d.stop(15 * time.Second)

	// The profiled run.
	cpuProf := filepath.Join(out, pc.Name+".cpu.pprof")
	allocs := filepath.Join(out, pc.Name+".allocs.pprof")
	d, f, n, err = startProfiled(set, filepath.Join(work, pc.Name+"-pprof"),
		[]string{envCPUProfile + "=" + cpuProf, envMemProfile + "=" + allocs})
	if err != nil {
		return "", err
	}
	sys = pick(f, n)
	r, err := measure(ctx, d.PID(), sys.URL(), pc.IO, count)
	d.stop(15 * time.Second)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&sb, "profiled run: %d I/Os, %.1fk IOPS, %s MB/s; target CPU %.1f µs/IO (/proc), initiator %.1f µs/IO; %.2f read+write calls/IO, %.2f context switches/IO\n",
		r.Count, r.IOPS()/1000, fmtInt(r.MBps(pc.IO.Size)), r.TargetCPUPerIO(), r.InitiatorCPUPerIO(), r.SyscallsPerIO(), r.CtxSwPerIO())
	objs, err1 := pprofTotal(set.scstdBin, allocs, "alloc_objects")
	bytes, err2 := pprofTotal(set.scstdBin, allocs, "alloc_space")
	if err1 == nil && err2 == nil {
		fmt.Fprintf(&sb, "allocations: %.2f objects, %.0f bytes per I/O (sampled; start-up subtracted)\n",
			(objs-base.allocObjects)/float64(r.Count), (bytes-base.allocBytes)/float64(r.Count))
	}
	for _, v := range []struct{ name, flag, index string }{
		{"flat", "", ""}, {"cum", "-cum", ""},
		{"allocs", "", "alloc_objects"},
	} {
		prof := cpuProf
		args := []string{"tool", "pprof", "-top", "-nodecount=25"}
		if v.index != "" {
			prof = allocs
			args = append(args, "-sample_index="+v.index)
		} else {
			args = append(args, "-unit=ms")
		}
		if v.flag != "" {
			args = append(args, v.flag)
		}
		txt, err := exec.Command("go", append(args, set.scstdBin, prof)...).CombinedOutput()
		os.WriteFile(filepath.Join(out, pc.Name+".pprof-"+v.name+".txt"), txt, 0o644)
		if err != nil {
			fmt.Fprintf(&sb, "pprof %s: %v\n", v.name, err)
			continue
		}
		if v.index != "" {
			fmt.Fprintf(&sb, "pprof allocations (alloc_objects, top):\n%s", indent(topLines(string(txt), 10)))
			continue
		}
		fmt.Fprintf(&sb, "pprof %s, µs per I/O:\n%s", v.name, perIOTable(string(txt), r.Count, 18))
	}
	return sb.String(), nil
}

// profileScale profiles the configuration case: a daemon started on
// 1,000 targets and 10,000 LUNs, two reloads of one LUN through the admin
// API, and the stop; the CPU profile covers the whole.
func profileScale(set *settings, work, out string) (string, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n=== %s (%d targets, %d LUNs: start and two reloads of one LUN) ===\n", caseScale, scaleTargets, scaleLUNs)
	dir := filepath.Join(work, caseScale)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	portal := fmt.Sprintf("127.0.0.1:%d", port)
	cfg, sock := filepath.Join(dir, "scale.hcl"), filepath.Join(dir, "scale.sock")
	srcs := [2][]byte{[]byte(scaleConfig(portal, scaleTargets, scaleLUNsPerTarget, false)),
		[]byte(scaleConfig(portal, scaleTargets, scaleLUNsPerTarget, true))}
	if err := os.WriteFile(cfg, srcs[0], 0o644); err != nil {
		return "", err
	}
	cpuProf := filepath.Join(out, caseScale+".cpu.pprof")
	allocs := filepath.Join(out, caseScale+".allocs.pprof")
	d, err := startDaemon("scstd (10,000 LUNs)", []string{envCPUProfile + "=" + cpuProf, envMemProfile + "=" + allocs},
		set.scstdBin, "run", "-config", cfg, "-admin-socket", sock, "-watch=false", "-log-format", "json")
	if err != nil {
		return "", err
	}
	at, _, err := d.waitRecord("scstd running", 0, 120*time.Second)
	if err != nil {
		d.stop(15 * time.Second)
		return "", err
	}
	fmt.Fprintf(&sb, "start to \"scstd running\": %v (profiled)\n", at.Sub(d.started).Round(time.Millisecond))
	cl := admin.NewClient(sock)
	for i := 1; i <= 2 && err == nil; i++ {
		if err = writeAtomic(cfg, srcs[i%2]); err == nil {
			start := time.Now()
			var rep admin.ReloadReply
			if rep, err = cl.Reload(false); err == nil && !rep.OK {
				err = fmt.Errorf("reload: %s", rep.Error)
			}
			fmt.Fprintf(&sb, "reload %d: %v (profiled)\n", i, time.Since(start).Round(time.Millisecond))
		}
	}
	d.stop(15 * time.Second)
	if err != nil {
		return sb.String(), err
	}
	for _, v := range []struct{ name, flag, prof, index string }{
		{"flat", "", cpuProf, ""}, {"cum", "-cum", cpuProf, ""}, {"allocs", "-cum", allocs, "-sample_index=alloc_space"},
	} {
		args := []string{"tool", "pprof", "-top", "-nodecount=30"}
		if v.flag != "" {
			args = append(args, v.flag)
		}
		if v.index != "" {
			args = append(args, v.index)
		}
		txt, err := exec.Command("go", append(args, set.scstdBin, v.prof)...).CombinedOutput()
		os.WriteFile(filepath.Join(out, caseScale+".pprof-"+v.name+".txt"), txt, 0o644)
		if err != nil {
			fmt.Fprintf(&sb, "pprof %s: %v\n", v.name, err)
			continue
		}
		fmt.Fprintf(&sb, "pprof %s:\n%s", v.name, indent(topLines(string(txt), 36)))
	}
	return sb.String(), nil
}

// underTool runs tool (which attaches to pid) during one measured run,
// then stops it with SIGINT (perf and strace then write their reports).
func underTool(ctx context.Context, pid int, url string, c ioCase, count int, argv ...string) (ioResult, error) {
	t, err := startDaemon(argv[0], nil, argv...)
	if err != nil {
		return ioResult{}, err
	}
	time.Sleep(500 * time.Millisecond) // attach
	r, err := measure(ctx, pid, url, c, count)
	t.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-t.exited:
	case <-time.After(60 * time.Second):
		t.stop(5 * time.Second)
	}
	if err == nil && t.cmd.ProcessState != nil && !t.cmd.ProcessState.Success() &&
		t.cmd.ProcessState.ExitCode() != 130 && t.cmd.ProcessState.ExitCode() != -1 {
		err = fmt.Errorf("%s: %s\n%s", argv[0], t.cmd.ProcessState, t.Tail())
	}
	return r, err
}

// pprofTotal is a profile's total for index (pprof's "of N total").
func pprofTotal(bin, prof, index string) (float64, error) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=1", "-sample_index="+index, bin, prof).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pprof: %v: %s", err, out)
	}
	m := regexp.MustCompile(`of ([0-9.]+)([a-zA-Z]*) total`).FindStringSubmatch(string(out))
	if m == nil {
		return 0, fmt.Errorf("pprof: no total in %q", out)
	}
	return withUnit(m[1], m[2])
}

// withUnit reads pprof's numbers: "12.5", "3.2MB", "640kB", "120ms".
func withUnit(num, unit string) (float64, error) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	mul := map[string]float64{"": 1, "B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40,
		"ns": 1e-6, "us": 1e-3, "ms": 1, "s": 1e3}
	m, ok := mul[unit]
	if !ok {
		return 0, fmt.Errorf("pprof: unit %q", unit)
	}
	return v * m, nil
}

var pprofLineRE = regexp.MustCompile(`^\s*([0-9.]+)([a-z]*)\s+[0-9.]+%\s+[0-9.]+%\s+([0-9.]+)([a-z]*)\s+[0-9.]+%\s+(.+)$`)

// perIOTable turns pprof -top lines (in ms) into µs of CPU per I/O.
func perIOTable(top string, ios, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "    %8s %8s  %s\n", "flat", "cum", "function")
	rows := 0
	for line := range strings.Lines(top) {
		m := pprofLineRE.FindStringSubmatch(strings.TrimRight(line, "\n"))
		if m == nil {
			if strings.HasPrefix(line, "Showing nodes") {
				b.WriteString("    " + line)
			}
			continue
		}
		flat, err1 := withUnit(m[1], m[2])
		cum, err2 := withUnit(m[3], m[4])
		if err1 != nil || err2 != nil {
			continue
		}
		fmt.Fprintf(&b, "    %8.2f %8.2f  %s\n", flat*1e3/float64(ios), cum*1e3/float64(ios), m[5])
		if rows++; rows == n {
			break
		}
	}
	return b.String()
}

// perfSummary reports perf's samples by DSO (kernel, scstd, vdso) and the
// top symbols; the whole report goes to txt.
func perfSummary(data, txt string) string {
	var b strings.Builder
	full, err := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym",
		"--percent-limit", "0.3", "-g", "none").CombinedOutput()
	os.WriteFile(txt, full, 0o644)
	if err != nil {
		return fmt.Sprintf("perf report: %v\n", err)
	}
	dso, err := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso", "-g", "none").CombinedOutput()
	if err == nil {
		fmt.Fprintf(&b, "perf samples by object:\n%s", indent(topLines(string(dso), 6)))
	}
	fmt.Fprintf(&b, "perf top symbols (self):\n%s", indent(topLines(string(full), 20)))
	children, err := exec.Command("perf", "report", "-i", data, "--stdio", "--children", "--sort", "sym", "-g", "none",
		"--percent-limit", "4").CombinedOutput()
	if err == nil {
		fmt.Fprintf(&b, "perf inclusive (children) by symbol:\n%s", indent(topLines(string(children), 40)))
	}
	return b.String()
}

// topLines keeps the first n lines that are not comments or blank.
func topLines(s string, n int) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(line)
		if n--; n == 0 {
			break
		}
	}
	return b.String()
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("    " + line)
	}
	return b.String()
}

// straceSummary turns `strace -c` counts into system calls per I/O.
func straceSummary(path string, ios int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("strace: %v\n", err)
	}
	type sc struct {
		name  string
		calls int
	}
	var calls []sc
	total := 0
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		// % time, seconds, usecs/call, calls, [errors], syscall
		if len(f) < 5 || f[len(f)-1] == "total" || f[len(f)-1] == "syscall" {
			continue
		}
		n, err := strconv.Atoi(f[3])
		if err != nil {
			continue
		}
		calls = append(calls, sc{f[len(f)-1], n})
		total += n
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].calls > calls[j].calls })
	var b strings.Builder
	fmt.Fprintf(&b, "system calls per I/O (strace -c, %d I/Os): %.2f in all:", ios, float64(total)/float64(ios))
	for i, c := range calls {
		if i == 8 {
			break
		}
		fmt.Fprintf(&b, " %s %.2f", c.name, float64(c.calls)/float64(ios))
	}
	b.WriteString("\n")
	return b.String()
}
