package iscsi

import (
	"testing"
	"time"

	"github.com/scstd/scstd/scsi"
)

// TestSessionHostilePDUs sends malformed and unexpected PDUs to a live
// session and checks each answer; the session must stay usable.
func TestSessionHostilePDUs(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	p := sessParams()
	p.FirstBurstLength = 4096
	ti := startSessInit(t, srv, tgt, 1, p)
	ti.clearUA()

	rejectOf := func(name string, want RejectReason) {
		t.Helper()
		q := ti.recv()
		defer q.Release()
		var r Reject
		if err := r.Decode(&q.BHS); err != nil {
			t.Fatalf("%s: got %s, want Reject", name, q.BHS.Opcode())
		}
		if r.Reason != want || len(q.Data) != BHSLen {
			t.Errorf("%s: Reject %s with %d bytes, want %s with the header", name, r.Reason, len(q.Data), want)
		}
	}
	sendRaw := func(h BHS, data []byte) { ti.send(&h, data) }

	var h BHS
	h.SetOpcode(0x1f, true)
	h.SetITT(1)
	sendRaw(h, nil)
	rejectOf("unknown opcode", RejectCommandNotSupported)

	h = BHS{}
	(&SNACKRequest{Type: SNACKStatus, ITT: 2}).Encode(&h)
	sendRaw(h, nil)
	rejectOf("SNACK at ErrorRecoveryLevel 0", RejectProtocolError)

	h = BHS{}
	(&LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature, ITT: 3}).Encode(&h)
	sendRaw(h, nil)
	rejectOf("Login Request in full-feature phase", RejectProtocolError)

	ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, make([]byte, 512), true)
	rejectOf("immediate data without W", RejectProtocolError)

	ti.command(sessCDB10(sessOpWrite10, 0, 16), false, true, 8192, make([]byte, 8192), true)
	rejectOf("immediate data beyond FirstBurstLength", RejectProtocolError)

	ti.itt++
	cmd := SCSICommand{Final: true, Attr: 7, ITT: ti.itt, CmdSN: ti.cmdSN}
	ti.cmdSN++
	h = BHS{}
	cmd.Encode(&h)
	sendRaw(h, nil)
	rejectOf("reserved task attribute", RejectInvalidPDUField)

	// Data-Out for no task: discarded silently.
	h = BHS{}
	(&DataOut{Final: true, ITT: 0xdead, TTT: 0x1234}).Encode(&h)
	sendRaw(h, make([]byte, 512))
	ti.expectSilence(50 * time.Millisecond)

	// A write far beyond any transfer limit fails at once.
	itt := ti.command(sessCDB10(sessOpWrite10, 0, 1), false, true, 1<<30, nil, true)
	if res := ti.await(itt, nil); res.status != uint8(scsi.CheckCondition) {
		t.Errorf("1 GiB EDTL: status %#x, want CHECK CONDITION", res.status)
	}

	// A second command with the ITT of a task still waiting for data.
	itt = ti.command(sessCDB10(sessOpWrite10, 0, 1), false, true, 512, nil, true)
	q := ti.recv()
	var r2 R2T
	if err := r2.Decode(&q.BHS); err != nil {
		t.Fatalf("got %s, want R2T", q.BHS.Opcode())
	}
	q.Release()
	ti.itt = itt - 1
	ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, nil, true)
	rejectOf("duplicate ITT", RejectTaskInProgress)

	// Unsolicited Data-Out where InitialR2T=Yes forbids it.
	h = BHS{}
	(&DataOut{Final: true, ITT: itt, TTT: ReservedTag}).Encode(&h)
	sendRaw(h, make([]byte, 512))
	res := ti.await(itt, nil)
	if res.status != uint8(scsi.CheckCondition) || len(res.sense) < 14 || res.sense[12] != 0x0c || res.sense[13] != 0x0c {
		t.Errorf("unexpected unsolicited data: status %#x sense % x", res.status, res.sense)
	}

	// Text Request: keys answered NotUnderstood.
	ti.itt++
	h = BHS{}
	(&TextRequest{Final: true, ITT: ti.itt, TTT: ReservedTag, CmdSN: ti.cmdSN}).Encode(&h)
	ti.cmdSN++
	sendRaw(h, []byte("X-Vendor=1\x00"))
	q = ti.recv()
	var tr TextResponse
	if err := tr.Decode(&q.BHS); err != nil || !tr.Final || string(q.Data) != "X-Vendor=NotUnderstood\x00" {
		t.Errorf("Text Response %+v data %q (%v)", tr, q.Data, err)
	}
	q.Release()

	// Still serving, with no CmdSN gap left by the rejected commands.
	itt = ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, nil, true)
	if res := ti.await(itt, nil); res.status != 0 {
		t.Fatalf("TEST UNIT READY: status %#x sense % x", res.status, res.sense)
	}
}
