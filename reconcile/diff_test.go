package reconcile

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
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
			Portals: [][]access.HostPort{hostPorts("0.0.0.0:3260"), hostPorts("127.0.0.1:3260", "[::1]:3260")}[r.IntN(2)],
		},
		Devices: map[string]Device{},
		Targets: map[string]*Target{},
	}
	if r.IntN(3) == 0 {
		m.ISCSI.IncomingUsers = []User{{Name: "disc", Secret: secret(pick("secretsecret", "othersecret1"))}}
	}
	if r.IntN(4) == 0 {
		m.ISCSI.ISNSServers = hostPorts("192.0.2.10:3205")
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
			d = Device{Handler: devDisk, Path: pick("/dev/sg1", "0:0:1:0"), Timeout: Duration(time.Duration(30*(1+r.IntN(2))) * time.Second), ReadOnly: r.IntN(2) == 0}
		}
		if r.IntN(5) == 0 {
			// A vcdrom drive, with a disc or none (filename "").
			d = Device{Handler: vdisk.CDROM, Filename: pick("/a.iso", "/b.iso", ""), FileID: pick("", "8:1", "8:2"), BlockSize: 2048,
				ReadOnly: true, Removable: true, T10DevID: name, USN: pick("0001", "0002")}
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
		t.HeaderDigest = [][]access.Digest{{access.DigestNone}, {access.DigestCRC32C, access.DigestNone}}[r.IntN(2)]
		t.MaxBurstLength = uint32(262144 << r.IntN(3))
		t.RelTgtID = uint16(r.IntN(2))
		if r.IntN(3) == 0 {
			t.IncomingUsers = []User{{Name: "joe", Secret: secret(pick("secretsecret", "othersecret1"))}}
		}
		if r.IntN(4) == 0 {
			t.AllowedPortals = access.MustPatterns("10.0.0.*")
		}
		t.LUNs = luns()
		for g := range 2 {
			if r.IntN(3) != 0 {
				continue
			}
			if t.Groups == nil {
				t.Groups = map[string]*Group{}
			}
			t.Groups[fmt.Sprintf("g%d", g)] = &Group{Initiators: access.MustPatterns(pick("iqn.a:*", "iqn.b:*")), LUNs: luns()}
		}
		m.Targets[fmt.Sprintf("iqn.2026-11.org.example:t%d", i)] = t
	}
	return m
}

func TestDiffProperties(t *testing.T) {
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 1))
		a, b := randomModel(r), randomModel(r)
		if p := Diff(a, a, nil); !p.Empty() {
			t.Fatalf("seed %d: Diff(a, a) not empty:\n%s", seed, p)
		}
		if p := Diff(a, cloneModel(a), nil); !p.Empty() {
			t.Fatalf("seed %d: Diff(a, copy of a) not empty:\n%s", seed, p)
		}
		p := Diff(a, b, nil)
		kept := cloneModel(a)
		if got := a.apply(p); !modelsEqual(got, b) {
			t.Fatalf("seed %d: applying Diff(a, b) to a does not give b; plan:\n%s", seed, p)
		}
		// apply shares what the plan leaves alone: it must not write it.
		if !modelsEqual(a, kept) {
			t.Fatalf("seed %d: applying Diff(a, b) changed a; plan:\n%s", seed, p)
		}
		if again := Diff(a, b, nil).String(); again != p.String() {
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
	p := Diff(running, desired, nil)
	if p.Impact() != Hot {
		t.Errorf("a disabled target has no sessions to notify:\n%s", p)
	}
}

// TestImpactPerSession checks each impact class on the change that causes
// it, and which live sessions it reaches (goldenSessions: host1 and win1
// on target a, host2 on target b).
func TestImpactPerSession(t *testing.T) {
	const host1, host2, win1 = "iqn.1994-05.com.redhat:host1", "iqn.1994-05.com.redhat:host2", "iqn.1991-05.com.microsoft:win1"
	withGroup := func(m *Model) {
		m.Targets[iqnA].Groups = map[string]*Group{"windows": {Initiators: access.MustPatterns("iqn.1991-05.com.microsoft:*"), LUNs: map[scsi.LUN]LUN{0: {Device: "disk1"}}}}
	}
	for _, tc := range []struct {
		name   string
		before func(m *Model)
		change func(m *Model)
		addr   Addr
		impact Impact
		reach  []string // initiators, in order
	}{
		{"hot: a device nobody maps", nil, func(m *Model) { setDevice(m, "spare", func(d *Device) { d.Size = 8 << 30 }) },
			DeviceAddr("spare"), Hot, nil},
		{"next login: a target parameter", nil, func(m *Model) { m.Targets[iqnA].MaxBurstLength = 65536 },
			TargetAddr(iqnA), NextLogin, nil},
		{"unit attention: LUN added, other target not reached", nil, func(m *Model) { m.Targets[iqnA].LUNs[4] = LUN{Device: "spare"} },
			LUNAddr(iqnA, "", 4), UnitAttention, []string{win1, host1}},
		{"unit attention: capacity, every session of the device", nil, func(m *Model) { setDevice(m, "null1", func(d *Device) { d.Size = 2 << 40 }) },
			DeviceAddr("null1"), UnitAttention, []string{win1, host1, host2}},
		{"unit attention: a group's LUN, the default map's sessions not reached", withGroup, func(m *Model) {
			m.Targets[iqnA].Groups["windows"].LUNs[1] = LUN{Device: "spare"}
		}, LUNAddr(iqnA, "windows", 1), UnitAttention, []string{win1}},
		{"device swap: a LUN's device", nil, func(m *Model) { m.Targets[iqnA].LUNs[1] = LUN{Device: "spare"} },
			LUNAddr(iqnA, "", 1), DeviceSwap, []string{win1, host1}},
		{"device swap: a group added over a live session", nil, func(m *Model) {
			m.Targets[iqnA].Groups = map[string]*Group{"kvm": {Initiators: access.MustPatterns(host1), LUNs: map[scsi.LUN]LUN{0: {Device: "spare"}}}}
		}, GroupAddr(iqnA, "kvm"), DeviceSwap, []string{host1}},
		{"unit attention: initiators moved to a map with the same device at LUN 0", withGroup, func(m *Model) {
			m.Targets[iqnA].Groups["windows"].Initiators = access.MustPatterns("iqn.1991-05.com.microsoft:other")
		}, GroupAddr(iqnA, "windows"), UnitAttention, []string{win1}},
		{"device swap: initiators moved to a map with another device at LUN 0", func(m *Model) {
			withGroup(m)
			m.Targets[iqnA].Groups["windows"].LUNs[0] = LUN{Device: "spare"}
		}, func(m *Model) {
			m.Targets[iqnA].Groups["windows"].Initiators = access.MustPatterns("iqn.1991-05.com.microsoft:other")
		}, GroupAddr(iqnA, "windows"), DeviceSwap, []string{win1}},
		{"unit attention: per_portal_acl moves a session", func(m *Model) {
			withGroup(m)
			m.Targets[iqnA].Groups["windows"].Initiators = access.MustPatterns(win1)
		}, func(m *Model) { m.Targets[iqnA].PerPortalACL = true },
			TargetAddr(iqnA), UnitAttention, []string{win1}},
		{"device swap: backing file changed", nil, func(m *Model) { setDevice(m, "disk1", func(d *Device) { d.Filename = "/srv/other.img" }) },
			DeviceAddr("disk1"), DeviceSwap, []string{win1, host1}},
		{"identity change: usn", nil, func(m *Model) { setDevice(m, "disk1", func(d *Device) { d.USN = "00000001" }) },
			DeviceAddr("disk1"), IdentityChange, []string{win1, host1}},
		{"identity change: a rename", nil, func(m *Model) {
			d := m.Devices["disk1"]
			delete(m.Devices, "disk1")
			d.T10DevID = "vol1"
			m.Devices["vol1"] = d
			m.Targets[iqnA].LUNs[0] = LUN{Device: "vol1"}
		}, LUNAddr(iqnA, "", 0), IdentityChange, []string{win1, host1}},
		{"hot: a rename that keeps the identity", nil, func(m *Model) {
			m.Devices["vol1"] = m.Devices["disk1"]
			delete(m.Devices, "disk1")
			m.Targets[iqnA].LUNs[0] = LUN{Device: "vol1"}
		}, LUNAddr(iqnA, "", 0), Hot, nil},
		{"session drop: target removed, the other target not reached", nil, func(m *Model) { delete(m.Targets, iqnA) },
			TargetAddr(iqnA), SessionDrop, []string{win1, host1}},
		{"hot: target removed without sessions", nil, func(m *Model) { delete(m.Targets, iqnC) },
			TargetAddr(iqnC), Hot, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			running := baseModel()
			running.Targets[iqnC] = defaultTarget()
			if tc.before != nil {
				tc.before(&running)
			}
			desired := cloneModel(running)
			tc.change(&desired)
			p := Diff(running, desired, goldenSessions)
			var c *Change
			for i := range p.Changes {
				if p.Changes[i].Addr == tc.addr && c == nil {
					c = &p.Changes[i]
				}
			}
			if c == nil {
				t.Fatalf("no change at %s:\n%s", tc.addr, p)
			}
			var reach []string
			for _, a := range c.Sessions {
				reach = append(reach, a.Session.Initiator)
			}
			if c.Impact != tc.impact || !slices.Equal(reach, tc.reach) {
				t.Errorf("%s: impact %v reaching %v, want %v reaching %v:\n%s", tc.addr, c.Impact, reach, tc.impact, tc.reach, p)
			}
			if c.Impact.Disruptive() != (len(p.Disruptive()) > 0) && c.Impact.Disruptive() {
				t.Errorf("Disruptive() misses %s", tc.addr)
			}
		})
	}
}
