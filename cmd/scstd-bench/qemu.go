package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// ioCase is one qemu-img bench workload.
type ioCase struct {
	Name  string // in the raw file and BENCH_CASES: "4k-qd32-read"
	Label string // in the table: "4 KiB QD32 read"
	Size  int
	Depth int
	Write bool
}

var ioCases = []ioCase{
	{"4k-qd32-read", "4 KiB QD32 read", 4096, 32, false},
	{"4k-qd32-write", "4 KiB QD32 write", 4096, 32, true},
	{"1m-qd8-read", "1 MiB QD8 read", 1 << 20, 8, false},
	{"1m-qd8-write", "1 MiB QD8 write", 1 << 20, 8, true},
}

// caseManySessions is the many-sessions case: the 4 KiB QD32 read on the
// null LUNs, from several sessions at once.
const caseManySessions = "sessions-4k-qd32-read"

// ioResult is one measured run.
type ioResult struct {
	Count   int
	Seconds float64
	// Target are the target's counters over the run (read from /proc
	// around the qemu-img processes), InitiatorCPU qemu-img's CPU time
	// (wait4).
	Target       counters
	InitiatorCPU time.Duration
}

func (r ioResult) IOPS() float64 { return float64(r.Count) / r.Seconds }

// MBps is in decimal megabytes (10^6) per second, as iperf3's figure.
func (r ioResult) MBps(size int) float64 { return float64(r.Count) * float64(size) / r.Seconds / 1e6 }

func (r ioResult) TargetCPUPerIO() float64 { return usPerIO(r.Target.CPU, r.Count) }

func (r ioResult) SyscallsPerIO() float64 { return float64(r.Target.Syscalls) / float64(r.Count) }

func (r ioResult) CtxSwPerIO() float64 { return float64(r.Target.CtxSw) / float64(r.Count) }

func (r ioResult) InitiatorCPUPerIO() float64 { return usPerIO(r.InitiatorCPU, r.Count) }

func usPerIO(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }

var completedRE = regexp.MustCompile(`(?m)^Run completed in ([0-9.]+) seconds`)

// qemuBench runs `qemu-img bench` of count requests on url and returns
// the time qemu-img reports (requests only, not the login) and its CPU.
func qemuBench(ctx context.Context, url string, c ioCase, count int) (float64, time.Duration, error) {
	argv := []string{"qemu-img", "bench", "-f", "raw", "-t", "none", "-i", "threads",
		"-s", strconv.Itoa(c.Size), "-d", strconv.Itoa(c.Depth), "-c", strconv.Itoa(count)}
	if c.Write {
		argv = append(argv, "-w")
	}
	out, cpu, err := runTool(ctx, append(argv, url)...)
	if err != nil {
		return 0, cpu, err
	}
	m := completedRE.FindStringSubmatch(out)
	if m == nil {
		return 0, cpu, fmt.Errorf("qemu-img bench: no \"Run completed\" in %q", out)
	}
	secs, err := strconv.ParseFloat(m[1], 64)
	if err == nil && secs <= 0 {
		secs = 1e-3
	}
	return secs, cpu, err
}

// measure runs count requests of c on url with the target's CPU read
// around the run.
func measure(ctx context.Context, pid int, url string, c ioCase, count int) (ioResult, error) {
	before, err := readCounters(pid)
	if err != nil {
		return ioResult{}, err
	}
	secs, icpu, err := qemuBench(ctx, url, c, count)
	if err != nil {
		return ioResult{}, err
	}
	after, err := readCounters(pid)
	if err != nil {
		return ioResult{}, err
	}
	return ioResult{Count: count, Seconds: secs, Target: after.sub(before), InitiatorCPU: icpu}, nil
}

// calibrate returns the request count that makes c last about seconds
// on url, from a short probe run.
func calibrate(ctx context.Context, url string, c ioCase, seconds float64) (int, error) {
	probe := 5000
	if c.Size >= 1<<20 {
		probe = 100
	}
	t, _, err := qemuBench(ctx, url, c, probe)
	if err != nil {
		return 0, err
	}
	return max(int(float64(probe)*seconds/max(t, 1e-3)), c.Depth*4), nil
}

// manySessions runs c on every URL at once, count requests each, and
// returns the aggregate: all requests over the time from the first start
// to the last end (conservative: a session that ends early lowers it).
func manySessions(ctx context.Context, pid int, urls []string, c ioCase, count int) (ioResult, error) {
	before, err := readCounters(pid)
	if err != nil {
		return ioResult{}, err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		icpu time.Duration
	)
	start := time.Now()
	for _, u := range urls {
		wg.Go(func() {
			_, cpu, err := qemuBench(ctx, u, c, count)
			mu.Lock()
			defer mu.Unlock()
			icpu += cpu
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	if len(errs) > 0 {
		return ioResult{}, fmt.Errorf("%d of %d sessions failed; the first: %v", len(errs), len(urls), errs[0])
	}
	after, err := readCounters(pid)
	if err != nil {
		return ioResult{}, err
	}
	return ioResult{Count: count * len(urls), Seconds: wall, Target: after.sub(before), InitiatorCPU: icpu}, nil
}
