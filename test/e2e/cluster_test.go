package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/cluster"
	"github.com/scstd/scstd/internal/etcdtest"
	"github.com/scstd/scstd/internal/testtarget"
)

// clusterTTL is the gateways' lease TTL in these tests.
const clusterTTL = 2 * time.Second

// gatewayConfig is one gateway of a cluster, exporting one shared
// backing file: the same file on every gateway, which takes what differs
// (its name, and here its portal) from the environment; its state_dir,
// relative to the file, is each gateway's own with the same text.
const gatewayConfig = `
iscsi { portals = [env("SCSTD_PORTAL")] }
state_dir = "state"

cluster {
  etcd      = ["ETCD"]
  gateway   = env("SCSTD_GATEWAY")
  lease_ttl = "2s"

  member "gw1" { id = 1 }
  member "gw2" { id = 2 }
  member "gw3" { id = 3 }
}

handler "vdisk_fileio" {
  device "shared0" {
    filename = "SHARED"
    size     = "64MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  rel_tgt_id      = 1
  queued_commands = QUEUED
  lun "0" { device = "shared0" }
}

# Each gateway's ports of the target are one target port group.
device_group "shared" {
  devices = ["shared0"]
  target_group "gw1" {
    group_id  = 1
    gateway   = "gw1"
    preferred = true
    targets   = ["iqn.2026-11.org.example:t1"]
  }
  target_group "gw2" {
    group_id = 2
    gateway  = "gw2"
    targets  = ["iqn.2026-11.org.example:t1"]
  }
  target_group "gw3" {
    group_id = 3
    gateway  = "gw3"
    targets  = ["iqn.2026-11.org.example:t1"]
  }
}
`

func gatewayFile(etcd, shared string, queued int) string {
	return strings.NewReplacer("ETCD", etcd, "SHARED", shared, "QUEUED", fmt.Sprint(queued)).Replace(gatewayConfig)
}

// clusterOf returns the cluster part of a gateway's status.
func clusterOf(t *testing.T, tgt *testtarget.Target) cluster.Status {
	t.Helper()
	raw, err := tgt.Admin().Status()
	if err != nil {
		t.Fatalf("status of %s: %v", tgt.Portal(), err)
	}
	var st struct {
		Cluster *cluster.Status `json:"cluster"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || st.Cluster == nil {
		t.Fatalf("status of %s has no cluster: %v\n%s", tgt.Portal(), err, raw)
	}
	return *st.Cluster
}

func memberNames(st cluster.Status) []string {
	var out []string
	for _, m := range st.Members {
		out = append(out, m.Gateway)
	}
	return out
}

// appliedPlan is the plan a reload applied: its own, or that of the
// reload the file watch made first.
func appliedPlan(r admin.ReloadReply) string {
	if r.AlreadyApplied != nil {
		return r.AlreadyApplied.Plan
	}
	return r.Plan
}

// targetGroupState returns the state a gateway reports for a target
// port group of the device group "shared".
func targetGroupState(t *testing.T, g *testtarget.Target, group string) string {
	t.Helper()
	for _, dg := range aluaStatusOf(t, g).Engine.DeviceGroups {
		for _, tg := range dg.TargetGroups {
			if dg.Name == "shared" && tg.Name == group {
				return tg.State
			}
		}
	}
	return ""
}

// waitUntil polls cond every 50 ms until it holds, and returns how long
// that took; it fails the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestClusterGateways: three gateways on 127.0.0.1-3 sharing one backing
// file join one etcd and see each other; data written through one is read
// through another; a gateway killed with SIGKILL leaves the others'
// member lists within lease_ttl + 1 s while qemu-io runs through the
// others; with etcd stopped the gateways keep serving qemu-io and say etcd
// is unreachable; with etcd back they are connected again and the killed
// gateway rejoins; a gateway with another configuration shows as drift;
// reloads that change the cluster block reconnect, or wait for the next
// start, as the plan says.
func TestClusterGateways(t *testing.T) {
	requireTools(t, "qemu-io")
	etcd := etcdtest.Start(t, etcdtest.Options{})
	names := []string{"gw1", "gw2", "gw3"}
	gws, shared := startGateways(t, etcd, names...)
	gw1, gw2, gw3 := gws[0], gws[1], gws[2]
	st := clusterOf(t, gw2)
	for _, m := range st.Members {
		if !m.ConfigMatches || m.Self != (m.Gateway == "gw2") || len(m.Portals) != 1 || m.PID == 0 {
			t.Errorf("gw2 sees %+v", m)
		}
	}
	out, code := testtarget.Run(t, "status", "-admin-socket", gw2.AdminSocket())
	if code != 0 || !strings.Contains(out, "state: connected") || !strings.Contains(out, "gateway: gw3") {
		t.Errorf("scstd status of gw2 (exit %d):\n%s", code, out)
	}

	// One LU through every gateway: written through gw1, read through gw3.
	url := func(g *testtarget.Target) []string { return []string{"-f", "raw", g.LUNURL(iqnT1, 0)} }
	writePatterns(t, url(gw1))
	checkPatterns(t, url(gw3))

	// Each load writes and verifies its own 16 MiB of the shared LU.
	loads := []*qemuLoad{startQemuLoadAt(gw2.LUNURL(iqnT1, 0), 16<<20), startQemuLoadAt(gw3.LUNURL(iqnT1, 0), 32<<20)}
	defer func() {
		for _, q := range loads {
			q.finish()
		}
	}()
	waitUntil(t, 30*time.Second, "qemu-io runs through gw2 and gw3", func() bool {
		return loads[0].ops.Load() > 0 && loads[1].ops.Load() > 0
	})

	// An initiator on gw3 outside the loads, to see its unit attention.
	watcher := pathSession(t, gw3.Portal(), iqnT1, "iqn.2026-11.org.example:watcher")
	defer watcher.Close()
	command(t, watcher, "00 00000000 00", nil, 0) // the power-on unit attention

	// gw1 crashes: it leaves gw2's and gw3's member lists, and they
	// report its target port group unavailable, within the TTL and a
	// second.
	gw1.Kill()
	killed := time.Now()
	for _, g := range []*testtarget.Target{gw2, gw3} {
		waitUntil(t, 10*time.Second, "gw1 leaves "+g.Portal()+"'s member list", func() bool {
			return !slices.Contains(memberNames(clusterOf(t, g)), "gw1") && targetGroupState(t, g, "gw1") == "unavailable"
		})
	}
	if took := time.Since(killed); took > clusterTTL+time.Second {
		t.Errorf("gw1 left the member lists %v after SIGKILL; expected within lease_ttl (%v) + 1 s", took, clusterTTL)
	} else {
		t.Logf("gw1 left both member lists and was reported unavailable %v after SIGKILL (lease_ttl %v)", took, clusterTTL)
	}
	if got := outcome(command(t, watcher, "00 00000000 00", nil, 0)); got != outcomeALUAChanged {
		t.Errorf("TEST UNIT READY through gw3 after gw1 left: %s, want %s", got, outcomeALUAChanged)
	}

	// etcd stops: the gateways say so and keep serving.
	etcd.Stop()
	for _, g := range []*testtarget.Target{gw2, gw3} {
		waitUntil(t, 10*time.Second, g.Portal()+" reports etcd unreachable", func() bool {
			return clusterOf(t, g).State == cluster.Unreachable
		})
	}
	before := []int64{loads[0].ops.Load(), loads[1].ops.Load()}
	waitUntil(t, 30*time.Second, "qemu-io goes on through gw2 and gw3 with etcd down", func() bool {
		return loads[0].ops.Load() > before[0]+8 && loads[1].ops.Load() > before[1]+8
	})
	out, _ = testtarget.Run(t, "status", "-admin-socket", gw3.AdminSocket())
	if !strings.Contains(out, "state: unreachable") || !strings.Contains(out, "members_as_of") {
		t.Errorf("scstd status of gw3 with etcd down:\n%s", out)
	}
	if !strings.Contains(gw2.Stderr(), "etcd unreachable") {
		t.Error("gw2 did not log the lost etcd")
	}

	// etcd is back: connected again; gw1 restarts and rejoins.
	etcd.Start()
	for _, g := range []*testtarget.Target{gw2, gw3} {
		waitUntil(t, 20*time.Second, g.Portal()+" is connected again", func() bool {
			return clusterOf(t, g).State == cluster.Connected
		})
	}
	gw1.Start()
	for _, g := range gws {
		waitUntil(t, 20*time.Second, g.Portal()+" sees gw1 active again", func() bool {
			return slices.Equal(memberNames(clusterOf(t, g)), names) && targetGroupState(t, g, "gw1") == "active/optimized"
		})
	}
	// It came back transitioning, then took its configured state.
	for _, g := range []*testtarget.Target{gw2, gw3} {
		log := g.Stderr()
		tr := strings.Index(log, `gateway=gw1 state=transitioning`)
		back := strings.LastIndex(log, `gateway=gw1 state=configured`)
		if tr < 0 || back < tr {
			t.Errorf("%s did not report gw1 transitioning, then configured:\n%s", g.Portal(), log)
		}
	}

	// gw3 runs another configuration: drift, seen from every gateway.
	r := gw3.Reconfigure(gatewayFile(etcd.Endpoint(), shared, 64))
	if !r.OK {
		t.Fatalf("reload of gw3: %s\n%s", r.Error, r.Diagnostics)
	}
	waitUntil(t, 10*time.Second, "gw1 reports gw3's drift", func() bool {
		return slices.Equal(clusterOf(t, gw1).Drift, []string{"gw3"})
	})
	if d := clusterOf(t, gw3).Drift; !slices.Equal(d, []string{"gw1", "gw2"}) {
		t.Errorf("gw3's drift: %v", d)
	}

	// Reloads of the cluster block: lease_ttl reconnects at once, the
	// gateway's name waits for the next start.
	file := strings.Replace(gatewayFile(etcd.Endpoint(), shared, 32), `lease_ttl = "2s"`, `lease_ttl = "3s"`, 1)
	r = gw2.Reconfigure(file)
	if !r.OK || !strings.Contains(appliedPlan(r), "lease_ttl \"2s\" -> \"3s\"") || !strings.Contains(appliedPlan(r), "reconnects to etcd") {
		t.Fatalf("reload of gw2's lease_ttl: %+v", r)
	}
	waitUntil(t, 20*time.Second, "gw2 reconnected with the new TTL", func() bool {
		st := clusterOf(t, gw2)
		return st.LeaseTTL == "3s" && st.Reconnect == nil && st.State == cluster.Connected
	})
	r = gw2.Reconfigure(strings.Replace(file, `env("SCSTD_GATEWAY")`, `"gw3"`, 1))
	if !r.OK || !strings.Contains(appliedPlan(r), "applies at the next start") {
		t.Fatalf("reload of gw2's name: %+v", r)
	}
	if st := clusterOf(t, gw2); st.Gateway != "gw2" || len(st.RestartRequired) != 1 {
		t.Errorf("gw2 after a change of its name: gateway %q, restart_required %q", st.Gateway, st.RestartRequired)
	}
	if !slices.Equal(memberNames(clusterOf(t, gw1)), names) {
		t.Errorf("gw1's member list after gw2's reloads: %v", memberNames(clusterOf(t, gw1)))
	}

	for _, q := range loads {
		q.finish()
		if errs := q.ioErrors(); len(errs) > 0 {
			t.Errorf("qemu-io errors through %s:\n%s", q.url, strings.Join(errs, "\n"))
		}
		t.Logf("qemu-io through %s: %d runs, %d commands", q.url, q.runs.Load(), q.ops.Load())
	}
}
