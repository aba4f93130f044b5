package iscsi

import (
	"bytes"
	"testing"
	"time"

	"github.com/scstd/scstd/scsi"
)

func TestLogoutResponse(t *testing.T) {
	tests := []struct {
		name   string
		reason LogoutReason
		cid    uint16
		want   LogoutResponseCode
	}{
		{"close session", LogoutCloseSession, 9, LogoutSuccess},
		{"close this connection", LogoutCloseConnection, 1, LogoutSuccess},
		{"close another connection", LogoutCloseConnection, 2, LogoutCIDNotFound},
		{"remove for recovery at ERL0", LogoutRemoveForRecovery, 1, LogoutRecoveryNotSupported},
	}
	for _, tc := range tests {
		req := LogoutRequest{Reason: tc.reason, CID: tc.cid}
		if got := logoutResponse(&req, 1); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// logoutRequest sends a Logout Request closing the session.
func (ti *sessInit) logoutRequest(itt uint32, immediate bool) {
	ti.t.Helper()
	req := LogoutRequest{Immediate: immediate, Reason: LogoutCloseSession, ITT: itt, CID: 1, CmdSN: ti.cmdSN}
	if !immediate {
		ti.cmdSN++
	}
	var h BHS
	req.Encode(&h)
	ti.send(&h, nil)
}

// logoutResponse reads the next PDU, which must be a Logout Response.
func (ti *sessInit) logoutResponse() LogoutResponse {
	ti.t.Helper()
	p := ti.recv()
	defer p.Release()
	var resp LogoutResponse
	if err := resp.Decode(&p.BHS); err != nil {
		ti.t.Fatalf("%s, want the Logout Response (%v)", p.BHS.Opcode(), err)
	}
	return resp
}

// TestSessionLogoutAnswersRunningCommand: a logout that arrives while a
// command runs is answered after the command: its Data-In and status
// all arrive first, also when the initiator reads nothing for a while
// (the command's answer fills the socket while the logout waits behind
// it), and the connection closes after the Logout Response.
func TestSessionLogoutAnswersRunningCommand(t *testing.T) {
	const size = 8 << 20
	mem := &sessMem{b: make([]byte, size)}
	for i := range mem.b {
		mem.b[i] = byte(i*7 + i>>9)
	}
	dev := scsi.NewDevice(scsi.DeviceConfig{Name: "mem0", Type: scsi.TypeDisk, BlockSize: 512}, mem)
	luns := scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: dev}})
	tgt := &Target{Name: sessTargetName, Enabled: true, RelTgtPortID: 1, QueuedCommands: 8, LUNs: luns}
	srv := NewServer(sessLogger(t))
	srv.Publish(&Snapshot{Enabled: true, Targets: map[string]*Target{sessTargetName: tgt}})
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()

	mem.gate = make(chan struct{})
	itt := ti.command(sessCDB10(sessOpRead10, 0, size/512), true, false, size, nil, true)
	ti.logoutRequest(7, true)
	// The logout waits for the read, held in the backend.
	ti.expectSilence(100 * time.Millisecond)
	close(mem.gate)
	// Let the answer fill the socket before reading any of it.
	time.Sleep(200 * time.Millisecond)
	res := ti.await(itt, nil)
	if res.status != uint8(scsi.Good) || !bytes.Equal(res.data, mem.bytes(0, size)) {
		t.Fatalf("READ before the logout: status %#x, %d of %d bytes right", res.status, len(res.data), size)
	}
	resp := ti.logoutResponse()
	if resp.Response != LogoutSuccess || resp.ITT != 7 {
		t.Fatalf("logout response %+v", resp)
	}
	if resp.StatSN != res.statSN+1 {
		t.Errorf("Logout Response StatSN %d, READ's %d", resp.StatSN, res.statSN)
	}
	ti.waitEnded(5 * time.Second)
}

// TestSessionLogoutCleanupFailed: a command that does not complete
// within the write timeout makes the logout answer CLEANUP_FAILED, and
// the connection still closes.
func TestSessionLogoutCleanupFailed(t *testing.T) {
	srv, tgt, mem := newSessTarget(t)
	srv.limits.writeTimeout = 300 * time.Millisecond
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	mem.gate = make(chan struct{})
	defer close(mem.gate)
	ti.command(sessCDB10(sessOpRead10, 0, 1), true, false, 512, nil, true)
	ti.logoutRequest(7, true)
	resp := ti.logoutResponse()
	if resp.Response != LogoutCleanupFailed || resp.ITT != 7 {
		t.Fatalf("logout response %+v, want CLEANUP_FAILED", resp)
	}
	ti.waitEnded(5 * time.Second)
}
