package iscsi

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// panicLog records the messages of error records, to catch panics the
// session recovers from.
type panicLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *panicLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelError }
func (l *panicLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *panicLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *panicLog) WithGroup(string) slog.Handler      { return l }

// FuzzSessionPDUs feeds a live session, over net.Pipe, a stream of PDUs
// whose headers come from the fuzzer (opcode, flags and fields kept as
// given, lengths made consistent) and checks that nothing panics (a
// panic the session recovers from fails the target too: it is counted
// and logged) and that the session ends when the connection closes.
func FuzzSessionPDUs(f *testing.F) {
	seed := func(p interface{ Encode(*BHS) }, data string) []byte {
		var h BHS
		p.Encode(&h)
		h[5], h[6], h[7] = 0, 0, byte(len(data))
		return append(h[:], data...)
	}
	f.Add(seed(&SCSICommand{Final: true, Write: true, ITT: 1, CmdSN: 1, ExpectedDataTransferLength: 512,
		CDB: [16]byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 1}}, ""))
	f.Add(append(seed(&SCSICommand{Final: true, Read: true, ITT: 2, CmdSN: 1, ExpectedDataTransferLength: 512,
		CDB: [16]byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1}}, ""),
		seed(&TaskMgmtRequest{Immediate: true, Function: TMAbortTask, ITT: 3, RTT: 2, CmdSN: 2, RefCmdSN: 1}, "")...))
	f.Add(seed(&DataOut{Final: true, ITT: 1, TTT: ReservedTag}, "abcd"))
	f.Add(seed(&NOPOut{Immediate: true, ITT: 4, TTT: ReservedTag}, "ping"))
	f.Add(seed(&LogoutRequest{Immediate: true, ITT: 5}, ""))
	f.Fuzz(func(t *testing.T, in []byte) {
		pl := &panicLog{}
		srv, tgt, _ := newSessTarget(t)
		srv.log = slog.New(pl)
		cli, sc := net.Pipe()
		r := &LoginResult{InitiatorName: sessInitiatorName, CID: 1, Target: tgt, Params: sessParams(), ExpCmdSN: 1}
		if _, err := srv.admitSession(r); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.runSession(sc, NewFrameReader(sc), r)
			sc.Close()
		}()
		go func() {
			// Drain what the target sends.
			b := make([]byte, 64<<10)
			for {
				if _, err := cli.Read(b); err != nil {
					return
				}
			}
		}()
		var stream []byte
		for len(in) >= BHSLen {
			var h BHS
			copy(h[:], in[:BHSLen])
			in = in[BHSLen:]
			n := min(int(h[7]), len(in))
			h[4] = 0
			stream = AppendFrame(stream, &h, nil, in[:n], false, false)
			in = in[n:]
		}
		cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
		cli.Write(stream)
		time.Sleep(5 * time.Millisecond)
		cli.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		if n := srv.panics.Load(); n != 0 {
			t.Fatalf("recovered %d panics", n)
		}
		pl.mu.Lock()
		defer pl.mu.Unlock()
		for _, m := range pl.msgs {
			if strings.Contains(m, "panic") {
				t.Fatalf("recovered a panic: %s", m)
			}
		}
	})
}
