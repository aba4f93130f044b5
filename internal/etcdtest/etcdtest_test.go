package etcdtest

import (
	"os"
	"syscall"
	"testing"
)

// TestStartStopRestart: the member is healthy after Start, gone (by PID)
// after Stop, and healthy again on the same ports after Start.
func TestStartStopRestart(t *testing.T) {
	for _, opts := range []Options{{}, {TLS: true}} {
		s := Start(t, opts)
		pid := s.PID()
		if pid == 0 || !s.healthy() {
			t.Fatalf("TLS %v: not running after Start (pid %d)", opts.TLS, pid)
		}
		s.Stop()
		if s.PID() != 0 || s.healthy() {
			t.Fatal("still answering after Stop")
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still exists after Stop", pid)
		}
		port := s.ClientPort
		s.Start()
		if s.ClientPort != port || !s.healthy() {
			t.Errorf("restart: port %d (was %d), healthy %v", s.ClientPort, port, s.healthy())
		}
		if _, err := os.Stat(s.dataDir()); err != nil {
			t.Error(err)
		}
	}
}
