package reconcile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/scstd/scstd/vdisk"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/iscsi"
)

// initiator is the least of an iSCSI initiator that the reload effects
// need: a login without authentication, TEST UNIT READY and REPORT LUNS,
// and the PDUs the target sends on its own (asynchronous messages).
type initiator struct {
	t     *testing.T
	nc    net.Conn
	fr    *iscsi.FrameReader
	cmdSN uint32
	statN uint32
	itt   uint32
}

func login(t *testing.T, portal, target string) *initiator {
	t.Helper()
	nc, err := net.DialTimeout("tcp", portal, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	in := &initiator{t: t, nc: nc, fr: iscsi.NewFrameReader(nc), cmdSN: 1}
	req := iscsi.LoginRequest{Transit: true, CSG: iscsi.StageOperational, NSG: iscsi.StageFullFeature,
		ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, ITT: 1, CmdSN: 1}
	var h iscsi.BHS
	req.Encode(&h)
	data := iscsi.AppendText(nil, iscsi.Text{
		{Key: "InitiatorName", Value: "iqn.2026-11.org.example:initiator"},
		{Key: "TargetName", Value: target},
		{Key: "SessionType", Value: "Normal"},
		{Key: "HeaderDigest", Value: "None"},
		{Key: "DataDigest", Value: "None"},
	})
	in.write(&h, data)
	p := in.read()
	var resp iscsi.LoginResponse
	if err := resp.Decode(&p.BHS); err != nil {
		t.Fatalf("login response: %v", err)
	}
	if resp.Status != iscsi.LoginSuccess || !resp.Transit || resp.NSG != iscsi.StageFullFeature {
		t.Fatalf("login: %+v", resp)
	}
	in.statN = resp.StatSN + 1
	return in
}

func (in *initiator) write(h *iscsi.BHS, data []byte) {
	in.t.Helper()
	in.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := in.nc.Write(iscsi.AppendFrame(nil, h, nil, data, false, false)); err != nil {
		in.t.Fatal(err)
	}
}

func (in *initiator) read() *iscsi.PDU {
	in.t.Helper()
	in.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := in.fr.Read()
	if err != nil {
		in.t.Fatalf("read: %v", err)
	}
	return p
}

// command sends a CDB to LUN 0..255 and returns the SCSI status and, for
// CHECK CONDITION, the sense key, ASC and ASCQ. Data-In is skipped; async
// messages that arrive first are returned in async.
func (in *initiator) command(lun uint8, cdb []byte, expIn uint32) (status uint8, sense [3]byte, async []iscsi.AsyncMessage) {
	in.t.Helper()
	in.itt++
	cmd := iscsi.SCSICommand{Final: true, Read: expIn > 0, Attr: 1, ITT: in.itt, ExpectedDataTransferLength: expIn,
		CmdSN: in.cmdSN, ExpStatSN: in.statN}
	cmd.LUN[1] = lun
	copy(cmd.CDB[:], cdb)
	in.cmdSN++
	var h iscsi.BHS
	cmd.Encode(&h)
	in.write(&h, nil)
	for {
		p := in.read()
		switch p.BHS.Opcode() {
		case iscsi.OpAsyncMessage:
			var m iscsi.AsyncMessage
			m.Decode(&p.BHS)
			async = append(async, m)
		case iscsi.OpSCSIResponse:
			var r iscsi.SCSIResponse
			if err := r.Decode(&p.BHS); err != nil {
				in.t.Fatal(err)
			}
			in.statN = r.StatSN + 1
			if len(p.Data) >= 2+14 {
				s := p.Data[2:]
				sense = [3]byte{s[2] & 0x0f, s[12], s[13]}
			}
			return r.Status, sense, async
		case iscsi.OpDataIn:
			// REPORT LUNS data; the status follows (or rides on the
			// last Data-In with the S bit).
			var d iscsi.DataIn
			if err := d.Decode(&p.BHS); err != nil {
				in.t.Fatal(err)
			}
			if d.HasStatus {
				in.statN = d.StatSN + 1
				return d.Status, sense, async
			}
		default:
			in.t.Fatalf("unexpected %v", p.BHS.Opcode())
		}
	}
}

// asyncEvent waits for an Asynchronous Message.
func (in *initiator) asyncEvent() (iscsi.AsyncMessage, []byte) {
	in.t.Helper()
	for {
		p := in.read()
		if p.BHS.Opcode() != iscsi.OpAsyncMessage {
			continue
		}
		var m iscsi.AsyncMessage
		m.Decode(&p.BHS)
		var sense []byte
		if len(p.Data) >= 2 {
			n := int(binary.BigEndian.Uint16(p.Data))
			sense = append(sense, p.Data[2:2+n]...)
		}
		return m, sense
	}
}

var (
	cdbTUR        = []byte{0x00, 0, 0, 0, 0, 0}
	cdbReportLUNs = []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}
)

const (
	statusGood  = 0x00
	statusCheck = 0x02
)

func TestSessionSeesReloads(t *testing.T) {
	portal := freePort(t)
	srv := iscsi.NewServer(slog.New(slog.DiscardHandler))
	defer srv.Shutdown(context.Background())
	e := NewEngine(srv, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1, LogoutGrace: 200 * time.Millisecond})
	defer e.Close()
	dir := t.TempDir()
	apply(t, e, parse(t, serverConfig(portal, dir, "")))

	in := login(t, portal, iqnA)
	// The first command reports the power-on unit attention.
	if st, sense, _ := in.command(0, cdbTUR, 0); st != statusCheck || sense != [3]byte{0x06, 0x29, 0x00} {
		t.Fatalf("first TUR: status %#x sense %x", st, sense)
	}
	if st, _, _ := in.command(0, cdbTUR, 0); st != statusGood {
		t.Fatalf("TUR: status %#x", st)
	}

	// A LUN added: an asynchronous SCSI event, then the unit attention.
	apply(t, e, parse(t, serverConfig(portal, dir, `  lun "1" { device = "disk1" }`)))
	m, sense := in.asyncEvent()
	if m.Event != iscsi.AsyncSCSIEvent || len(sense) < 14 || sense[12] != 0x3f || sense[13] != 0x0e {
		t.Fatalf("async message %+v sense %x", m, sense)
	}
	if st, sense, _ := in.command(0, cdbTUR, 0); st != statusCheck || sense != [3]byte{0x06, 0x3f, 0x0e} {
		t.Fatalf("TUR after adding a LUN: status %#x sense %x", st, sense)
	}
	if st, _, _ := in.command(0, cdbReportLUNs, 16); st != statusGood {
		t.Fatalf("REPORT LUNS: status %#x", st)
	}
	// The new LUN reports no POWER ON: the nexus is not new.
	if st, sense, _ := in.command(1, cdbTUR, 0); st != statusGood {
		t.Fatalf("first TUR on the added LUN: status %#x sense %x", st, sense)
	}

	// A device grown: CAPACITY DATA HAS CHANGED on its LUN.
	apply(t, e, parse(t, replaceOnce(t, serverConfig(portal, dir, `  lun "1" { device = "disk1" }`), `size = "64MiB"`, `size = "128MiB"`)))
	if st, sense, _ := in.command(0, cdbTUR, 0); st != statusCheck || sense != [3]byte{0x06, 0x2a, 0x09} {
		t.Fatalf("TUR after growing: status %#x sense %x", st, sense)
	}

	// An unrelated parameter: nothing for the session.
	apply(t, e, parse(t, replaceOnce(t, serverConfig(portal, dir, `  lun "1" { device = "disk1" }
  queued_commands = 16`), `size = "64MiB"`, `size = "128MiB"`)))
	if st, sense, async := in.command(0, cdbTUR, 0); st != statusGood || len(async) != 0 {
		t.Fatalf("TUR after a parameter change: status %#x sense %x async %+v", st, sense, async)
	}

	// LUN 1 reaches another device (forced): INQUIRY DATA HAS CHANGED
	// there, then REPORTED LUNS DATA HAS CHANGED, never POWER ON.
	swapped := replaceOnce(t, serverConfig(portal, dir, `  lun "1" { device = "null2" }
  queued_commands = 16`), `size = "64MiB"`, `size = "128MiB"`) + `
handler "vdisk_nullio" {
  device "null2" { size = "1MiB" }
}`
	if _, err := e.Apply(context.Background(), parse(t, swapped), ApplyOptions{}); !errors.As(err, new(*DisruptiveError)) {
		t.Fatalf("device swap not refused: %v", err)
	}
	if _, err := e.Apply(context.Background(), parse(t, swapped), ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if m, sense := in.asyncEvent(); m.Event != iscsi.AsyncSCSIEvent || sense[13] != 0x0e {
		t.Fatalf("async message %+v sense %x", m, sense)
	}
	for _, want := range [][3]byte{{0x06, 0x3f, 0x03}, {0x06, 0x3f, 0x0e}} {
		if st, sense, _ := in.command(1, cdbTUR, 0); st != statusCheck || sense != want {
			t.Fatalf("TUR after the swap: status %#x sense %x, want %x", st, sense, want)
		}
	}
	if st, sense, _ := in.command(1, cdbTUR, 0); st != statusGood {
		t.Fatalf("TUR: status %#x sense %x", st, sense)
	}

	// The target removed (forced: it ends the session): a logout
	// request, then the connection closes.
	if _, err := e.Apply(context.Background(), parse(t, fmt.Sprintf(`iscsi { portals = [%q] }`, portal)), ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	m, _ = in.asyncEvent()
	if m.Event != iscsi.AsyncLogoutRequest {
		t.Fatalf("async message %+v, want a logout request", m)
	}
	in.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := in.fr.Read(); err == nil {
		t.Fatal("connection still open after the logout grace")
	}
}

// TestSessionLoggedInDuringPrepare: a session that logs in while a reload
// opens its storage was not in the plan the policy judged. The commit looks
// again: under "refuse" it does not hand that session another device behind
// its LUN, and a forced reload gives it the effects the others get.
func TestSessionLoggedInDuringPrepare(t *testing.T) {
	portal := freePort(t)
	srv := iscsi.NewServer(slog.New(slog.DiscardHandler))
	defer srv.Shutdown(context.Background())
	var in *initiator
	loginDuringOpen := func(spec vdisk.Spec) (vdisk.Backend, error) {
		if spec.Handler == vdisk.NullIO && spec.Size == 1<<20 && in == nil { // null2
			in = login(t, portal, iqnA)
		}
		return vdisk.Open(spec)
	}
	e := NewEngine(srv, nil, Options{StateDir: t.TempDir(), RetryInterval: -1, SizePollInterval: -1,
		LogoutGrace: 200 * time.Millisecond, Open: loginDuringOpen})
	defer e.Close()
	dir := t.TempDir()
	apply(t, e, parse(t, serverConfig(portal, dir, "")))

	// LUN 0 to another device: nothing to refuse while no session is
	// logged in, but one logs in while null2 opens.
	swapped := strings.Replace(serverConfig(portal, dir, ""), `lun "0" { device = "null1" }`, `lun "0" { device = "null2" }`, 1) + `
handler "vdisk_nullio" {
  device "null2" { size = "1MiB" }
}`
	_, err := e.Apply(context.Background(), parse(t, swapped), ApplyOptions{})
	var de *DisruptiveError
	if in == nil || !errors.As(err, &de) {
		t.Fatalf("reload with a session logged in during prepare: %v (session logged in: %v), want it refused", err, in != nil)
	}
	if len(de.Changes) != 1 || len(de.Changes[0].Sessions) != 1 || de.Changes[0].Sessions[0].Impact != IdentityChange {
		t.Fatalf("refused changes %+v, want LUN 0 reaching another device (identity change) for the new session", de.Changes)
	}
	if got := e.Status().Targets[0].LUNs[0].Device; got != "null1" {
		t.Errorf("after the refusal LUN 0 reaches %q, want null1", got)
	}
	if st, sense, _ := in.command(0, cdbTUR, 0); st != statusCheck || sense != [3]byte{0x06, 0x29, 0x00} {
		t.Fatalf("first TUR: status %#x sense %x, want the power-on unit attention only", st, sense)
	}

	// Forced, with no session change during prepare: the session gets
	// INQUIRY DATA HAS CHANGED, then REPORTED LUNS DATA HAS CHANGED.
	if _, err := e.Apply(context.Background(), parse(t, swapped), ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][3]byte{{0x06, 0x3f, 0x03}, {0x06, 0x3f, 0x0e}} {
		if st, sense, _ := in.command(0, cdbTUR, 0); st != statusCheck || sense != want {
			t.Fatalf("TUR after the forced swap: status %#x sense %x, want %x", st, sense, want)
		}
	}
}
