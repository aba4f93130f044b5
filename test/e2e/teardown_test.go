package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// teardownConfig is one file-backed disk.
const teardownConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
}

target "iqn.2026-11.org.example:teardown" {
  lun "0" { device = "disk0" }
}
`

const teardownIQN = "iqn.2026-11.org.example:teardown"

// teardownLogin logs a session in to the teardown target.
func teardownLogin(t *testing.T, portal string, o initiator.Options) *initiator.Conn {
	t.Helper()
	c, err := initiator.Dial(portal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	o.TargetName = teardownIQN
	if o.MaxRecvDSL == 0 {
		o.MaxRecvDSL = 262144
	}
	if err := c.Login(o); err != nil {
		t.Fatalf("login: %v", err)
	}
	// The first command meets the power-on unit attention.
	c.Command([8]byte{}, make([]byte, 6), nil, 0)
	return c
}

// write10 is a WRITE(10) CDB.
func write10(lba uint32, blocks uint16) []byte {
	cdb := make([]byte, 10)
	cdb[0] = 0x2a
	binary.BigEndian.PutUint32(cdb[2:], lba)
	binary.BigEndian.PutUint16(cdb[7:], blocks)
	return cdb
}

// TestLogoutAfterPipelinedWrites: writes pipelined ahead of a Logout
// Request, then a SYNCHRONIZE CACHE (and a READ of 8 MiB), are all
// answered before the Logout Response, which comes last, followed by the
// end of the connection, also when the initiator reads nothing until the
// READ's data has filled the socket; the data is on the disk.
func TestLogoutAfterPipelinedWrites(t *testing.T) {
	tgt := testtarget.Start(t, teardownConfig)
	for i, read := range []bool{false, true} {
		name := "writes"
		if read {
			name = "writes and a large read"
		}
		t.Run(name, func(t *testing.T) {
			logoutAfterPipelinedWrites(t, tgt, byte(i+1), read)
		})
	}
}

// logoutAfterPipelinedWrites runs TestLogoutAfterPipelinedWrites on
// session seed, with the READ when read is set; seed also varies the
// data.
func logoutAfterPipelinedWrites(t *testing.T, tgt *testtarget.Target, seed byte, read bool) {
	c := teardownLogin(t, tgt.Portal(), initiator.Options{ImmediateData: true, ISID: [6]byte{0x80, 0, 0, 0, 0, seed}})
	if !c.Params.ImmediateData || c.Params.FirstBurstLength < 65536 {
		t.Fatalf("negotiated %+v, want immediate data of 64 KiB", c.Params)
	}
	const n, per, readLen = 24, 64 << 10, 8 << 20
	want := make([]byte, n*per)
	for i := range want {
		want[i] = byte(i*13+i>>16) ^ seed
	}
	pending := map[uint32]string{}
	send := func(cdb []byte, data []byte, what string) {
		itt := c.NextITT()
		cmd := iscsi.SCSICommand{Final: true, Write: len(data) > 0, Attr: scsi.Simple, ITT: itt,
			ExpectedDataTransferLength: uint32(len(data)), CmdSN: c.AdvanceCmdSN(), ExpStatSN: c.ExpStatSN()}
		if cdb[0] == 0x28 {
			cmd.Read, cmd.ExpectedDataTransferLength = true, readLen
		}
		copy(cmd.CDB[:], cdb)
		var h iscsi.BHS
		cmd.Encode(&h)
		if err := c.SendPDU(&h, nil, data); err != nil {
			t.Fatal(err)
		}
		pending[itt] = what
	}
	for i := range n {
		send(write10(uint32(i*per/512), per/512), want[i*per:(i+1)*per], "WRITE")
	}
	send([]byte{0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, "SYNCHRONIZE CACHE")
	if read {
		cdb := make([]byte, 10)
		cdb[0] = 0x28
		binary.BigEndian.PutUint32(cdb[2:], 32<<20/512)
		binary.BigEndian.PutUint16(cdb[7:], readLen/512)
		send(cdb, nil, "READ")
	}
	logoutITT := c.NextITT()
	req := iscsi.LogoutRequest{Immediate: true, Reason: iscsi.LogoutCloseSession, ITT: logoutITT,
		CmdSN: c.CmdSN(), ExpStatSN: c.ExpStatSN()}
	var h iscsi.BHS
	req.Encode(&h)
	if err := c.SendPDU(&h, nil, nil); err != nil {
		t.Fatal(err)
	}

	time.Sleep(300 * time.Millisecond)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	gotLogout := false
	var dataIn int
	for !gotLogout {
		p, err := c.ReadPDU()
		if err != nil {
			t.Fatalf("reading the answers: %v (%d commands unanswered)", err, len(pending))
		}
		switch p.BHS.Opcode() {
		case iscsi.OpSCSIResponse:
			var r iscsi.SCSIResponse
			if err := r.Decode(&p.BHS); err != nil {
				t.Fatal(err)
			}
			if gotLogout {
				t.Errorf("%s answered after the Logout Response", pending[r.ITT])
			}
			if r.Status != uint8(scsi.Good) {
				t.Errorf("%s: status %#x", pending[r.ITT], r.Status)
			}
			delete(pending, r.ITT)
		case iscsi.OpLogoutResponse:
			var r iscsi.LogoutResponse
			if err := r.Decode(&p.BHS); err != nil || r.ITT != logoutITT || r.Response != iscsi.LogoutSuccess {
				t.Fatalf("logout response %+v (%v)", r, err)
			}
			if len(pending) > 0 {
				t.Fatalf("Logout Response with %d commands unanswered: %v", len(pending), pending)
			}
			gotLogout = true
		case iscsi.OpDataIn:
			var d iscsi.DataIn
			if err := d.Decode(&p.BHS); err != nil {
				t.Fatal(err)
			}
			if gotLogout || int(d.BufferOffset) != dataIn {
				t.Fatalf("READ Data-In at %d after %d bytes (logout answered: %v)", d.BufferOffset, dataIn, gotLogout)
			}
			dataIn += len(p.Data)
			if d.HasStatus {
				if dataIn != readLen || d.Status != uint8(scsi.Good) {
					t.Errorf("READ: %d of %d bytes, status %#x", dataIn, readLen, d.Status)
				}
				delete(pending, d.ITT)
			}
		case iscsi.OpNOPIn:
		default:
			t.Fatalf("unexpected %s", p.BHS.Opcode())
		}
		p.Release()
	}
	if p, err := c.ReadPDU(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the Logout Response: %v (%v), want the connection closed", err, p != nil)
	}
	got, err := os.ReadFile(tgt.Path("disk0.img"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(want)], want) {
		t.Fatal("the data written before the logout is not on the disk")
	}
}
