package iscsi

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnTeardownFreesHandoff: a batch the reader hands off to the
// writer goroutine is freed when the connection ends even if the writer
// saw the connection closed and stopped before the handoff, its kick
// lost: teardown frees it, the queue behind it and the grave, runs
// their after funcs, and the server-wide send budget is back to zero.
func TestConnTeardownFreesHandoff(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	r := &LoginResult{InitiatorName: sessInitiatorName, ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, CID: 1, TPGT: 1,
		Target: tgt, Params: sessParams(), ExpCmdSN: 1, StatSN: 100}
	tsih, err := srv.admitSession(r)
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	ss := srv.byTSIH[tsih]
	srv.mu.Unlock()
	t.Cleanup(ss.end)
	// Nobody reads cli: the socket fills.
	_, sc := tcpPair(t)
	r.Portal = sc.LocalAddr()
	c := newConn(ss, sc, NewFrameReader(sc), r)
	if c.sendq.total == nil {
		t.Fatal("the connection is not counted server-wide")
	}

	var queued, ran atomic.Int64
	// queue acts as the reader: n NOP-Ins of 64 KiB with sendRx.
	queue := func(n int) {
		for range n {
			o := newOut(statPeek)
			(&NOPIn{ITT: ReservedTag, TTT: ReservedTag}).Encode(&o.bhs)
			o.data = make([]byte, 64<<10)
			o.after = func() { ran.Add(1) }
			queued.Add(1)
			c.sendRx(o)
		}
	}
	handedOff := func() bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.handoff
	}
	// The reader's flush meets a full socket and hands the rest off.
	for i := 0; !handedOff(); i++ {
		if i == 256 {
			t.Fatal("16 MiB written to a socket nobody reads without a handoff")
		}
		queue(16)
		c.flushRx(false)
	}
	// The reader queues more behind the handed-off batch.
	queue(4)
	if srv.sendHeld.Load() == 0 {
		t.Fatal("nothing counted server-wide with the batch queued")
	}

	// The connection closes; the writer takes the closed case before
	// the handoff and stops: the kick is never received.
	c.close()
	select {
	case <-c.kick:
	default:
		t.Fatal("the handoff did not kick the writer")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.teardown()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("teardown did not return")
	}

	if n, want := ran.Load(), queued.Load(); n != want {
		t.Errorf("%d of %d after funcs ran", n, want)
	}
	if n := c.sendq.queued.Load(); n != 0 {
		t.Errorf("the connection still counts %d bytes queued", n)
	}
	if n := srv.sendHeld.Load(); n != 0 {
		t.Errorf("the server-wide send budget keeps %d bytes of an ended connection", n)
	}
	c.wmu.Lock()
	left := len(c.outq) + len(c.grave) + len(c.cur) + len(c.encoded)
	c.wmu.Unlock()
	if left != 0 {
		t.Errorf("%d PDUs left in the connection's queues", left)
	}
}

// TestSendBudgetRetire: an ended connection's share of the server-wide
// count goes back whatever it still holds, and what it pays later does
// not count again.
func TestSendBudgetRetire(t *testing.T) {
	var total atomic.Int64
	mk := func() *sendBudget {
		return &sendBudget{limit: 4 << 20, timeout: time.Second, total: &total, totalLimit: 1 << 30, share: 256 << 10}
	}
	a, b := mk(), mk()
	a.charge(1 << 20)
	b.charge(512 << 10)
	a.retire()
	if n := total.Load(); n != 512<<10 {
		t.Fatalf("server-wide %d after a retired, want b's %d", n, 512<<10)
	}
	a.pay(1 << 20)
	a.charge(1 << 20)
	a.retire()
	if n := total.Load(); n != 512<<10 {
		t.Fatalf("server-wide %d after a retired budget paid and charged, want %d", n, 512<<10)
	}
	b.pay(512 << 10)
	if n := total.Load(); n != 0 {
		t.Fatalf("server-wide %d with every queue empty", n)
	}
}

// TestSessionHalfCloseAnswered: an initiator that pipelines reads, then
// half-closes its connection, gets every answer before the target
// closes: more than the socket holds, so the reader hands its batch off
// and the connection lingers until it is written.
func TestSessionHalfCloseAnswered(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	tgt.QueuedCommands = 256
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	const n = 192 // 12 MiB of Data-In
	itts := make([]uint32, n)
	for i := range itts {
		itts[i] = ti.command(sessCDB10(0x28, 0, 128), true, false, 128*512, nil, true)
	}
	if err := ti.nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// Let the target see the end of the stream with its answers queued.
	time.Sleep(300 * time.Millisecond)
	for _, itt := range itts {
		ti.await(itt, nil)
	}
	ti.waitEnded(5 * time.Second)
}
