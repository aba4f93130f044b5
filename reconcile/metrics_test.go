package reconcile

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstd/scstd/scsi"
)

// endpoint records the listeners the engine hands to the metrics
// endpoint.
type endpoint struct {
	mu    sync.Mutex
	calls []net.Listener
}

func (p *endpoint) Serve(ln net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, ln)
}

// take returns the Serve calls since the last take.
func (p *endpoint) take() []net.Listener {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.calls
	p.calls = nil
	return c
}

func metricsConfig(listen string) string {
	return "iscsi { portals = [\"127.0.0.1:3260\"] }\nmetrics {\n  listen = \"" + listen + "\"\n}\n"
}

// TestMetricsEndpointFollowsReloads: the first Apply binds the address
// and hands the listener over; an unchanged address is left alone; a new
// one is bound before the reload commits, and one that cannot be bound
// rejects the reload with nothing changed; removing it stops serving.
func TestMetricsEndpointFollowsReloads(t *testing.T) {
	ep := &endpoint{}
	r := &recorder{}
	e := NewEngine(r, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1, Metrics: ep})
	t.Cleanup(func() { e.Close() })

	first := freeAddr(t)
	apply(t, e, parse(t, metricsConfig(first)))
	calls := ep.take()
	if len(calls) != 1 || calls[0] == nil || calls[0].Addr().String() != first {
		t.Fatalf("first Apply: Serve calls %v", calls)
	}
	defer calls[0].Close()
	apply(t, e, parse(t, metricsConfig(first)))
	if calls := ep.take(); len(calls) != 0 {
		t.Fatalf("unchanged address: Serve calls %v", calls)
	}

	// An address in use: the reload is rejected, nothing changed.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	gen := e.Status().Generation
	_, err = e.Apply(context.Background(), parse(t, metricsConfig(busy.Addr().String())), ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "metrics listen "+busy.Addr().String()) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("Apply on a busy address: %v", err)
	}
	if calls := ep.take(); len(calls) != 0 || e.Status().Generation != gen {
		t.Fatalf("rejected reload: Serve calls %v, generation %d (was %d)", calls, e.Status().Generation, gen)
	}

	// Portals that fail after the metrics address was bound: the new
	// listener is closed again.
	r.mu.Lock()
	r.portalErr = errors.New("address in use")
	r.mu.Unlock()
	free := freeAddr(t)
	src := strings.Replace(metricsConfig(free), "127.0.0.1:3260", "127.0.0.1:3261", 1)
	if _, err := e.Apply(context.Background(), parse(t, src), ApplyOptions{}); err == nil {
		t.Fatal("Apply with failing portals succeeded")
	}
	if calls := ep.take(); len(calls) != 0 {
		t.Fatalf("failed portals: Serve calls %v", calls)
	}
	waitBindable(t, free)
	r.mu.Lock()
	r.portalErr = nil
	r.mu.Unlock()

	apply(t, e, parse(t, metricsConfig(free)))
	calls = ep.take()
	if len(calls) != 1 || calls[0] == nil || calls[0].Addr().String() != free {
		t.Fatalf("moved: Serve calls %v", calls)
	}
	calls[0].Close()
	apply(t, e, parse(t, `iscsi { portals = ["127.0.0.1:3260"] }`))
	if calls := ep.take(); len(calls) != 1 || calls[0] != nil {
		t.Fatalf("removed: Serve calls %v", calls)
	}
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// waitBindable fails unless addr can be bound (the engine closed what it
// bound there).
func waitBindable(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still bound: %v", addr, err)
		}
	}
}

// TestLUNCountersAcrossReloads: a LUN map rebuilt by a reload keeps the
// counters of every LUN that still reaches the same device; a LUN that
// reaches another device starts from zero.
func TestLUNCountersAcrossReloads(t *testing.T) {
	e, r := newTestEngine(t)
	apply(t, e, parse(t, twoTargets))
	stats := func(lun scsi.LUN) *scsi.IOStats { return r.snap.Targets[iqnB].LUNs.Lookup(lun).Stats }
	s0, s1 := stats(0), stats(1)
	s0.Record(scsi.ClassRead, scsi.Good, nil, 4096, 0, time.Millisecond)

	apply(t, e, parse(t, strings.Replace(twoTargets, `lun "1" { device = "null1" }`,
		`lun "1" { device = "null1" }
  lun "2" { device = "null1" }`, 1)))
	if stats(0) != s0 || stats(1) != s1 || stats(2) == nil || stats(2) == s1 {
		t.Fatal("a LUN kept through a reload lost its counters, or a new LUN shares them")
	}
	if c := e.Status().Targets[1].LUNs[0].IO; c == nil || c.ReadBytes != 4096 || c.Commands.Read != 1 {
		t.Errorf("status of lun 0: %+v", c)
	}

	apply(t, e, parse(t, strings.Replace(twoTargets, `lun "0" { device = "null2" }`, `lun "0" { device = "null1" }`, 1)))
	if stats(0) == s0 || stats(0).Counters().Commands.Total() != 0 {
		t.Error("a LUN that reaches another device kept the old device's counters")
	}
}
