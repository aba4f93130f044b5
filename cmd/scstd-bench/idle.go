package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/scstd/scstd/internal/initiator"
)

// idleConfig serves one nullio LUN and lets sessions connections come
// from 127.0.0.1 (the per-address cap is 256 by default).
func idleConfig(portal string, sessions int) string {
	return fmt.Sprintf(`state_dir = "state"
iscsi {
  portals                     = [%q]
  max_connections             = %d
  max_connections_per_address = %d
}
handler "vdisk_nullio" {
  device "null0" { size = "1GiB" }
}
target %q {
  lun "0" { device = "null0" }
}
`, portal, sessions+64, sessions+64, iqnScstd)
}

// idleResult is what many idle sessions cost the daemon.
type idleResult struct {
	Sessions        int
	Before, After   int64 // RSS in bytes
	Login           time.Duration
	PerSessionBytes float64
}

// idleSessions starts a daemon of its own, logs in one session and out
// again (so that what every session shares is counted before), reads its
// RSS, logs in n sessions from this process (one connection each, distinct
// ISIDs) and leaves them idle for a second, then reads the RSS again.
func idleSessions(ctx context.Context, set *settings, dir string, n int) (idleResult, error) {
	var r idleResult
	port, err := freePort()
	if err != nil {
		return r, err
	}
	portal := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := filepath.Join(dir, "idle.hcl")
	if err := os.WriteFile(cfg, []byte(idleConfig(portal, n)), 0o644); err != nil {
		return r, err
	}
	d, err := startDaemon("scstd (idle sessions)", nil, set.scstdBin, "run", "-config", cfg,
		"-admin-socket", filepath.Join(dir, "idle.sock"), "-watch=false", "-log-format", "json")
	if err != nil {
		return r, err
	}
	defer d.stop(15 * time.Second)
	if _, _, err := d.waitRecord("scstd running", 0, 60*time.Second); err != nil {
		return r, err
	}
	login := func(i int) (*initiator.Conn, error) {
		c, err := initiator.Dial(portal)
		if err != nil {
			return nil, err
		}
		isid := [6]byte{0x80, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		if err := c.Login(initiator.Options{InitiatorName: "iqn.2026-11.org.scstd:bench-idle", TargetName: iqnScstd, ISID: isid, ImmediateData: true}); err != nil {
			c.Close()
			return nil, fmt.Errorf("session %d: %v", i, err)
		}
		return c, nil
	}
	warm, err := login(n + 1)
	if err != nil {
		return r, err
	}
	warm.Logout()
	warm.Close()
	time.Sleep(time.Second)
	if r.Before, err = rssBytes(d.PID()); err != nil {
		return r, err
	}
	conns := make([]*initiator.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for i := range n {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		c, err := login(i)
		if err != nil {
			return r, err
		}
		conns = append(conns, c)
	}
	r.Login = time.Since(start)
	time.Sleep(time.Second)
	if r.After, err = rssBytes(d.PID()); err != nil {
		return r, err
	}
	r.Sessions = n
	r.PerSessionBytes = float64(r.After-r.Before) / float64(n)
	return r, nil
}
