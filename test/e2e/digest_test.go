package e2e

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/scsi"
)

// bothDigestsRequired serves t1 with CRC32C header AND data digests
// required: libiscsi 1.19 cannot offer a data digest, so the Go test
// initiator drives this one.
const bothDigestsRequired = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  header_digest = ["CRC32C"]
  data_digest   = ["CRC32C"]
  lun "0" { device = "disk0" }
}
`

// digestSession logs in to t1 asking for both digests, and checks that
// both were negotiated.
func digestSession(t *testing.T, tgt *testtarget.Target) *initiator.Conn {
	t.Helper()
	c, err := initiator.Dial(tgt.Portal())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	if err := c.Login(initiator.Options{TargetName: iqnT1, HeaderDigest: true, DataDigest: true,
		MaxRecvDSL: 8192, ImmediateData: true}); err != nil {
		t.Fatal(err)
	}
	if !c.Params.HeaderDigest || !c.Params.DataDigest {
		t.Fatalf("negotiated header digest %v, data digest %v; want both", c.Params.HeaderDigest, c.Params.DataDigest)
	}
	// The first command of a new nexus reports POWER ON, RESET (29h/00h).
	if rsp, err := c.Command(scsi.LUN(0).Encode(), make([]byte, 6), nil, 0); err != nil ||
		rsp.Status != 2 || len(rsp.Sense) < 14 || rsp.Sense[12] != 0x29 {
		t.Fatalf("first TEST UNIT READY: %+v, %v; want the power-on unit attention", rsp, err)
	}
	return c
}

// rw10 builds a READ(10) or WRITE(10) CDB.
func rw10(op byte, lba uint32, blocks uint16) []byte {
	cdb := make([]byte, 10)
	cdb[0] = op
	binary.BigEndian.PutUint32(cdb[2:], lba)
	binary.BigEndian.PutUint16(cdb[7:], blocks)
	return cdb
}

// TestDataWithHeaderAndDataDigests writes 1 MiB (immediate data, R2Ts and
// Data-Out PDUs of 8 KiB, every one with a data digest) and reads it back
// (Data-In PDUs with digests), then again after a daemon restart.
func TestDataWithHeaderAndDataDigests(t *testing.T) {
	tgt := testtarget.Start(t, bothDigestsRequired)
	lun := scsi.LUN(0).Encode()
	pattern := make([]byte, 1<<20)
	for i := range pattern {
		pattern[i] = byte(i*31 + i>>9)
	}

	c := digestSession(t, tgt)
	if rsp, err := c.Command(lun, rw10(0x2a, 100, 2048), pattern, 0); err != nil || rsp.Status != 0 {
		t.Fatalf("WRITE(10) with digests: %+v, %v", rsp, err)
	}
	read := func(c *initiator.Conn, when string) {
		t.Helper()
		rsp, err := c.Command(lun, rw10(0x28, 100, 2048), nil, len(pattern))
		if err != nil || rsp.Status != 0 {
			t.Fatalf("READ(10) with digests %s: %+v, %v", when, rsp, err)
		}
		if !bytes.Equal(rsp.Data, pattern) {
			t.Fatalf("READ(10) with digests %s returned other data", when)
		}
	}
	read(c, "before restart")
	c.Logout()

	tgt.Restart()
	read(digestSession(t, tgt), "after restart")

	// The target requires CRC32C: an initiator that offers None for the
	// data digest is refused, so the passes above really used it.
	n, err := initiator.Dial(tgt.Portal())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.SetDeadline(time.Now().Add(time.Minute))
	if err := n.Login(initiator.Options{TargetName: iqnT1, HeaderDigest: true}); err == nil {
		t.Error("a login offering DataDigest=None was admitted by a target that requires CRC32C")
	}
}
