package e2e

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
	"golang.org/x/sys/unix"
)

// lendConfig serves two fileio disks that live in tmpfs (SHM is replaced
// by a directory of /dev/shm), whose large reads are lent from a mapping
// of the file (vdisk.Lender): t1 serves disk0, t2 disk1.
const lendConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "SHM/disk0.img"
    size     = "64MiB"
  }
  device "disk1" {
    filename = "SHM/disk1.img"
    size     = "64MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
}

target "iqn.2026-11.org.example:t2" {
  lun "0" { device = "disk1" }
}
`

// startLendTarget starts lendConfig with its disks in a directory of
// /dev/shm of the test's own; it skips without tmpfs there.
func startLendTarget(t *testing.T) (*testtarget.Target, string) {
	t.Helper()
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) != nil || st.Type != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm: fileio reads are not lent")
	}
	dir, err := os.MkdirTemp("/dev/shm", "scstd-e2e-lend-")
	if err != nil {
		t.Fatal(err)
	}
	tgt := testtarget.Start(t, strings.ReplaceAll(lendConfig, "SHM", dir))
	t.Cleanup(func() { os.RemoveAll(dir) }) // after the daemon stops
	return tgt, dir
}

// Reads of 256 KiB and 1 MiB from a fileio disk in tmpfs (lent from the
// file's mapping, or from zero pages over holes) return what qemu-io
// wrote, and holes read as zeroes without filling the sparse file.
func TestLentReadsFromTmpfs(t *testing.T) {
	tgt, dir := startLendTarget(t)
	image := []string{"-f", "raw", tgt.LUNURL(iqnT1, 0)}
	writePatterns(t, image)
	checkPatterns(t, image)
	checkBackingFile(t, filepath.Join(dir, "disk0.img"))

	path := filepath.Join(dir, "disk0.img")
	var before unix.Stat_t
	if err := unix.Stat(path, &before); err != nil {
		t.Fatal(err)
	}
	out, err := qemuIO(t, image, "read -P 0 16M 16M", "read -P 0xa5 0 1M")
	if err != nil || strings.Contains(out, "Pattern verification failed") || strings.Count(out, "read ") != 2 {
		t.Fatalf("qemu-io reads of holes and data: %v\n%s", err, out)
	}
	var after unix.Stat_t
	if err := unix.Stat(path, &after); err != nil {
		t.Fatal(err)
	}
	if after.Blocks != before.Blocks {
		t.Errorf("reading 16 MiB of holes grew the sparse file from %d to %d blocks", before.Blocks, after.Blocks)
	}

	// Data-In PDUs of 512 bytes, each sent from the mapping as it is.
	c := digestlessSession(t, tgt, iqnT1, 512)
	rsp, err := c.Command(scsi.LUN(0).Encode(), rw10(0x28, 8<<20/512+8, 512), nil, 256<<10)
	want := bytes.Repeat([]byte{0x5a}, 256<<10)
	if err != nil || rsp.Status != 0 || !bytes.Equal(rsp.Data, want) {
		t.Fatalf("READ(10) in PDUs of 512 bytes: %v, status %v, equal %v", err, rsp.Status, bytes.Equal(rsp.Data, want))
	}
}

// A backing file truncated while the Data-In of reads lent from its
// mapping waits in the socket's queue: the writev fails (EFAULT), the
// connection is closed and the reason logged; the daemon lives on, and
// another session and a new login are served.
func TestLentReadOfTruncatedFile(t *testing.T) {
	tgt, dir := startLendTarget(t)
	data := bytes.Repeat([]byte{0x6b}, 1<<20)
	other := digestlessSession(t, tgt, iqnT2, 256<<10)
	if rsp, err := other.Command(scsi.LUN(0).Encode(), rw10(0x2a, 0, 2048), data, 0); err != nil || rsp.Status != 0 {
		t.Fatalf("WRITE(10) on t2: %+v, %v", rsp, err)
	}
	c := digestlessSession(t, tgt, iqnT1, 256<<10)
	for lba := uint32(0); lba < 32*2048; lba += 2048 {
		if rsp, err := c.Command(scsi.LUN(0).Encode(), rw10(0x2a, lba, 2048), data, 0); err != nil || rsp.Status != 0 {
			t.Fatalf("WRITE(10) at %d: %+v, %v", lba, rsp, err)
		}
	}

	// 24 READs of 1 MiB (within the command window of 32), none of
	// whose Data-In is read yet: the socket fills, and the rest waits
	// in the daemon's send queue.
	c.NetConn().(*net.TCPConn).SetReadBuffer(64 << 10)
	sn := c.CmdSN()
	for i := range uint32(24) {
		cmd := iscsi.SCSICommand{Final: true, Read: true, Attr: scsi.Simple, ITT: 0x1000 + i,
			CmdSN: sn + i, ExpStatSN: c.ExpStatSN(), ExpectedDataTransferLength: 1 << 20}
		if err := c.SendRaw(scsiFrame(cmd, rw10(0x28, i*2048, 2048))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if err := os.Truncate(filepath.Join(dir, "disk0.img"), 0); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, c.NetConn())
	if n >= 24<<20 {
		t.Fatalf("all %d bytes of Data-In arrived from a truncated file (%v)", n, err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection stayed open after its reads' file was truncated (%d bytes read)", n)
	}
	t.Logf("%d bytes read before the connection closed (%v)", n, err)
	waitLog(t, tgt, "its backing file shrank underneath")

	if rsp, err := other.Command(scsi.LUN(0).Encode(), rw10(0x28, 0, 2048), nil, 1<<20); err != nil || rsp.Status != 0 || !bytes.Equal(rsp.Data, data) {
		t.Fatalf("READ(10) on t2 after t1's file was truncated: %v", err)
	}
	again := digestlessSession(t, tgt, iqnT1, 256<<10)
	if _, err := again.Command(scsi.LUN(0).Encode(), make([]byte, 6), nil, 0); err != nil {
		t.Fatalf("TEST UNIT READY on t1 after its file was truncated: %v", err)
	}
	if strings.Contains(tgt.Stderr(), "panic") {
		t.Errorf("the daemon panicked:\n%s", tgt.Stderr())
	}
}

// digestlessSession logs in to target without digests, with Data-In
// PDUs of at most pdu bytes, and passes the first command's unit
// attention.
func digestlessSession(t *testing.T, tgt *testtarget.Target, target string, pdu uint32) *initiator.Conn {
	t.Helper()
	c, err := goLogin(t, "", tgt.Portal(), initiator.Options{TargetName: target, MaxRecvDSL: pdu, ImmediateData: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Command(scsi.LUN(0).Encode(), make([]byte, 6), nil, 0)
	return c
}

// waitLog waits up to 10 s for the daemon's standard error to hold s.
func waitLog(t *testing.T, tgt *testtarget.Target, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(tgt.Stderr(), s) {
			return
		}
	}
	t.Fatalf("no %q in the daemon's log:\n%s", s, tgt.Stderr())
}
