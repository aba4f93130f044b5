package reconcile

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// randomModel draws a model from a small universe of names and values, so
// that two draws overlap and differ in every way a model can.
func randomModel(r *rand.Rand) Model {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	m := Model{
		ISCSI: Global{
			Enabled: r.IntN(4) != 0,
			Portals: [][]string{{"0.0.0.0:3260"}, {"127.0.0.1:3260", "[::1]:3260"}}[r.IntN(2)],
		},
		Devices: map[string]Device{},
		Targets: map[string]*Target{},
	}
	if r.IntN(3) == 0 {
		m.ISCSI.IncomingUsers = []User{{Name: "disc", Secret: secret(pick("secretsecret", "othersecret1"))}}
	}
	if r.IntN(4) == 0 {
		m.ISCSI.ISNSServers = []string{"192.0.2.10:3205"}
	}
	var devices []string
	for i := range 6 {
		if r.IntN(3) == 0 {
			continue
		}
		name := fmt.Sprintf("d%d", i)
		devices = append(devices, name)
		d := Device{
			Handler:   vdisk.Handler(pick(string(vdisk.FileIO), string(vdisk.NullIO), string(vdisk.BlockIO))),
			Size:      int64(r.IntN(3)) << 30,
			BlockSize: uint32([]int{512, 4096}[r.IntN(2)]),
			ReadOnly:  r.IntN(2) == 0, NVCache: r.IntN(2) == 0, WriteThrough: r.IntN(2) == 0,
			ODirect: r.IntN(2) == 0, Removable: r.IntN(5) == 0,
			T10DevID: name, USN: pick("0001", "0002"), FileID: pick("", "8:1", "8:2"),
		}
		if d.Handler != vdisk.NullIO {
			d.Filename = pick("/a.img", "/b.img")
		}
		if r.IntN(5) == 0 {
			d = Device{Handler: devDisk, Path: pick("/dev/sg1", "0:0:1:0"), Timeout: uint32(30 * (1 + r.IntN(2))), ReadOnly: r.IntN(2) == 0}
		}
		m.Devices[name] = d
	}
	luns := func() map[scsi.LUN]LUN {
		if len(devices) == 0 || r.IntN(5) == 0 {
			return nil
		}
		l := map[scsi.LUN]LUN{}
		for n := range 5 {
			if r.IntN(2) == 0 {
				l[scsi.LUN(n)] = LUN{Device: devices[r.IntN(len(devices))], ReadOnly: r.IntN(4) == 0}
			}
		}
		if len(l) == 0 {
			return nil
		}
		return l
	}
	for i := range 4 {
		if r.IntN(3) == 0 {
			continue
		}
		t := defaultTarget()
		t.Enabled = r.IntN(4) != 0
		t.QueuedCommands = uint32(32 << r.IntN(2))
		t.HeaderDigest = [][]string{{"None"}, {"CRC32C", "None"}}[r.IntN(2)]
		t.MaxBurstLength = uint32(262144 << r.IntN(3))
		t.RelTgtID = uint16(r.IntN(2))
		if r.IntN(3) == 0 {
			t.IncomingUsers = []User{{Name: "joe", Secret: secret(pick("secretsecret", "othersecret1"))}}
		}
		if r.IntN(4) == 0 {
			t.AllowedPortals = []string{"10.0.0.*"}
		}
		t.LUNs = luns()
		for g := range 2 {
			if r.IntN(3) != 0 {
				continue
			}
			if t.Groups == nil {
				t.Groups = map[string]*Group{}
			}
			t.Groups[fmt.Sprintf("g%d", g)] = &Group{Initiators: []string{pick("iqn.a:*", "iqn.b:*")}, LUNs: luns()}
		}
		m.Targets[fmt.Sprintf("iqn.2026-11.org.example:t%d", i)] = t
	}
	return m
}

func TestDiffProperties(t *testing.T) {
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 1))
		a, b := randomModel(r), randomModel(r)
		if p := Diff(a, a); !p.Empty() {
			t.Fatalf("seed %d: Diff(a, a) not empty:\n%s", seed, p)
		}
		if p := Diff(a, cloneModel(a)); !p.Empty() {
			t.Fatalf("seed %d: Diff(a, copy of a) not empty:\n%s", seed, p)
		}
		p := Diff(a, b)
		if got := applyPlan(a, p); !modelsEqual(got, b) {
			t.Fatalf("seed %d: applying Diff(a, b) to a does not give b; plan:\n%s", seed, p)
		}
		if again := Diff(a, b).String(); again != p.String() {
			t.Fatalf("seed %d: Diff is not deterministic:\n%s\nvs\n%s", seed, p, again)
		}
		checkTiers(t, seed, p)
	}
}

// checkTiers verifies that additions come before changes and changes
// before removals. (applyPlan checks the finer order: a target or group
// exists when its LUNs are added or removed.)
func checkTiers(t *testing.T, seed uint64, p Plan) {
	t.Helper()
	last := -1
	for i, c := range p.Changes {
		tier := c.Op.tier()
		if tier < last {
			t.Fatalf("seed %d: change %d (%s %s) out of tier order:\n%s", seed, i, c.Op, c.Addr, p)
		}
		last = tier
	}
}

func TestDiffImpactOnDisabledTarget(t *testing.T) {
	running := baseModel()
	running.Targets[iqnA].Enabled = false
	desired := cloneModel(running)
	desired.Targets[iqnA].LUNs[7] = LUN{Device: "spare"}
	setDevice(&desired, "disk1", func(d *Device) { d.Size = 8 << 30 })
	p := Diff(running, desired)
	if p.Impact() != Hot {
		t.Errorf("a disabled target has no sessions to notify:\n%s", p)
	}
}
