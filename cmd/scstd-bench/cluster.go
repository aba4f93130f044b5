package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/scsi"
)

// The cluster case (issue 12): what PERSISTENT RESERVE OUT and COMPARE
// AND WRITE cost with a cluster block — one etcd (Debian's etcd-server,
// one member, its data in the work directory) and two gateways sharing
// one file — beside one daemon without it. Each figure is the median of
// clusterOps commands, one at a time from the Go initiator:
//
//	pr_out_ms           REGISTER AND IGNORE EXISTING KEY, a new key each
//	caw_ms              COMPARE AND WRITE of one block, always matching
//	caw_moving_ms       (cluster only) the same, alternately through gw1
//	                    and gw2, so that the token moves every command
const (
	caseCluster = "cluster"
	clusterOps  = 200
)

// fmtMs2 prints milliseconds with two decimals: the cluster case's
// figures are fractions of a millisecond without etcd.
func fmtMs2(v float64) string { return fmt.Sprintf("%.2f ms", v) }

// clusterGatewayConfig is one gateway (or, without the cluster block,
// the single daemon) serving the shared file.
func clusterGatewayConfig(portal, shared, etcd, name string) string {
	block := ""
	if etcd != "" {
		block = fmt.Sprintf(`cluster {
  etcd      = [%q]
  gateway   = %q
  lease_ttl = "5s"
  member "gw1" { id = 1 }
  member "gw2" { id = 2 }
}
`, etcd, name)
	}
	return fmt.Sprintf(`state_dir = "state"
iscsi { portals = [%q] }
%shandler "vdisk_fileio" {
  device "shared0" {
    filename = %q
    size     = "64MiB"
  }
}
target %q {
  rel_tgt_id = 1
  lun "0" { device = "shared0" }
}
`, portal, block, shared, iqnScstd)
}

// clusterResult holds the medians of one repetition.
type clusterResult struct {
	SinglePROut, SingleCAW, ClusterPROut, ClusterCAW, ClusterCAWMoving time.Duration
}

func (b *bench) cluster(work string) {
	reps := b.set.rounds
	for i := 1; i <= reps && b.ctx.Err() == nil; i++ {
		logf("%s: PR OUT and COMPARE AND WRITE, one daemon and two gateways with etcd (%d of %d)", caseCluster, i, reps)
		r, err := clusterLatency(b.ctx, b.set, filepath.Join(work, fmt.Sprintf("cluster%d", i)))
		if err != nil {
			b.fail(caseCluster, err)
			return
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
		b.res.add(i, caseCluster, "scstd", "pr_out_ms", ms(r.SinglePROut))
		b.res.add(i, caseCluster, "scstd", "caw_ms", ms(r.SingleCAW))
		b.res.add(i, caseCluster, "scstd-cluster", "pr_out_ms", ms(r.ClusterPROut))
		b.res.add(i, caseCluster, "scstd-cluster", "caw_ms", ms(r.ClusterCAW))
		b.res.add(i, caseCluster, "scstd-cluster", "caw_moving_ms", ms(r.ClusterCAWMoving))
		logf("  PR OUT %v → %v with the cluster; COMPARE AND WRITE %v → %v (token held), %v (token moving)",
			r.SinglePROut, r.ClusterPROut, r.SingleCAW, r.ClusterCAW, r.ClusterCAWMoving)
	}
}

// clusterLatency runs one repetition in dir.
func clusterLatency(ctx context.Context, set *settings, dir string) (clusterResult, error) {
	var r clusterResult
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	shared := filepath.Join(dir, "shared0.img")
	// One daemon, no cluster block.
	single, err := startGateway(set, dir, "single", shared, "")
	if err != nil {
		return r, err
	}
	r.SinglePROut, r.SingleCAW, _, err = clusterProbe(ctx, single.portal, "")
	single.d.stop(15 * time.Second)
	if err != nil {
		return r, fmt.Errorf("one daemon: %w", err)
	}

	etcd, endpoint, err := startEtcd(dir)
	if err != nil {
		return r, err
	}
	defer etcd.stop(10 * time.Second)
	var gws []*gateway
	defer func() {
		for _, g := range gws {
			g.d.stop(15 * time.Second)
		}
	}()
	for _, name := range []string{"gw1", "gw2"} {
		g, err := startGateway(set, dir, name, shared, endpoint)
		if err != nil {
			return r, err
		}
		gws = append(gws, g)
	}
	for _, g := range gws {
		if _, _, err := g.d.waitRecord("cluster: the gateway's ports take their state", 0, 30*time.Second); err != nil {
			return r, err
		}
	}
	r.ClusterPROut, r.ClusterCAW, r.ClusterCAWMoving, err = clusterProbe(ctx, gws[0].portal, gws[1].portal)
	if err != nil {
		return r, fmt.Errorf("two gateways: %w", err)
	}
	return r, nil
}

// gateway is a daemon of the cluster case.
type gateway struct {
	d      *daemon
	portal string
}

// startGateway starts a daemon serving shared, a gateway of the cluster
// at etcd ("": no cluster block), in a directory of its own.
func startGateway(set *settings, dir, name, shared, etcd string) (*gateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	gdir := filepath.Join(dir, name)
	if err := os.MkdirAll(gdir, 0o755); err != nil {
		return nil, err
	}
	portal := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := filepath.Join(gdir, "scstd.hcl")
	if err := os.WriteFile(cfg, []byte(clusterGatewayConfig(portal, shared, etcd, name)), 0o644); err != nil {
		return nil, err
	}
	d, err := startDaemon("scstd ("+name+")", nil, set.scstdBin, "run", "-config", cfg,
		"-admin-socket", filepath.Join(gdir, "admin.sock"), "-watch=false", "-log-format", "json")
	if err != nil {
		return nil, err
	}
	if _, _, err := d.waitRecord("scstd running", 0, 60*time.Second); err != nil {
		d.stop(5 * time.Second)
		return nil, err
	}
	return &gateway{d: d, portal: portal}, nil
}

// startEtcd starts one etcd member on loopback ports with its data in
// dir, and waits until it is healthy.
func startEtcd(dir string) (*daemon, string, error) {
	cport, err := freePort()
	if err != nil {
		return nil, "", err
	}
	pport, err := freePort()
	if err != nil {
		return nil, "", err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", cport)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pport)
	d, err := startDaemon("etcd", nil, "etcd", "--name", "bench", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "bench="+peer, "--initial-cluster-state", "new", "--log-level", "warn")
	if err != nil {
		return nil, "", fmt.Errorf("%w (make deps installs etcd-server)", err)
	}
	end := time.Now().Add(30 * time.Second)
	for {
		rsp, err := http.Get(client + "/health")
		if err == nil {
			healthy := rsp.StatusCode == http.StatusOK
			rsp.Body.Close()
			if healthy {
				return d, client, nil
			}
		}
		if time.Now().After(end) {
			d.stop(5 * time.Second)
			return nil, "", fmt.Errorf("etcd at %s was not healthy within 30 s:\n%s", client, d.Tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// probeConn is one Go initiator session on LUN 0 of the bench target.
type probeConn struct {
	c   *initiator.Conn
	lun [8]byte
}

func dialProbe(portal, name string) (*probeConn, error) {
	c, err := initiator.Dial(portal)
	if err != nil {
		return nil, err
	}
	if err := c.Login(initiator.Options{InitiatorName: name, TargetName: iqnScstd, ImmediateData: true}); err != nil {
		c.Close()
		return nil, err
	}
	p := &probeConn{c: c, lun: scsi.LUN(0).Encode()}
	// TEST UNIT READY until the unit attentions of a new nexus are gone.
	for range 5 {
		rsp, err := c.Command(p.lun, make([]byte, 6), nil, 0)
		if err != nil {
			c.Close()
			return nil, err
		}
		if rsp.Status == 0 {
			return p, nil
		}
	}
	c.Close()
	return nil, fmt.Errorf("TEST UNIT READY through %s does not answer GOOD", portal)
}

// run times one command that must answer GOOD.
func (p *probeConn) run(what string, cdb, out []byte) (time.Duration, error) {
	p.c.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	rsp, err := p.c.Command(p.lun, cdb, out, 0)
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if rsp.Status != 0 {
		return 0, fmt.Errorf("%s: status %#x, sense % x", what, rsp.Status, rsp.Sense)
	}
	return took, nil
}

// clusterProbe measures PR OUT and COMPARE AND WRITE through first, and
// COMPARE AND WRITE alternately through first and second when second is
// not "". It returns the medians.
func clusterProbe(ctx context.Context, first, second string) (prOut, caw, moving time.Duration, err error) {
	a, err := dialProbe(first, "iqn.2026-11.org.scstd:bench-cluster-a")
	if err != nil {
		return 0, 0, 0, err
	}
	defer a.c.Close()
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	// REGISTER AND IGNORE EXISTING KEY with a new key each time.
	var prs []time.Duration
	params := make([]byte, 24)
	for i := range clusterOps {
		if ctx.Err() != nil {
			return 0, 0, 0, ctx.Err()
		}
		binary.BigEndian.PutUint64(params[8:16], uint64(i+1))
		d, err := a.run("PERSISTENT RESERVE OUT", []byte{0x5f, 0x06, 0, 0, 0, 0, 0, 0, 24, 0}, params)
		if err != nil {
			return 0, 0, 0, err
		}
		prs = append(prs, d)
	}
	// Unregister (key 0), so that the logical unit has no reservation.
	binary.BigEndian.PutUint64(params[8:16], 0)
	if _, err := a.run("PERSISTENT RESERVE OUT", []byte{0x5f, 0x06, 0, 0, 0, 0, 0, 0, 24, 0}, params); err != nil {
		return 0, 0, 0, err
	}
	// COMPARE AND WRITE of block 0: counter n -> n + 1.
	var n uint64
	if _, err := a.run("WRITE", []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}, make([]byte, 512)); err != nil {
		return 0, 0, 0, err
	}
	cawOnce := func(p *probeConn) (time.Duration, error) {
		data := make([]byte, 1024)
		binary.BigEndian.PutUint64(data, n)
		binary.BigEndian.PutUint64(data[512:], n+1)
		d, err := p.run("COMPARE AND WRITE", []byte{0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, data)
		n++
		return d, err
	}
	var caws []time.Duration
	for range clusterOps {
		d, err := cawOnce(a)
		if err != nil {
			return 0, 0, 0, err
		}
		caws = append(caws, d)
	}
	if second == "" {
		return median(prs), median(caws), 0, nil
	}
	b, err := dialProbe(second, "iqn.2026-11.org.scstd:bench-cluster-b")
	if err != nil {
		return 0, 0, 0, err
	}
	defer b.c.Close()
	var moves []time.Duration
	for i := range clusterOps / 4 {
		p := a
		if i%2 == 1 {
			p = b
		}
		d, err := cawOnce(p)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("%w (through %s)", err, strings.Split(p.c.NetConn().RemoteAddr().String(), ":")[0])
		}
		moves = append(moves, d)
	}
	return median(prs), median(caws), median(moves), nil
}
