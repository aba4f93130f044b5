package iscsi

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// collect reads PDUs until n commands have their status, and returns
// each command's data-in and status by ITT, checking that StatSN counts
// up by one from response to response.
func (ti *sessInit) collect(n int) map[uint32]*sessResult {
	ti.t.Helper()
	got := make(map[uint32]*sessResult)
	var lastStat uint32
	seen := false
	for done := 0; done < n; {
		p := ti.recv()
		itt := p.BHS.ITT()
		r := got[itt]
		if r == nil {
			r = &sessResult{}
			got[itt] = r
		}
		status := false
		switch p.BHS.Opcode() {
		case OpDataIn:
			var d DataIn
			if err := d.Decode(&p.BHS); err != nil {
				ti.t.Fatal(err)
			}
			if int(d.BufferOffset) != len(r.data) {
				ti.t.Fatalf("ITT %#x: Data-In offset %d, want %d", itt, d.BufferOffset, len(r.data))
			}
			r.data = append(r.data, p.Data...)
			if d.HasStatus {
				r.status, r.statSN, status = d.Status, d.StatSN, true
			}
		case OpSCSIResponse:
			var sr SCSIResponse
			if err := sr.Decode(&p.BHS); err != nil {
				ti.t.Fatal(err)
			}
			r.status, r.statSN, status = sr.Status, sr.StatSN, true
		default:
			ti.t.Fatalf("unexpected %s", p.BHS.Opcode())
		}
		p.Release()
		if !status {
			continue
		}
		if r.finalFlags++; r.finalFlags > 1 {
			ti.t.Fatalf("ITT %#x answered twice", itt)
		}
		if seen && r.statSN != lastStat+1 {
			ti.t.Fatalf("StatSN %d after %d", r.statSN, lastStat)
		}
		lastStat, seen = r.statSN, true
		done++
	}
	return got
}

// pattern is the content written at block lba by the tests.
func pattern(lba uint32, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(lba*7 + uint32(i/512))
	}
	return b
}

// pipeline sends n READ(10) or WRITE(10) commands in one write, command
// i with ITT itt0+i at LBA 8i for i%8+1 blocks; writes carry pattern as
// immediate data.
func (ti *sessInit) pipeline(n int, itt0 uint32, op byte) {
	ti.t.Helper()
	var buf []byte
	for i := range n {
		lba, blocks := uint32(i*8), uint16(i%8+1)
		cmd := SCSICommand{Final: true, Read: op == sessOpRead10, Write: op == sessOpWrite10,
			ITT: itt0 + uint32(i), CmdSN: ti.cmdSN, ExpectedDataTransferLength: uint32(blocks) * 512}
		copy(cmd.CDB[:], sessCDB10(op, lba, blocks))
		ti.cmdSN++
		var h BHS
		cmd.Encode(&h)
		var imm []byte
		if cmd.Write {
			imm = pattern(lba, int(blocks)*512)
		}
		buf = AppendFrame(buf, &h, nil, imm, false, false)
	}
	if _, err := ti.nc.Write(buf); err != nil {
		ti.t.Fatal(err)
	}
}

// The reader runs reads and writes served from memory itself and sends
// their answers in batches; the executors run the others. Both answer
// every command once, in StatSN order, with the data written, on a TCP
// socket (writev, tried without waiting) and on a net.Pipe (no file
// descriptor: every batch goes to the writer goroutine).
func TestReaderRunsCommands(t *testing.T) {
	for _, network := range []string{"tcp", "pipe"} {
		for _, slow := range []bool{false, true} {
			name := network + map[bool]string{false: ", reader", true: ", executors"}[slow]
			t.Run(name, func(t *testing.T) {
				srv, tgt, mem := newSessTarget(t)
				tgt.QueuedCommands = 64
				mem.slow = slow
				var ti *sessInit
				p := sessParams()
				p.MaxXmitDSL, p.FirstBurstLength = 65536, 65536
				if network == "pipe" {
					cli, sc := net.Pipe()
					ti = startSessInitConn(t, srv, tgt, 1, p, cli, sc)
				} else {
					ti = startSessInit(t, srv, tgt, 1, p)
				}
				ti.clearUA()
				const n = 40
				// Writes of 1 to 8 blocks, pipelined.
				ti.pipeline(n, 0x100, sessOpWrite10)
				for itt, r := range ti.collect(n) {
					if r.status != 0 {
						t.Fatalf("WRITE ITT %#x: status %#x", itt, r.status)
					}
				}
				// The same blocks read back, pipelined.
				ti.pipeline(n, 0x200, sessOpRead10)
				for itt, r := range ti.collect(n) {
					i := itt - 0x200
					if r.status != 0 || !bytes.Equal(r.data, pattern(i*8, int(i%8+1)*512)) {
						t.Fatalf("READ ITT %#x: status %#x, %d bytes, not what was written", itt, r.status, len(r.data))
					}
				}
				if w := mem.waited.Load(); slow && w != 2*n || !slow && w != 0 {
					t.Errorf("%d reads and writes on executors, want %d", w, map[bool]int{false: 0, true: 2 * n}[slow])
				}
			})
		}
	}
}

// An initiator that does not read its answers for a while: the reader
// writes what the socket takes and leaves the rest to the writer
// goroutine, so that it goes on reading commands; every answer arrives
// once the initiator reads.
func TestReaderHandsOffFullSocket(t *testing.T) {
	srv, tgt, _ := newSessTarget(t)
	tgt.QueuedCommands = 64
	cli, sc := tcpPair(t)
	cli.(*net.TCPConn).SetReadBuffer(32 << 10)
	sc.(*net.TCPConn).SetWriteBuffer(32 << 10)
	p := sessParams()
	p.MaxXmitDSL = 65536
	ti := startSessInitConn(t, srv, tgt, 1, p, cli, sc)
	ti.clearUA()
	srv.mu.Lock()
	ss := srv.byTSIH[ti.sessResult.TSIH]
	srv.mu.Unlock()
	before := ss.commands.Load()

	const n = 48
	const size = 64 << 10 // the most a command runs on the reader
	var buf []byte
	for i := range n {
		cmd := SCSICommand{Final: true, Read: true, ITT: uint32(0x300 + i), CmdSN: ti.cmdSN,
			ExpectedDataTransferLength: size}
		copy(cmd.CDB[:], sessCDB10(sessOpRead10, 0, size/512))
		ti.cmdSN++
		var h BHS
		cmd.Encode(&h)
		buf = AppendFrame(buf, &h, nil, nil, false, false)
	}
	if _, err := ti.nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	// 3 MiB of answers do not fit the sockets' buffers; the reader
	// takes every command all the same.
	deadline := time.Now().Add(5 * time.Second)
	for ss.commands.Load()-before < n {
		if time.Now().After(deadline) {
			t.Fatalf("the reader took %d of %d commands while the initiator did not read", ss.commands.Load()-before, n)
		}
		time.Sleep(time.Millisecond)
	}
	if q := ss.conn.Load().sendq.queued.Load(); q < 1<<20 {
		t.Errorf("%d bytes queued while the initiator does not read, want the answers waiting", q)
	}
	for itt, r := range ti.collect(n) {
		if r.status != 0 || len(r.data) != size {
			t.Fatalf("READ ITT %#x: status %#x, %d bytes", itt, r.status, len(r.data))
		}
	}
	// The writer pays the budget back just after its last write.
	for deadline := time.Now().Add(5 * time.Second); ss.conn.Load().sendq.queued.Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still counted as queued once all was read", ss.conn.Load().sendq.queued.Load())
		}
	}
}
