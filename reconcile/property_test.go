package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// enginePairs is how many random configuration pairs the engine property
// test applies (a few seconds in the normal test run).
const enginePairs = 1000

// genConfig is a configuration the property test draws, mutates and
// renders as HCL.
type genConfig struct {
	policy  string
	devices []genDevice
	targets []genTarget
}

type genDevice struct {
	name, size, blocksize string
	// id, when set, pins t10_dev_id and usn (usn "usn-"+id).
	id string
	ro bool
	// disk, when set, makes a dev_disk device passing through to that
	// disk with timeout seconds per command (size, blocksize and id do
	// not apply: a pass-through device has the disk's).
	disk    string
	timeout int
}

// genDisks are the disks dev_disk devices pass through to (each behind
// one device at most); genMissingDisk cannot be opened.
var genDisks = []string{"/dev/sg1", "/dev/sg2", "0:0:1:0", genMissingDisk}

const genMissingDisk = "/dev/missing-sg9"

// freeDisk returns a disk of genDisks that no device of g passes through
// to, or "" when none is left.
func (g *genConfig) freeDisk(r *rand.Rand) string {
	var free []string
	for _, p := range genDisks {
		if !slices.ContainsFunc(g.devices, func(d genDevice) bool { return d.disk == p }) {
			free = append(free, p)
		}
	}
	if len(free) == 0 {
		return ""
	}
	return pickOf(r, free...)
}

type genLUN struct {
	n   int
	dev string
	ro  bool
}

type genGroup struct {
	name, initiators string
	luns             []genLUN
}

type genTarget struct {
	name            string
	disabled, ppacl bool
	luns            []genLUN
	groups          []genGroup
}

// Initiator patterns of the groups; the sessions are iqn.h:a1, iqn.h:a2
// and iqn.h:b, on portals 127.0.0.1 and 127.0.0.2.
var genPatterns = []string{`"iqn.h:a*"`, `"iqn.h:b"`, `"iqn.h:*", "!iqn.h:a1"`, `"iqn.h:a1#127.0.0.2"`, `"iqn.h:*#127.0.0.1"`}

func pickOf[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// randomConfig draws a configuration from a small universe of names and
// values, so that two draws overlap and differ in every way that acts on
// live sessions.
func randomConfig(r *rand.Rand) genConfig {
	g := genConfig{policy: pickOf(r, "refuse", "allow")}
	for i := range 5 {
		if r.IntN(4) == 0 {
			continue
		}
		d := genDevice{name: fmt.Sprintf("d%d", i), size: pickOf(r, "1MiB", "2MiB"), blocksize: pickOf(r, "512", "512", "4096"), ro: r.IntN(5) == 0}
		if r.IntN(2) == 0 {
			d.id = pickOf(r, d.name, "d0", "d1")
		}
		if r.IntN(4) == 0 {
			d.disk, d.timeout = g.freeDisk(r), pickOf(r, 30, 60)
		}
		g.devices = append(g.devices, d)
	}
	for i := range 3 {
		if r.IntN(4) == 0 {
			continue
		}
		t := genTarget{name: fmt.Sprintf("iqn.2026-11.org.example:t%d", i), disabled: r.IntN(5) == 0, ppacl: r.IntN(5) == 0}
		t.luns = g.randomLUNs(r)
		for n := range 3 {
			if r.IntN(2) == 0 {
				t.groups = append(t.groups, genGroup{name: fmt.Sprintf("g%d", n), initiators: pickOf(r, genPatterns...), luns: g.randomLUNs(r)})
			}
		}
		g.targets = append(g.targets, t)
	}
	g.uniqueIDs()
	return g
}

// uniqueIDs gives a device whose t10_dev_id (its id, else its name) an
// earlier device has another one: the configuration refuses two devices
// with one identity.
func (g *genConfig) uniqueIDs() {
	seen := map[string]bool{}
	for i := range g.devices {
		d := &g.devices[i]
		if d.disk != "" {
			continue
		}
		id := cmp.Or(d.id, d.name)
		if seen[id] {
			d.id = "u" + d.name
			id = d.id
		}
		seen[id] = true
	}
}

func (g *genConfig) randomLUNs(r *rand.Rand) []genLUN {
	var out []genLUN
	for l := range 3 {
		if len(g.devices) > 0 && r.IntN(3) != 0 {
			out = append(out, genLUN{n: l, dev: g.devices[r.IntN(len(g.devices))].name, ro: r.IntN(6) == 0})
		}
	}
	return out
}

// clone deep-copies g.
func (g genConfig) clone() genConfig {
	c := genConfig{policy: g.policy, devices: slices.Clone(g.devices)}
	for _, t := range g.targets {
		t.luns = slices.Clone(t.luns)
		t.groups = slices.Clone(t.groups)
		for i := range t.groups {
			t.groups[i].luns = slices.Clone(t.groups[i].luns)
		}
		c.targets = append(c.targets, t)
	}
	return c
}

// lunMaps returns pointers to every LUN list of g.
func (g *genConfig) lunMaps() []*[]genLUN {
	var out []*[]genLUN
	for i := range g.targets {
		t := &g.targets[i]
		out = append(out, &t.luns)
		for j := range t.groups {
			out = append(out, &t.groups[j].luns)
		}
	}
	return out
}

// mutate returns a copy of g with one to three small edits, so that a
// pair differs in one thing at a time too: a LUN's read_only or device, a
// LUN added or removed, a device renamed (its identity pinned or not),
// given another block size or identity, or resized, a group's members, a
// target disabled, removed or switched to per_portal_acl; a dev_disk
// device given another disk or timeout, or a device turned into a
// dev_disk device and back.
func (g genConfig) mutate(r *rand.Rand) genConfig {
	m := g.clone()
	for range 1 + r.IntN(3) {
		maps := m.lunMaps()
		switch k := r.IntN(11); {
		case k == 0 && len(maps) > 0: // read_only of one LUN
			if l := *pickOf(r, maps...); len(l) > 0 {
				l[r.IntN(len(l))].ro = !l[0].ro
			}
		case k == 1 && len(maps) > 0 && len(m.devices) > 0: // LUN to another device
			if l := *pickOf(r, maps...); len(l) > 0 {
				l[r.IntN(len(l))].dev = pickOf(r, m.devices...).name
			}
		case k == 2 && len(maps) > 0: // LUN added or removed
			l := pickOf(r, maps...)
			if len(*l) > 0 && r.IntN(2) == 0 {
				*l = slices.Delete(*l, 0, 1)
			} else if len(m.devices) > 0 && !slices.ContainsFunc(*l, func(x genLUN) bool { return x.n == 7 }) {
				*l = append(*l, genLUN{n: 7, dev: pickOf(r, m.devices...).name})
			}
		case k == 3 && len(m.devices) > 0: // rename
			d := &m.devices[r.IntN(len(m.devices))]
			old := d.name
			if slices.ContainsFunc(m.devices, func(x genDevice) bool { return x.name == "r"+old }) {
				continue
			}
			d.name = "r" + old
			if d.id == "" && r.IntN(2) == 0 {
				d.id = old // pinned, but usn differs from the default one: an identity change
			}
			for _, l := range maps {
				for i := range *l {
					if (*l)[i].dev == old {
						(*l)[i].dev = d.name
					}
				}
			}
		case k == 4 && len(m.devices) > 0:
			d := &m.devices[r.IntN(len(m.devices))]
			d.blocksize = pickOf(r, "512", "4096")
			if d.disk != "" {
				if p := m.freeDisk(r); p != "" {
					d.disk = p
				}
			}
		case k == 5 && len(m.devices) > 0:
			d := &m.devices[r.IntN(len(m.devices))]
			d.id = pickOf(r, "", "d0", "d1", "x")
			if d.disk != "" {
				d.timeout = 90 - d.timeout
			}
		case k == 6 && len(m.devices) > 0:
			d := &m.devices[r.IntN(len(m.devices))]
			d.size, d.ro = pickOf(r, "1MiB", "2MiB", "4MiB"), r.IntN(4) == 0
		case k == 7 && len(m.targets) > 0:
			t := &m.targets[r.IntN(len(m.targets))]
			if len(t.groups) > 0 {
				t.groups[r.IntN(len(t.groups))].initiators = pickOf(r, genPatterns...)
			} else {
				t.groups = append(t.groups, genGroup{name: "g9", initiators: pickOf(r, genPatterns...), luns: m.randomLUNs(r)})
			}
		case k == 8 && len(m.targets) > 0:
			t := &m.targets[r.IntN(len(m.targets))]
			t.ppacl = !t.ppacl
		case k == 10 && len(m.devices) > 0:
			d := &m.devices[r.IntN(len(m.devices))]
			if d.disk != "" {
				d.disk = ""
			} else if p := m.freeDisk(r); p != "" {
				d.disk, d.timeout = p, 30
			}
		case k == 9 && len(m.targets) > 0:
			i := r.IntN(len(m.targets))
			if r.IntN(2) == 0 {
				m.targets = slices.Delete(m.targets, i, i+1)
			} else {
				m.targets[i].disabled = !m.targets[i].disabled
			}
		}
	}
	m.uniqueIDs()
	return m
}

func (g genConfig) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "disruptive_changes = %q\niscsi { portals = [\"127.0.0.1:3260\"] }\nhandler \"vdisk_nullio\" {\n", g.policy)
	for _, d := range g.devices {
		if d.disk != "" {
			continue
		}
		fmt.Fprintf(&b, "  device %q {\n    size = %q\n    blocksize = %s\n    read_only = %t\n", d.name, d.size, d.blocksize, d.ro)
		if d.id != "" {
			fmt.Fprintf(&b, "    t10_dev_id = %q\n    usn = %q\n", d.id, "usn-"+d.id)
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\nhandler \"dev_disk\" {\n")
	for _, d := range g.devices {
		if d.disk != "" {
			fmt.Fprintf(&b, "  device %q {\n    path = %q\n    timeout = %d\n    read_only = %t\n  }\n", d.name, d.disk, d.timeout, d.ro)
		}
	}
	b.WriteString("}\n")
	luns := func(indent string, ls []genLUN) {
		for _, l := range ls {
			fmt.Fprintf(&b, "%slun \"%d\" {\n%s  device = %q\n%s  read_only = %t\n%s}\n", indent, l.n, indent, l.dev, indent, l.ro, indent)
		}
	}
	for _, t := range g.targets {
		fmt.Fprintf(&b, "target %q {\n  enabled = %t\n  per_portal_acl = %t\n", t.name, !t.disabled, t.ppacl)
		luns("  ", t.luns)
		for _, gr := range t.groups {
			fmt.Fprintf(&b, "  group %q {\n    initiators = [%s]\n", gr.name, gr.initiators)
			luns("    ", gr.luns)
			b.WriteString("  }\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// fakeSessions are live sessions of three initiators on every target
// enabled in st, on two portals.
func fakeSessions(snap *iscsi.Snapshot) []iscsi.SessionInfo {
	var out []iscsi.SessionInfo
	for _, name := range sortedKeys(snap.Targets) {
		if !snap.Targets[name].Enabled {
			continue
		}
		for i, ini := range []string{"iqn.h:a1", "iqn.h:a2", "iqn.h:b"} {
			tsih := uint16(len(out) + 1)
			out = append(out, iscsi.SessionInfo{Target: name, Initiator: ini, ISID: fmt.Sprintf("%012x", tsih),
				TSIH: tsih, PortalIP: fmt.Sprintf("127.0.0.%d", 1+i%2)})
		}
	}
	return out
}

// expectedEffects is what each live session must be told when snapshot
// old is replaced by next: computed from the LUN maps the iSCSI server
// gives it in each (scsi.DiffLUNMaps), not from the plan.
func expectedEffects(sessions []iscsi.SessionInfo, old, next *iscsi.Snapshot) []iscsi.SessionEffect {
	var out []iscsi.SessionEffect
	for _, s := range sessions {
		ot := old.Targets[s.Target]
		nt := next.Targets[s.Target]
		if nt == nil || !nt.Enabled {
			out = append(out, iscsi.SessionEffect{Session: s.ID(), Logout: true})
			continue
		}
		c, changed := scsi.DiffLUNMaps(ot.LUNsFor(s.Initiator, s.PortalIP), nt.LUNsFor(s.Initiator, s.PortalIP))
		if changed {
			out = append(out, iscsi.SessionEffect{Session: s.ID(), LUNsChanged: true, Added: c.Added, Removed: c.Removed, Swapped: c.Swapped})
		}
	}
	return out
}

// checkStorage verifies that every device serves from what its model
// says: a dev_disk device from a pass-through disk opened with its path
// and timeout (offline, saying why, when that disk is missing), the
// others from a backend; status agrees.
func checkStorage(e *Engine, st Status) error {
	for _, ds := range st.Devices {
		d := e.devices[ds.Name]
		m := d.model
		if (m.Handler == devDisk) != d.dev.Config().Passthrough || ds.Path != m.Path {
			return fmt.Errorf("device %s: pass-through %v, status path %q, model %+v", ds.Name, d.dev.Config().Passthrough, ds.Path, m)
		}
		if m.Path == genMissingDisk {
			if ds.Online || !strings.Contains(ds.Reason, genMissingDisk) {
				return fmt.Errorf("device %s on a missing disk: status %+v", ds.Name, ds)
			}
			continue
		}
		if !ds.Online {
			return fmt.Errorf("device %s offline: %s", ds.Name, ds.Reason)
		}
		fd, isDisk := d.backend.(*fakeDisk)
		switch {
		case m.Handler != devDisk && isDisk:
			return fmt.Errorf("device %s (%s) serves from a disk", ds.Name, m.Handler)
		case m.Handler == devDisk && (!isDisk || fd.path != m.Path || fd.timeout != time.Duration(m.Timeout)):
			return fmt.Errorf("device %s serves from %+v, model %+v", ds.Name, d.backend, m)
		}
	}
	return nil
}

// handlerOf returns the handler of a change's Before when it is a
// device (a removed or replaced one).
func handlerOf(before any) vdisk.Handler {
	if d, ok := before.(Device); ok {
		return d.Handler
	}
	return ""
}

// countingOpener opens backends with vdisk.Open and counts their closes.
type countingOpener struct {
	mu     sync.Mutex
	opened []*countedBackend
}

type countedBackend struct {
	vdisk.Backend
	closes atomic.Int32
}

func (c *countedBackend) Close() error {
	c.closes.Add(1)
	return c.Backend.Close()
}

func (o *countingOpener) open(s vdisk.Spec) (vdisk.Backend, error) {
	b, err := vdisk.Open(s)
	if err != nil {
		return nil, err
	}
	cb := &countedBackend{Backend: b}
	o.mu.Lock()
	o.opened = append(o.opened, cb)
	o.mu.Unlock()
	return cb, nil
}

// unclosed returns how many backends were opened, and how many of them
// were not closed exactly once.
func (o *countingOpener) unclosed() (n, bad int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, b := range o.opened {
		if b.closes.Load() != 1 {
			bad++
		}
	}
	return len(o.opened), bad
}

func effectsEqual(a, b []iscsi.SessionEffect) bool {
	return slices.EqualFunc(a, b, func(x, y iscsi.SessionEffect) bool {
		return x.Session == y.Session && x.Logout == y.Logout && x.LUNsChanged == y.LUNsChanged &&
			slices.Equal(x.Added, y.Added) && slices.Equal(x.Removed, y.Removed) && slices.Equal(x.Swapped, y.Swapped)
	})
}

// checkSnapshot verifies that the published snapshot runs model m with
// the engine's devices.
func checkSnapshot(t *testing.T, e *Engine, snap *iscsi.Snapshot, m Model) {
	t.Helper()
	same := func(what string, got *scsi.LUNMap, want map[scsi.LUN]LUN) {
		t.Helper()
		if got.Len() != len(want) {
			t.Fatalf("%s: %d LUNs published, model has %d", what, got.Len(), len(want))
		}
		for l, lu := range want {
			u := got.Lookup(l)
			if u == nil || u.Device != e.devices[lu.Device].dev || u.ReadOnly != lu.ReadOnly {
				t.Fatalf("%s: LUN %d published as %+v, model has %+v", what, l, u, lu)
			}
		}
	}
	if len(snap.Targets) != len(m.Targets) {
		t.Fatalf("%d targets published, model has %d", len(snap.Targets), len(m.Targets))
	}
	for name, mt := range m.Targets {
		st := snap.Targets[name]
		if st == nil || st.Enabled != mt.Enabled || st.Access.Portals.PerPortalACL != mt.PerPortalACL {
			t.Fatalf("target %s published as %+v", name, st)
		}
		same(name, st.LUNs, mt.LUNs)
		if len(st.Access.Groups) != len(mt.Groups) {
			t.Fatalf("target %s: %d groups published, model has %d", name, len(st.Access.Groups), len(mt.Groups))
		}
		for _, g := range st.Access.Groups {
			same(name+" group "+g.Name, g.LUNs, mt.Groups[g.Name].LUNs)
		}
	}
}

// TestEngineProperties applies random configuration pairs to the real
// engine with live sessions: start on a, apply b (forced), and check that
// the engine runs b (model, snapshot, status), that the plan Apply
// applied is the plan Plan printed, that the effects delivered to each
// session are exactly what its LUN maps changed (every label true), that
// every swapped LUN is printed under a disruptive change, and that a
// configuration applied again plans nothing.
func TestEngineProperties(t *testing.T) {
	start := time.Now()
	classes := map[Impact]int{}
	// disks counts the pass-through disks opened, diskChanges the plans'
	// changes of dev_disk devices.
	disks, diskChanges := 0, 0
	for seed := range uint64(enginePairs) {
		rnd := rand.New(rand.NewPCG(seed, 8))
		// Half the pairs are independent draws, half a draw and a small
		// mutation of it.
		a := randomConfig(rnd)
		b := randomConfig(rnd)
		if seed%2 == 1 {
			b = a.mutate(rnd)
		}
		srcA, srcB := a.String(), b.String()
		cfgA, diagsA := config.Parse([]byte(srcA), "/etc/scst.hcl")
		cfgB, diagsB := config.Parse([]byte(srcB), "/etc/scst.hcl")
		if diagsA.HasErrors() || diagsB.HasErrors() {
			t.Fatalf("seed %d: %v %v", seed, diagsA, diagsB)
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: %s\n--- a\n%s--- b\n%s", seed, fmt.Sprintf(format, args...), srcA, srcB)
		}
		r := &recorder{}
		fakeDisks, backends := newFakeDisks(), &countingOpener{}
		fakeDisks.missing[genMissingDisk] = true
		e := NewEngine(r, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1, Open: backends.open, OpenDisk: fakeDisks.open})
		if _, err := e.Apply(context.Background(), cfgA, ApplyOptions{Force: true}); err != nil {
			fail("apply a: %v", err)
		}
		if p, _ := e.Plan(cfgA); !p.Empty() {
			fail("a planned against itself:\n%s", p)
		}
		r.sessions = fakeSessions(r.snap)
		r.take()
		snapA := r.snap
		planned, err := e.Plan(cfgB)
		if err != nil {
			fail("plan: %v", err)
		}
		res, err := e.Apply(context.Background(), cfgB, ApplyOptions{Force: true})
		if err != nil {
			fail("apply b: %v", err)
		}
		printed := res.Plan.String()
		if printed != planned.String() {
			fail("applied plan differs from the planned one:\n%s\nvs\n%s", printed, planned)
		}
		want := FromConfig(cfgB)
		identify(&want, e.idSeed(), nil)
		if !modelsEqual(e.running, want) {
			fail("running model is not b; plan:\n%s", printed)
		}
		checkSnapshot(t, e, r.snap, e.running)
		st := e.Status()
		if len(st.Devices) != len(cfgB.Devices) || len(st.Targets) != len(cfgB.Targets) {
			fail("status: %d devices, %d targets", len(st.Devices), len(st.Targets))
		}
		if err := checkStorage(e, st); err != nil {
			fail("%v; plan:\n%s", err, printed)
		}
		got := r.take()
		if res.Plan.Empty() {
			if got != nil || r.snap != snapA {
				fail("an empty plan published or told sessions %+v", got)
			}
		} else if want := expectedEffects(r.sessions, snapA, r.snap); !effectsEqual(got, want) {
			fail("effects delivered:\n%+v\nwhat the sessions' LUN maps changed:\n%+v\nplan:\n%s", got, want, printed)
		}
		// Every swap a session gets is listed under a disruptive change;
		// no change lists one it does not get.
		type lunOf struct {
			s iscsi.SessionID
			l scsi.LUN
		}
		listed := map[lunOf]bool{}
		info := map[iscsi.SessionID]iscsi.SessionInfo{}
		for _, si := range r.sessions {
			info[si.ID()] = si
		}
		for _, c := range res.Plan.Changes {
			classes[c.Impact]++
			if c.Addr.Device != "" && (e.running.Devices[c.Addr.Device].Handler == devDisk || handlerOf(c.Before) == devDisk) {
				diskChanges++
			}
			for _, a := range c.Sessions {
				if a.Impact == SessionDrop {
					continue
				}
				want := UnitAttention
				for _, l := range a.LUNs {
					if l.Kind != LUNSwapped {
						continue
					}
					if !c.Impact.Disruptive() {
						fail("a swapped LUN under a change labelled %v:\n%s", c.Impact, printed)
					}
					listed[lunOf{a.Session, l.LUN}] = true
					// The class follows the devices the session sees.
					si := info[a.Session]
					was := snapA.Targets[si.Target].LUNsFor(si.Initiator, si.PortalIP).Lookup(l.LUN).Device.Config()
					now := r.snap.Targets[si.Target].LUNsFor(si.Initiator, si.PortalIP).Lookup(l.LUN).Device.Config()
					class := DeviceSwap
					// (A pass-through device's identity is its disk's:
					// from a virtual device to one is a swap.)
					if was.Passthrough == now.Passthrough && was.BlockSize == now.BlockSize && (was.T10DevID != now.T10DevID || was.USN != now.USN) {
						class = IdentityChange
					}
					want = max(want, class)
				}
				if a.Impact != want {
					fail("%s labelled %v for %s, its devices say %v:\n%s", c.Addr, a.Impact, a.Session, want, printed)
				}
			}
		}
		n := 0
		for _, ef := range got {
			for _, l := range ef.Swapped {
				if !listed[lunOf{ef.Session, l}] {
					fail("swap of lun %d for %s not in the plan:\n%s", l, ef.Session, printed)
				}
				n++
			}
		}
		if n != len(listed) {
			fail("the plan lists %d swaps, the sessions get %d:\n%s", len(listed), n, printed)
		}
		if p, _ := e.Plan(cfgB); !p.Empty() {
			fail("b planned against itself after applying it:\n%s", p)
		}
		e.Close()
		// No command is in flight: every disk and backend opened is
		// closed by now, once.
		for _, d := range fakeDisks.all() {
			if _, _, n := d.closedAt(); n != 1 {
				fail("disk %s (timeout %v) closed %d times", d.path, d.timeout, n)
			}
			disks++
		}
		if n, bad := backends.unclosed(); bad > 0 {
			fail("%d of %d backends not closed exactly once", bad, n)
		}
	}
	t.Logf("%d pairs in %v; changes by impact: %v; %d pass-through disks opened, %d changes of dev_disk devices",
		enginePairs, time.Since(start).Round(time.Millisecond), classes, disks, diskChanges)
	if disks == 0 || diskChanges == 0 {
		t.Error("the generator makes no dev_disk device or change of one")
	}
	for _, i := range []Impact{Hot, NextLogin, UnitAttention, IdentityChange, DeviceSwap, SessionDrop} {
		if classes[i] == 0 && i != NextLogin {
			t.Errorf("no change of impact %v in %d pairs: the generator misses a case", i, enginePairs)
		}
	}
}
