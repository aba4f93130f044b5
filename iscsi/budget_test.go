package iscsi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/scstd/scstd/internal/bufpool"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// recordLog keeps the messages and attributes of the records it is
// given, for tests that check what the server logs.
type recordLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *recordLog) WithGroup(string) slog.Handler      { return l }

// find returns the first line containing every one of parts.
func (l *recordLog) find(parts ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		return line
	}
	return ""
}

// await waits up to a second for a line containing every one of parts.
func (l *recordLog) await(parts ...string) bool {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if l.find(parts...) != "" {
			return true
		}
	}
	return false
}

// liveConn returns the connection of the session the test started.
func liveConn(t *testing.T, srv *Server) *conn {
	t.Helper()
	ss := srv.sessionsOf(sessTargetName)
	if len(ss) != 1 || ss[0].conn.Load() == nil {
		t.Fatalf("%d sessions", len(ss))
	}
	return ss[0].conn.Load()
}

// waitEnded waits for the session's connection to be closed by the
// target: reads fail with EOF or a reset.
func (ti *sessInit) waitEnded(within time.Duration) {
	ti.t.Helper()
	ti.nc.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 64<<10)
	for {
		_, err := ti.nc.Read(buf)
		if err == nil {
			continue
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			ti.t.Fatalf("the target did not close the connection within %s", within)
		}
		return
	}
}

// TestSessionUnreadNOPFlood: an initiator that pings with data and never
// reads makes the target stop reading at the send limit and close the
// connection once nothing drains within the write timeout, saying why.
func TestSessionUnreadNOPFlood(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	lg := &recordLog{}
	srv.log = slog.New(lg)
	srv.limits = connLimits{sendLimit: 256 << 10, outLimit: outLimit, writeTimeout: 500 * time.Millisecond}
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	c := liveConn(t, srv)

	data := make([]byte, 4096)
	stop := make(chan struct{})
	sent := make(chan int)
	go func() {
		// Pings until the target stops reading (a write blocks) or closes.
		n := 0
		for {
			select {
			case <-stop:
				sent <- n
				return
			default:
			}
			ti.nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			out := NOPOut{Immediate: true, ITT: uint32(n), TTT: ReservedTag, CmdSN: ti.cmdSN}
			var h BHS
			out.Encode(&h)
			if _, err := ti.nc.Write(AppendFrame(nil, &h, nil, data, false, false)); err != nil {
				sent <- n
				return
			}
			n++
		}
	}()
	peak := int64(0)
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		peak = max(peak, c.sendq.queued.Load())
		select {
		case <-c.closed:
			end = time.Time{}
		default:
		}
	}
	close(stop)
	n := <-sent
	if peak > srv.limits.sendLimit+int64(2*len(data)+pduOverhead+pduSize) {
		t.Errorf("queued %d bytes for the socket, limit %d", peak, srv.limits.sendLimit)
	}
	if n < 100 {
		t.Errorf("only %d pings sent before the target stopped reading", n)
	}
	ti.waitEnded(5 * time.Second)
	if lg.find("closing connection", "does not read") == "" {
		t.Errorf("no log line says why the connection was closed: %q", lg.lines)
	}
}

// TestSessionClosedWindow: with every slot of the window held by running
// commands, a command at ExpCmdSN lies outside [ExpCmdSN, MaxCmdSN] and
// is dropped (RFC 7143 §4.2.2.1); the slots come back with the answers.
func TestSessionClosedWindow(t *testing.T) {
	srv, tgt, mem := newSessTarget(t)
	lg := &recordLog{}
	srv.log = slog.New(lg)
	tgt.QueuedCommands = 2
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	mem.gate = make(chan struct{})
	a := ti.command(sessCDB10(sessOpRead10, 0, 1), true, false, 512, nil, true)
	b := ti.command(sessCDB10(sessOpRead10, 1, 1), true, false, 512, nil, true)
	ss := srv.sessionsOf(sessTargetName)[0]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		ss.mu.Lock()
		running := len(ss.tasks)
		ss.mu.Unlock()
		if running == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks running, want 2", running)
		}
	}
	exp, maxSN := ss.stamp(false)
	if exp != ti.cmdSN || maxSN != exp-1 {
		t.Fatalf("ExpCmdSN %d MaxCmdSN %d with the window full, want %d and %d", exp, maxSN, ti.cmdSN, ti.cmdSN-1)
	}
	ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, nil, true)
	for deadline := time.Now().Add(5 * time.Second); lg.find("dropping PDU outside the command window") == ""; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a command at ExpCmdSN with the window closed was not dropped")
		}
	}
	close(mem.gate)
	got := map[uint32]sessResult{}
	for range 2 {
		p := ti.recv()
		var d DataIn
		if err := d.Decode(&p.BHS); err != nil || !d.HasStatus {
			t.Fatalf("got %s, want Data-In with status", p.BHS.Opcode())
		}
		got[d.ITT] = sessResult{status: d.Status, maxCmdSN: d.MaxCmdSN}
		p.Release()
	}
	if _, ok := got[a]; !ok {
		t.Fatalf("no answer to the first READ: %v", got)
	}
	if _, ok := got[b]; !ok {
		t.Fatalf("no answer to the second READ: %v", got)
	}
	if m := max(got[a].maxCmdSN, got[b].maxCmdSN); m != exp+1 {
		t.Errorf("MaxCmdSN %d after both slots came back, want %d", m, exp+1)
	}
	ti.expectSilence(100 * time.Millisecond)
	ti.cmdSN--
	itt := ti.command([]byte{sessOpTUR, 0, 0, 0, 0, 0}, false, false, 0, nil, true)
	if res := ti.await(itt, nil); res.status != 0 {
		t.Fatalf("TEST UNIT READY resent at the same CmdSN: status %#x", res.status)
	}
}

// allocated runs f and returns the bytes the process allocated meanwhile.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestSessionBuffersFromWhatIsNeeded: INQUIRY with a 16 MiB expected
// length takes a buffer of what INQUIRY returns, and WRITEs announcing
// 8 MiB take no buffer before their data arrives.
func TestSessionBuffersFromWhatIsNeeded(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	tgt.QueuedCommands = 16
	p := sessParams()
	p.MaxBurstLength = 1 << 20
	ti := startSessInit(t, srv, tgt, 1, p)
	ti.clearUA()
	inquiry := []byte{0x12, 0, 0, 0xff, 0xff, 0}
	n := allocated(func() {
		for range 8 {
			itt := ti.command(inquiry, true, false, 16<<20, nil, true)
			if res := ti.await(itt, nil); res.status != 0 || len(res.data) == 0 {
				t.Fatalf("INQUIRY: status %#x, %d bytes", res.status, len(res.data))
			}
		}
	})
	if n > 4<<20 {
		t.Errorf("8 INQUIRY commands with a 16 MiB expected length allocated %d bytes", n)
	}
	n = allocated(func() {
		for i := range 8 {
			ti.command(sessCDB10(sessOpWrite10, uint32(i), 16), false, true, 8<<20, nil, true)
			q := ti.recv()
			if q.BHS.Opcode() != OpR2T {
				t.Fatalf("got %s, want R2T", q.BHS.Opcode())
			}
			q.Release()
		}
	})
	if n > 4<<20 {
		t.Errorf("8 WRITE commands announcing 8 MiB each, with no data yet, allocated %d bytes", n)
	}
}

// panicMem is a backend whose reads panic.
type panicMem struct{ *sessMem }

func (panicMem) ReadAt([]byte, int64) (int, error) { panic("backend bug") }

func (m panicMem) TryReadAt(p []byte, off int64) (int, error) {
	if m.slow {
		return 0, vdisk.ErrWouldBlock
	}
	panic("backend bug")
}

// TestSessionPanicIsHardwareError: a panic while executing a command is
// logged with its stack and CDB, answered HARDWARE ERROR / INTERNAL
// TARGET FAILURE, counted, and the session goes on; on the reader, which
// runs a read served from memory itself, as on an executor.
func TestSessionPanicIsHardwareError(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "reader", true: "executor"}[slow], func(t *testing.T) {
			testSessionPanic(t, slow)
		})
	}
}

func testSessionPanic(t *testing.T, slow bool) {
	srv, tgt, mem := newSessTarget(t)
	mem.slow = slow
	lg := &recordLog{}
	srv.log = slog.New(lg)
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA()
	dev := tgt.LUNs.Lookup(0).Device
	dev.SetBackend(panicMem{mem})
	itt := ti.command(sessCDB10(sessOpRead10, 0, 1), true, false, 512, nil, true)
	res := ti.await(itt, nil)
	if res.status != uint8(scsi.CheckCondition) || len(res.sense) < 14 ||
		scsi.SenseKey(res.sense[2]&0x0f) != scsi.HardwareError || res.sense[12] != 0x44 || res.sense[13] != 0 {
		t.Fatalf("READ with a panicking backend: status %#x sense % x, want HARDWARE ERROR 44h/00h", res.status, res.sense)
	}
	line := lg.find("panic in SCSI command", "cdb=28 00 00 00 00 00 00 00 01 00", "stack=", "backend bug")
	if line == "" || !strings.Contains(line, "goroutine") {
		t.Errorf("no log line with the CDB and the stack: %q", lg.lines)
	}
	if srv.panics.Load() != 1 || srv.Sessions()[0].Panics != 1 {
		t.Errorf("panics counted: server %d, session %d; want 1", srv.panics.Load(), srv.Sessions()[0].Panics)
	}
	dev.SetBackend(mem)
	itt = ti.command(sessCDB10(sessOpRead10, 0, 1), true, false, 512, nil, true)
	if res := ti.await(itt, nil); res.status != 0 {
		t.Fatalf("READ after the panic: status %#x", res.status)
	}
}

// TestSessionPingNeedsAnswer: an initiator that keeps sending (its own
// NOP-Out pings) but never answers the target's ping is dropped after
// NopInTimeout.
func TestSessionPingNeedsAnswer(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	tgt.NopInInterval = 100 * time.Millisecond
	tgt.NopInTimeout = 300 * time.Millisecond
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	start := time.Now()
	for i := uint32(0); ; i++ {
		out := NOPOut{Immediate: true, ITT: i, TTT: ReservedTag, CmdSN: ti.cmdSN}
		var h BHS
		out.Encode(&h)
		if _, err := ti.nc.Write(AppendFrame(nil, &h, nil, nil, false, false)); err != nil {
			break
		}
		ti.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		p, err := ti.fr.Read()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				break
			}
			t.Fatal(err)
		}
		p.Release()
		if time.Since(start) > 5*time.Second {
			t.Fatal("an initiator that never answers the target's pings is still connected")
		}
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("dropped after %s, before NopInTimeout", d)
	}
}

// TestFootprintCountsStructs: the budget counts the structures a PDU
// keeps alive, not just its bytes on the wire: pduSize is the received
// PDU's size, and the task fits in taskOverhead.
func TestFootprintCountsStructs(t *testing.T) {
	if n := unsafe.Sizeof(PDU{}); n != pduSize {
		t.Errorf("PDU is %d bytes, pduSize says %d", n, pduSize)
	}
	if n := unsafe.Sizeof(task{}); n > taskOverhead {
		t.Errorf("task is %d bytes, taskOverhead %d", n, taskOverhead)
	}
	if n := unsafe.Sizeof(outPDU{}); n+8 > pduOverhead {
		t.Errorf("outPDU is %d bytes, pduOverhead %d", n, pduOverhead)
	}
	buf := bufpool.Get(BHSLen)
	o := &outPDU{data: *buf, buf: buf}
	if got := o.footprint(); got != pduOverhead+512 {
		t.Errorf("a Reject's footprint is %d, want its whole pooled buffer and overhead", got)
	}
	bufpool.Put(buf)
}

// TestSendBudgetServerWide: once the connections together hold the
// server-wide limit, one that holds more than its share stops (and one
// below its share goes on); the count follows the queues back to zero.
func TestSendBudgetServerWide(t *testing.T) {
	var total atomic.Int64
	mk := func() *sendBudget {
		return &sendBudget{limit: 4 << 20, timeout: time.Second, total: &total, totalLimit: 1 << 20, share: 256 << 10}
	}
	a, b := mk(), mk()
	a.charge(900 << 10)
	b.charge(100 << 10)
	if a.full() || b.full() {
		t.Fatalf("below the server-wide limit: full %v %v", a.full(), b.full())
	}
	a.charge(100 << 10)
	if !a.full() || b.full() {
		t.Fatalf("at the server-wide limit: a (1000 KiB) full %v, b (100 KiB) full %v; want true, false", a.full(), b.full())
	}
	if b.tryReserve(512 << 10) {
		t.Fatal("b reserved beyond its share with the server-wide queue full")
	}
	a.pay(1000 << 10)
	if a.full() || !b.tryReserve(512<<10) {
		t.Fatal("a drained, and still full")
	}
	b.pay(612 << 10)
	if n := total.Load(); n != 0 {
		t.Fatalf("server-wide count %d with every queue empty", n)
	}
}

// TestSessionHeldBytesBounded: an initiator that skips a CmdSN and sends
// the commands after it with data makes the target hold them only up to
// the data-out limit; then the connection is closed.
func TestSessionHeldBytesBounded(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	srv.limits.outLimit = 64 << 10
	tgt.QueuedCommands = 64
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	data := make([]byte, 8192)
	for i := uint32(1); i < 32; i++ {
		out := NOPOut{ITT: i, TTT: ReservedTag, CmdSN: ti.cmdSN + i}
		var h BHS
		out.Encode(&h)
		if _, err := ti.nc.Write(AppendFrame(nil, &h, nil, data, false, false)); err != nil {
			break
		}
	}
	ti.waitEnded(5 * time.Second)
}
