package etcdtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts of the server's life cycle, generous for a busy machine.
const (
	// StartTimeout bounds the wait for the server to report itself healthy.
	StartTimeout = 30 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 10 * time.Second
)

// optionalEnv makes a missing etcd binary skip the test instead of failing it.
const optionalEnv = "SCSTD_E2E_OPTIONAL"

// Options say how to run the server.
type Options struct {
	// TLS serves clients over https and requires a client certificate
	// signed by the test CA (Server.CAFile, CertFile, KeyFile).
	TLS bool
}

// Server is one etcd member run by a test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string // scratch: data directory, certificates, log
	opts Options
	// ClientPort and PeerPort are the member's loopback ports, kept
	// across restarts.
	ClientPort, PeerPort int
	// CAFile, CertFile and KeyFile are PEM files for a TLS client (with
	// Options.TLS): the CA that signed the server's certificate, and a
	// client certificate and key it accepts.
	CAFile, CertFile, KeyFile string

	mu   sync.Mutex
	proc *process
	log  *lockedBuffer
}

type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// Start starts a new etcd member and waits until it is healthy. It is
// stopped when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv(optionalEnv) == "1" {
			t.Skipf("etcd is not installed (make deps installs Debian's etcd-server); skipped because %s=1", optionalEnv)
		}
		t.Fatalf("etcd is not installed: run `make deps` (Debian's etcd-server), or set %s=1 to skip the tests that need it", optionalEnv)
	}
	dir, err := os.MkdirTemp("", "scstd-etcd-")
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: dir, opts: opts, log: &lockedBuffer{}}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("--- etcd log ---\n%s", s.log.tail(32<<10))
		}
		os.RemoveAll(dir)
	})
	if opts.TLS {
		if err := s.makeCertificates(); err != nil {
			t.Fatalf("etcdtest: certificates: %v", err)
		}
	}
	for attempt := 1; ; attempt++ {
		s.ClientPort, s.PeerPort = freePort(t), freePort(t)
		err = s.start()
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(s.log.String(), "address already in use") {
			t.Fatalf("etcdtest: etcd did not start: %v\n%s", err, s.log.tail(16<<10))
		}
		os.RemoveAll(s.dataDir())
	}
}

// Endpoint returns the client URL, "http://127.0.0.1:PORT" (https with
// Options.TLS).
func (s *Server) Endpoint() string {
	scheme := "http"
	if s.opts.TLS {
		scheme = "https"
	}
	return scheme + "://127.0.0.1:" + strconv.Itoa(s.ClientPort)
}

// PID returns the running server's process id, or 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Log returns what etcd has logged so far.
func (s *Server) Log() string { return s.log.String() }

// Start starts the stopped member again, on its ports and data.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("etcdtest: etcd did not restart: %v\n%s", err, s.log.tail(16<<10))
	}
}

func (s *Server) dataDir() string { return s.dir + "/data" }

func (s *Server) start() error {
	s.mu.Lock()
	if s.proc != nil {
		s.mu.Unlock()
		return errors.New("already running")
	}
	client := s.Endpoint()
	peer := "http://127.0.0.1:" + strconv.Itoa(s.PeerPort)
	args := []string{
		"--name", "test", "--data-dir", s.dataDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test=" + peer, "--initial-cluster-state", "new",
		"--logger", "zap", "--log-level", "warn",
	}
	if s.opts.TLS {
		args = append(args, "--cert-file", s.dir+"/server.pem", "--key-file", s.dir+"/server.key",
			"--client-cert-auth", "--trusted-ca-file", s.CAFile)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	s.proc = p
	s.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(StartTimeout)
	for {
		if s.healthy() {
			return nil
		}
		select {
		case <-p.exited:
			s.mu.Lock()
			s.proc = nil
			s.mu.Unlock()
			return fmt.Errorf("etcd exited: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("etcd at %s was not healthy within %v", client, StartTimeout)
		}
	}
}

// healthy asks etcd's /health endpoint, which answers true once the
// member has a leader.
func (s *Server) healthy() bool {
	tr := &http.Transport{}
	if s.opts.TLS {
		cfg, err := s.ClientTLS()
		if err != nil {
			return false
		}
		tr.TLSClientConfig = cfg
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint()+"/health", nil)
	rsp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(rsp.Body, 4096))
	return rsp.StatusCode == http.StatusOK && strings.Contains(string(b), `"health":"true"`)
}

// Stop sends SIGTERM to the server by its PID and waits for it to exit;
// after StopTimeout it sends SIGKILL. Stop on a stopped server does
// nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(StopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		s.t.Logf("etcdtest: etcd (pid %d) ignored SIGTERM for %v and was killed", p.cmd.Process.Pid, StopTimeout)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: picking a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ClientTLS returns the TLS configuration of a client of a TLS server.
func (s *Server) ClientTLS() (*tls.Config, error) {
	return clientTLS(s.CAFile, s.CertFile, s.KeyFile)
}

// lockedBuffer collects the server's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) > 8<<20 {
		l.b = append(l.b[:0], l.b[len(l.b)-(4<<20):]...)
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func (l *lockedBuffer) tail(n int) string {
	s := l.String()
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}
