package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/scstd/scstd/cluster"
	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/reconcile"
)

// clusterOptions are the cluster package's settings for a cluster block.
func clusterOptions(c *config.Cluster) cluster.Options {
	ids := map[string]uint16{}
	for _, m := range c.Members {
		ids[m.Name] = uint16(m.ID)
	}
	return cluster.Options{
		Endpoints: c.Etcd, Gateway: c.Gateway, Prefix: c.Prefix, LeaseTTL: c.LeaseTTL, DialTimeout: c.DialTimeout,
		CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, Username: c.Username, Password: c.Password.Reveal(),
		IDs: ids,
	}
}

// joinCluster joins the cluster the first configuration names, before
// it is applied: the engine runs as a gateway whose logical units share
// their reservations through the node, and takes the ALUA states the
// cluster gives the gateways' ports.
func (d *daemonState) joinCluster(ld *loaded) {
	c := ld.cfg.Cluster
	if c == nil {
		return
	}
	host, _ := os.Hostname()
	var portals []string
	for _, p := range ld.cfg.ISCSI.Portals {
		portals = append(portals, p.Addr.String())
	}
	node := cluster.Join(clusterOptions(c), cluster.Member{Hostname: host, PID: os.Getpid(), Portals: portals,
		Version: version, Started: time.Now().UTC(), ConfigHash: ld.clusterHash}, d.log)
	d.eng.SetShared(node)
	d.mu.Lock()
	d.cluster = node
	d.mu.Unlock()
}

// applyCluster carries out an applied plan's cluster changes. The start
// joins the cluster the configuration names. A later reload reconnects
// when the plan says so (keeping the running gateway's name and prefix),
// notes the changes that apply at the next start, and publishes the
// configuration hash the gateway now runs.
func (d *daemonState) applyCluster(ld *loaded, p reconcile.Plan, start bool) {
	c := ld.cfg.Cluster
	d.mu.Lock()
	node := d.cluster
	d.mu.Unlock()
	if start {
		if node != nil {
			node.SetStatesHook(d.eng.SetGatewayStates)
		}
		return
	}
	reconnect := false
	for _, ch := range p.Changes {
		if ch.Op == reconcile.SetCluster && ch.Reason == reconcile.ReasonReconnect {
			reconnect = true
		}
	}
	var notes []string
	switch {
	case node == nil && c != nil:
		notes = append(notes, "the cluster block was added: the gateway joins at the next start")
	case node != nil:
		running := node.Options()
		if c == nil {
			notes = append(notes, "the cluster block was removed: the gateway leaves at the next start")
			break
		}
		if c.Gateway != running.Gateway {
			notes = append(notes, fmt.Sprintf("gateway %q -> %q applies at the next start", running.Gateway, c.Gateway))
		}
		if c.Prefix != running.Prefix {
			notes = append(notes, fmt.Sprintf("prefix %q -> %q applies at the next start", running.Prefix, c.Prefix))
		}
		opts := clusterOptions(c)
		opts.Gateway, opts.Prefix = running.Gateway, running.Prefix
		if reconnect {
			node.Reconnect(opts)
		}
		node.SetIDs(opts.IDs)
		node.SetConfigHash(ld.clusterHash)
	}
	for _, n := range notes {
		d.log.Warn("cluster: restart required", "change", n)
	}
	d.mu.Lock()
	d.clusterRestart = notes
	d.mu.Unlock()
}

// clusterStatus is the cluster's part of `scstd status`, nil without a
// cluster block.
func (d *daemonState) clusterStatus() *cluster.Status {
	d.mu.Lock()
	node, notes := d.cluster, d.clusterRestart
	d.mu.Unlock()
	if node == nil {
		if notes == nil {
			return nil
		}
		return &cluster.Status{State: "not joined", RestartRequired: notes}
	}
	st := node.Status()
	st.RestartRequired = notes
	return &st
}

// clusterWait bounds how long `scstd cluster drain` and `undrain` wait
// for the gateway to report its new state.
func clusterWait(ttl time.Duration) time.Duration { return 2*ttl + 5*time.Second }

// Cluster implements admin.ClusterHandler: drain, undrain or evict a
// gateway of the cluster.
func (d *daemonState) Cluster(ctx context.Context, op, gateway string) (string, error) {
	d.mu.Lock()
	node := d.cluster
	d.mu.Unlock()
	if node == nil {
		return "", errors.New("this daemon runs no cluster (its configuration had no cluster block at start)")
	}
	wait := clusterWait(node.Options().LeaseTTL)
	switch op {
	case "drain":
		if err := node.Drain(ctx, gateway, wait); err != nil {
			return "", err
		}
		return fmt.Sprintf("gateway %s drained: its ports are standby", gateway), nil
	case "undrain":
		if err := node.Undrain(ctx, gateway, wait); err != nil {
			return "", err
		}
		return fmt.Sprintf("gateway %s undrained: its ports have their configured states", gateway), nil
	case "evict":
		if err := node.Evict(ctx, gateway); err != nil {
			return "", err
		}
		return fmt.Sprintf("gateway %s evicted: reservation changes no longer wait for it", gateway), nil
	}
	return "", fmt.Errorf("unknown cluster operation %q: drain, undrain or evict", op)
}
