package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// qemuSession is one interactive qemu-io process: one iSCSI login for its
// whole life, fed a write and a verifying read at a time.
type qemuSession struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string

	ok   int      // commands that completed
	errs []string // failures: I/O errors, pattern mismatches, timeouts
	dead bool     // qemu-io exited or stopped answering
}

func startQemuSession(t *testing.T, url string) *qemuSession {
	t.Helper()
	requireTools(t, "qemu-io")
	cmd := exec.Command("qemu-io", "-f", "raw", url)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	q := &qemuSession{cmd: cmd, stdin: stdin, lines: make(chan string, 64)}
	go func() {
		defer close(q.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			q.lines <- strings.TrimPrefix(sc.Text(), "qemu-io> ")
		}
	}()
	t.Cleanup(func() {
		q.stdin.Close()
		q.cmd.Process.Kill()
		q.cmd.Wait()
	})
	return q
}

// do runs one qemu-io command and waits for its statistics line.
func (q *qemuSession) do(command string) {
	if q.dead {
		q.errs = append(q.errs, command+": not run, qemu-io is gone")
		return
	}
	if _, err := fmt.Fprintln(q.stdin, command); err != nil {
		q.errs = append(q.errs, fmt.Sprintf("%s: %v", command, err))
		return
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-q.lines:
			switch {
			case !ok:
				q.errs = append(q.errs, command+": qemu-io exited")
				q.dead = true
				return
			case strings.Contains(line, "failed"):
				q.errs = append(q.errs, command+": "+line)
				if !strings.Contains(line, "Pattern verification") {
					return // an I/O error prints no statistics
				}
			case strings.Contains(line, " ops; "):
				q.ok++
				return
			}
		case <-timeout:
			q.errs = append(q.errs, command+": no answer within 30s")
			q.dead = true
			return
		}
	}
}

// cycle writes pattern p over 256 KiB at off and reads it back verified.
func (q *qemuSession) cycle(p byte, off int) {
	q.do(fmt.Sprintf("write -P 0x%02x %d 262144", p, off))
	q.do(fmt.Sprintf("read -P 0x%02x %d 262144", p, off))
}
