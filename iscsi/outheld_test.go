package iscsi

import (
	"testing"
	"time"
)

// TestSessionDataOutBudgetReturnedOnTeardown: connections that end in
// the middle of a write, however far its data-out got, give back every
// byte of data-out budget they reserved, to the server-wide count too:
// after many of them the server holds nothing.
func TestSessionDataOutBudgetReturnedOnTeardown(t *testing.T) {
	const blocks = 64 // 32 KiB: two bursts of 16 KiB
	tests := []struct {
		name string
		// initialR2T false: the write starts with immediate data and
		// announces unsolicited Data-Out.
		initialR2T bool
		// outLimit, when set, lets one write at a time hold data-out
		// budget: the second waits for it.
		outLimit int64
		writes   int
		// sent is how much of the first R2T's burst is sent.
		sent int
		// wantHeld is the data-out budget held when the connection
		// ends: the writes that were sent an R2T.
		wantHeld int64
	}{
		{name: "R2T answered in part", initialR2T: true, writes: 1, sent: 4096, wantHeld: blocks * 512},
		{name: "R2T not answered", initialR2T: true, writes: 1, wantHeld: blocks * 512},
		{name: "several writes soliciting", initialR2T: true, writes: 3, sent: 8192, wantHeld: 3 * blocks * 512},
		{name: "write waiting for budget", initialR2T: true, outLimit: blocks * 512, writes: 2, sent: 4096,
			wantHeld: blocks * 512},
		{name: "unsolicited burst cut short", initialR2T: false, writes: 1, wantHeld: blocks * 512},
	}
	const rounds = 8
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, tgt, _ := newSessTarget(t)
			if tc.outLimit > 0 {
				srv.limits.outLimit = tc.outLimit
			}
			p := sessParams()
			p.InitialR2T = tc.initialR2T
			for round := range rounds {
				ti := startSessInit(t, srv, tgt, byte(round+1), p)
				ti.clearUA()
				for i := range tc.writes {
					lba := uint32(i * blocks)
					if tc.initialR2T {
						ti.command(sessCDB10(sessOpWrite10, lba, blocks), false, true, blocks*512, nil, true)
						continue
					}
					ti.command(sessCDB10(sessOpWrite10, lba, blocks), false, true, blocks*512, make([]byte, 2048), false)
				}
				// The first R2T follows the reservation.
				pdu := ti.recv()
				var first R2T
				if err := first.Decode(&pdu.BHS); err != nil {
					t.Fatalf("%s, want an R2T (%v)", pdu.BHS.Opcode(), err)
				}
				pdu.Release()
				if tc.sent > 0 {
					d := DataOut{ITT: first.ITT, TTT: first.TTT, BufferOffset: first.BufferOffset}
					var h BHS
					d.Encode(&h)
					ti.send(&h, make([]byte, tc.sent))
				}
				// Every write has taken its place before the end.
				waitFor(t, "the reservations", func() bool { return srv.outHeld.Load() == tc.wantHeld })
				ti.nc.Close()
				select {
				case <-ti.done:
				case <-time.After(5 * time.Second):
					t.Fatal("session did not end")
				}
				if n := srv.outHeld.Load(); n != 0 {
					t.Fatalf("round %d: %d bytes of data-out budget held after the connection ended", round, n)
				}
				if n := srv.sendHeld.Load(); n != 0 {
					t.Fatalf("round %d: %d bytes of send budget held after the connection ended", round, n)
				}
			}
			if n := len(srv.Sessions()); n != 0 {
				t.Fatalf("%d sessions left", n)
			}
		})
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
