package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scstd/scstd/admin"
)

// Scale of the configuration case: as reconcile's reload benchmarks,
// 1,000 targets of 10 LUNs, every LUN its own nullio device.
const (
	scaleTargets       = 1000
	scaleLUNsPerTarget = 10
	scaleLUNs          = scaleTargets * scaleLUNsPerTarget
)

// scaleConfig writes a configuration of targets with luns LUNs each;
// extra adds one LUN (99) to the first target, the one change the
// reloads make and undo.
func scaleConfig(portal string, targets, luns int, extra bool) string {
	var b strings.Builder
	// state_dir beside the file: the benchmark writes nothing outside
	// its directory.
	fmt.Fprintf(&b, "state_dir = \"state\"\niscsi { portals = [%q] }\nhandler \"vdisk_nullio\" {\n", portal)
	for i := range targets * luns {
		fmt.Fprintf(&b, "  device \"n%d\" { size = \"1GiB\" }\n", i)
	}
	b.WriteString("}\n")
	for t := range targets {
		fmt.Fprintf(&b, "target \"iqn.2026-11.org.example:t%d\" {\n", t)
		for l := range luns {
			fmt.Fprintf(&b, "  lun \"%d\" { device = \"n%d\" }\n", l, t*luns+l)
		}
		if extra && t == 0 {
			b.WriteString("  lun \"99\" { device = \"n5\" }\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// settleRSS is how long after "scstd running" the RSS is read. What the
// start left behind is freed at the next GC, which an idle daemon may not
// run for minutes: the RSS then still holds the garbage of decoding.
const settleRSS = 2 * time.Second

// scaleResult holds one repetition of the configuration case.
type scaleResult struct {
	Validate time.Duration
	// Start is to the portal accepting and to "scstd running", for each
	// of the two daemons started.
	StartPortal, StartRunning []time.Duration
	// RSS is VmRSS settleRSS after "scstd running", Peak VmHWM then;
	// the baselines are the same of a daemon serving one LUN.
	RSS, Peak, BaselineRSS, BaselinePeak int64
	// ReloadAdmin is `scstd reload`'s request to its reply, for a change
	// of one LUN; ReloadUnchanged the same with nothing changed;
	// ReloadWatch from the rename of the file to the "configuration
	// applied" record (the watch's debounce included).
	ReloadAdmin, ReloadUnchanged, ReloadWatch []time.Duration
}

// writeAtomic writes data to path by a rename, as editors and
// configuration tools do.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// configScale measures once: validate, a start without the watch and
// its reloads through the admin API, a start with the watch and its
// reloads by renaming the file; and the RSS of a one-LUN daemon for the
// baseline.
func configScale(ctx context.Context, set *settings, dir string) (scaleResult, error) {
	var r scaleResult
	port, err := freePort()
	if err != nil {
		return r, err
	}
	portal := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := filepath.Join(dir, "scale.hcl")
	sock := filepath.Join(dir, "scale.sock")
	srcs := [2][]byte{[]byte(scaleConfig(portal, scaleTargets, scaleLUNsPerTarget, false)),
		[]byte(scaleConfig(portal, scaleTargets, scaleLUNsPerTarget, true))}
	if err := os.WriteFile(cfg, srcs[0], 0o644); err != nil {
		return r, err
	}

	start := time.Now()
	if _, _, err := runTool(ctx, set.scstdBin, "validate", cfg); err != nil {
		return r, err
	}
	r.Validate = time.Since(start)

	// start runs the daemon on cfg and records its start.
	start2 := func(watch bool) (*daemon, error) {
		d, err := startDaemon("scstd (10,000 LUNs)", nil, set.scstdBin, "run", "-config", cfg, "-admin-socket", sock,
			fmt.Sprintf("-watch=%t", watch), "-log-format", "json")
		if err != nil {
			return nil, err
		}
		at, err := d.waitPort(portal, 120*time.Second)
		if err == nil {
			r.StartPortal = append(r.StartPortal, at.Sub(d.started))
			at, _, err = d.waitRecord("scstd running", 0, 120*time.Second)
			r.StartRunning = append(r.StartRunning, at.Sub(d.started))
		}
		if err != nil {
			d.stop(15 * time.Second)
			return nil, err
		}
		return d, nil
	}

	d, err := start2(false)
	if err != nil {
		return r, err
	}
	time.Sleep(settleRSS)
	if r.RSS, r.Peak, err = memory(d.PID()); err != nil {
		d.stop(15 * time.Second)
		return r, err
	}
	cl := admin.NewClient(sock)
	reload := func(want int) (time.Duration, error) {
		start := time.Now()
		rep, err := cl.Reload(false)
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if !rep.OK || rep.Changes != want {
			return 0, fmt.Errorf("reload: ok=%t, %d changes (want %d): %s", rep.OK, rep.Changes, want, rep.Error)
		}
		return took, nil
	}
	for i := 1; i <= 2 && err == nil; i++ {
		if err = writeAtomic(cfg, srcs[i%2]); err != nil {
			break
		}
		var t time.Duration
		if t, err = reload(1); err == nil {
			r.ReloadAdmin = append(r.ReloadAdmin, t)
			if t, err = reload(0); err == nil {
				r.ReloadUnchanged = append(r.ReloadUnchanged, t)
			}
		}
	}
	d.stop(15 * time.Second)
	if err != nil {
		return r, err
	}

	if d, err = start2(true); err != nil {
		return r, err
	}
	// The watch is set up after "scstd running" is logged, and an event
	// before that is not seen: give it a moment.
	time.Sleep(time.Second)
	for i := 1; i <= 2 && err == nil; i++ {
		from := d.recordCount()
		// Take the time before the rename: the watch may see it before
		// os.Rename returns.
		at := time.Now()
		if err = writeAtomic(cfg, srcs[i%2]); err != nil {
			break
		}
		var applied time.Time
		if applied, _, err = d.waitRecord("configuration applied", from, 60*time.Second); err == nil {
			r.ReloadWatch = append(r.ReloadWatch, applied.Sub(at))
		}
	}
	d.stop(15 * time.Second)
	if err != nil {
		return r, err
	}

	// The baseline: the same daemon serving one LUN.
	base := filepath.Join(dir, "base.hcl")
	if err := os.WriteFile(base, []byte(idleConfig(portal, 0)), 0o644); err != nil {
		return r, err
	}
	if d, err = startDaemon("scstd (one LUN)", nil, set.scstdBin, "run", "-config", base, "-admin-socket", sock,
		"-watch=false", "-log-format", "json"); err != nil {
		return r, err
	}
	defer d.stop(15 * time.Second)
	if _, _, err := d.waitRecord("scstd running", 0, 60*time.Second); err != nil {
		return r, err
	}
	time.Sleep(settleRSS)
	r.BaselineRSS, r.BaselinePeak, err = memory(d.PID())
	return r, err
}
