package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Timeouts of the endpoint's HTTP server: a scraper that does not send
// its request or read the answer is dropped, and a listener that moves
// gives scrapes in progress shutdownGrace to finish.
const (
	readHeaderTimeout = 10 * time.Second
	writeTimeout      = 30 * time.Second
	shutdownGrace     = 5 * time.Second
)

// NewRegistry returns a registry with the collector, and the Go runtime's
// and the process's collectors (go_*, process_*).
func NewRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Endpoint serves a registry over HTTP at /metrics on at most one
// listener at a time, which Serve moves (reconcile.MetricsEndpoint).
type Endpoint struct {
	handler http.Handler
	log     *slog.Logger

	mu     sync.Mutex
	srv    *http.Server
	addr   string
	closed bool
}

// NewEndpoint returns an endpoint serving reg, serving nothing until
// Serve.
func NewEndpoint(reg *prometheus.Registry, log *slog.Logger) *Endpoint {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "scstd: metrics at /metrics")
	})
	return &Endpoint{handler: mux, log: log}
}

// Serve makes ln the endpoint's only listener (nil: none). The server of
// the listener before stops accepting at once; its scrapes in progress
// get shutdownGrace to finish. After Close, ln is closed.
func (e *Endpoint) Serve(ln net.Listener) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		if ln != nil {
			ln.Close()
		}
		return
	}
	if old := e.srv; old != nil {
		e.log.Info("metrics endpoint stopped", "listen", e.addr)
		go shutdown(old)
	}
	e.srv, e.addr = nil, ""
	if ln == nil {
		return
	}
	srv := &http.Server{Handler: e.handler, ReadHeaderTimeout: readHeaderTimeout, WriteTimeout: writeTimeout,
		ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug)}
	e.srv, e.addr = srv, ln.Addr().String()
	e.log.Info("metrics endpoint listening", "listen", e.addr)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("metrics endpoint failed", "listen", ln.Addr().String(), "err", err)
		}
	}()
}

// Addr is the address the endpoint listens on, "" when none.
func (e *Endpoint) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// Close stops the endpoint and every later Serve.
func (e *Endpoint) Close() {
	e.mu.Lock()
	srv := e.srv
	e.srv, e.addr, e.closed = nil, "", true
	e.mu.Unlock()
	if srv != nil {
		shutdown(srv)
	}
}

// shutdown stops srv, giving scrapes in progress shutdownGrace.
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
}
