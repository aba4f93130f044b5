package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// The access scenarios use three loopback addresses as distinct portals
// of one daemon (the same port on each).
const threePortals = `portals = ["127.0.0.1:{{.Port}}", "127.0.0.2:{{.Port}}", "127.0.0.3:{{.Port}}"]`

// org names an iSCSI name of the scenarios.
func org(suffix string) string { return "iqn.2026-11.org.example:" + suffix }

// portalOn is the daemon's portal on loopback address ip.
func portalOn(tgt *testtarget.Target, ip string) string {
	return net.JoinHostPort(ip, fmt.Sprint(tgt.Params().Port))
}

// lsView is what `iscsi-ls -s` shows one initiator: for each target, the
// portals SendTargets offers it on and, per portal, its LUNs as
// "N:SIZE" (libiscsi's rounded size, 16 MiB prints as 15M).
type lsView map[string]map[string][]string

// discoverAs runs iscsi-ls -s as initiatorName against url and parses
// its output. A failing iscsi-ls is an error.
func discoverAs(t *testing.T, url, initiatorName string) (lsView, string, error) {
	t.Helper()
	out, err := run(t, toolTimeout, "iscsi-ls", "-s", "-i", initiatorName, url)
	if err != nil {
		return nil, out, err
	}
	v := lsView{}
	var target, portal string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && strings.HasPrefix(f[0], "Target:") && strings.HasPrefix(f[1], "Portal:"):
			target = strings.TrimPrefix(f[0], "Target:")
			portal, _, _ = strings.Cut(strings.TrimPrefix(f[1], "Portal:"), ",")
			if v[target] == nil {
				v[target] = map[string][]string{}
			}
			v[target][portal] = []string{}
		case len(f) >= 1 && strings.HasPrefix(f[0], "Lun:") && target != "":
			size := ""
			if i := strings.Index(line, "(Size:"); i >= 0 {
				size = strings.TrimSuffix(line[i+len("(Size:"):], ")")
			}
			v[target][portal] = append(v[target][portal], strings.TrimPrefix(f[0], "Lun:")+":"+size)
		}
	}
	return v, out, nil
}

// goLogin logs in with the Go initiator over a connection from local
// address from ("" lets the kernel choose) to portal. The connection is
// closed when the test ends.
func goLogin(t *testing.T, from, portal string, o initiator.Options) (*initiator.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", portal)
	if err != nil {
		t.Fatalf("dialing %s: %v", portal, err)
	}
	c := initiator.NewConn(nc)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	return c, c.Login(o)
}

// statusOf is the login status of a Login error: LoginSuccess for nil,
// and a test failure for an error that is not a refusal.
func statusOf(t *testing.T, err error) iscsi.LoginStatus {
	t.Helper()
	var le *initiator.LoginError
	switch {
	case err == nil:
		return iscsi.LoginSuccess
	case errors.As(err, &le):
		return le.Status
	}
	t.Fatalf("login: %v", err)
	return 0
}

// accessSense is the key and ASC of sense data (fixed or descriptor).
func accessSense(b []byte) (key, asc byte) {
	switch {
	case len(b) >= 13 && b[0]&0x7f <= 0x71:
		return b[2] & 0x0f, b[12]
	case len(b) >= 3:
		return b[1] & 0x0f, b[2]
	}
	return 0, 0
}

// scsiCmd runs a command on lun, retrying past unit attentions. It
// returns the data of a GOOD status, or the sense key and ASC of a CHECK
// CONDITION.
func scsiCmd(c *initiator.Conn, lun int, cdb, out []byte, readLen int) (data []byte, key, asc byte, err error) {
	for range 8 {
		rsp, err := c.Command(scsi.LUN(lun).Encode(), cdb, out, readLen)
		if err != nil {
			return nil, 0, 0, err
		}
		if rsp.Status == 0 {
			return rsp.Data, 0, 0, nil
		}
		key, asc = accessSense(rsp.Sense)
		if rsp.Status == 2 && key == 0x06 {
			continue
		}
		return nil, key, asc, fmt.Errorf("status %02Xh sense key %Xh ASC %02Xh", rsp.Status, key, asc)
	}
	return nil, 0, 0, errors.New("still UNIT ATTENTION after 8 attempts")
}

// reportLUNs returns the LUNs REPORT LUNS lists.
func reportLUNs(t *testing.T, c *initiator.Conn) []int {
	t.Helper()
	cdb := []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}
	d, _, _, err := scsiCmd(c, 0, cdb, nil, 4096)
	if err != nil {
		t.Fatalf("REPORT LUNS: %v", err)
	}
	var luns []int
	if len(d) < 8 {
		t.Fatalf("REPORT LUNS: %d bytes", len(d))
	}
	n := int(binary.BigEndian.Uint32(d)) / 8
	for i := 0; i < n && 8+8*i+8 <= len(d); i++ {
		luns = append(luns, int(binary.BigEndian.Uint16(d[8+8*i:])&0x3fff))
	}
	slices.Sort(luns)
	return luns
}

// writeRead writes one block of pattern p at lba of lun and reads it
// back.
func writeRead(c *initiator.Conn, lun int, lba uint32, p byte) error {
	block := make([]byte, 512)
	for i := range block {
		block[i] = p
	}
	w := []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}
	binary.BigEndian.PutUint32(w[2:], lba)
	if _, _, _, err := scsiCmd(c, lun, w, block, 0); err != nil {
		return fmt.Errorf("WRITE(10): %w", err)
	}
	r := []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}
	binary.BigEndian.PutUint32(r[2:], lba)
	got, _, _, err := scsiCmd(c, lun, r, nil, 512)
	if err != nil {
		return fmt.Errorf("READ(10): %w", err)
	}
	if !slices.Equal(got, block) {
		return fmt.Errorf("READ(10) of LBA %d returned other data than written", lba)
	}
	return nil
}

// groupsConfig: target ga shows its default LUN 0 (16 MiB) to everyone
// but the admins group (LUN 0 32 MiB, LUN 1 48 MiB read-only; admin-guest
// excluded) and the quarantine group (no LUNs: ga is hidden from it);
// target gb has no default LUNs and shows the web group a 64 MiB LUN 0.
const groupsConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "f16" {
    filename = "{{.Dir}}/f16.img"
    size     = "16MiB"
  }
  device "f32" {
    filename = "{{.Dir}}/f32.img"
    size     = "32MiB"
  }
  device "f48" {
    filename = "{{.Dir}}/f48.img"
    size     = "48MiB"
  }
  device "f64" {
    filename = "{{.Dir}}/f64.img"
    size     = "64MiB"
  }
}

target "iqn.2026-11.org.example:ga" {
  lun "0" { device = "f16" }
  group "admins" {
    initiators = ["iqn.2026-11.org.example:admin*", "!iqn.2026-11.org.example:admin-guest"]
    lun "0" { device = "f32" }
    lun "1" {
      device    = "f48"
      read_only = true
    }
  }
  group "quarantine" {
    initiators = ["iqn.2026-11.org.example:q?"]
  }
}

target "iqn.2026-11.org.example:gb" {
  group "web" {
    initiators = ["iqn.2026-11.org.example:web-*"]
    lun "0" { device = "f64" }
  }
}
`

// TestAccessGroupMatrix checks, for several initiator names, which
// targets discovery shows and which LUNs each one gets (iscsi-ls -s with
// REPORT LUNS and READ CAPACITY), and that a hidden target refuses the
// login (0203h, Go initiator) and cannot be opened (iscsi-inq -i).
func TestAccessGroupMatrix(t *testing.T) {
	requireTools(t, "iscsi-ls", "iscsi-inq")
	tgt := testtarget.Start(t, groupsConfig)
	ga, gb := org("ga"), org("gb")
	for _, c := range []struct {
		initiator string
		want      map[string][]string // target → LUN:size
	}{
		{org("admin1"), map[string][]string{ga: {"0:31M", "1:47M"}}},
		{org("adminX"), map[string][]string{ga: {"0:31M", "1:47M"}}},
		{org("admin-guest"), map[string][]string{ga: {"0:15M"}}},
		{org("q1"), map[string][]string{}},
		{org("q12"), map[string][]string{ga: {"0:15M"}}}, // ? is one character
		{org("web-01"), map[string][]string{ga: {"0:15M"}, gb: {"0:63M"}}},
		{org("other"), map[string][]string{ga: {"0:15M"}}},
	} {
		t.Run(c.initiator, func(t *testing.T) {
			v, out, err := discoverAs(t, tgt.URL(), c.initiator)
			if err != nil {
				t.Fatalf("iscsi-ls: %v\n%s", err, out)
			}
			for _, target := range []string{ga, gb} {
				want, visible := c.want[target]
				got, listed := v[target]
				if listed != visible {
					t.Errorf("discovery lists %s: %v, want %v\n%s", target, listed, visible, out)
					continue
				}
				for portal, luns := range got {
					if !slices.Equal(luns, want) {
						t.Errorf("%s via %s: LUNs %q, want %q\n%s", target, portal, luns, want, out)
					}
				}
				_, err := goLogin(t, "", tgt.Portal(), initiator.Options{InitiatorName: c.initiator, TargetName: target})
				if st := statusOf(t, err); (st == iscsi.LoginSuccess) != visible || (!visible && st != iscsi.LoginNotFound) {
					t.Errorf("login to %s: %v, want success %v (else %v)", target, st, visible, iscsi.LoginNotFound)
				}
				out, err := run(t, toolTimeout, "iscsi-inq", "-i", c.initiator, tgt.LUNURL(target, 0))
				if (err == nil) != visible {
					t.Errorf("iscsi-inq -i %s on %s LUN 0 succeeded: %v, want %v\n%s", c.initiator, target, err == nil, visible, out)
				}
			}
		})
	}
}

// TestAccessReadOnlyLUN: a group LUN with read_only answers writes with
// DATA PROTECT / WRITE PROTECTED and shows the WP bit in MODE SENSE; the
// writable LUN beside it does neither.
func TestAccessReadOnlyLUN(t *testing.T) {
	tgt := testtarget.Start(t, groupsConfig)
	c, err := goLogin(t, "", tgt.Portal(), initiator.Options{InitiatorName: org("admin1"), TargetName: org("ga")})
	if err != nil {
		t.Fatal(err)
	}
	if got := reportLUNs(t, c); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("REPORT LUNS for admin1: %v, want [0 1]", got)
	}
	modeSense := []byte{0x1a, 0, 0x3f, 0, 0xff, 0}
	for _, l := range []struct {
		lun      int
		readOnly bool
	}{{0, false}, {1, true}} {
		d, _, _, err := scsiCmd(c, l.lun, modeSense, nil, 255)
		if err != nil || len(d) < 4 {
			t.Fatalf("LUN %d: MODE SENSE(6): %v", l.lun, err)
		}
		if wp := d[2]&0x80 != 0; wp != l.readOnly {
			t.Errorf("LUN %d: MODE SENSE WP bit %v, want %v", l.lun, wp, l.readOnly)
		}
		err = writeRead(c, l.lun, 7, 0x5a)
		if !l.readOnly {
			if err != nil {
				t.Errorf("LUN %d (writable): %v", l.lun, err)
			}
			continue
		}
		w := []byte{0x2a, 0, 0, 0, 0, 7, 0, 0, 1, 0}
		_, key, asc, err := scsiCmd(c, l.lun, w, make([]byte, 512), 0)
		if err == nil || key != 0x07 || asc != 0x27 {
			t.Errorf("LUN %d (read_only): WRITE(10) answered %v (key %Xh ASC %02Xh), want DATA PROTECT / WRITE PROTECTED (7h/27h)",
				l.lun, err, key, asc)
		}
	}
}

// portalsConfig serves three portals; pa is on 127.0.0.2 only, pb on every
// portal but 127.0.0.3, pacl (per_portal_acl) shows LUNs to ppa on
// 127.0.0.2 and to anyone on 127.0.0.3, pall is everywhere.
const portalsConfig = `
iscsi { ` + threePortals + ` }

handler "vdisk_nullio" {
  device "n1" { size = "16MiB" }
  device "n2" { size = "16MiB" }
  device "n3" { size = "32MiB" }
  device "n4" { size = "48MiB" }
  device "n5" { size = "16MiB" }
}

target "iqn.2026-11.org.example:pa" {
  allowed_portals = ["127.0.0.2"]
  lun "0" { device = "n1" }
}

target "iqn.2026-11.org.example:pb" {
  allowed_portals = ["127.0.0.*", "!127.0.0.3"]
  lun "0" { device = "n2" }
}

target "iqn.2026-11.org.example:pacl" {
  per_portal_acl = true
  group "ppa-via-2" {
    initiators = ["iqn.2026-11.org.example:ppa#127.0.0.2"]
    lun "0" { device = "n3" }
  }
  group "anyone-via-3" {
    initiators = ["*#127.0.0.3"]
    lun "0" { device = "n4" }
  }
}

target "iqn.2026-11.org.example:pall" {
  lun "0" { device = "n5" }
}
`

// TestAccessPortals: allowed_portals and per_portal_acl decide, per
// portal (the local address the initiator reached), where SendTargets
// offers a target and where it accepts logins.
func TestAccessPortals(t *testing.T) {
	requireTools(t, "iscsi-ls")
	tgt := testtarget.Start(t, portalsConfig)
	p1, p2, p3 := portalOn(tgt, "127.0.0.1"), portalOn(tgt, "127.0.0.2"), portalOn(tgt, "127.0.0.3")
	pa, pb, pacl, pall := org("pa"), org("pb"), org("pacl"), org("pall")
	all := []string{p1, p2, p3}
	for _, c := range []struct {
		initiator string
		// offered: target → the portals SendTargets gives and the only
		// ones it logs in on. Discovery on any other portal does not
		// list the target at all (iSCSI-SCST: "accessible for
		// initiators only on the specified portals").
		offered map[string][]string
	}{
		{org("other"), map[string][]string{pa: {p2}, pb: {p1, p2}, pacl: {p3}, pall: all}},
		{org("ppa"), map[string][]string{pa: {p2}, pb: {p1, p2}, pacl: {p2, p3}, pall: all}},
	} {
		for _, via := range all {
			t.Run(c.initiator+"/discovery via "+via, func(t *testing.T) {
				v, out, err := discoverAs(t, "iscsi://"+via, c.initiator)
				if err != nil {
					t.Fatalf("iscsi-ls: %v\n%s", err, out)
				}
				for target, want := range c.offered {
					got := make([]string, 0, len(v[target]))
					for p := range v[target] {
						got = append(got, p)
					}
					slices.Sort(got)
					if !slices.Contains(want, via) {
						want = []string{}
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s offered on %q, want %q\n%s", target, got, want, out)
					}
				}
			})
		}
		t.Run(c.initiator+"/logins", func(t *testing.T) {
			for target, want := range c.offered {
				for _, via := range all {
					_, err := goLogin(t, "", via, initiator.Options{InitiatorName: c.initiator, TargetName: target})
					st := statusOf(t, err)
					ok := slices.Contains(want, via)
					if (st == iscsi.LoginSuccess) != ok || (!ok && st != iscsi.LoginNotFound) {
						t.Errorf("login to %s via %s: %v, want success %v (else %v)", target, via, st, ok, iscsi.LoginNotFound)
					}
				}
			}
		})
	}
	// The per-portal ACL gives different LUNs on different portals.
	for _, c := range []struct {
		via, initiator, size string
	}{
		{p2, org("ppa"), "0:31M"},
		{p3, org("ppa"), "0:47M"},
		{p3, org("other"), "0:47M"},
	} {
		v, out, err := discoverAs(t, "iscsi://"+c.via, c.initiator)
		if err != nil {
			t.Fatalf("iscsi-ls: %v\n%s", err, out)
		}
		if got := v[pacl][c.via]; !slices.Equal(got, []string{c.size}) {
			t.Errorf("%s on %s: pacl LUNs %q, want [%s]\n%s", c.initiator, c.via, got, c.size, out)
		}
	}
}

// enabledConfig has target on and target off (enabled = false); the
// iscsi block's enabled is ENABLED.
const enabledConfig = `
iscsi {
  enabled = ENABLED
  portals = ["{{.Portal}}"]
}
handler "vdisk_nullio" {
  device "n1" { size = "16MiB" }
  device "n2" { size = "16MiB" }
}
target "iqn.2026-11.org.example:on" {
  lun "0" { device = "n1" }
}
target "iqn.2026-11.org.example:off" {
  enabled = false
  lun "0" { device = "n2" }
}
`

// TestAccessEnabled: a disabled target is hidden from discovery and
// refuses logins (0203h); with iscsi { enabled = false } (by reload) every
// login is refused (0301h, discovery too), and enabling it again admits
// logins.
func TestAccessEnabled(t *testing.T) {
	requireTools(t, "iscsi-ls")
	tgt := testtarget.Start(t, strings.Replace(enabledConfig, "ENABLED", "true", 1))
	on, off := org("on"), org("off")
	out := mustRun(t, "iscsi-ls", tgt.URL())
	if !strings.Contains(out, "Target:"+on+" ") || strings.Contains(out, off) {
		t.Errorf("discovery must list on and not off:\n%s", out)
	}
	for _, c := range []struct {
		target string
		want   iscsi.LoginStatus
	}{{on, iscsi.LoginSuccess}, {off, iscsi.LoginNotFound}} {
		_, err := goLogin(t, "", tgt.Portal(), initiator.Options{TargetName: c.target})
		if st := statusOf(t, err); st != c.want {
			t.Errorf("login to %s: %v, want %v", c.target, st, c.want)
		}
	}

	for _, enabled := range []bool{false, true} {
		r := tgt.Reconfigure(strings.Replace(enabledConfig, "ENABLED", fmt.Sprint(enabled), 1))
		if !r.OK {
			t.Fatalf("reload with iscsi.enabled = %v: %s\n%s", enabled, r.Error, r.Diagnostics)
		}
		want := iscsi.LoginServiceUnavailable
		if enabled {
			want = iscsi.LoginSuccess
		}
		for _, target := range []string{on, ""} {
			_, err := goLogin(t, "", tgt.Portal(), initiator.Options{TargetName: target})
			if st := statusOf(t, err); st != want {
				t.Errorf("iscsi.enabled = %v: login to %q: %v, want %v", enabled, target, st, want)
			}
		}
	}
}
