package initiator

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

const testTarget = "iqn.2026-11.org.example:init-test"

// startServer serves one target with a 1 MiB nullio LUN 0 on a loopback
// port and returns its address.
func startServer(t *testing.T, params iscsi.Params) string {
	t.Helper()
	b, err := vdisk.Open(vdisk.Spec{Handler: vdisk.FileIO, Filename: t.TempDir() + "/d.img", Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dev := scsi.NewDevice(scsi.DeviceConfig{Name: "d0"}, b)
	luns := scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: dev}})
	s := iscsi.NewServer(nil)
	s.Publish(&iscsi.Snapshot{Enabled: true, Targets: map[string]*iscsi.Target{
		testTarget: {Name: testTarget, Enabled: true, Params: params, QueuedCommands: 32, LUNs: luns},
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

var defaultParams = iscsi.Params{
	HeaderDigest: []access.Digest{access.DigestCRC32C, access.DigestNone}, DataDigest: []access.Digest{access.DigestCRC32C, access.DigestNone},
	ImmediateData: true, InitialR2T: false, MaxRecvDataSegmentLength: 8192, MaxXmitDataSegmentLength: 8192,
	MaxBurstLength: 65536, FirstBurstLength: 16384, MaxOutstandingR2T: 1, DefaultTime2Wait: 2, DefaultTime2Retain: 20,
}

func dial(t *testing.T, addr string) *Conn {
	t.Helper()
	c, err := Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDiscovery(t *testing.T) {
	addr := startServer(t, defaultParams)
	c := dial(t, addr)
	if err := c.Login(Options{HeaderDigest: true}); err != nil {
		t.Fatal(err)
	}
	if !c.Params.HeaderDigest || c.Params.DataDigest {
		t.Fatalf("params %+v", c.Params)
	}
	targets, err := c.SendTargets("All")
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 1 || targets[0].Name != testTarget || len(targets[0].Addresses) != 1 ||
		targets[0].Addresses[0] != addr+",1" {
		t.Fatalf("SendTargets = %+v", targets)
	}
	if echo, err := c.NOP([]byte("hello")); err != nil || string(echo) != "hello" {
		t.Fatalf("NOP = %q, %v", echo, err)
	}
	if code, err := c.Logout(); err != nil || code != iscsi.LogoutSuccess {
		t.Fatalf("Logout = %v, %v", code, err)
	}
}

func TestLoginRefused(t *testing.T) {
	addr := startServer(t, defaultParams)
	c := dial(t, addr)
	err := c.Login(Options{TargetName: "iqn.2026-11.org.example:absent"})
	var le *LoginError
	if !errors.As(err, &le) || le.Status != iscsi.LoginNotFound {
		t.Fatalf("Login = %v", err)
	}
}

func TestNormalSessionIO(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"no digests, immediate data", Options{ImmediateData: true}},
		{"digests, R2T only", Options{HeaderDigest: true, DataDigest: true, InitialR2T: true}},
		{"unsolicited data-out", Options{DataDigest: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, defaultParams)
			c := dial(t, addr)
			tc.o.TargetName = testTarget
			if err := c.Login(tc.o); err != nil {
				t.Fatal(err)
			}
			if c.TSIH == 0 || c.Params.MaxXmitDSL != 8192 {
				t.Fatalf("TSIH %d, params %+v", c.TSIH, c.Params)
			}
			var lun0 [8]byte
			rsp, err := c.Command(lun0, []byte{0x12, 0, 0, 0, 96, 0}, nil, 96) // INQUIRY
			if err != nil || rsp.Status != 0 || len(rsp.Data) < 36 {
				t.Fatalf("INQUIRY = %+v, %v", rsp, err)
			}
			// The first command after login reports the power-on unit attention.
			rsp, err = c.Command(lun0, make([]byte, 6), nil, 0) // TEST UNIT READY
			if err != nil || rsp.Status != 2 || len(rsp.Sense) < 13 || rsp.Sense[2]&0x0f != 6 || rsp.Sense[12] != 0x29 {
				t.Fatalf("first TEST UNIT READY = %+v, %v", rsp, err)
			}
			if rsp, err = c.Command(lun0, make([]byte, 6), nil, 0); err != nil || rsp.Status != 0 {
				t.Fatalf("second TEST UNIT READY = %+v, %v", rsp, err)
			}
			// WRITE(10) of 64 KiB at LBA 8, then READ(10) it back.
			data := make([]byte, 65536)
			for i := range data {
				data[i] = byte(i * 7)
			}
			rsp, err = c.Command(lun0, []byte{0x2a, 0, 0, 0, 0, 8, 0, 0, 128, 0}, data, 0)
			if err != nil || rsp.Status != 0 {
				t.Fatalf("WRITE(10) = %+v, %v", rsp, err)
			}
			rsp, err = c.Command(lun0, []byte{0x28, 0, 0, 0, 0, 8, 0, 0, 128, 0}, nil, len(data))
			if err != nil || rsp.Status != 0 || !bytes.Equal(rsp.Data, data) {
				t.Fatalf("READ(10) = status %v, %d bytes, %v", rsp.Status, len(rsp.Data), err)
			}
			if rsp.DataInPDUs < 8 {
				t.Fatalf("64 KiB arrived in %d Data-In PDUs with MaxRecvDataSegmentLength 8192", rsp.DataInPDUs)
			}
			if _, err := c.NOP(nil); err != nil {
				t.Fatal(err)
			}
			if r, err := c.TaskMgmt(iscsi.TMLogicalUnitReset, lun0, 0, 0); err != nil || r != iscsi.TMFunctionComplete {
				t.Fatalf("LOGICAL UNIT RESET = %v, %v", r, err)
			}
			if code, err := c.Logout(); err != nil || code != iscsi.LogoutSuccess {
				t.Fatalf("Logout = %v, %v", code, err)
			}
		})
	}
}

func TestOversizedPDUClosesConnection(t *testing.T) {
	addr := startServer(t, defaultParams)
	c := dial(t, addr)
	if err := c.Login(Options{TargetName: testTarget, ImmediateData: true}); err != nil {
		t.Fatal(err)
	}
	// A NOP-Out whose data segment exceeds the target's 8192 bytes.
	var h iscsi.BHS
	(&iscsi.NOPOut{Immediate: true, ITT: c.NextITT(), TTT: iscsi.ReservedTag, CmdSN: c.CmdSN()}).Encode(&h)
	if err := c.SendPDU(&h, nil, make([]byte, 8196)); err != nil {
		t.Fatal(err)
	}
	for {
		p, err := c.ReadPDU()
		if err != nil {
			return // closed, as it must be
		}
		op := p.BHS.Opcode()
		p.Release()
		if op != iscsi.OpReject && op != iscsi.OpAsyncMessage {
			t.Fatalf("target answered an oversized PDU with %v", op)
		}
	}
}
