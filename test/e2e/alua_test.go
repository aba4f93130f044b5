package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/scsi"
)

// Multipath: two targets, one per portal (127.0.0.1 and 127.0.0.2), that
// export one disk, each target's port in its own target port group of one
// device group. The states come from the test.
const (
	aluaA = "iqn.2026-11.org.example:alua-a"
	aluaB = "iqn.2026-11.org.example:alua-b"

	aluaConfig = `
iscsi { portals = ["{{.Portal}}", "127.0.0.2:{{slice .Portal 10}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
}

target "iqn.2026-11.org.example:alua-a" {
  allowed_portals = ["127.0.0.1"]
  lun "0" { device = "disk0" }
}

target "iqn.2026-11.org.example:alua-b" {
  allowed_portals = ["127.0.0.2"]
  lun "0" { device = "disk0" }
}

device_group "dg" {
  devices  = ["disk0"]
  explicit = true
  target_group "a" {
    group_id  = 1
    state     = "%s"
    preferred = true
    targets   = ["iqn.2026-11.org.example:alua-a"]
  }
  target_group "b" {
    group_id = 2
    state    = "%s"
    targets  = ["iqn.2026-11.org.example:alua-b"]
  }
}
`
)

// aluaStatus is what the tests read of `scstd status -json`.
type aluaStatus struct {
	Engine struct {
		Devices []struct {
			Name      string           `json:"name"`
			NAA       string           `json:"naa_id"`
			LegacyNAA string           `json:"legacy_naa_id"`
			PR        *json.RawMessage `json:"persistent_reservations"`
		} `json:"devices"`
		Targets []struct {
			Name     string `json:"name"`
			RelTgtID uint16 `json:"rel_tgt_id"`
		} `json:"targets"`
		DeviceGroups []struct {
			Name         string `json:"name"`
			TargetGroups []struct {
				Name       string   `json:"name"`
				GroupID    uint16   `json:"group_id"`
				State      string   `json:"state"`
				Configured string   `json:"configured_state"`
				Ports      []uint16 `json:"ports"`
			} `json:"target_groups"`
		} `json:"device_groups"`
		Sessions []struct {
			Initiator string `json:"initiator"`
			TSIH      uint16 `json:"tsih"`
			Target    string `json:"target"`
		} `json:"sessions"`
	} `json:"engine"`
}

func aluaStatusOf(t *testing.T, tgt *testtarget.Target) aluaStatus {
	t.Helper()
	raw, err := tgt.Admin().Status()
	if err != nil {
		t.Fatal(err)
	}
	var st aluaStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (st aluaStatus) relTgtID(target string) uint16 {
	for _, t := range st.Engine.Targets {
		if t.Name == target {
			return t.RelTgtID
		}
	}
	return 0
}

// pathSession logs initiator in to target through portal with the Go
// initiator and clears its power-on unit attention.
func pathSession(t *testing.T, portal, target, initiatorName string) *initiator.Conn {
	t.Helper()
	c, err := goLogin(t, "", portal, initiator.Options{InitiatorName: initiatorName, TargetName: target,
		MaxRecvDSL: 262144, ImmediateData: true})
	if err != nil {
		t.Fatalf("login to %s through %s: %v", target, portal, err)
	}
	for range 4 {
		if rsp := command(t, c, "03 00 00 00 12 00", nil, 18); rsp.Status == statusGood && rsp.Data[2]&0x0f != senseKeyUnitAttention {
			break
		}
	}
	return c
}

// command runs a CDB given in hex on LUN 0.
func command(t *testing.T, c *initiator.Conn, cdb string, out []byte, readLen int) *initiator.Response {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(cdb, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	rsp, err := c.Command(scsi.LUN(0).Encode(), b, out, readLen)
	if err != nil {
		t.Fatalf("%s: %v", cdb, err)
	}
	return rsp
}

// outcome is "GOOD" or the sense of a response.
func outcome(rsp *initiator.Response) string {
	if rsp.Status == statusGood {
		return "GOOD"
	}
	if s, ok := parseSense(rsp.Sense); ok {
		return s.String()
	}
	return fmt.Sprintf("status %02Xh", rsp.Status)
}

const (
	outcomeStandby     = "02h/04h/0Bh" // NOT READY, LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE
	outcomeALUAChanged = "06h/2Ah/06h" // UNIT ATTENTION, ASYMMETRIC ACCESS STATE CHANGED
)

// rtpgText decodes REPORT TARGET PORT GROUPS parameter data as sg_rtpg
// (sg3_utils) prints it, with the length format's 4-byte header or the
// extended one's 8.
func rtpgText(t *testing.T, b []byte, extended bool) string {
	t.Helper()
	states := map[byte]string{0: "active/optimized", 1: "active/non optimized", 2: "standby", 3: "unavailable",
		0xe: "offline", 0xf: "transitioning between states"}
	var s strings.Builder
	if len(b) < 4 || int(binary.BigEndian.Uint32(b)) != len(b)-4 {
		t.Fatalf("RTPG RETURN DATA LENGTH %x does not match %d bytes", b[:min(4, len(b))], len(b))
	}
	off := 4
	s.WriteString("Report target port groups:\n")
	if extended {
		fmt.Fprintf(&s, "  format type: %d, implicit transition time: %d\n", b[4]>>4&7, b[5])
		off = 8
	}
	for off < len(b) {
		d := b[off:]
		fmt.Fprintf(&s, "  target port group id : 0x%x , Pref=%d, Rtpg_fmt=%d\n", binary.BigEndian.Uint16(d[2:4]), d[0]>>7, 0)
		fmt.Fprintf(&s, "    target port group asymmetric access state : 0x%02x (%s)\n", d[0]&0x0f, states[d[0]&0x0f])
		fmt.Fprintf(&s, "    T_SUP : %d, O_SUP : %d, LBD_SUP : %d, U_SUP : %d, S_SUP : %d, AN_SUP : %d, AO_SUP : %d\n",
			d[1]>>7&1, d[1]>>6&1, d[1]>>4&1, d[1]>>3&1, d[1]>>2&1, d[1]>>1&1, d[1]&1)
		fmt.Fprintf(&s, "    status code : 0x%02x\n", d[5])
		fmt.Fprintf(&s, "    target port count : %02x\n", d[7])
		for i := range int(d[7]) {
			p := d[8+4*i:]
			fmt.Fprintf(&s, "    Relative target port ids:\n      0x%02x\n", binary.BigEndian.Uint16(p[2:4]))
		}
		off += 8 + 4*int(d[7])
	}
	return s.String()
}

// scsiIDSerial decodes VPD page 83h as udev's scsi_id --page=0x83 does
// (ID_SERIAL) and as the Linux kernel's scsi_vpd_lun_id ranks
// designators (the wwid in sysfs), and returns both with the target port
// group the page names.
//
// The kernel (drivers/scsi/scsi_lib.c, designator_prio) ranks the
// logical unit designators: SCSI name string 9, NAA IEEE Registered
// Extended 8, EUI-64 16-byte 7, 12-byte 6, NAA IEEE Registered 5, NAA
// IEEE Extended 4, EUI-64 8-byte 3, a truncated name string 2, NAA
// locally assigned 1, T10 vendor ID 1; of equal rank the later wins.
// scsi_id (src/udev/scsi_id/scsi_serial.c, id_search_list) takes the
// first of: NAA 6h binary, NAA 5h binary, any NAA binary, EUI-64, T10
// vendor ID, vendor specific; ID_SERIAL is the designator type's hex
// digit followed by the designator in hex.
func scsiIDSerial(t *testing.T, page []byte) (serial, wwid string, tpg int) {
	t.Helper()
	tpg = -1
	prio := func(d []byte) int {
		if d[1]&0x30 != 0 || d[3] == 0 {
			return 0
		}
		switch d[1] & 0x0f {
		case 8:
			return 9
		case 3:
			return map[byte]int{6: 8, 5: 5, 4: 4, 3: 1}[d[4]>>4]
		case 2:
			return map[byte]int{16: 7, 12: 6, 8: 3}[d[3]]
		case 1:
			return 1
		}
		return 0
	}
	best := 0
	var lu [][]byte
	for off := 4; off+4 <= len(page); {
		d := page[off:]
		n := int(d[3])
		if off+4+n > len(page) {
			t.Fatalf("designator overruns the page")
		}
		d = d[:4+n]
		switch {
		case d[1]&0x30 == 0x10 && d[1]&0x0f == 5:
			tpg = int(binary.BigEndian.Uint16(d[6:8]))
		case d[1]&0x30 == 0:
			lu = append(lu, d)
			if p := prio(d); p > 0 && p >= best {
				best = p
				switch d[1] & 0x0f {
				case 3:
					wwid = "naa." + hex.EncodeToString(d[4:])
				case 1:
					wwid = "t10." + string(d[4:])
				}
			}
		}
		off += 4 + n
	}
	// scsi_id: the first designator type of its list that the page has.
	for _, w := range []struct{ typ, naa byte }{{3, 6}, {3, 5}, {3, 0}, {2, 0}, {1, 0}} {
		for _, d := range lu {
			if d[1]&0x0f != w.typ || w.naa != 0 && d[4]>>4 != w.naa {
				continue
			}
			if d[0]&0x0f == 1 { // binary: two hex digits a byte
				return fmt.Sprintf("%x", w.typ) + hex.EncodeToString(d[4:]), wwid, tpg
			}
			return fmt.Sprintf("%x", w.typ) + string(d[4:]), wwid, tpg
		}
	}
	return serial, wwid, tpg
}

func TestALUAReportTargetPortGroups(t *testing.T) {
	tgt := testtarget.Start(t, fmt.Sprintf(aluaConfig, "active/optimized", "standby"))
	st := aluaStatusOf(t, tgt)
	relA, relB := st.relTgtID(aluaA), st.relTgtID(aluaB)
	naa := st.Engine.Devices[0].NAA
	if len(naa) != 32 || naa[0] != '6' {
		t.Fatalf("status naa_id %q: want a derived NAA 6h designator", naa)
	}
	portB := strings.Replace(tgt.Portal(), "127.0.0.1", "127.0.0.2", 1)
	a := pathSession(t, tgt.Portal(), aluaA, "iqn.2026-11.org.example:host1")
	b := pathSession(t, portB, aluaB, "iqn.2026-11.org.example:host1")

	// INQUIRY: TPGS 11b (implicit and explicit) in byte 5.
	if rsp := command(t, a, "12 00 00 0060 00", nil, 96); rsp.Status != statusGood || rsp.Data[5]&0x30 != 0x30 {
		t.Errorf("INQUIRY byte 5 % x: want TPGS 11b", rsp.Data[5:6])
	}
	// VPD 83h: each path names its target port group, and both name the
	// same logical unit, which Linux calls naa.<designator> and udev
	// 3<designator>.
	for _, p := range []struct {
		c   *initiator.Conn
		tpg int
	}{{a, 1}, {b, 2}} {
		rsp := command(t, p.c, "12 01 83 0400 00", nil, 1024)
		serial, wwid, tpg := scsiIDSerial(t, rsp.Data)
		if serial != "3"+naa || wwid != "naa."+naa || tpg != p.tpg {
			t.Errorf("VPD 83h: ID_SERIAL %s, wwid %s, target port group %d; want 3%s, naa.%s, %d", serial, wwid, tpg, naa, naa, p.tpg)
		}
	}
	// REPORT TARGET PORT GROUPS, both formats, byte for byte as sg_rtpg
	// decodes them.
	group := func(id int, pref int, state byte, name string, port uint16) string {
		return fmt.Sprintf("  target port group id : 0x%x , Pref=%d, Rtpg_fmt=0\n"+
			"    target port group asymmetric access state : 0x%02x (%s)\n"+
			"    T_SUP : 1, O_SUP : 1, LBD_SUP : 0, U_SUP : 1, S_SUP : 1, AN_SUP : 1, AO_SUP : 1\n"+
			"    status code : 0x00\n    target port count : 01\n"+
			"    Relative target port ids:\n      0x%02x\n", id, pref, state, name, port)
	}
	want := "Report target port groups:\n" + group(1, 1, 0, "active/optimized", relA) + group(2, 0, 2, "standby", relB)
	rsp := command(t, b, "a3 0a 00000000 00001000 00 00", nil, 4096)
	if got := rtpgText(t, rsp.Data, false); got != want {
		t.Errorf("RTPG through b:\n%s\nwant\n%s", got, want)
	}
	rsp = command(t, a, "a3 2a 00000000 00001000 00 00", nil, 4096)
	wantExt := strings.Replace(want, "groups:\n", "groups:\n  format type: 1, implicit transition time: 0\n", 1)
	if got := rtpgText(t, rsp.Data, true); got != wantExt {
		t.Errorf("RTPG (extended header) through a:\n%s\nwant\n%s", got, wantExt)
	}
	// The standby path: media access and TEST UNIT READY answer NOT
	// READY, TARGET PORT IN STANDBY STATE; the active one serves.
	for _, c := range []struct {
		conn *initiator.Conn
		cdb  string
		want string
	}{
		{a, "28 00 00000000 00 0008 00", "GOOD"},
		{b, "28 00 00000000 00 0008 00", outcomeStandby},
		{b, "00 00000000 00", outcomeStandby},
		{b, "5e 00 00000000 00 1000 00", "GOOD"}, // PERSISTENT RESERVE IN runs in standby
	} {
		if got := outcome(command(t, c.conn, c.cdb, nil, 4096)); got != c.want {
			t.Errorf("%s: %s, want %s", c.cdb, got, c.want)
		}
	}

	// libiscsi sees the same: iscsi-inq through each path.
	requireTools(t, "iscsi-inq")
	out := mustRun(t, "iscsi-inq", "-i", "iqn.2026-11.org.example:host2", "-e", "1", "-c", "131", tgt.LUNURL(aluaA, 0))
	// (iscsi-inq prints a binary designator's bytes as text: it is
	// checked for its type and association here, by bytes above.)
	for _, want := range []string{"Association:(0) LOGICAL_UNIT\n        Designator Type:(3) NAA",
		"Association:(1) TARGET_PORT\n        Designator Type:(5) TARGET_PORT_GROUP",
		"Designator:[SCSTD   disk0]"} {
		if !strings.Contains(out, strings.ReplaceAll(want, "        ", "")) && !strings.Contains(out, want) {
			t.Errorf("iscsi-inq VPD 83h lacks %q:\n%s", want, out)
		}
	}
}

func TestALUAReloadFlipsOnlyItsPaths(t *testing.T) {
	requireTools(t, "qemu-io")
	tgt := testtarget.Start(t, fmt.Sprintf(aluaConfig, "active/optimized", "standby"))
	portB := strings.Replace(tgt.Portal(), "127.0.0.1", "127.0.0.2", 1)
	a := pathSession(t, tgt.Portal(), aluaA, "iqn.2026-11.org.example:host1")
	b := pathSession(t, portB, aluaB, "iqn.2026-11.org.example:host1")
	load := startQemuLoad(tgt.LUNURL(aluaA, 0))
	defer load.finish()
	time.Sleep(500 * time.Millisecond)

	// b: standby -> active/non-optimized, under the load on a.
	r := tgt.Reconfigure(fmt.Sprintf(aluaConfig, "active/optimized", "active/non-optimized"))
	if !r.OK || !strings.Contains(r.Plan, `device_group.dg.target_group.b  state "standby" -> "active/non-optimized"`) ||
		!strings.Contains(r.Plan, "(unit attention: asymmetric access state changed)") || strings.Contains(r.Plan, "target_group.a") {
		t.Fatalf("reload: %+v\n%s", r.Error, r.Plan)
	}
	if !strings.Contains(r.Plan, "affects iqn.2026-11.org.example:host1") {
		t.Errorf("the plan does not list the session on b:\n%s", r.Plan)
	}
	if got := outcome(command(t, a, "00 00000000 00", nil, 0)); got != "GOOD" {
		t.Errorf("TEST UNIT READY through a after the reload: %s (a was not flipped)", got)
	}
	if got := outcome(command(t, b, "00 00000000 00", nil, 0)); got != outcomeALUAChanged {
		t.Errorf("first command through b after the reload: %s, want %s", got, outcomeALUAChanged)
	}
	if got := outcome(command(t, b, "28 00 00000000 00 0008 00", nil, 4096)); got != "GOOD" {
		t.Errorf("READ through b, now active/non-optimized: %s", got)
	}
	time.Sleep(500 * time.Millisecond)
	load.finish()
	if errs := load.ioErrors(); len(errs) > 0 || load.ops.Load() == 0 {
		t.Errorf("qemu-io on the path that was not flipped: %d commands, errors:\n%s", load.ops.Load(), strings.Join(errs, "\n"))
	}

	// A planned failover: one edit, one reload; every session stays. The
	// load's last qemu-io session has ended on the initiator's side; wait
	// until the target has seen it end too, so that the sessions compared
	// are the ones that must stay.
	before := aluaStatusOf(t, tgt).Engine.Sessions
	for deadline := time.Now().Add(5 * time.Second); len(before) != 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		before = aluaStatusOf(t, tgt).Engine.Sessions
	}
	if len(before) != 2 {
		t.Fatalf("sessions before the failover: %v, want the two of host1", before)
	}
	r = tgt.Reconfigure(fmt.Sprintf(aluaConfig, "standby", "active/optimized"))
	if !r.OK {
		t.Fatalf("failover reload: %s", r.Error)
	}
	for _, c := range []struct {
		name       string
		conn       *initiator.Conn
		first, now string
	}{{"a", a, outcomeALUAChanged, outcomeStandby}, {"b", b, outcomeALUAChanged, "GOOD"}} {
		if got := outcome(command(t, c.conn, "28 00 00000000 00 0008 00", nil, 4096)); got != c.first {
			t.Errorf("first READ through %s after the failover: %s, want %s", c.name, got, c.first)
		}
		if got := outcome(command(t, c.conn, "28 00 00000000 00 0008 00", nil, 4096)); got != c.now {
			t.Errorf("READ through %s after the failover: %s, want %s", c.name, got, c.now)
		}
	}
	after := aluaStatusOf(t, tgt).Engine.Sessions
	if len(after) != len(before) {
		t.Errorf("sessions before the failover %v, after %v", before, after)
	}
	for i := range before {
		if i < len(after) && after[i].TSIH != before[i].TSIH {
			t.Errorf("session %s of %s was dropped (TSIH %d -> %d)", before[i].Initiator, before[i].Target, before[i].TSIH, after[i].TSIH)
		}
	}
	// Status shows the states; qemu-io reads through b now.
	st := aluaStatusOf(t, tgt)
	if g := st.Engine.DeviceGroups[0].TargetGroups; g[0].State != "standby" || g[1].State != "active/optimized" {
		t.Errorf("status: %+v", g)
	}
	if out, err := qemuIO(t, []string{"-f", "raw", secondPath(tgt.LUNURL(aluaB, 0))}, "read 0 65536"); err != nil {
		t.Errorf("qemu-io through b after the failover: %v\n%s", err, out)
	}

	// SET TARGET PORT GROUPS through b: a back to active/non-optimized;
	// a's session is told, b's (the sender) is not.
	if got := outcome(command(t, b, "a4 0a 00000000 00000008 00 00", []byte{0, 0, 0, 0, 0x01, 0, 0, 1}, 0)); got != "GOOD" {
		t.Fatalf("STPG: %s", got)
	}
	if got := outcome(command(t, b, "00 00000000 00", nil, 0)); got != "GOOD" {
		t.Errorf("TEST UNIT READY through b after its STPG: %s", got)
	}
	if got := outcome(command(t, a, "00 00000000 00", nil, 0)); got != outcomeALUAChanged {
		t.Errorf("TEST UNIT READY through a after b's STPG: %s", got)
	}
	if g := aluaStatusOf(t, tgt).Engine.DeviceGroups[0].TargetGroups[0]; g.State != "active/non-optimized" || g.Configured != "standby" {
		t.Errorf("status after STPG: %+v", g)
	}
	if !strings.Contains(tgt.Stderr(), "SET TARGET PORT GROUPS") {
		t.Errorf("the log does not record the STPG")
	}
}

// aptplConfig is one fileio disk for the APTPL tests.
const aptplConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "16MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
}
`

// prParams is a PERSISTENT RESERVE OUT parameter list: RESERVATION KEY,
// SERVICE ACTION RESERVATION KEY, APTPL.
func prParams(key, saKey uint64, aptpl bool) []byte {
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p[0:8], key)
	binary.BigEndian.PutUint64(p[8:16], saKey)
	if aptpl {
		p[20] = 0x01
	}
	return p
}

func TestAPTPLSurvivesRestart(t *testing.T) {
	tgt := testtarget.Start(t, aptplConfig)
	const host = "iqn.2026-11.org.example:fence1"
	c := pathSession(t, tgt.Portal(), iqnT1, host)
	// REPORT CAPABILITIES: PTPL_C.
	if rsp := command(t, c, "5e 02 00000000 00 0008 00", nil, 8); rsp.Status != statusGood || rsp.Data[2]&0x01 == 0 {
		t.Fatalf("REPORT CAPABILITIES % x: want PTPL_C", rsp.Data)
	}
	// REGISTER with APTPL, then RESERVE (write exclusive).
	if got := outcome(command(t, c, "5f 00 00 0000 00000018 00", prParams(0, 0x1234, true), 0)); got != "GOOD" {
		t.Fatalf("REGISTER with APTPL: %s", got)
	}
	if got := outcome(command(t, c, "5f 01 01 0000 00000018 00", prParams(0x1234, 0, false), 0)); got != "GOOD" {
		t.Fatalf("RESERVE: %s", got)
	}
	c.Close()
	tgt.Restart()

	c = pathSession(t, tgt.Portal(), iqnT1, host)
	keys := command(t, c, "5e 00 00000000 00 1000 00", nil, 4096)
	if keys.Status != statusGood || hex.EncodeToString(keys.Data) != "00000001"+"00000008"+"0000000000001234" {
		t.Errorf("READ KEYS after a restart: %s % x; want generation 1, key 1234h", outcome(keys), keys.Data)
	}
	res := command(t, c, "5e 01 00000000 00 1000 00", nil, 4096)
	if res.Status != statusGood || hex.EncodeToString(res.Data) != "00000001"+"00000010"+"0000000000001234"+"00000000"+"00"+"01"+"0000" {
		t.Errorf("READ RESERVATION after a restart: %s % x; want key 1234h, type write exclusive", outcome(res), res.Data)
	}
	if rsp := command(t, c, "5e 02 00000000 00 0008 00", nil, 8); rsp.Data[3]&0x01 == 0 {
		t.Errorf("REPORT CAPABILITIES % x: want PTPL_A", rsp.Data)
	}
	// Another initiator is held off by the restored reservation.
	other := pathSession(t, tgt.Portal(), iqnT1, "iqn.2026-11.org.example:other")
	if rsp := command(t, other, "2a 00 00000000 00 0001 00", make([]byte, 512), 0); rsp.Status != 0x18 {
		t.Errorf("WRITE from another initiator: %s, want RESERVATION CONFLICT", outcome(rsp))
	}
	other.Close()
	c.Close()

	// A corrupt state file: logged, moved aside, the device serves
	// without persistent reservations, and status says so.
	tgt.Stop()
	files, _ := filepath.Glob(filepath.Join(tgt.StateDir(), "pr", "naa.*.json"))
	if len(files) != 1 {
		t.Fatalf("PR files %v", files)
	}
	if err := os.WriteFile(files[0], []byte(`{"format": "scstd-persistent-reservations", "version": 1, "registrations": [{"key": "oops"`), 0o640); err != nil {
		t.Fatal(err)
	}
	tgt.Start()
	if log := tgt.Stderr(); !strings.Contains(log, "persistent reservations not restored") || !strings.Contains(log, "corrupt") {
		t.Errorf("the log does not say the state was not restored:\n%s", log)
	}
	if _, err := os.Stat(files[0] + ".corrupt"); err != nil {
		t.Errorf("corrupt file not moved aside: %v", err)
	}
	st := aluaStatusOf(t, tgt)
	if pr := st.Engine.Devices[0].PR; pr == nil || !strings.Contains(string(*pr), "corrupt") {
		t.Errorf("status persistent_reservations: %s", deref(pr))
	}
	c = pathSession(t, tgt.Portal(), iqnT1, host)
	if rsp := command(t, c, "5e 00 00000000 00 1000 00", nil, 4096); rsp.Status != statusGood || hex.EncodeToString(rsp.Data[4:8]) != "00000000" {
		t.Errorf("READ KEYS after a corrupt file: %s % x", outcome(rsp), rsp.Data)
	}
	if got := outcome(command(t, c, "2a 00 00000000 00 0001 00", make([]byte, 512), 0)); got != "GOOD" {
		t.Errorf("WRITE after a corrupt file: %s", got)
	}
}

func deref(m *json.RawMessage) string {
	if m == nil {
		return "(none)"
	}
	return string(*m)
}
