package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/config"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		err        bool
	}{
		{"plain", "4242 (scstd) S 1 4242 4242 0 -1 4194560 3030 0 0 0 150 25 0 0 20 0 9 0 1234 0 0", 1750 * time.Millisecond, false},
		{"blanks and parens in the name", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond, false},
		{"no name", "7 a R 1", 0, true},
		{"short", "7 (a) R 1 2 3", 0, true},
		{"not a number", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 4 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU(tt.stat)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, error %t", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestStatusKB(t *testing.T) {
	status := "Name:\tscstd\nVmPeak:\t  9000 kB\nVmHWM:\t   20000 kB\nVmRSS:\t   12345 kB\nThreads:\t7\n"
	if got, err := statusKB(status, "VmRSS:"); err != nil || got != 12345*1024 {
		t.Errorf("VmRSS = %d, %v", got, err)
	}
	if got, err := statusKB(status, "VmHWM:"); err != nil || got != 20000*1024 {
		t.Errorf("VmHWM = %d, %v", got, err)
	}
	if _, err := statusKB("Name:\tkthreadd\n", "VmRSS:"); err == nil {
		t.Error("no VmRSS: no error")
	}
	if _, err := statusKB("VmRSS:\t12 MB\n", "VmRSS:"); err == nil {
		t.Error("a unit other than kB: no error")
	}
}

func TestSumFields(t *testing.T) {
	io := "rchar: 100\nwchar: 200\nsyscr: 17\nsyscw: 25\nread_bytes: 0\n"
	if got := sumFields(io, "syscr:", "syscw:"); got != 42 {
		t.Errorf("sumFields = %d, want 42", got)
	}
}

func TestCountersOfThisProcess(t *testing.T) {
	c, err := readCounters(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if c.Syscalls <= 0 || c.CtxSw < 0 {
		t.Errorf("counters of this process: %+v", c)
	}
}

func TestMedianAndPercentile(t *testing.T) {
	if m := median([]float64{5, 1, 3}); m != 3 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	var xs []time.Duration
	for i := 100; i >= 1; i-- {
		xs = append(xs, time.Duration(i))
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {99.9, 100}, {100, 100}, {1, 1}} {
		if got := percentile(xs, tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if xs[0] != 100 {
		t.Error("percentile sorted its argument")
	}
}

func TestParseVariants(t *testing.T) {
	files := map[string]string{"m.hcl": "log_level = \"warn\"\n"}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, errors.New("no such file")
	}
	stat := func(p string) error {
		if p == "bin/old" {
			return nil
		}
		return errors.New("no such file")
	}
	tests := []struct {
		spec  string
		names []string
		err   string
	}{
		{"", []string{""}, ""},
		{"base", []string{""}, ""},
		{"base, warn=m.hcl", []string{"", "warn"}, ""},
		{"x=missing.hcl", nil, "no such file"},
		{"nosuch", nil, "no variant"},
		{"a-b=m.hcl", nil, "without blanks"},
		{"gmp1:GOMAXPROCS=1 GOGC=off", []string{"gmp1"}, ""},
		{"gmp1:GOMAXPROCS", nil, "not VAR=VALUE"},
		{":GOGC=off", nil, "a name"},
		{"base,base", nil, "named twice"},
		{"base,old@bin/old", []string{"", "old"}, ""},
		{"old@bin/missing", nil, "no such file"},
		{"a-b@bin/old", nil, "without blanks"},
		{"base,metrics", []string{"", "metrics"}, ""},
	}
	for _, tt := range tests {
		vs, err := parseVariants(tt.spec, read, stat)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		var names []string
		for _, v := range vs {
			names = append(names, v.Name)
		}
		if strings.Join(names, ",") != strings.Join(tt.names, ",") {
			t.Errorf("%q: variants %q, want %q", tt.spec, names, tt.names)
		}
	}
	if vs, err := parseVariants("metrics", read, stat); err != nil || vs[0].Scrape != time.Second {
		t.Errorf("the metrics variant: %+v, %v; want one scraped every second", vs, err)
	}
}

// The generated configurations are what scstd accepts, at the scale
// they claim.
func TestGeneratedConfigurationsLoad(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name             string
		src              string
		devices, targets int
		luns             int
	}{
		{"bench", benchConfig("127.0.0.1:3260", filepath.Join(dir, "d.img"), 64, 16, ""), 18, 17, 18},
		{"bench with a variant", benchConfig("127.0.0.1:3260", filepath.Join(dir, "d.img"), 64, 0, "log_level = \"warn\""), 2, 1, 2},
		{"bench with metrics", benchConfig("127.0.0.1:3260", filepath.Join(dir, "d.img"), 64, 0, metricsBlock("127.0.0.1:9470")), 2, 1, 2},
		{"idle", idleConfig("127.0.0.1:3260", 1000), 1, 1, 1},
		{"scale", scaleConfig("127.0.0.1:3260", 30, 10, false), 300, 30, 300},
		{"scale plus one LUN", scaleConfig("127.0.0.1:3260", 30, 10, true), 300, 30, 301},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := config.Parse([]byte(tt.src), filepath.Join(dir, "bench.hcl"))
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			luns := 0
			for _, tg := range cfg.Targets {
				luns += len(tg.LUNs)
			}
			if len(cfg.Devices) != tt.devices || len(cfg.Targets) != tt.targets || luns != tt.luns {
				t.Errorf("%d devices, %d targets, %d LUNs; want %d, %d, %d",
					len(cfg.Devices), len(cfg.Targets), luns, tt.devices, tt.targets, tt.luns)
			}
		})
	}
}

func TestParseIperf(t *testing.T) {
	got, err := parseIperf(`{"start":{},"end":{"sum_sent":{"bits_per_second":3.3e10},"sum_received":{"bits_per_second":3.2e10}}}`)
	if err != nil || got != 4000 {
		t.Errorf("parseIperf = %v, %v; want 4000 MB/s", got, err)
	}
	if _, err := parseIperf(`{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}`); err == nil ||
		!strings.Contains(err.Error(), "unable to connect") {
		t.Errorf("an iperf3 error: %v", err)
	}
}

func TestPprofParsing(t *testing.T) {
	for _, tt := range []struct {
		num, unit string
		want      float64
	}{{"12.5", "", 12.5}, {"3", "MB", 3 << 20}, {"640", "kB", 640 << 10}, {"120", "ms", 120}, {"1.5", "s", 1500}} {
		if got, err := withUnit(tt.num, tt.unit); err != nil || got != tt.want {
			t.Errorf("withUnit(%q, %q) = %v, %v", tt.num, tt.unit, got, err)
		}
	}
	top := `File: scstd
Showing nodes accounting for 810ms, 95.29% of 850ms total
      flat  flat%   sum%        cum   cum%
     450ms 52.94% 52.94%      450ms 52.94%  internal/runtime/syscall/linux.Syscall6
      10ms  1.18% 54.12%      360ms 42.35%  github.com/scstd/scstd/iscsi.(*FrameWriter).Flush
         0     0% 54.12%      510ms 60.00%  github.com/scstd/scstd/iscsi.executor
`
	got := perIOTable(top, 100000, 10)
	for _, want := range []string{"4.50     4.50  internal/runtime/syscall/linux.Syscall6",
		"0.10     3.60  github.com/scstd/scstd/iscsi.(*FrameWriter).Flush", "0.00     5.10  github.com/scstd/scstd/iscsi.executor"} {
		if !strings.Contains(got, want) {
			t.Errorf("perIOTable lacks %q:\n%s", want, got)
		}
	}
}

func TestStraceSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strace.txt")
	writeFile(t, path, `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.600000          12     50000           write
 30.00    0.300000           6     30000      1000 read
 10.00    0.100000          10     10000           epoll_pwait
------ ----------- ----------- --------- --------- ----------------
100.00    1.000000          11     90000      1000 total
`)
	got := straceSummary(path, 100000)
	if !strings.Contains(got, "0.90 in all: write 0.50 read 0.30 epoll_pwait 0.10") {
		t.Errorf("straceSummary = %q", got)
	}
}

func TestReportTable(t *testing.T) {
	var buf strings.Builder
	r := newResults(&buf, []string{"a comment"})
	systems := []*system{
		{Name: "scstd fileio", Key: "scstd-fileio", Peer: "tgtd-rdwr"},
		{Name: "scstd nullio", Key: "scstd-nullio", Peer: "tgtd-null"},
		{Name: "tgtd rdwr", Key: "tgtd-rdwr"},
		{Name: "tgtd null", Key: "tgtd-null"},
	}
	for round, v := range []float64{60000, 62000, 10} { // 10: an outlier the median drops
		r.add(round+1, "4k-qd32-read", "scstd-fileio", "iops", v)
		r.add(round+1, "4k-qd32-read", "tgtd-rdwr", "iops", 25000)
	}
	r.add(1, "1m-qd8-read", "scstd-nullio", "mbps", 3600)
	r.add(1, caseLoopback, sysIperf, "mbps", 4000)
	r.add(1, "4k-qd32-read", "scstd-nullio", "iops", 50000)
	r.add(1, caseManySessions, "scstd-nullio", "iops", 55000)
	r.add(0, caseIdle, sysScstd, "bytes_per_session", 40<<10)
	var out strings.Builder
	printReport(&out, r, systems)
	for _, want := range []string{
		"4 KiB QD32 read IOPS                         60.0k         50.0k         25.0k             -         2.40×",
		"  ÷ loopback ceiling                             -           90%",
		"  ÷ 1 session                                    -         1.10×",
		"nullio 1 MiB QD8 read ÷ loopback ceiling                     90%       ≥ 90%   yes",
		"16 sessions ÷ 1 session, 4 KiB QD32 read, nullio           1.10×     ≥ 1.00×   yes",
		"RSS per idle session                                    40.0 KiB  ≤ 64.0 KiB   yes",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	var wide strings.Builder
	printReport(&wide, r, append(systems, &system{Name: "scstd[metrics] fileio", Key: "scstd.metrics-fileio"}))
	if head, _, _ := strings.Cut(wide.String(), "\n"); !strings.HasSuffix(head, "   tgtd null  scstd[metrics] fileio   fileio÷rdwr   nullio÷null") {
		t.Errorf("a long column name is not set apart:\n%s", head)
	}
	if strings.Contains(out.String(), "4 KiB QD32 write") {
		t.Errorf("a row without figures is printed:\n%s", out.String())
	}
	if !strings.HasPrefix(buf.String(), "# a comment\n"+tsvHeader+"1\t4k-qd32-read\tscstd-fileio\tiops\t60000\n") {
		t.Errorf("raw file starts:\n%s", buf.String())
	}
}

func TestFmtInt(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 4123456.4: "4,123,456", -2500: "-2,500"} {
		if got := fmtInt(v); got != want {
			t.Errorf("fmtInt(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestListensIn(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:7531 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:7532 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 00000000:0CBC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
`
	for port, want := range map[int]bool{30001: true, 30002: false, 3260: true, 3261: false} {
		if got := listensIn(tcp, port); got != want {
			t.Errorf("listensIn(%d) = %t, want %t", port, got, want)
		}
	}
}
