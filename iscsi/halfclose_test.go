package iscsi

import (
	"net"
	"testing"
	"time"

	"github.com/scstd/scstd/scsi"
)

// TestSessionHalfClosePrompt: once an initiator has half-closed its
// connection the target answers what it may still answer, a command
// running included, then closes at once; a write waiting for data-out
// that cannot come any more does not hold it, and a command that does
// not complete holds it for the write timeout at most.
func TestSessionHalfClosePrompt(t *testing.T) {
	tests := []struct {
		name string
		// start sends what is outstanding when the initiator
		// half-closes, and returns the ITT to await (0: none); the
		// gate, when it returns one, is opened after the half-close.
		start func(ti *sessInit, mem *sessMem) (itt uint32, gate chan struct{})
		// within is how soon the connection must close.
		within time.Duration
	}{
		{"idle", func(*sessInit, *sessMem) (uint32, chan struct{}) { return 0, nil }, 2 * time.Second},
		{"command running", func(ti *sessInit, mem *sessMem) (uint32, chan struct{}) {
			mem.gate = make(chan struct{})
			return ti.command(sessCDB10(sessOpRead10, 0, 8), true, false, 8*512, nil, true), mem.gate
		}, 2 * time.Second},
		{"write waiting for data-out", func(ti *sessInit, _ *sessMem) (uint32, chan struct{}) {
			ti.command(sessCDB10(sessOpWrite10, 0, 64), false, true, 64*512, nil, true)
			ti.recv().Release() // its R2T
			return 0, nil
		}, 2 * time.Second},
		{"command stuck", func(ti *sessInit, mem *sessMem) (uint32, chan struct{}) {
			mem.gate = make(chan struct{})
			ti.command(sessCDB10(sessOpRead10, 0, 8), true, false, 8*512, nil, true)
			ti.t.Cleanup(func() { close(mem.gate) })
			return 0, nil
		}, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, tgt, mem := newSessTarget(t)
			srv.limits.writeTimeout = time.Second
			ti := startSessInit(t, srv, tgt, 1, sessParams())
			ti.clearUA()
			itt, gate := tc.start(ti, mem)
			// Let the command reach the backend.
			time.Sleep(50 * time.Millisecond)
			if err := ti.nc.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if gate != nil {
				time.Sleep(100 * time.Millisecond)
				close(gate)
			}
			if itt != 0 {
				if res := ti.await(itt, nil); res.status != uint8(scsi.Good) || len(res.data) != 8*512 {
					t.Fatalf("the running command: status %#x, %d bytes", res.status, len(res.data))
				}
			}
			start := time.Now()
			ti.waitEnded(tc.within)
			t.Logf("closed %v after the last answer", time.Since(start))
		})
	}
}
