package iscsi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestSetPortals(t *testing.T) {
	srv := NewServer(sessLogger(t))
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	if err := srv.SetPortals([]string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	ps := srv.Portals()
	if len(ps) != 1 {
		t.Fatalf("portals %v, want one", ps)
	}
	first := ps[0].String()
	nc, err := net.Dial("tcp", first)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// A portal that cannot be bound makes SetPortals fail and change
	// nothing: the working one stays.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := srv.SetPortals([]string{"127.0.0.1:0", busy.Addr().String()}); err == nil {
		t.Fatal("binding a busy address succeeded")
	}
	if ps := srv.Portals(); len(ps) != 1 || ps[0].String() != first {
		t.Fatalf("portals after a failed SetPortals: %v, want [%s]", ps, first)
	}

	// Removing the portal stops accepting, but the accepted connection
	// lives on.
	if err := srv.SetPortals(nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(srv.Portals()) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("portals still %v", srv.Portals())
		}
	}
	if c, err := net.DialTimeout("tcp", first, time.Second); err == nil {
		c.Close()
		t.Fatal("removed portal still accepts")
	}
	nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [1]byte
	if _, err := nc.Read(b[:]); err == nil || !isTimeout(err) {
		t.Fatalf("connection of a removed portal: %v, want it open (read timeout)", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestShutdown(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Shutdown(ctx) }()
	// The session is asked to log out.
	p := ti.recv()
	var m AsyncMessage
	if err := m.Decode(&p.BHS); err != nil || m.Event != AsyncLogoutRequest {
		t.Fatalf("got %s (%v), want a logout request", p.BHS.Opcode(), err)
	}
	p.Release()
	select {
	case err := <-errc:
		// The session was started outside the accept loop, so Shutdown
		// only waits for the listener; either outcome must come quickly.
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown hangs")
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	if err := srv.SetPortals([]string{"127.0.0.1:0"}); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("SetPortals after Shutdown: %v", err)
	}
	select {
	case <-ti.done:
	case <-time.After(5 * time.Second):
		t.Fatal("session outlived the logout grace period")
	}
}
