// Package isnsd runs Debian's open-isns server (isnsd) on a loopback port
// for one test, with isnsadm configured to talk to it. Package isns's
// client tests and the end-to-end tests use it.
package isnsd

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Server is one isnsd started by a test and stopped, by PID, when the test
// ends.
type Server struct {
	// Addr is the server's "127.0.0.1:port".
	Addr      string
	adminConf string
}

// Start starts isnsd with security off (isnsadm then needs no keys) and the
// default discovery domain on: a node in no discovery domain is in the
// default one. The caller checks first that isnsd and isnsadm are
// installed; Start fails the test when the server does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "isnsd.conf")
	writeFile(t, conf, fmt.Sprintf(`BindAddress = %s
ControlSocket = %s/isnsctl
PIDFile = %s/isnsd.pid
Database = %s/db
Security = 0
SLPRegister = 0
DefaultDiscoveryDomain = 1
RegistrationPeriod = 10m
`, addr, dir, dir, dir))
	adminConf := filepath.Join(dir, "isnsadm.conf")
	writeFile(t, adminConf, fmt.Sprintf("ServerAddress = %s\nSourceName = iqn.2026-11.org.example:isnsadm\nSecurity = 0\n", addr))
	logPath := filepath.Join(dir, "isnsd.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("isnsd", "-f", "-c", conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting isnsd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- isnsd log ---\n%s", b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("isnsd does not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Server{Addr: addr, adminConf: adminConf}
}

// Adm runs isnsadm against the server and returns its output; it fails the
// test when isnsadm fails.
func (s *Server) Adm(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.TryAdm(args...)
	if err != nil {
		t.Fatalf("isnsadm %q: %v\n%s", args, err, out)
	}
	return out
}

// TryAdm runs isnsadm against the server and returns its output and error,
// for callers that poll.
func (s *Server) TryAdm(args ...string) (string, error) {
	out, err := exec.Command("isnsadm", append([]string{"-c", s.adminConf}, args...)...).CombinedOutput()
	return string(out), err
}

func writeFile(t testing.TB, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
