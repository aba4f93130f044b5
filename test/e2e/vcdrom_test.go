package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/scsi"
)

// cdromTarget exports a vcdrom holding a 64 MiB image (a CD-ROM) as LUN 0.
const cdromTarget = `
iscsi { portals = ["{{.Portal}}"] }

handler "vcdrom" {
  device "cd0" {
    filename = "{{.Dir}}/cd0.iso"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "cd0" }
}
`

// writeISO makes an image of n 2048-byte sectors, sector i filled with
// the byte i%251+1 so that a read of the wrong sector shows.
func writeISO(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n*2048)
	for i := range b {
		b[i] = byte(i/2048%251 + 1)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// cdromFloor is the least number of iscsi-test-cu's SCSI family tests
// (skipped ones not counted) that must pass against a vcdrom LUN: 44 of
// 215 with libiscsi 1.19 (2026-12-06), with 165 skipped and the 6
// cdromNotApplicable failing. libiscsi has no MMC suite; most of its
// block suites skip a device that is not SBC (PreventAllow and NoMedia
// among them: CHECK_FOR_SBC), and StartStopUnit is the removable-media
// suite that runs (and must pass, see cdromMustPass).
const cdromFloor = 44

// cdromMustPass are suites that must run and pass on a vcdrom LUN, not
// skip.
var cdromMustPass = []string{"StartStopUnit", "TestUnitReady", "ReadCapacity10", "Inquiry", "ReportSupportedOpcodes"}

// cdromNotApplicable are the SCSI family tests that fail against a
// CD-ROM for reasons of the tests, each with the reason.
var cdromNotApplicable = map[string]string{
	"ProutReserve.AccessEA":   cdromNoWrite,
	"ProutReserve.AccessWE":   cdromNoWrite,
	"ProutReserve.AccessEARO": cdromNoWrite,
	"ProutReserve.AccessWERO": cdromNoWrite,
	"ProutReserve.AccessEAAR": cdromNoWrite,
	"ProutReserve.AccessWEAR": cdromNoWrite,
}

const cdromNoWrite = "the test checks reservation access with WRITE(10), which a read-only CD-ROM drive does not have (INVALID COMMAND OPERATION CODE)"

// TestLibiscsiCDROM runs iscsi-test-cu's SCSI family against a vcdrom
// LUN and reports passed, skipped and failed apart (libiscsi counts a
// skip as a pass).
func TestLibiscsiCDROM(t *testing.T) {
	requireTools(t, "iscsi-test-cu")
	tgt := testtarget.New(t, cdromTarget)
	writeISO(t, tgt.Path("cd0.iso"), 32768)
	tgt.Start()
	list := selectTests(ParseCUList(mustRun(t, "iscsi-test-cu", "-l")), "SCSI")
	out, err := run(t, cuTimeout, "iscsi-test-cu", "--dataloss", "-t", "SCSI",
		"-i", initiatorFirst, "-I", initiatorSecond, tgt.LUNURL(iqnT1, 0))
	saveReport(t, "iscsi-test-cu-vcdrom.log", out)
	results, sum := ParseCURun(list, out)
	n := Totals(results)
	t.Logf("iscsi-test-cu -t SCSI on a vcdrom LUN (exit: %v): %d passed, %d skipped, %d failed, %d not run\n%s",
		err, n[Passed], n[Skipped], n[Failed], n[NotRun], FormatReport(results, func(CUTest) bool { return true }))
	if !sum.Found {
		t.Errorf("iscsi-test-cu ended without its summary (%v): the run was cut short", err)
	}
	var bad []string
	for _, r := range results {
		why, na := cdromNotApplicable[r.Suite+"."+r.Name]
		switch {
		case r.Outcome == Failed && na:
			t.Logf("%s fails as expected: %s", r, why)
		case r.Outcome == Failed || r.Outcome == NotRun:
			bad = append(bad, r.String()+" ("+r.Outcome.String()+"): "+strings.ReplaceAll(r.Detail, "\n", "; "))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d iscsi-test-cu tests did not pass on a vcdrom LUN:\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
	for _, suite := range cdromMustPass {
		ran := 0
		for _, r := range results {
			if r.Suite == suite && r.Outcome == Passed {
				ran++
			}
		}
		if ran == 0 {
			t.Errorf("no test of SCSI.%s ran and passed on a vcdrom LUN", suite)
		}
	}
	if n[Passed] < cdromFloor {
		t.Errorf("%d tests passed on a vcdrom LUN (skipped ones not counted), fewer than the floor of %d", n[Passed], cdromFloor)
	}
}

// cdSession is a Go initiator session on LUN 0 of t1, past its power-on
// unit attention.
type cdSession struct {
	t   *testing.T
	c   *initiator.Conn
	lun [8]byte
}

func newCDSession(t *testing.T, tgt *testtarget.Target, name string) *cdSession {
	t.Helper()
	c, err := initiator.Dial(tgt.Portal())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	if err := c.Login(initiator.Options{InitiatorName: name, TargetName: iqnT1, MaxRecvDSL: 262144, ImmediateData: true}); err != nil {
		t.Fatal(err)
	}
	s := &cdSession{t: t, c: c, lun: scsi.LUN(0).Encode()}
	if st, sn, _ := s.do(cdbTUR, 0); st != statusCheckCondition || sn != (sense{senseKeyUnitAttention, 0x29, 0x00}) {
		t.Fatalf("first TEST UNIT READY of %s: status %02Xh sense %v, want POWER ON", name, st, sn)
	}
	return s
}

// do runs one command and returns its status, sense and data-in.
func (s *cdSession) do(cdb []byte, readLen int) (uint8, sense, []byte) {
	s.t.Helper()
	rsp, err := s.c.Command(s.lun, cdb, nil, readLen)
	if err != nil {
		s.t.Fatalf("CDB % x: the session broke: %v", cdb, err)
	}
	sn, _ := parseSense(rsp.Sense)
	return rsp.Status, sn, rsp.Data
}

// want runs one command and fails unless it answers with sense w (the
// zero sense: GOOD).
func (s *cdSession) want(what string, cdb []byte, readLen int, w sense) []byte {
	s.t.Helper()
	st, sn, data := s.do(cdb, readLen)
	switch {
	case w == (sense{}) && st != statusGood:
		s.t.Errorf("%s: status %02Xh sense %v, want GOOD", what, st, sn)
	case w != (sense{}) && (st != statusCheckCondition || sn != w):
		s.t.Errorf("%s: status %02Xh sense %v, want CHECK CONDITION %v", what, st, sn, w)
	}
	return data
}

// MMC CDBs the e2e tests send.
var (
	cdbTUR           = []byte{0x00, 0, 0, 0, 0, 0}
	cdbInquiry       = []byte{0x12, 0, 0, 0, 96, 0}
	cdbModeSense2A   = []byte{0x5a, 0x00, 0x2a, 0, 0, 0, 0, 0, 128, 0} // as sr's get_capabilities: block descriptors allowed
	cdbGetConfig     = []byte{0x46, 0x00, 0, 0, 0, 0, 0, 0x01, 0x00, 0}
	cdbGESN          = []byte{0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0}
	cdbReadCapacity  = []byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	cdbReadTOC       = []byte{0x43, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0}
	cdbFullTOC       = []byte{0x43, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x00, 0}
	cdbDiscInfo      = []byte{0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0}
	cdbMechStatus    = []byte{0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}
	cdbPrevent       = []byte{0x1e, 0, 0, 0, 1, 0}
	cdbAllow         = []byte{0x1e, 0, 0, 0, 0, 0}
	cdbEject         = []byte{0x1b, 0, 0, 0, 2, 0}
	cdbLoad          = []byte{0x1b, 0, 0, 0, 3, 0}
	senseNoMedium    = sense{senseKeyNotReady, 0x3a, 0x01} // tray closed
	senseTrayOpen    = sense{senseKeyNotReady, 0x3a, 0x02}
	senseMediumMoved = sense{senseKeyUnitAttention, 0x28, 0x00} // NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED
	senseRemovalPrev = sense{0x05, 0x53, 0x02}
)

// read10 reads n 2048-byte sectors at lba; readCD reads their user data
// with READ CD.
func read10(lba uint32, n uint16) []byte {
	return []byte{0x28, 0, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(n >> 8), byte(n), 0}
}

func readCD(lba uint32, n uint16) []byte {
	return []byte{0xbe, 0x08, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(n >> 8), byte(n), 0x10, 0, 0}
}

// TestCDROMInstallerProbe sends through the real daemon what an OS
// installer's drive probe (Linux sr and cdrom.ko on open, OVMF and
// SeaBIOS for El Torito, Windows cdrom.sys) asks of a drive holding an
// ISO, and checks the answers: a read-only tray-loading CD-ROM drive with
// a finalized one-track disc whose sectors read back as the image holds
// them.
func TestCDROMInstallerProbe(t *testing.T) {
	tgt := testtarget.New(t, cdromTarget)
	const sectors = 1000
	iso := writeISO(t, tgt.Path("cd0.iso"), sectors)
	tgt.Start()
	s := newCDSession(t, tgt, liveInitiator)

	if inq := s.want("INQUIRY", cdbInquiry, 96, sense{}); len(inq) < 2 || inq[0] != 0x05 || inq[1]&0x80 == 0 {
		t.Errorf("INQUIRY: % x, want peripheral type 05h and RMB", inq)
	}
	if p := s.want("MODE SENSE(10) page 2Ah", cdbModeSense2A, 128, sense{}); len(p) != 40 || p[8] != 0x2a || p[10] != 0x08 || p[11] != 0 || p[14] != 0x29 {
		t.Errorf("MODE SENSE(10) page 2Ah: % x, want DVD-ROM read, no write bits, tray, eject, lock", p)
	}
	if c := s.want("GET CONFIGURATION", cdbGetConfig, 256, sense{}); len(c) < 8 || c[6] != 0x00 || c[7] != 0x08 {
		t.Errorf("GET CONFIGURATION: % x, want current profile 0008h (CD-ROM)", c)
	}
	if g := s.want("GET EVENT STATUS NOTIFICATION", cdbGESN, 8, sense{}); len(g) != 8 || g[2] != 0x04 || g[5] != 0x02 {
		t.Errorf("GET EVENT STATUS NOTIFICATION: % x, want the media class, medium present", g)
	}
	if rc := s.want("READ CAPACITY(10)", cdbReadCapacity, 8, sense{}); !bytes.Equal(rc, []byte{0, 0, 0x03, 0xe7, 0, 0, 0x08, 0}) {
		t.Errorf("READ CAPACITY(10): % x, want last LBA 999, 2048-byte blocks", rc)
	}
	toc := s.want("READ TOC", cdbReadTOC, 256, sense{})
	if want := []byte{0, 0x12, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x14, 0xaa, 0, 0, 0, 0x03, 0xe8}; !bytes.Equal(toc, want) {
		t.Errorf("READ TOC:\n got % x\nwant % x", toc, want)
	}
	// Linux sr's multisession check (sr_cd_check): session info asked for
	// with the format bits of SFF-8020i in the CONTROL byte, 12 bytes.
	srSession := []byte{0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40}
	if si := s.want("READ TOC as sr_cd_check asks", srSession, 12, sense{}); !bytes.Equal(si, []byte{0, 0x0a, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0}) {
		t.Errorf("READ TOC as sr_cd_check asks: % x, want the session info of session 1", si)
	}
	if full := s.want("READ TOC full TOC", cdbFullTOC, 256, sense{}); len(full) != 48 || full[7] != 0xa0 || full[29] != 0xa2 || full[40] != 0x01 {
		t.Errorf("READ TOC full TOC: % x, want points A0h, A1h, A2h, 01h", full)
	}
	if di := s.want("READ DISC INFORMATION", cdbDiscInfo, 34, sense{}); len(di) != 34 || di[2] != 0x0e || di[4] != 1 || di[6] != 1 {
		t.Errorf("READ DISC INFORMATION: % x, want a finalized disc of one session and one track", di)
	}
	// The ISO 9660 volume descriptors start at sector 16.
	if d := s.want("READ(10) sectors 16-17", read10(16, 2), 4096, sense{}); !bytes.Equal(d, iso[16*2048:18*2048]) {
		t.Error("READ(10) of sectors 16-17 does not return the image's")
	}
	if d := s.want("READ CD sector 17", readCD(17, 1), 2048, sense{}); !bytes.Equal(d, iso[17*2048:18*2048]) {
		t.Error("READ CD of sector 17 does not return the image's")
	}
	if m := s.want("MECHANISM STATUS", cdbMechStatus, 8, sense{}); !bytes.Equal(m, []byte{0, 0, 0, 0, 17, 0, 0, 0}) {
		t.Errorf("MECHANISM STATUS: % x, want door closed, current LBA 17", m)
	}
	// Locked in, the disc does not eject; allowed, it does, and the tray
	// is open until the disc is loaded again.
	s.want("PREVENT ALLOW MEDIUM REMOVAL (prevent)", cdbPrevent, 0, sense{})
	s.want("START STOP UNIT eject while prevented", cdbEject, 0, senseRemovalPrev)
	s.want("PREVENT ALLOW MEDIUM REMOVAL (allow)", cdbAllow, 0, sense{})
	s.want("START STOP UNIT eject", cdbEject, 0, sense{})
	s.want("TEST UNIT READY, tray open", cdbTUR, 0, senseTrayOpen)
	if g := s.want("GET EVENT STATUS NOTIFICATION after the eject", cdbGESN, 8, sense{}); len(g) != 8 || g[4] != 0x03 || g[5] != 0x01 {
		t.Errorf("GET EVENT STATUS NOTIFICATION after the eject: % x, want MediaRemoval, tray open", g)
	}
	s.want("START STOP UNIT load", cdbLoad, 0, sense{})
	s.want("TEST UNIT READY after the load", cdbTUR, 0, sense{})
}

// cdromFileTarget is cdromTarget with the drive's filename a %q.
const cdromFileTarget = `
iscsi { portals = ["{{.Portal}}"] }

handler "vcdrom" {
  device "cd0" {
    filename = %q
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "cd0" }
}
`

// TestCDROMEmptyDrive: a vcdrom with filename = "" is a drive without a
// disc, online: libiscsi logs in to it (its login's TEST UNIT READY
// accepts MEDIUM NOT PRESENT), INQUIRY, REPORT LUNS, GET CONFIGURATION
// and GET EVENT STATUS NOTIFICATION answer, and media access answers NOT
// READY, MEDIUM NOT PRESENT - TRAY CLOSED.
func TestCDROMEmptyDrive(t *testing.T) {
	requireTools(t, "iscsi-inq")
	tgt := testtarget.Start(t, fmt.Sprintf(cdromFileTarget, ""))
	out := mustRun(t, "iscsi-inq", "-i", initiatorFirst, tgt.LUNURL(iqnT1, 0))
	if !strings.Contains(out, "Peripheral Device Type:MMC") || !strings.Contains(out, "Removable:1") {
		t.Errorf("iscsi-inq on the empty drive:\n%s", out)
	}

	s := newCDSession(t, tgt, liveInitiator)
	s.want("TEST UNIT READY", cdbTUR, 0, senseNoMedium)
	s.want("READ CAPACITY(10)", cdbReadCapacity, 8, senseNoMedium)
	s.want("READ(10)", read10(0, 1), 2048, senseNoMedium)
	s.want("READ TOC", cdbReadTOC, 256, senseNoMedium)
	s.want("INQUIRY", cdbInquiry, 96, sense{})
	s.want("REPORT LUNS", []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 256, sense{})
	if c := s.want("GET CONFIGURATION", cdbGetConfig, 256, sense{}); len(c) < 8 || c[6] != 0 || c[7] != 0 {
		t.Errorf("GET CONFIGURATION: % x, want current profile 0000h (no disc)", c)
	}
	if g := s.want("GET EVENT STATUS NOTIFICATION", cdbGESN, 8, sense{}); len(g) != 8 || g[5] != 0 {
		t.Errorf("GET EVENT STATUS NOTIFICATION: % x, want no medium, tray closed", g)
	}
	s.want("MODE SENSE(10) page 2Ah", cdbModeSense2A, 128, sense{})
	s.want("MECHANISM STATUS", cdbMechStatus, 8, sense{})

	var st struct {
		Engine struct {
			Devices []struct {
				Name   string `json:"name"`
				Online bool   `json:"online"`
				Medium string `json:"medium"`
				Reason string `json:"reason"`
			} `json:"devices"`
		} `json:"engine"`
	}
	raw, err := tgt.Admin().Status()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if d := st.Engine.Devices; len(d) != 1 || !d[0].Online || d[0].Medium != "none" || d[0].Reason != "" {
		t.Errorf("status of the empty drive: %+v, want online, medium none", d)
	}
}

// TestCDROMMediaChangeByReload: a reload that changes a vcdrom's filename
// changes the disc in the same drive: a live session gets NOT READY TO
// READY CHANGE, MEDIUM MAY HAVE CHANGED on its next command and then reads
// the new disc, GET EVENT STATUS NOTIFICATION reports new media (or media
// removal for filename = ""), and while a session prevents medium removal
// the reload is refused unless forced.
func TestCDROMMediaChangeByReload(t *testing.T) {
	// The files as the configuration names them (rendered with Params).
	const discA, discB = "{{.Dir}}/a.iso", "{{.Dir}}/b.iso"
	config := func(file string) string { return fmt.Sprintf(cdromFileTarget, file) }
	tgt := testtarget.New(t, config(discA))
	isoA := writeISO(t, tgt.Path("a.iso"), 1000)
	isoB := make([]byte, 1500*2048)
	for i := range isoB {
		isoB[i] = 0xb0 | byte(i/2048%15)
	}
	if err := os.WriteFile(tgt.Path("b.iso"), isoB, 0o644); err != nil {
		t.Fatal(err)
	}
	tgt.Start()
	s := newCDSession(t, tgt, liveInitiator)
	other := newCDSession(t, tgt, initiatorSecond)

	reload := func(file string) admin.ReloadReply {
		t.Helper()
		r := tgt.Reconfigure(config(file))
		if !r.OK {
			t.Fatalf("reload to %q rejected: %s\n%s", file, r.Error, r.Diagnostics)
		}
		return r
	}
	sector := func(s *cdSession, what string, lba uint32, want []byte) {
		t.Helper()
		if d := s.want(what, read10(lba, 1), 2048, sense{}); !bytes.Equal(d, want) {
			t.Errorf("%s: READ(10) of sector %d does not return the disc's", what, lba)
		}
	}
	event := func(s *cdSession, what string, code, status byte) {
		t.Helper()
		if g := s.want(what, cdbGESN, 8, sense{}); len(g) != 8 || g[4] != code || g[5] != status {
			t.Errorf("%s: GET EVENT STATUS NOTIFICATION % x, want event %02Xh, media status %02Xh", what, g, code, status)
		}
	}
	sector(s, "disc A", 5, isoA[5*2048:6*2048])

	r := reload(discB)
	if !strings.Contains(r.Plan, "medium changed") {
		t.Errorf("the plan of a disc change does not say so:\n%s", r.Plan)
	}
	s.want("first command after the change to disc B", read10(5, 1), 2048, senseMediumMoved)
	sector(s, "disc B", 5, isoB[5*2048:6*2048])
	if rc := s.want("READ CAPACITY(10) of disc B", cdbReadCapacity, 8, sense{}); !bytes.Equal(rc, []byte{0, 0, 0x05, 0xdb, 0, 0, 0x08, 0}) {
		t.Errorf("READ CAPACITY(10) of disc B: % x, want last LBA 1499", rc)
	}
	event(s, "disc B", 0x02, 0x02) // NewMedia, present
	event(s, "disc B, polled again", 0x00, 0x02)

	reload("")
	s.want("first command after the eject by reload", cdbTUR, 0, senseNoMedium)
	event(s, "no disc", 0x03, 0x00) // MediaRemoval, absent, tray closed

	reload(discA)
	s.want("first command after disc A is back", cdbTUR, 0, senseMediumMoved)
	sector(s, "disc A again", 7, isoA[7*2048:8*2048])
	event(s, "disc A again", 0x02, 0x02)
	// The other session, idle all along, hears of the change once.
	other.want("the other session's first command since", cdbTUR, 0, senseMediumMoved)
	sector(other, "the other session", 7, isoA[7*2048:8*2048])

	// The other session locks the disc in: changing or ejecting it is
	// disruptive, refused, and nothing changes.
	other.want("PREVENT ALLOW MEDIUM REMOVAL", cdbPrevent, 0, sense{})
	for _, file := range []string{discB, ""} {
		r := tgt.Reconfigure(config(file))
		if r.OK || !strings.Contains(r.Error, "medium removal prevented") {
			t.Errorf("reload to %q while the medium is locked: ok=%v error=%q, want refused as medium removal prevented", file, r.OK, r.Error)
		}
		sector(s, "disc A, kept by the refused reload", 7, isoA[7*2048:8*2048])
	}
	// Forced, it applies.
	tgt.Reconfigure(config(discB))
	fr, err := tgt.Admin().Reload(true)
	if err != nil || !fr.OK {
		t.Fatalf("forced reload: %v %s", err, fr.Error)
	}
	s.want("first command after the forced change", cdbTUR, 0, senseMediumMoved)
	sector(s, "disc B, forced", 9, isoB[9*2048:10*2048])
	other.want("the locking session after the forced change", cdbTUR, 0, senseMediumMoved)
}
