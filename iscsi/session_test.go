package iscsi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// sessMem is an in-memory vdisk.Backend. Its I/O is tried without
// waiting (vdisk.NoWaiter: the reader runs the command itself) unless
// slow is set or a gate holds its reads.
type sessMem struct {
	mu sync.Mutex
	b  []byte
	// gate, when set, holds every read until it is closed.
	gate chan struct{}
	slow bool
	// waited counts the reads and writes done with ReadAt and WriteAt
	// (by an executor), not tried without waiting.
	waited atomic.Int64
}

func (m *sessMem) TryReadAt(p []byte, off int64) (int, error) {
	if m.slow || m.gate != nil {
		return 0, vdisk.ErrWouldBlock
	}
	return m.read(p, off)
}

func (m *sessMem) TryWriteAt(p []byte, off int64) (int, error) {
	if m.slow {
		return 0, vdisk.ErrWouldBlock
	}
	return m.write(p, off)
}

func (m *sessMem) ReadAt(p []byte, off int64) (int, error) {
	m.waited.Add(1)
	if m.gate != nil {
		<-m.gate
	}
	return m.read(p, off)
}

// bytes returns a copy of n bytes at off. The test reads them under the
// lock: the write it checks may have run on any of the target's
// goroutines, and the socket the answer came through is no
// synchronisation the race detector sees.
func (m *sessMem) bytes(off, n int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.b[off:off+n]...)
}

func (m *sessMem) read(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	return copy(p, m.b[off:]), nil
}

func (m *sessMem) WriteAt(p []byte, off int64) (int, error) {
	m.waited.Add(1)
	return m.write(p, off)
}

func (m *sessMem) write(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.b[off:], p), nil
}

func (m *sessMem) Size() (int64, error) { return int64(len(m.b)), nil }
func (m *sessMem) Sync() error          { return nil }
func (m *sessMem) Close() error         { return nil }

const (
	sessTargetName    = "iqn.2026-11.org.example:t1"
	sessInitiatorName = "iqn.2026-11.org.example:i1"
	sessBlocks        = 2048
)

func sessLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// sessParams are the negotiated parameters of most tests: small limits so
// that R2Ts and Data-In are split.
func sessParams() Negotiated {
	return Negotiated{
		MaxRecvDSL: 8192, MaxXmitDSL: 4096, MaxBurstLength: 16384, FirstBurstLength: 8192,
		InitialR2T: true, ImmediateData: true, MaxOutstandingR2T: 2,
		DataPDUInOrder: true, DataSequenceInOrder: true, DefaultTime2Wait: 2, MaxConnections: 1,
	}
}

// sessInit is a minimal initiator speaking to a session started without
// login (admitSession + runSession), over loopback TCP.
type sessInit struct {
	t          *testing.T
	srv        *Server
	nc         net.Conn
	fr         *FrameReader
	cmdSN      uint32
	itt        uint32
	done       chan struct{}
	sessResult *LoginResult
	hd, dd     bool // digests in use
}

func newSessTarget(t *testing.T) (*Server, *Target, *sessMem) {
	mem := &sessMem{b: make([]byte, sessBlocks*512)}
	dev := scsi.NewDevice(scsi.DeviceConfig{Name: "mem0", Type: scsi.TypeDisk, BlockSize: 512}, mem)
	luns := scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: dev}})
	tgt := &Target{Name: sessTargetName, Enabled: true, RelTgtPortID: 1, QueuedCommands: 8, LUNs: luns}
	srv := NewServer(sessLogger(t))
	srv.Publish(&Snapshot{Enabled: true, Targets: map[string]*Target{sessTargetName: tgt}})
	return srv, tgt, mem
}

// startSessInit admits a session for isid and runs it on a fresh loopback
// connection.
func startSessInit(t *testing.T, srv *Server, tgt *Target, isid byte, p Negotiated) *sessInit {
	t.Helper()
	cli, sc := tcpPair(t)
	return startSessInitConn(t, srv, tgt, isid, p, cli, sc)
}

// startSessInitConn is startSessInit on the connection whose ends are
// cli (the initiator's) and sc (the target's).
func startSessInitConn(t *testing.T, srv *Server, tgt *Target, isid byte, p Negotiated, cli, sc net.Conn) *sessInit {
	t.Helper()
	r := &LoginResult{InitiatorName: sessInitiatorName, ISID: [6]byte{0x80, 0, 0, 0, 0, isid}, CID: 1, TPGT: 1,
		Target: tgt, Params: p, ExpCmdSN: 1, StatSN: 100, Portal: sc.LocalAddr()}
	if _, err := srv.admitSession(r); err != nil {
		t.Fatal(err)
	}
	ti := &sessInit{t: t, srv: srv, nc: cli, fr: NewFrameReader(cli), cmdSN: 1, itt: 0x1000,
		done: make(chan struct{}), sessResult: r}
	ti.fr.SetMaxRecvDSL(p.MaxXmitDSL)
	ti.hd, ti.dd = p.HeaderDigest, p.DataDigest
	ti.fr.SetDigests(p.HeaderDigest, p.DataDigest)
	go func() {
		defer close(ti.done)
		srv.runSession(sc, NewFrameReader(sc), r)
		sc.Close()
	}()
	// Wait for the full-feature phase to start, as a login would.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		srv.mu.Lock()
		ss := srv.byTSIH[r.TSIH]
		srv.mu.Unlock()
		if ss != nil && ss.conn.Load() != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("session did not start")
		}
	}
	t.Cleanup(func() {
		cli.Close()
		select {
		case <-ti.done:
		case <-time.After(5 * time.Second):
			t.Error("session did not end")
		}
	})
	return ti
}

func (ti *sessInit) send(h *BHS, data []byte) {
	ti.t.Helper()
	if _, err := ti.nc.Write(AppendFrame(nil, h, nil, data, ti.hd, ti.dd)); err != nil {
		ti.t.Fatal(err)
	}
}

func (ti *sessInit) recv() *PDU {
	ti.t.Helper()
	ti.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := ti.fr.Read()
	if err != nil {
		ti.t.Fatalf("reading PDU: %v", err)
	}
	return p
}

// expectSilence checks that nothing arrives for d.
func (ti *sessInit) expectSilence(d time.Duration) {
	ti.t.Helper()
	ti.nc.SetReadDeadline(time.Now().Add(d))
	p, err := ti.fr.Read()
	if err == nil {
		ti.t.Fatalf("unexpected %s (ITT %#x)", p.BHS.Opcode(), p.BHS.ITT())
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		ti.t.Fatalf("reading: %v", err)
	}
	// The deadline interrupted a read at a PDU boundary: the reader is
	// still usable because nothing was consumed.
}

// command sends a SCSI command with the next CmdSN and ITT.
func (ti *sessInit) command(cdb []byte, read, write bool, edtl uint32, imm []byte, final bool) uint32 {
	ti.itt++
	cmd := SCSICommand{Final: final, Read: read, Write: write, Attr: scsi.Simple, ITT: ti.itt,
		ExpectedDataTransferLength: edtl, CmdSN: ti.cmdSN}
	copy(cmd.CDB[:], cdb)
	ti.cmdSN++
	var h BHS
	cmd.Encode(&h)
	ti.send(&h, imm)
	return ti.itt
}

// sessResult collects a command's Data-In and status.
type sessResult struct {
	status     uint8
	data       []byte
	sense      []byte
	over       bool
	under      bool
	resid      uint32
	collapsed  bool
	dataSNs    []uint32
	r2ts       []R2T
	statSN     uint32
	maxCmdSN   uint32
	expDataSN  uint32
	finalFlags int
}

// await reads PDUs for itt until its status arrives; R2Ts are answered
// from out (nil: not answered, just recorded).
func (ti *sessInit) await(itt uint32, out []byte) sessResult {
	ti.t.Helper()
	var res sessResult
	for {
		p := ti.recv()
		switch p.BHS.Opcode() {
		case OpDataIn:
			var d DataIn
			if err := d.Decode(&p.BHS); err != nil {
				ti.t.Fatal(err)
			}
			if d.ITT != itt {
				ti.t.Fatalf("Data-In for ITT %#x, want %#x", d.ITT, itt)
			}
			if int(d.BufferOffset) != len(res.data) {
				ti.t.Fatalf("Data-In offset %d, want %d", d.BufferOffset, len(res.data))
			}
			res.data = append(res.data, p.Data...)
			res.dataSNs = append(res.dataSNs, d.DataSN)
			if d.Final {
				res.finalFlags++
			}
			if d.HasStatus {
				res.status, res.over, res.under, res.resid = d.Status, d.Overflow, d.Underflow, d.ResidualCount
				res.collapsed, res.statSN, res.maxCmdSN = true, d.StatSN, d.MaxCmdSN
				p.Release()
				return res
			}
		case OpR2T:
			var r R2T
			r.Decode(&p.BHS)
			res.r2ts = append(res.r2ts, r)
			if out != nil {
				ti.dataOut(r, out)
			}
		case OpSCSIResponse:
			var r SCSIResponse
			if err := r.Decode(&p.BHS); err != nil {
				ti.t.Fatal(err)
			}
			if r.ITT != itt {
				ti.t.Fatalf("SCSI Response for ITT %#x, want %#x", r.ITT, itt)
			}
			res.status, res.over, res.under, res.resid = r.Status, r.Overflow, r.Underflow, r.ResidualCount
			res.statSN, res.maxCmdSN, res.expDataSN = r.StatSN, r.MaxCmdSN, r.ExpDataSN
			if len(p.Data) >= 2 {
				n := int(binary.BigEndian.Uint16(p.Data))
				res.sense = append([]byte(nil), p.Data[2:2+n]...)
			}
			p.Release()
			return res
		default:
			ti.t.Fatalf("unexpected %s", p.BHS.Opcode())
		}
		p.Release()
	}
}

// dataOut answers an R2T with Data-Out PDUs of at most 4096 bytes.
func (ti *sessInit) dataOut(r R2T, out []byte) {
	ti.t.Helper()
	end := r.BufferOffset + r.DesiredDataTransferLength
	var sn uint32
	for off := r.BufferOffset; off < end; sn++ {
		n := min(4096, end-off)
		d := DataOut{Final: off+n == end, ITT: r.ITT, TTT: r.TTT, DataSN: sn, BufferOffset: off}
		var h BHS
		d.Encode(&h)
		ti.send(&h, out[off:off+n])
		off += n
	}
}

func sessCDB10(op byte, lba uint32, blocks uint16) []byte {
	c := make([]byte, 10)
	c[0] = op
	binary.BigEndian.PutUint32(c[2:], lba)
	binary.BigEndian.PutUint16(c[7:], blocks)
	return c
}

const (
	sessOpTUR     = 0x00
	sessOpRead10  = 0x28
	sessOpWrite10 = 0x2a
)

// clearUA consumes the POWER ON unit attention of a new nexus.
func (ti *sessInit) clearUA() {
	ti.t.Helper()
	itt := ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, nil, true)
	res := ti.await(itt, nil)
	if res.status != uint8(scsi.CheckCondition) || len(res.sense) < 14 || res.sense[12] != 0x29 {
		ti.t.Fatalf("first TEST UNIT READY: status %#x sense % x, want the power-on unit attention", res.status, res.sense)
	}
}

func TestSessionReadWrite(t *testing.T) {
	srv, tgt, mem := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()

	// A 24 KiB write: 8 KiB immediate data (FirstBurstLength), the rest
	// solicited by R2Ts of at most MaxBurstLength 16 KiB, two outstanding.
	data := make([]byte, 48*512)
	for i := range data {
		data[i] = byte(i * 7)
	}
	itt := ti.command(sessCDB10(sessOpWrite10, 10, 48), false, true, uint32(len(data)), data[:8192], true)
	res := ti.await(itt, data)
	if res.status != 0 || res.over || res.under {
		t.Fatalf("WRITE10: status %#x O %v U %v sense % x", res.status, res.over, res.under, res.sense)
	}
	if len(res.r2ts) != 1 || res.r2ts[0].BufferOffset != 8192 || res.r2ts[0].DesiredDataTransferLength != 16384 {
		t.Errorf("R2Ts %+v, want one at 8192 for 16384", res.r2ts)
	}
	if !bytes.Equal(mem.bytes(10*512, len(data)), data) {
		t.Fatal("written data differs")
	}

	// Read it back: Data-In split by MaxXmitDSL 4 KiB, status collapsed
	// into the last one, F at the 16 KiB burst boundary and the end.
	itt = ti.command(sessCDB10(sessOpRead10, 10, 48), true, false, uint32(len(data)), nil, true)
	res = ti.await(itt, nil)
	if !res.collapsed || res.status != 0 || res.over || res.under {
		t.Fatalf("READ10: collapsed %v status %#x O %v U %v", res.collapsed, res.status, res.over, res.under)
	}
	if !bytes.Equal(res.data, data) {
		t.Fatal("read data differs")
	}
	if len(res.dataSNs) != 6 || res.dataSNs[5] != 5 || res.finalFlags != 2 {
		t.Errorf("Data-In DataSNs %v with %d F bits, want 0..5 with 2", res.dataSNs, res.finalFlags)
	}
}

func TestSessionResiduals(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	tests := []struct {
		name        string
		cdb         []byte
		read, write bool
		edtl        uint32
		status      scsi.Status
		over, under bool
		resid       uint32
		dataLen     int
	}{
		{"READ10 1 block, EDTL 0", sessCDB10(sessOpRead10, 0, 1), true, false, 0, scsi.Good, true, false, 512, 0},
		{"READ10 1 block, EDTL 10000", sessCDB10(sessOpRead10, 0, 1), true, false, 10000, scsi.Good, false, true, 10000 - 512, 512},
		{"READ10 1 block, EDTL 200", sessCDB10(sessOpRead10, 0, 1), true, false, 200, scsi.Good, true, false, 312, 200},
		{"READ10 2 blocks, EDTL 512", sessCDB10(sessOpRead10, 0, 2), true, false, 512, scsi.Good, true, false, 512, 512},
		{"WRITE10 1 block, EDTL 1024", sessCDB10(sessOpWrite10, 0, 1), false, true, 1024, scsi.Good, false, true, 512, 0},
		{"WRITE10 2 blocks, EDTL 512", sessCDB10(sessOpWrite10, 0, 2), false, true, 512, scsi.Good, true, false, 512, 0},
		{"WRITE10 1 block, EDTL 0", sessCDB10(sessOpWrite10, 0, 1), false, true, 0, scsi.Good, true, false, 512, 0},
		{"WRITE10 1 block, EDTL 200", sessCDB10(sessOpWrite10, 0, 1), false, true, 200, scsi.Good, true, false, 312, 0},
	}
	for _, tc := range tests {
		out := make([]byte, tc.edtl)
		itt := ti.command(tc.cdb, tc.read, tc.write, tc.edtl, nil, true)
		res := ti.await(itt, out)
		if scsi.Status(res.status) != tc.status || res.over != tc.over || res.under != tc.under ||
			res.resid != tc.resid || len(res.data) != tc.dataLen {
			t.Errorf("%s: status %#x O %v U %v residual %d data %d, want %#x O %v U %v residual %d data %d (sense % x)",
				tc.name, res.status, res.over, res.under, res.resid, len(res.data),
				uint8(tc.status), tc.over, tc.under, tc.resid, tc.dataLen, res.sense)
		}
	}
}

func TestSessionCmdSNOrdering(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	tur := []byte{sessOpTUR, 0, 0, 0, 0, 0}

	// Out of order: CmdSN n+1 is held until n arrives.
	sn := ti.cmdSN
	ti.cmdSN = sn + 1
	itt2 := ti.command(tur, false, false, 0, nil, true)
	ti.expectSilence(100 * time.Millisecond)
	ti.cmdSN = sn
	itt1 := ti.command(tur, false, false, 0, nil, true)
	got := map[uint32]bool{}
	for range 2 {
		p := ti.recv()
		var r SCSIResponse
		if err := r.Decode(&p.BHS); err != nil {
			t.Fatal(err)
		}
		got[r.ITT] = true
		p.Release()
	}
	if !got[itt1] || !got[itt2] {
		t.Fatalf("responses for %v, want ITTs %#x and %#x", got, itt1, itt2)
	}
	ti.cmdSN = sn + 2

	// Beyond MaxCmdSN and below ExpCmdSN: dropped without an answer
	// (libiscsi iSCSIcmdsn).
	_, max := srv.sessionsOf(sessTargetName)[0].stamp(false)
	for _, bad := range []uint32{max + 1, ti.cmdSN - 1} {
		saved := ti.cmdSN
		ti.cmdSN = bad
		ti.command(tur, false, false, 0, nil, true)
		ti.cmdSN = saved
		ti.expectSilence(100 * time.Millisecond)
	}
	itt := ti.command(tur, false, false, 0, nil, true)
	if res := ti.await(itt, nil); res.status != 0 {
		t.Fatalf("TEST UNIT READY after dropped commands: status %#x", res.status)
	}
}

func TestSessionDataSNInvalid(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	for _, tc := range []struct {
		name   string
		dataSN uint32
		offset uint32
	}{
		{"DataSN 27", 27, 0},
		{"DataSN -1", 0xffffffff, 0},
		{"bad offset", 0, 512},
	} {
		itt := ti.command(sessCDB10(sessOpWrite10, 100, 1), false, true, 512, nil, true)
		p := ti.recv()
		var r R2T
		if err := r.Decode(&p.BHS); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		p.Release()
		d := DataOut{Final: true, ITT: itt, TTT: r.TTT, DataSN: tc.dataSN, BufferOffset: tc.offset}
		var h BHS
		d.Encode(&h)
		ti.send(&h, make([]byte, 512))
		res := ti.await(itt, nil)
		if res.status != uint8(scsi.CheckCondition) || len(res.sense) < 3 || res.sense[2]&0x0f != byte(scsi.AbortedCommand) {
			t.Errorf("%s: status %#x sense % x, want CHECK CONDITION, ABORTED COMMAND", tc.name, res.status, res.sense)
		}
	}
	// The session still works.
	itt := ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, nil, true)
	if res := ti.await(itt, nil); res.status != 0 {
		t.Fatalf("TEST UNIT READY: status %#x", res.status)
	}
}

func TestSessionNOP(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ping := []byte("ping data")
	n := NOPOut{Immediate: true, ITT: 0x77, TTT: ReservedTag, CmdSN: ti.cmdSN}
	var h BHS
	n.Encode(&h)
	ti.send(&h, ping)
	p := ti.recv()
	var in NOPIn
	if err := in.Decode(&p.BHS); err != nil {
		t.Fatal(err)
	}
	if in.ITT != 0x77 || in.TTT != ReservedTag || !bytes.Equal(p.Data, ping) || in.StatSN != 100 {
		t.Errorf("NOP-In ITT %#x TTT %#x StatSN %d data %q", in.ITT, in.TTT, in.StatSN, p.Data)
	}
	if in.ExpCmdSN != 1 || in.MaxCmdSN != 8 {
		t.Errorf("NOP-In window [%d, %d], want [1, 8]", in.ExpCmdSN, in.MaxCmdSN)
	}
	p.Release()
}

func TestSessionTargetPing(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	tgt.NopInInterval = 50 * time.Millisecond
	tgt.NopInTimeout = 200 * time.Millisecond
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	p := ti.recv()
	var in NOPIn
	if err := in.Decode(&p.BHS); err != nil {
		t.Fatal(err)
	}
	p.Release()
	if in.ITT != ReservedTag || in.TTT == ReservedTag {
		t.Fatalf("target ping ITT %#x TTT %#x", in.ITT, in.TTT)
	}
	// Answer it; then stay silent and expect the connection to be dropped.
	out := NOPOut{Immediate: true, ITT: ReservedTag, TTT: in.TTT, CmdSN: ti.cmdSN}
	var h BHS
	out.Encode(&h)
	ti.send(&h, nil)
	ti.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		p, err := ti.fr.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			t.Fatalf("waiting for the connection to drop: %v", err)
		}
		if p.BHS.Opcode() != OpNOPIn {
			t.Fatalf("unexpected %s", p.BHS.Opcode())
		}
		p.Release()
	}
}

func TestSessionAbortTask(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	// A write waiting for its data is aborted: FUNCTION COMPLETE and no
	// SCSI Response for it.
	itt := ti.command(sessCDB10(sessOpWrite10, 0, 8), false, true, 4096, nil, true)
	p := ti.recv()
	if p.BHS.Opcode() != OpR2T {
		t.Fatalf("got %s, want R2T", p.BHS.Opcode())
	}
	p.Release()
	ti.itt++
	req := TaskMgmtRequest{Immediate: true, Function: TMAbortTask, ITT: ti.itt, RTT: itt,
		CmdSN: ti.cmdSN, RefCmdSN: ti.cmdSN - 1}
	var h BHS
	req.Encode(&h)
	ti.send(&h, nil)
	p = ti.recv()
	var resp TaskMgmtResponse
	if err := resp.Decode(&p.BHS); err != nil {
		t.Fatal(err)
	}
	p.Release()
	if resp.ITT != ti.itt || resp.Response != TMFunctionComplete {
		t.Fatalf("ABORT TASK: ITT %#x response %s", resp.ITT, resp.Response)
	}
	// Aborting it again: the task no longer exists and RefCmdSN is behind
	// the window.
	ti.itt++
	req.ITT = ti.itt
	h = BHS{}
	req.Encode(&h)
	ti.send(&h, nil)
	p = ti.recv()
	resp.Decode(&p.BHS)
	p.Release()
	if resp.Response != TMTaskDoesNotExist {
		t.Fatalf("second ABORT TASK: %s, want TASK_DOES_NOT_EXIST", resp.Response)
	}
	// The session goes on; no response for the aborted write shows up.
	itt = ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, nil, true)
	if res := ti.await(itt, nil); res.status != 0 {
		t.Fatalf("TEST UNIT READY: status %#x", res.status)
	}
}

func TestSessionLUNReset(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	for _, tc := range []struct {
		name string
		lun  [8]byte
		want TMResponse
	}{
		{"LUN 0", scsi.LUN(0).Encode(), TMFunctionComplete},
		{"LUN 5 (not mapped)", scsi.LUN(5).Encode(), TMLUNDoesNotExist},
	} {
		ti.itt++
		req := TaskMgmtRequest{Immediate: true, Function: TMLogicalUnitReset, LUN: tc.lun, ITT: ti.itt,
			RTT: ReservedTag, CmdSN: ti.cmdSN}
		var h BHS
		req.Encode(&h)
		ti.send(&h, nil)
		p := ti.recv()
		var resp TaskMgmtResponse
		if err := resp.Decode(&p.BHS); err != nil {
			t.Fatal(err)
		}
		p.Release()
		if resp.Response != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, resp.Response, tc.want)
		}
	}
	// The reset shows as a unit attention (29h/03h).
	itt := ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, nil, true)
	res := ti.await(itt, nil)
	if res.status != uint8(scsi.CheckCondition) || len(res.sense) < 14 || res.sense[12] != 0x29 || res.sense[13] != 0x03 {
		t.Fatalf("after LUN RESET: status %#x sense % x", res.status, res.sense)
	}
}

func TestSessionLogout(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	req := LogoutRequest{Immediate: true, Reason: LogoutCloseSession, ITT: 5, CID: 1, CmdSN: ti.cmdSN}
	var h BHS
	req.Encode(&h)
	ti.send(&h, nil)
	p := ti.recv()
	var resp LogoutResponse
	if err := resp.Decode(&p.BHS); err != nil {
		t.Fatal(err)
	}
	p.Release()
	if resp.Response != LogoutSuccess || resp.ITT != 5 || resp.Time2Wait != 2 {
		t.Fatalf("logout response %+v", resp)
	}
	if _, err := ti.fr.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("after logout: %v, want EOF", err)
	}
	select {
	case <-ti.done:
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end")
	}
	if n := len(srv.Sessions()); n != 0 {
		t.Fatalf("%d sessions after logout", n)
	}
}

func TestSessionReinstatement(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	old := startSessInit(t, srv, tgt, 1, sessParams())
	old.clearUA()
	other := startSessInit(t, srv, tgt, 2, sessParams())
	if n := len(srv.Sessions()); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	// Same initiator and ISID: the old session is closed first.
	nu := startSessInit(t, srv, tgt, 1, sessParams())
	select {
	case <-old.done:
	case <-time.After(5 * time.Second):
		t.Fatal("reinstated session still running")
	}
	infos := srv.Sessions()
	if len(infos) != 2 {
		t.Fatalf("%d sessions after reinstatement, want 2", len(infos))
	}
	tsihs := map[uint16]bool{}
	for _, si := range infos {
		tsihs[si.TSIH] = true
		if si.Target != sessTargetName || si.Initiator != sessInitiatorName || len(si.Connections) != 1 {
			t.Errorf("session info %+v", si)
		}
	}
	if !tsihs[nu.sessResult.TSIH] || !tsihs[other.sessResult.TSIH] {
		t.Errorf("sessions %v, want TSIHs %d and %d", tsihs, nu.sessResult.TSIH, other.sessResult.TSIH)
	}
	nu.clearUA()

	// Adding a connection to an existing session is refused.
	r := &LoginResult{InitiatorName: sessInitiatorName, ISID: nu.sessResult.ISID, TSIH: nu.sessResult.TSIH, Target: tgt}
	var ae *AdmitError
	if _, err := srv.admitSession(r); !errors.As(err, &ae) || ae.Status != LoginTooManyConnections {
		t.Errorf("second connection: %v, want TOO_MANY_CONNECTIONS", err)
	}
	r.TSIH = 0x7777
	if _, err := srv.admitSession(r); !errors.As(err, &ae) || ae.Status != LoginSessionDoesNotExist {
		t.Errorf("unknown TSIH: %v, want SESSION_DOES_NOT_EXIST", err)
	}
}

// tur runs TEST UNIT READY and returns its status and, for CHECK
// CONDITION, ASC and ASCQ.
func (ti *sessInit) tur() (uint8, [2]byte) {
	ti.t.Helper()
	res := ti.await(ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, nil, true), nil)
	var aa [2]byte
	if len(res.sense) >= 14 {
		aa = [2]byte{res.sense[12], res.sense[13]}
	}
	return res.status, aa
}

// recvAsync reads an Asynchronous Message and returns it with its sense.
func (ti *sessInit) recvAsync() (AsyncMessage, []byte) {
	ti.t.Helper()
	p := ti.recv()
	defer p.Release()
	var m AsyncMessage
	if err := m.Decode(&p.BHS); err != nil {
		ti.t.Fatal(err)
	}
	var sense []byte
	if len(p.Data) >= 2 {
		sense = append(sense, p.Data[2:2+int(binary.BigEndian.Uint16(p.Data))]...)
	}
	return m, sense
}

func (ti *sessInit) id() SessionID {
	return SessionID{Target: sessTargetName, Initiator: sessInitiatorName,
		ISID: fmt.Sprintf("%012x", ti.sessResult.ISID[:]), TSIH: ti.sessResult.TSIH}
}

func TestSessionAsyncEvents(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	if st := srv.Sessions(); len(st) != 1 || st[0].LUNMap != "default" || st[0].Group != "" || st[0].PortalIP != "127.0.0.1" {
		t.Fatalf("status %+v", st)
	}
	// Nothing changed for this session: no event.
	same := *tgt
	srv.Publish(&Snapshot{Enabled: true, Targets: map[string]*Target{sessTargetName: &same}})
	ti.expectSilence(50 * time.Millisecond)

	// A reload swaps the device behind LUN 0, as its plan says: INQUIRY
	// DATA HAS CHANGED, then REPORTED LUNS DATA HAS CHANGED, and the
	// Async Message that makes the initiator rescan.
	other := scsi.NewDevice(scsi.DeviceConfig{Name: "other"}, &sessMem{b: make([]byte, 64*512)})
	swapped := same
	swapped.LUNs = scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: other}})
	srv.Commit(&Snapshot{Enabled: true, Targets: map[string]*Target{sessTargetName: &swapped}},
		[]SessionEffect{{Session: ti.id(), LUNsChanged: true, Swapped: []scsi.LUN{0}}})
	m, sense := ti.recvAsync()
	if m.Event != AsyncSCSIEvent || len(sense) != 18 || sense[12] != 0x3f || sense[13] != 0x0e {
		t.Fatalf("async event %s sense % x", m.Event, sense)
	}
	for _, want := range [][2]byte{{0x3f, 0x03}, {0x3f, 0x0e}} {
		if st, aa := ti.tur(); st != uint8(scsi.CheckCondition) || aa != want {
			t.Fatalf("TUR after the swap: status %#x sense %x, want %x", st, aa, want)
		}
	}
	if st, _ := ti.tur(); st != uint8(scsi.Good) {
		t.Fatalf("TUR: status %#x", st)
	}

	// A snapshot published without effects still tells the session of
	// its LUN map change: LUN 1 added, reported without POWER ON.
	lu := swapped.LUNs.Lookup(0)
	added := swapped
	added.LUNs = scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: lu, 1: lu})
	srv.Publish(&Snapshot{Enabled: true, Targets: map[string]*Target{sessTargetName: &added}})
	if m, sense := ti.recvAsync(); m.Event != AsyncSCSIEvent || sense[13] != 0x0e {
		t.Fatalf("async event %s sense % x", m.Event, sense)
	}
	if st, aa := ti.tur(); st != uint8(scsi.CheckCondition) || aa != [2]byte{0x3f, 0x0e} {
		t.Fatalf("TUR after adding a LUN: status %#x sense %x", st, aa)
	}

	// An effect for a session that is not there (another TSIH) is
	// skipped; the session itself is asked to log out with the
	// snapshot's grace.
	gone := SessionID{Target: sessTargetName, Initiator: sessInitiatorName, ISID: ti.id().ISID, TSIH: ti.id().TSIH + 1}
	srv.Commit(&Snapshot{Enabled: true, LogoutGrace: 100 * time.Millisecond},
		[]SessionEffect{{Session: gone, Logout: true}, {Session: ti.id(), Logout: true}})
	m, _ = ti.recvAsync()
	if m.Event != AsyncLogoutRequest || m.Parameter3 != 1 {
		t.Fatalf("async event %s Parameter3 %d, want LOGOUT_REQUEST 1", m.Event, m.Parameter3)
	}
	select {
	case <-ti.done:
	case <-time.After(5 * time.Second):
		t.Fatal("session not closed after the logout grace period")
	}
	if _, err := srv.CloseSession(sessTargetName, sessInitiatorName); !errors.Is(err, ErrNoSession) {
		t.Fatalf("CloseSession after the end: %v", err)
	}
}

func TestSessionStatusShowsGroup(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	grouped := *tgt
	grouped.Access.Groups = []Group{{Name: "kvm-hosts", Initiators: access.MustPatterns(sessInitiatorName), LUNs: tgt.LUNs}}
	srv.Publish(&Snapshot{Enabled: true, Targets: map[string]*Target{sessTargetName: &grouped}})
	ti := startSessInit(t, srv, &grouped, 1, sessParams())
	ti.clearUA()
	if st := srv.Sessions(); len(st) != 1 || st[0].LUNMap != `group["kvm-hosts"]` || st[0].Group != "kvm-hosts" {
		t.Fatalf("status %+v", st)
	}
}

func TestSessionDigests(t *testing.T) {
	srv, tgt, mem := newSessTarget(t)
	p := sessParams()
	p.HeaderDigest, p.DataDigest = true, true
	ti := startSessInit(t, srv, tgt, 1, p)
	ti.clearUA()
	data := bytes.Repeat([]byte("digest!!"), 3*512/8)
	itt := ti.command(sessCDB10(sessOpWrite10, 4, 3), false, true, uint32(len(data)), data[:512], true)
	if res := ti.await(itt, data); res.status != 0 {
		t.Fatalf("WRITE10 with digests: status %#x sense % x", res.status, res.sense)
	}
	if !bytes.Equal(mem.bytes(4*512, 3*512), data) {
		t.Fatal("written data differs")
	}
	itt = ti.command(sessCDB10(sessOpRead10, 4, 3), true, false, uint32(len(data)), nil, true)
	if res := ti.await(itt, nil); res.status != 0 || !bytes.Equal(res.data, data) {
		t.Fatalf("READ10 with digests: status %#x, data equal %v", res.status, bytes.Equal(res.data, data))
	}

	// A Data-Out whose data digest is wrong: Reject (data digest error),
	// then the write ends with CHECK CONDITION, PROTOCOL SERVICE CRC ERROR.
	itt = ti.command(sessCDB10(sessOpWrite10, 0, 1), false, true, 512, nil, true)
	q := ti.recv()
	var r R2T
	if err := r.Decode(&q.BHS); err != nil {
		t.Fatalf("got %s, want R2T", q.BHS.Opcode())
	}
	q.Release()
	var h BHS
	(&DataOut{Final: true, ITT: itt, TTT: r.TTT}).Encode(&h)
	frame := AppendFrame(nil, &h, nil, make([]byte, 512), true, true)
	frame[len(frame)-1] ^= 0xff
	if _, err := ti.nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	q = ti.recv()
	var rj Reject
	if err := rj.Decode(&q.BHS); err != nil || rj.Reason != RejectDataDigestError {
		t.Fatalf("got %s %+v, want Reject DATA_DIGEST_ERROR", q.BHS.Opcode(), rj)
	}
	q.Release()
	res := ti.await(itt, nil)
	if res.status != uint8(scsi.CheckCondition) || len(res.sense) < 14 || res.sense[12] != 0x47 || res.sense[13] != 0x05 {
		t.Fatalf("after a data digest error: status %#x sense % x", res.status, res.sense)
	}

	// A header digest error ends the connection.
	h = BHS{}
	(&NOPOut{Immediate: true, ITT: 9, TTT: ReservedTag, CmdSN: ti.cmdSN}).Encode(&h)
	frame = AppendFrame(nil, &h, nil, nil, true, true)
	frame[BHSLen] ^= 0xff
	ti.nc.Write(frame)
	select {
	case <-ti.done:
	case <-time.After(5 * time.Second):
		t.Fatal("connection survived a header digest error")
	}
}

// nopWindow pings and returns the window the NOP-In advertises.
func (ti *sessInit) nopWindow() (exp, max uint32) {
	ti.t.Helper()
	ti.itt++
	var h BHS
	(&NOPOut{Immediate: true, ITT: ti.itt, TTT: ReservedTag, CmdSN: ti.cmdSN}).Encode(&h)
	ti.send(&h, nil)
	p := ti.recv()
	defer p.Release()
	var in NOPIn
	if err := in.Decode(&p.BHS); err != nil {
		ti.t.Fatalf("got %s, want NOP-In", p.BHS.Opcode())
	}
	return in.ExpCmdSN, in.MaxCmdSN
}

func TestSessionQueuedCommandsReload(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	if exp, max := ti.nopWindow(); exp != 1 || max != 8 {
		t.Fatalf("window [%d, %d], want [1, 8]", exp, max)
	}
	// A reload raising queued_commands widens the window of the live
	// session at once.
	bigger := *tgt
	bigger.QueuedCommands = 16
	srv.Publish(&Snapshot{Enabled: true, Targets: map[string]*Target{sessTargetName: &bigger}})
	if exp, max := ti.nopWindow(); exp != 1 || max != 16 {
		t.Fatalf("window after reload [%d, %d], want [1, 16]", exp, max)
	}
	// Lowering it never takes back what was advertised.
	smaller := *tgt
	smaller.QueuedCommands = 2
	srv.Publish(&Snapshot{Enabled: true, Targets: map[string]*Target{sessTargetName: &smaller}})
	if _, max := ti.nopWindow(); max != 16 {
		t.Fatalf("MaxCmdSN after lowering %d, want 16 kept", max)
	}
}

func TestSessionColdResetAndClose(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	a := startSessInit(t, srv, tgt, 1, sessParams())
	b := startSessInit(t, srv, tgt, 2, sessParams())
	a.clearUA()
	infos := srv.Sessions()
	if len(infos) != 2 || infos[0].Commands+infos[1].Commands != 1 {
		t.Fatalf("sessions %+v", infos)
	}
	a.itt++
	req := TaskMgmtRequest{Immediate: true, Function: TMTargetColdReset, ITT: a.itt, RTT: ReservedTag, CmdSN: a.cmdSN}
	var h BHS
	req.Encode(&h)
	a.send(&h, nil)
	p := a.recv()
	var resp TaskMgmtResponse
	if err := resp.Decode(&p.BHS); err != nil || resp.Response != TMFunctionComplete {
		t.Fatalf("TARGET COLD RESET: %s %+v", p.BHS.Opcode(), resp)
	}
	p.Release()
	// Every session of the target ends after the response.
	for _, ti := range []*sessInit{a, b} {
		select {
		case <-ti.done:
		case <-time.After(5 * time.Second):
			t.Fatal("session survived a cold reset")
		}
	}

	c := startSessInit(t, srv, tgt, 3, sessParams())
	if n, err := srv.CloseSession(sessTargetName, sessInitiatorName); n != 1 || err != nil {
		t.Fatalf("CloseSession: %d, %v", n, err)
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("CloseSession left the session running")
	}
}

func TestSessionUnsolicitedData(t *testing.T) {
	srv, tgt, mem := newSessTarget(t)
	p := sessParams()
	p.InitialR2T = false
	ti := startSessInit(t, srv, tgt, 1, p)
	ti.clearUA()
	data := make([]byte, 48*512)
	for i := range data {
		data[i] = byte(i*13 + 1)
	}
	unsolicited := func(itt uint32, off, end uint32) {
		var sn uint32
		for ; off < end; sn++ {
			n := min(2048, end-off)
			var h BHS
			(&DataOut{Final: off+n == end, ITT: itt, TTT: ReservedTag, DataSN: sn, BufferOffset: off}).Encode(&h)
			ti.send(&h, data[off:off+n])
			off += n
		}
	}
	// 2 KiB immediate, unsolicited Data-Out up to FirstBurstLength
	// (8 KiB), the rest solicited from offset 8192.
	itt := ti.command(sessCDB10(sessOpWrite10, 20, 48), false, true, uint32(len(data)), data[:2048], false)
	unsolicited(itt, 2048, 8192)
	res := ti.await(itt, data)
	if res.status != 0 {
		t.Fatalf("WRITE10: status %#x sense % x", res.status, res.sense)
	}
	if len(res.r2ts) == 0 || res.r2ts[0].BufferOffset != 8192 {
		t.Fatalf("R2Ts %+v, want the first at 8192", res.r2ts)
	}
	if !bytes.Equal(mem.bytes(20*512, len(data)), data) {
		t.Fatal("written data differs")
	}

	// A whole write inside the first burst needs no R2T.
	small := data[:6144]
	itt = ti.command(sessCDB10(sessOpWrite10, 100, 12), false, true, uint32(len(small)), small[:1024], false)
	unsolicited(itt, 1024, 6144)
	res = ti.await(itt, nil)
	if res.status != 0 || len(res.r2ts) != 0 {
		t.Fatalf("small WRITE10: status %#x, %d R2Ts", res.status, len(res.r2ts))
	}
	if !bytes.Equal(mem.bytes(100*512, len(small)), small) {
		t.Fatal("small write: data differs")
	}
}

func TestSessionRspTimeout(t *testing.T) {
	srv, tgt, mem := newSessTarget(t)
	tgt.RspTimeout = 100 * time.Millisecond
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	mem.gate = make(chan struct{})
	defer close(mem.gate)
	ti.command(sessCDB10(sessOpRead10, 0, 1), true, false, 512, nil, true)
	ti.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := ti.fr.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, %v; want the connection closed", p, err)
	}
}
