package reconcile

import (
	"slices"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

const fullConfig = `
iscsi {
  portals = ["[::1]:3260", "127.0.0.1:3260"]
  incoming_user "joeD" { secret = "12charsecret" }
}
handler "vdisk_fileio" {
  device "disk1" {
    filename      = "/var/lib/scst/disk1.img"
    size          = "10GiB"
    write_through = true
  }
}
handler "vdisk_nullio" {
  device "null1" { size = "1TiB" }
}
target "iqn.2026-11.org.example:a" {
  header_digest   = ["CRC32C", "None"]
  queued_commands = 64
  nop_in_interval = 10
  redirect        = "192.0.2.20:3260 temp"
  incoming_user "zed" { secret = "zedsecret1234" }
  incoming_user "ann" { secret = "annsecret1234" }
  lun "0" { device = "disk1" }
  lun "7" {
    device    = "null1"
    read_only = true
  }
  group "special" {
    initiators = ["iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest"]
    lun "0" { device = "null1" }
  }
}
`

// reorderedConfig means the same as fullConfig, written in another order.
const reorderedConfig = `
handler "vdisk_nullio" {
  device "null1" { size = "1TiB" }
}
target "iqn.2026-11.org.example:a" {
  group "special" {
    lun "0" { device = "null1" }
    initiators = ["iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest"]
  }
  lun "7" {
    read_only = true
    device    = "null1"
  }
  lun "0" { device = "disk1" }
  incoming_user "ann" { secret = "annsecret1234" }
  incoming_user "zed" { secret = "zedsecret1234" }
  redirect        = "192.0.2.20:3260 temp"
  nop_in_interval = 10
  queued_commands = 64
  header_digest   = ["CRC32C", "None"]
}
handler "vdisk_fileio" {
  device "disk1" {
    write_through = true
    size          = "10GiB"
    filename      = "/var/lib/scst/disk1.img"
  }
}
iscsi {
  incoming_user "joeD" { secret = "12charsecret" }
  portals = ["127.0.0.1:3260", "[::1]:3260"]
}
`

func TestFromConfig(t *testing.T) {
	m := FromConfig(parse(t, fullConfig))
	if !slices.Equal(m.ISCSI.Portals, hostPorts("127.0.0.1:3260", "[::1]:3260")) || !m.ISCSI.Enabled {
		t.Errorf("global %+v", m.ISCSI)
	}
	if len(m.ISCSI.IncomingUsers) != 1 || m.ISCSI.IncomingUsers[0].Name != "joeD" || m.ISCSI.IncomingUsers[0].Secret.Reveal() != "12charsecret" {
		t.Errorf("discovery users %v", m.ISCSI.IncomingUsers)
	}
	d := m.Devices["disk1"]
	want := Device{Handler: vdisk.FileIO, Filename: "/var/lib/scst/disk1.img", Size: 10 << 30, BlockSize: 512, WriteThrough: true, T10DevID: "disk1", USN: d.USN}
	if d != want || d.USN == "" {
		t.Errorf("disk1 = %+v, want %+v", d, want)
	}
	if n := m.Devices["null1"]; n.Handler != vdisk.NullIO || n.Size != 1<<40 {
		t.Errorf("null1 = %+v", n)
	}
	a := m.Targets[iqnA]
	if a == nil {
		t.Fatal("no target a")
	}
	if !slices.Equal(a.HeaderDigest, []access.Digest{access.DigestCRC32C, access.DigestNone}) || a.QueuedCommands != 64 || a.NopInInterval != Duration(10*time.Second) || a.RspTimeout != Duration(90*time.Second) {
		t.Errorf("target params %+v", a)
	}
	if a.Redirect.String() != "192.0.2.20:3260 temp" {
		t.Errorf("redirect %v", a.Redirect)
	}
	if len(a.IncomingUsers) != 2 || a.IncomingUsers[0].Name != "ann" || a.IncomingUsers[1].Name != "zed" {
		t.Errorf("users not sorted by name: %v", a.IncomingUsers)
	}
	if !lunMapsEqual(a.LUNs, map[scsi.LUN]LUN{0: {Device: "disk1"}, 7: {Device: "null1", ReadOnly: true}}) {
		t.Errorf("LUNs %v", a.LUNs)
	}
	g := a.Groups["special"]
	if g == nil || len(g.Initiators) != 2 || !lunMapsEqual(g.LUNs, map[scsi.LUN]LUN{0: {Device: "null1"}}) {
		t.Errorf("group %+v", g)
	}
}

func TestFromConfigIgnoresOrder(t *testing.T) {
	a, b := FromConfig(parse(t, fullConfig)), FromConfig(parse(t, reorderedConfig))
	if p := Diff(a, b, nil); !p.Empty() {
		t.Errorf("reordering the file gives a plan:\n%s", p)
	}
}

func TestFromConfigSecretChange(t *testing.T) {
	a := FromConfig(parse(t, fullConfig))
	b := FromConfig(parse(t, replaceOnce(t, fullConfig, "zedsecret1234", "zedsecret5678")))
	p := Diff(a, b, nil)
	if len(p.Changes) != 1 || p.Changes[0].Op != SetChapUsers || p.Changes[0].Reason != reasonSecretChanged {
		t.Fatalf("plan:\n%s", p)
	}
}
