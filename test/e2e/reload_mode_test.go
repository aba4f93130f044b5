package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/scsi"
)

// modeConfig is one fileio device as LUN 0 of B, with its read_only and
// write_through attributes as the two %t.
const modeConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "rodev" {
    filename      = "{{.Dir}}/rodev.img"
    size          = "16MiB"
    read_only     = %t
    write_through = %t
  }
}

target "iqn.2026-11.org.example:reload-b" {
  lun "0" {
    device = "rodev"
  }
}
`

// TestReloadModeChangesReachLiveSession: the reload model (reconcile's
// package doc) says read_only and cache changes raise MODE PARAMETERS
// CHANGED (2Ah/01h) on live sessions, and read_only takes effect at once:
// a session that stays logged in sees the unit attention, then DATA
// PROTECT on WRITE while the device is read-only, and writes again once
// it is not. An edit that changes nothing raises nothing.
func TestReloadModeChangesReachLiveSession(t *testing.T) {
	tgt := testtarget.Start(t, fmt.Sprintf(modeConfig, false, false))
	c, err := initiator.Dial(tgt.Portal())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if err := c.Login(initiator.Options{InitiatorName: liveInitiator, TargetName: iqnB, MaxRecvDSL: 262144,
		ImmediateData: true}); err != nil {
		t.Fatal(err)
	}
	lun := scsi.LUN(0).Encode()
	// do runs one command once and returns its status and sense.
	do := func(cdb, out []byte, readLen int) (uint8, sense) {
		t.Helper()
		rsp, err := c.Command(lun, cdb, out, readLen)
		if err != nil {
			t.Fatalf("the live session broke: %v", err)
		}
		sn, _ := parseSense(rsp.Sense)
		return rsp.Status, sn
	}
	tur := []byte{0, 0, 0, 0, 0, 0}
	write := rw16(0x8a, 8, 1)
	block := bytesOf(0x5c, blockSize)
	for range 8 { // power on / reset of the new nexus
		if st, _ := do(tur, nil, 0); st == statusGood {
			break
		}
	}
	modeParametersChanged := sense{senseKeyUnitAttention, 0x2a, 0x01}
	dataProtect := sense{0x07, 0x27, 0x00}

	steps := []struct {
		name              string
		readOnly, wthru   bool
		wantUA            bool
		wantWriteProtects bool
	}{
		{"read_only = true", true, false, true, true},
		{"unchanged file", true, false, false, true},
		{"read_only = false", false, false, true, false},
		{"write_through = true", false, true, true, false},
		{"write_through = false", false, false, true, false},
	}
	for _, s := range steps {
		r := tgt.Reconfigure(fmt.Sprintf(modeConfig, s.readOnly, s.wthru))
		if !r.OK {
			t.Fatalf("%s: reload rejected: %s\n%s", s.name, r.Error, r.Diagnostics)
		}
		st, sn := do(tur, nil, 0)
		switch {
		case s.wantUA && (st != statusCheckCondition || sn != modeParametersChanged):
			t.Errorf("%s: first command after the reload: status %02Xh sense %v, want UNIT ATTENTION %v",
				s.name, st, sn, modeParametersChanged)
		case !s.wantUA && st != statusGood:
			t.Errorf("%s: first command after the reload: status %02Xh sense %v, want GOOD (nothing changed)", s.name, st, sn)
		}
		if st == statusCheckCondition {
			do(tur, nil, 0)
		}
		st, sn = do(write, block, 0)
		switch {
		case s.wantWriteProtects && (st != statusCheckCondition || sn != dataProtect):
			t.Errorf("%s: WRITE(16): status %02Xh sense %v, want DATA PROTECT %v", s.name, st, sn, dataProtect)
		case !s.wantWriteProtects && st != statusGood:
			t.Errorf("%s: WRITE(16): status %02Xh sense %v, want GOOD", s.name, st, sn)
		}
		rsp, err := c.Command(lun, []byte{0x1a, 0, 0x3f, 0, 255, 0}, nil, 255)
		if err != nil {
			t.Fatal(err)
		}
		if rsp.Status != statusGood || len(rsp.Data) < 4 || (rsp.Data[2]&0x80 != 0) != s.readOnly {
			t.Errorf("%s: MODE SENSE(6) status %02Xh data % x, want WP=%t", s.name, rsp.Status, rsp.Data, s.readOnly)
		}
	}
	if _, err := c.Logout(); err != nil {
		t.Errorf("logout: %v", err)
	}
}
