package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100
// on every Linux architecture Go supports).
const userHZ = 100

// cpuTime is the user+system CPU time that pid and all its threads, live
// and exited, have used, from /proc/PID/stat (fields 14 and 15).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime+stime from the text of /proc/PID/stat. The
// command name (field 2) is in parentheses and may hold blanks, so the
// fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %v", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// counters are a process's cumulative counters, read around a run.
type counters struct {
	CPU time.Duration
	// Syscalls are its read- and write-like system calls (syscr + syscw
	// of /proc/PID/io: read, readv, write, writev, pread, pwrite,
	// sendfile...; not epoll_wait, futex or nanosleep).
	Syscalls int64
	// CtxSw are the context switches, voluntary and not, of its live
	// threads (/proc/PID/task/*/status; Go rarely ends a thread).
	CtxSw int64
}

func (c counters) sub(b counters) counters {
	return counters{CPU: c.CPU - b.CPU, Syscalls: c.Syscalls - b.Syscalls, CtxSw: c.CtxSw - b.CtxSw}
}

// readCounters reads pid's counters.
func readCounters(pid int) (counters, error) {
	var c counters
	var err error
	if c.CPU, err = cpuTime(pid); err != nil {
		return c, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return c, err
	}
	c.Syscalls = sumFields(string(b), "syscr:", "syscw:")
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return c, err
	}
	for _, t := range tasks {
		// A thread may end between the listing and the read.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name())); err == nil {
			c.CtxSw += sumFields(string(b), "voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")
		}
	}
	return c, nil
}

// sumFields adds the numbers of the "name: value" lines of text whose
// names are given.
func sumFields(text string, names ...string) int64 {
	var n int64
	for line := range strings.Lines(text) {
		for _, name := range names {
			if rest, ok := strings.CutPrefix(line, name); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				n += v
			}
		}
	}
	return n
}

// rssBytes is pid's resident set size (VmRSS in /proc/PID/status).
func rssBytes(pid int) (int64, error) {
	rss, _, err := memory(pid)
	return rss, err
}

// memory is pid's resident set size now and at its peak (VmRSS and VmHWM
// in /proc/PID/status).
func memory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	if rss, err = statusKB(string(b), "VmRSS:"); err == nil {
		peak, err = statusKB(string(b), "VmHWM:")
	}
	return rss, peak, err
}

// statusKB reads the line name of /proc/PID/status, in kB, as bytes.
func statusKB(status, name string) (int64, error) {
	for line := range strings.Lines(status) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("/proc status: %s %q", name, strings.TrimSpace(rest))
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			return n * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc status: no %s", name)
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// logRecord is one line a daemon wrote to stderr, as received.
type logRecord struct {
	At  time.Time
	Msg string // the JSON record's msg; empty for a line that is not JSON
}

// daemon is a server process the bench started and stops by its PID. Its
// standard error is read as it comes: scstd runs with -log-format json,
// and each record is kept with the time it arrived, so that a figure can
// end at a given record ("scstd running", "configuration applied").
type daemon struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{}

	mu      sync.Mutex
	changed *sync.Cond
	records []logRecord
	tail    []string // the last lines, for error messages
	eof     bool
}

const tailLines = 30

// startDaemon starts argv with env added to the bench's environment.
func startDaemon(name string, env []string, argv ...string) (*daemon, error) {
	d := &daemon{name: name, exited: make(chan struct{})}
	d.changed = sync.NewCond(&d.mu)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Env = append(os.Environ(), env...)
	// An os.Pipe rather than StderrPipe: Wait must not close the reading
	// end before the last records are read.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	d.cmd.Stdout, d.cmd.Stderr = w, w
	d.started = time.Now()
	err = d.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	go func() {
		d.read(r)
		r.Close()
	}()
	go func() {
		d.cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

func (d *daemon) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		at := time.Now()
		line := sc.Text()
		msg := recordMsg(sc.Bytes())
		d.mu.Lock()
		d.records = append(d.records, logRecord{At: at, Msg: msg})
		if len(d.tail) == tailLines {
			d.tail = d.tail[1:]
		}
		d.tail = append(d.tail, line)
		d.changed.Broadcast()
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.eof = true
	d.changed.Broadcast()
	d.mu.Unlock()
}

// recordMsg returns the msg of a JSON log record, "" for a line that is
// not one. slog's JSON handler writes msg among the first keys, and
// scstd's messages are plain text: the value is read up to its closing
// quote, and only a msg with an escape in it is decoded by encoding/json.
// Decoding every line with encoding/json made the reader slower than a
// 10,000-LUN start writes its 21,000 "change applied" records (53 ms of
// CPU for them, on the two CPUs the daemon starts on): the records
// queued in the pipe, and "scstd running" reached the bench long after
// the daemon wrote it.
func recordMsg(line []byte) string {
	const key = `"msg":"`
	if len(line) == 0 || line[0] != '{' || line[len(line)-1] != '}' {
		return ""
	}
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return ""
	}
	rest := line[i+len(key):]
	if j := bytes.IndexAny(rest, `"\`); j >= 0 && rest[j] == '"' {
		return string(rest[:j])
	}
	var rec struct {
		Msg string `json:"msg"`
	}
	if json.Unmarshal(line, &rec) != nil {
		return ""
	}
	return rec.Msg
}

// PID is the daemon's process ID.
func (d *daemon) PID() int { return d.cmd.Process.Pid }

// Tail is the end of what the daemon wrote, for error messages.
func (d *daemon) Tail() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.tail, "\n")
}

// records returns how many records have arrived so far.
func (d *daemon) recordCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.records)
}

// waitRecord waits for the first record with msg at index from or later
// and returns when it arrived and its index.
func (d *daemon) waitRecord(msg string, from int, timeout time.Duration) (time.Time, int, error) {
	deadline := time.AfterFunc(timeout, func() {
		d.mu.Lock()
		d.changed.Broadcast()
		d.mu.Unlock()
	})
	defer deadline.Stop()
	end := time.Now().Add(timeout)
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := from; ; {
		for ; i < len(d.records); i++ {
			if d.records[i].Msg == msg {
				return d.records[i].At, i, nil
			}
		}
		if d.eof {
			return time.Time{}, 0, fmt.Errorf("%s exited before logging %q:\n%s", d.name, msg, strings.Join(d.tail, "\n"))
		}
		if time.Now().After(end) {
			return time.Time{}, 0, fmt.Errorf("%s did not log %q within %v", d.name, msg, timeout)
		}
		d.changed.Wait()
	}
}

// waitPort waits until addr accepts TCP connections while the daemon
// runs, and returns when it first did.
func (d *daemon) waitPort(addr string, timeout time.Duration) (time.Time, error) {
	end := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			at := time.Now()
			c.Close()
			return at, nil
		}
		select {
		case <-d.exited:
			return time.Time{}, fmt.Errorf("%s exited before listening on %s:\n%s", d.name, addr, d.Tail())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(end) {
			return time.Time{}, fmt.Errorf("%s did not listen on %s within %v", d.name, addr, timeout)
		}
	}
}

// stop ends the daemon: SIGTERM, then SIGKILL after grace.
func (d *daemon) stop(grace time.Duration) {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(grace):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

// freePort returns a loopback TCP port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runTool runs a command to its end and returns its combined output and
// the CPU time it used (user+system, from wait4).
func runTool(ctx context.Context, argv ...string) (string, time.Duration, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return string(out), cpu, fmt.Errorf("%s: %v: %s", argv[0], err, strings.TrimSpace(string(out)))
	}
	return string(out), cpu, nil
}
