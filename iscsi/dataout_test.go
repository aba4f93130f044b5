package iscsi

import (
	"bytes"
	"fmt"
	"testing"
)

func TestUnsolicitedEnd(t *testing.T) {
	tests := []struct {
		name                  string
		edtl, imm, firstBurst uint32
		initialR2T, final     bool
		want                  uint32
	}{
		{"InitialR2T=Yes, no immediate data", 65536, 0, 65536, true, true, 0},
		{"InitialR2T=Yes, immediate data", 65536, 8192, 65536, true, true, 8192},
		{"InitialR2T=No, F clear: up to FirstBurstLength", 1 << 20, 8192, 65536, false, false, 65536},
		{"InitialR2T=No, F clear, EDTL below FirstBurstLength", 16384, 8192, 65536, false, false, 16384},
		{"InitialR2T=No, F set: immediate only", 1 << 20, 8192, 65536, false, true, 8192},
		{"InitialR2T=No, no immediate, F clear", 1 << 20, 0, 65536, false, false, 65536},
	}
	for _, tc := range tests {
		if got := unsolicitedEnd(tc.edtl, tc.imm, tc.firstBurst, tc.initialR2T, tc.final); got != tc.want {
			t.Errorf("%s: unsolicitedEnd = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// sentR2Ts takes the R2Ts queued on c and returns them as
// "offset+length".
func sentR2Ts(c *conn) []string {
	var got []string
	for _, o := range c.outq {
		var r R2T
		if err := r.Decode(&o.bhs); err == nil {
			got = append(got, fmt.Sprintf("%d+%d", r.BufferOffset, r.DesiredDataTransferLength))
		}
	}
	c.outq = c.outq[:0]
	return got
}

// testConn is a connection whose queue nothing drains, for driving the
// R2T logic alone.
func testConn(np Negotiated) *conn {
	ss := &session{srv: NewServer(nil), params: np}
	c := &conn{ss: ss, kick: make(chan struct{}, 1), closed: make(chan struct{}), outLimit: outLimit}
	c.sendq.limit = sendLimit
	return c
}

// TestR2TPlan drives solicitLocked as Data-Out completes R2Ts and checks
// the R2Ts it issues: offsets, lengths, and never more than
// MaxOutstandingR2T at once.
func TestR2TPlan(t *testing.T) {
	tests := []struct {
		name                       string
		edtl, start, maxBurst, out uint32
		want                       string // "offset+length" of every R2T in order
	}{
		{"one R2T", 4096, 0, 262144, 1, "[0+4096]"},
		{"after immediate data", 10000, 512, 262144, 1, "[512+9488]"},
		{"split by MaxBurstLength", 10000, 0, 4096, 1, "[0+4096 4096+4096 8192+1808]"},
		{"two outstanding", 20000, 0, 8192, 2, "[0+8192 8192+8192 16384+3616]"},
		{"all data unsolicited", 65536, 65536, 8192, 1, "[]"},
		{"MaxBurstLength 0 means 256KiB", 300000, 0, 0, 4, "[0+262144 262144+37856]"},
	}
	for _, tc := range tests {
		c := testConn(Negotiated{MaxBurstLength: tc.maxBurst, MaxOutstandingR2T: tc.out})
		tk := &task{edtl: tc.edtl, r2tNext: tc.start, need: tc.edtl}
		var got []string
		for range 100 {
			c.solicitLocked(tk)
			if uint32(len(tk.r2ts)) > max(tc.out, 1) {
				t.Fatalf("%s: %d R2Ts outstanding, MaxOutstandingR2T %d", tc.name, len(tk.r2ts), tc.out)
			}
			got = append(got, sentR2Ts(c)...)
			if len(tk.r2ts) == 0 {
				break
			}
			// The initiator answers the oldest R2T in full.
			tk.r2ts = tk.r2ts[1:]
		}
		if s := fmt.Sprint(got); s != tc.want {
			t.Errorf("%s: R2Ts %s, want %s", tc.name, s, tc.want)
		}
	}
}

// TestDataOutBudget: a task solicits its data only once it holds the
// data-out budget for its whole buffer; the next waits until a task
// gives its budget back, and then gets its R2Ts.
func TestDataOutBudget(t *testing.T) {
	c := testConn(Negotiated{MaxBurstLength: 1 << 20, MaxOutstandingR2T: 1})
	c.outLimit = 3 << 20
	mk := func(need uint32) *task { return &task{c: c, edtl: 4 << 20, need: need} }
	a, b, d := mk(2<<20), mk(2<<20), mk(0)
	c.solicitLocked(a)
	if got := sentR2Ts(c); len(got) != 1 || c.outHeld != 2<<20 {
		t.Fatalf("first task: R2Ts %v, held %d", got, c.outHeld)
	}
	c.solicitLocked(b)
	if got := sentR2Ts(c); len(got) != 0 || len(c.outWaiting) != 1 {
		t.Fatalf("second task beyond the budget: R2Ts %v, waiting %d", got, len(c.outWaiting))
	}
	c.solicitLocked(d)
	if got := sentR2Ts(c); len(got) != 1 {
		t.Fatalf("a task whose CDB needs no buffer: R2Ts %v", got)
	}
	c.releaseOutLocked(a)
	if got := sentR2Ts(c); fmt.Sprint(got) != "[0+1048576]" || c.outHeld != 2<<20 || len(c.outWaiting) != 0 {
		t.Fatalf("after the first task: R2Ts %v, held %d, waiting %d", got, c.outHeld, len(c.outWaiting))
	}
	c.releaseOutLocked(b)
	if c.outHeld != 0 {
		t.Fatalf("held %d after every task", c.outHeld)
	}
}

// TestDataOutBuffer: the buffer covers what the CDB needs, grows per
// burst, and drops bytes beyond it.
func TestDataOutBuffer(t *testing.T) {
	tk := &task{need: 3000}
	tk.growOut(1024)
	if len(tk.out) != 1024 || cap(*tk.outBuf) != 1024 {
		t.Fatalf("first burst: %d bytes of %d", len(tk.out), cap(*tk.outBuf))
	}
	tk.takeOut(0, bytes.Repeat([]byte{1}, 1024))
	tk.growOut(4096)
	if len(tk.out) != 3000 || tk.out[1023] != 1 {
		t.Fatalf("second burst: %d bytes, first burst kept %v", len(tk.out), tk.out[1023] == 1)
	}
	tk.takeOut(2048, bytes.Repeat([]byte{2}, 2048))
	tk.takeOut(3500, []byte{3})
	if tk.out[2999] != 2 {
		t.Fatal("data up to need not stored")
	}
	tk.release()
}
