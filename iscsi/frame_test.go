package iscsi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/iotest"

	"golang.org/x/sys/unix"
)

func TestDigestVectors(t *testing.T) {
	inc, dec := make([]byte, 32), make([]byte, 32)
	for i := range inc {
		inc[i], dec[i] = byte(i), byte(31-i)
	}
	tests := []struct {
		name string
		in   []byte
		wire string // digest bytes as sent, RFC 7143 §B.4
	}{
		{"32 bytes of zeros", make([]byte, 32), "aa36918a"},
		{"32 bytes of ones", bytes.Repeat([]byte{0xff}, 32), "43aba862"},
		{"32 incrementing bytes", inc, "4e79dd46"},
		{"32 decrementing bytes", dec, "5cdb3f11"},
		{"iSCSI read command PDU", wireHex(t, "01c00000 00000000 00000000 00000000 14000000 00000400 00000014"+
			"00000018 28000000 00000000 02000000 00000000"), "563a96d9"},
	}
	for _, tc := range tests {
		var b [4]byte
		putDigest(b[:], Digest(tc.in))
		if got, want := b[:], wireHex(t, tc.wire); !bytes.Equal(got, want) {
			t.Errorf("%s: digest on wire %x, want %x", tc.name, got, want)
		}
	}
}

// nopInHex is the NOP-In used by the framing tests below.
const nopInHex = "20800000 00000000 00000000 00000000 ffffffff 00000077 00000006 0000000a" +
	"00000029 00000000 00000000 00000000"

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		name   string
		ahs    string
		data   string
		hd, dd bool
		want   string
	}{
		{"no data, no digests", "", "", false, false,
			"20800000 00000000 00000000 00000000 ffffffff 00000077 00000006 0000000a" +
				"00000029 00000000 00000000 00000000"},
		{"3 bytes data padded to 4", "", "616263", false, false,
			// DataSegmentLength=3 in bytes 5-7; data "abc" + one pad byte
			"20800000 00000003 00000000 00000000 ffffffff 00000077 00000006 0000000a" +
				"00000029 00000000 00000000 00000000 61626300"},
		{"ahs of one word", "0001 02 00", "", false, false,
			// TotalAHSLength=1 in byte 4, then AHS: length 1, type 2 (bidi), byte 3
			"20800000 01000000 00000000 00000000 ffffffff 00000077 00000006 0000000a" +
				"00000029 00000000 00000000 00000000 00010200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := bhsOf(t, nopInHex)
			got := AppendFrame(nil, &h, wireHex(t, tc.ahs), wireHex(t, tc.data), tc.hd, tc.dd)
			if want := wireHex(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestAppendFrameDigests(t *testing.T) {
	h := bhsOf(t, nopInHex)
	got := AppendFrame(nil, &h, nil, []byte("abcde"), true, true)
	// BHS(48) + header digest(4) + data 5 + pad 3 + data digest(4)
	if len(got) != 48+4+8+4 {
		t.Fatalf("frame length %d", len(got))
	}
	if d := getDigest(got[48:52]); d != Digest(got[:48]) {
		t.Errorf("header digest %#x, want %#x", d, Digest(got[:48]))
	}
	if d := getDigest(got[60:64]); d != Digest([]byte("abcde\x00\x00\x00")) {
		t.Errorf("data digest %#x does not cover padding", d)
	}
}

// frames builds a byte stream of PDUs with the given digests.
func frames(t testing.TB, hd, dd bool, datas ...[]byte) []byte {
	var out []byte
	for i, d := range datas {
		p := &NOPIn{ITT: uint32(i), TTT: ReservedTag, StatSN: uint32(i)}
		var h BHS
		p.Encode(&h)
		out = AppendFrame(out, &h, nil, d, hd, dd)
	}
	return out
}

func TestFrameReaderRoundTrip(t *testing.T) {
	datas := [][]byte{nil, []byte("a"), []byte("ab"), []byte("abc"), []byte("abcd"), bytes.Repeat([]byte{7}, 8192)}
	for _, dig := range []struct{ hd, dd bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(frames(t, dig.hd, dig.dd, datas...))
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			fr := NewFrameReader(r)
			fr.SetDigests(dig.hd, dig.dd)
			for i, want := range datas {
				p, err := fr.Read()
				if err != nil {
					t.Fatalf("digests %v one-byte %v: pdu %d: %v", dig, oneByte, i, err)
				}
				var n NOPIn
				if err := n.Decode(&p.BHS); err != nil || n.ITT != uint32(i) {
					t.Fatalf("pdu %d: %+v %v", i, n, err)
				}
				if !bytes.Equal(p.Data, want) {
					t.Fatalf("pdu %d: data %q", i, p.Data)
				}
				p.Release()
			}
			if _, err := fr.Read(); err != io.EOF {
				t.Fatalf("after last PDU: %v, want io.EOF", err)
			}
		}
	}
}

// framesOf gives put a PDU with a data segment of each size (its bytes
// the size's index plus one) and returns them as AppendFrame writes
// them.
func framesOf(t *testing.T, sizes []int, hd, dd bool, put func(h *BHS, ahs, d []byte)) []byte {
	var want []byte
	for i, n := range sizes {
		var d []byte
		if n > 0 {
			d = bytes.Repeat([]byte{byte(i + 1)}, n)
		}
		h1, h2 := bhsOf(t, nopInHex), bhsOf(t, nopInHex)
		want = AppendFrame(want, &h1, []byte{0, 1, 2, 0}, d, hd, dd)
		put(&h2, []byte{0, 1, 2, 0}, d)
	}
	return want
}

func TestFrameWriterMatchesAppendFrame(t *testing.T) {
	// Sizes on both sides of directDataMin (buffered vs written directly),
	// padded and not, and enough small PDUs to overflow the buffer.
	sizes := []int{0, 3, 100000, directDataMin - 1, directDataMin, directDataMin + 1, 5, writeBufSize - 100, 7, writeBufSize + 3}
	for _, dig := range []struct{ hd, dd bool }{{false, false}, {true, true}, {true, false}, {false, true}} {
		var buf bytes.Buffer
		fw := NewFrameWriter(&buf)
		fw.SetDigests(dig.hd, dig.dd)
		want := framesOf(t, sizes, dig.hd, dig.dd, func(h *BHS, ahs, d []byte) {
			if err := fw.WritePDU(h, ahs, d); err != nil {
				t.Fatal(err)
			}
		})
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("digests %v: FrameWriter and AppendFrame differ", dig)
		}
	}
}

func TestFrameReaderTruncated(t *testing.T) {
	full := frames(t, true, true, []byte("hello"))
	for n := 1; n < len(full); n++ {
		fr := NewFrameReader(bytes.NewReader(full[:n]))
		fr.SetDigests(true, true)
		if _, err := fr.Read(); err != io.ErrUnexpectedEOF {
			t.Fatalf("truncated to %d bytes: %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
}

func TestFrameReaderErrors(t *testing.T) {
	good := frames(t, true, true, []byte("hello"))
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	long := frames(t, false, false, make([]byte, 8193))
	badAHS := bhsOf(t, nopInHex)
	badAHS[4] = 1
	badAHSFrame := append(badAHS[:], 0x00, 0x09, 0x01, 0x00) // AHSLength 9 > one word
	tests := []struct {
		name  string
		in    []byte
		check func(*PDU, error) bool
	}{
		{"header digest", flip(10), func(p *PDU, err error) bool { return p == nil && err == ErrHeaderDigest }},
		{"header digest bytes", flip(49), func(p *PDU, err error) bool { return p == nil && err == ErrHeaderDigest }},
		{"data digest", flip(53), func(p *PDU, err error) bool {
			var de *DataDigestError
			return p != nil && p.Data == nil && p.BHS.Opcode() == OpNOPIn && errors.As(err, &de)
		}},
		{"data too long", long, func(p *PDU, err error) bool {
			var pe *ProtocolError
			return p == nil && errors.As(err, &pe)
		}},
		{"bad AHS", badAHSFrame, func(p *PDU, err error) bool {
			var pe *ProtocolError
			return p == nil && errors.As(err, &pe)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(tc.in))
			fr.SetDigests(tc.name != "data too long" && tc.name != "bad AHS", tc.name != "data too long" && tc.name != "bad AHS")
			p, err := fr.Read()
			if !tc.check(p, err) {
				t.Fatalf("Read = %v, %v", p, err)
			}
			p.Release()
		})
	}
}

func TestFindAHS(t *testing.T) {
	var ahs []byte
	ahs = AppendAHS(ahs, AHSExtendedCDB, wireHex(t, "00 1011121314151617"))
	ahs = AppendAHS(ahs, AHSBidiReadDataLength, wireHex(t, "00 00001000"))
	// 2+1+9 = 12 bytes; 2+1+5 = 8 bytes
	want := wireHex(t, "0009 01 00 10111213 14151617  0005 02 00 00001000")
	if !bytes.Equal(ahs, want) {
		t.Fatalf("AppendAHS = %x, want %x", ahs, want)
	}
	p := &PDU{AHS: ahs}
	if b, ok := p.FindAHS(AHSBidiReadDataLength); !ok || binary.BigEndian.Uint32(b[1:]) != 4096 {
		t.Fatalf("FindAHS(bidi) = %x, %v", b, ok)
	}
	if b, ok := p.FindAHS(AHSExtendedCDB); !ok || len(b) != 9 || b[1] != 0x10 {
		t.Fatalf("FindAHS(ext cdb) = %x, %v", b, ok)
	}
	if _, ok := p.FindAHS(AHSType(9)); ok {
		t.Fatal("found absent AHS")
	}
}

func TestReadAllocationFree(t *testing.T) {
	stream := frames(t, true, true, bytes.Repeat([]byte{1}, 4096))
	r := bytes.NewReader(stream)
	fr := NewFrameReader(r)
	fr.SetDigests(true, true)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(stream)
		p, err := fr.Read()
		if err != nil {
			t.Fatal(err)
		}
		p.Release()
	})
	if allocs > 0 {
		t.Fatalf("Read allocates %.1f times per PDU", allocs)
	}
}

func FuzzReadPDU(f *testing.F) {
	f.Add(frames(f, false, false, nil, []byte("abc")), false, false)
	f.Add(frames(f, true, true, []byte("SendTargets=All\x00")), true, true)
	f.Add(frames(f, true, false, make([]byte, 9000)), true, false)
	f.Fuzz(func(t *testing.T, in []byte, hd, dd bool) {
		fr := NewFrameReader(bytes.NewReader(in))
		fr.SetDigests(hd, dd)
		for {
			p, err := fr.Read()
			if p != nil {
				if int(p.BHS.DataSegmentLength()) > DefaultMaxRecvDSL {
					t.Fatalf("accepted data segment of %d bytes", p.BHS.DataSegmentLength())
				}
				if err == nil && len(p.Data) != int(p.BHS.DataSegmentLength()) {
					t.Fatalf("data %d bytes, header says %d", len(p.Data), p.BHS.DataSegmentLength())
				}
				// Re-framing a valid PDU must read back identically.
				if err == nil {
					h := p.BHS
					out := AppendFrame(nil, &h, p.AHS, p.Data, hd, dd)
					fr2 := NewFrameReader(bytes.NewReader(out))
					fr2.SetDigests(hd, dd)
					q, err2 := fr2.Read()
					if err2 != nil || q.BHS != p.BHS || !bytes.Equal(q.Data, p.Data) {
						t.Fatalf("re-read failed: %v", err2)
					}
					q.Release()
				}
				p.Release()
			}
			if err != nil {
				var de *DataDigestError
				if errors.As(err, &de) {
					continue
				}
				return
			}
		}
	})
}

func TestWritePDUAllocationFree(t *testing.T) {
	fw := NewFrameWriter(io.Discard)
	fw.SetDigests(true, true)
	data := bytes.Repeat([]byte{1}, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		var h BHS
		(&DataIn{Final: true, ITT: 1, TTT: ReservedTag, DataSN: 1}).Encode(&h)
		if err := fw.WritePDU(&h, nil, data); err != nil {
			t.Fatal(err)
		}
		fw.Flush()
	})
	if allocs > 0 {
		t.Fatalf("WritePDU allocates %.1f times per PDU", allocs)
	}
}

// failWriter fails every write.
type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestFrameWriterKeepsFirstError(t *testing.T) {
	for _, n := range []int{10, directDataMin} {
		boom := errors.New("boom")
		fw := NewFrameWriter(failWriter{boom})
		h := bhsOf(t, nopInHex)
		err := fw.WritePDU(&h, nil, make([]byte, n))
		if err == nil {
			err = fw.Flush()
		}
		if !errors.Is(err, boom) {
			t.Fatalf("%d-byte segment: %v, want %v", n, err, boom)
		}
		if err := fw.WritePDU(&h, nil, nil); !errors.Is(err, boom) {
			t.Fatalf("%d-byte segment: next WritePDU: %v, want %v", n, err, boom)
		}
		if err := fw.Flush(); !errors.Is(err, boom) {
			t.Fatalf("%d-byte segment: next Flush: %v, want %v", n, err, boom)
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// queuePDU, which keeps large data segments in the caller's slices until
// Flush, writes what AppendFrame does: to a plain writer, and to a socket
// through writev, waiting for it (Flush) or trying first (tryFlush, which
// writes what the socket takes and leaves the rest).
func TestFrameWriterQueueMatchesAppendFrame(t *testing.T) {
	sizes := []int{0, 3, 100000, directDataMin - 1, directDataMin, directDataMin + 1, 5, writeBufSize - 100, 7, writeBufSize + 3, 1 << 20, 2 << 20}
	for _, sink := range []string{"buffer", "socket, Flush", "socket, tryFlush first"} {
		for _, dig := range []struct{ hd, dd bool }{{false, false}, {true, true}} {
			var w io.Writer
			var buf bytes.Buffer
			var got chan []byte
			read := func() {}
			if sink == "buffer" {
				w = &buf
			} else {
				a, b := tcpPair(t)
				// Small socket buffers: what tryFlush cannot write at
				// once is tried too.
				a.(*net.TCPConn).SetWriteBuffer(64 << 10)
				b.(*net.TCPConn).SetReadBuffer(64 << 10)
				w = a
				got = make(chan []byte, 1)
				read = func() {
					go func() {
						all, _ := io.ReadAll(b)
						got <- all
					}()
				}
			}
			if sink != "socket, tryFlush first" {
				read()
			}
			fw := NewFrameWriter(w)
			if sink != "buffer" && fw.raw == nil {
				t.Fatal("no raw writer on a TCP connection")
			}
			fw.SetDigests(dig.hd, dig.dd)
			want := framesOf(t, sizes, dig.hd, dig.dd, func(h *BHS, ahs, d []byte) {
				if !fw.room(len(ahs), len(d)) && fw.pending() {
					if got != nil && sink == "socket, tryFlush first" {
						t.Fatal("the small segments overflow the buffer before anyone reads")
					}
					if err := fw.Flush(); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := fw.queuePDU(h, ahs, d, false); err != nil {
					t.Fatal(err)
				}
			})
			if sink == "socket, tryFlush first" {
				// 3 MiB do not fit an unread socket's buffers.
				done, err := fw.tryFlush()
				if done || err != nil {
					t.Fatalf("tryFlush of more than the socket holds: done %v, %v", done, err)
				}
				if !fw.pending() {
					t.Fatal("tryFlush left nothing pending")
				}
				read()
			}
			if err := fw.Flush(); err != nil {
				t.Fatal(err)
			}
			out := buf.Bytes()
			if got != nil {
				w.(net.Conn).Close()
				out = <-got
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("%s, digests %v: %d bytes written, want %d as AppendFrame", sink, dig, len(out), len(want))
			}
		}
	}
}

// The reader asks hasPDU whether the next Read needs the socket.
func TestFrameReaderHasPDU(t *testing.T) {
	h := bhsOf(t, nopInHex)
	full := AppendFrame(nil, &h, nil, []byte("hello"), true, true) // 48 + 4 + 8 + 4
	tests := []struct {
		name     string
		buffered int
		hd, dd   bool
		want     bool
	}{
		{"nothing", 0, true, true, false},
		{"part of the header", 30, true, true, false},
		{"header without digest", 48, true, true, false},
		{"header, data without its digest", 60, true, true, false},
		{"whole PDU", 64, true, true, true},
		{"whole PDU and more", 64, true, true, true},
	}
	for _, tt := range tests {
		a, b := tcpPair(t)
		if _, err := a.Write(full[:tt.buffered]); err != nil {
			t.Fatal(err)
		}
		fr := NewFrameReader(b)
		fr.SetDigests(tt.hd, tt.dd)
		if tt.buffered > 0 {
			// Fill the read buffer with what was sent.
			br := fr.r.(*bufio.Reader)
			if _, err := br.Peek(tt.buffered); err != nil {
				t.Fatal(err)
			}
		}
		if got := fr.hasPDU(); got != tt.want {
			t.Errorf("%s: hasPDU %v, want %v", tt.name, got, tt.want)
		}
	}
	// Without digests the same 60 bytes are a whole PDU.
	plain := AppendFrame(nil, &h, nil, []byte("hello"), false, false)
	fr := NewFrameReader(bytes.NewReader(plain))
	fr.r.(*bufio.Reader).Peek(len(plain))
	if !fr.hasPDU() {
		t.Error("a whole PDU without digests: hasPDU false")
	}
}

// A batch of Data-In PDUs queued and flushed to a socket allocates
// nothing.
func TestQueuePDUSocketAllocationFree(t *testing.T) {
	a, b := tcpPair(t)
	go io.Copy(io.Discard, b)
	fw := NewFrameWriter(a)
	data := bytes.Repeat([]byte{1}, 8192)
	allocs := testing.AllocsPerRun(100, func() {
		for range 8 {
			var h BHS
			(&DataIn{Final: true, ITT: 1, TTT: ReservedTag, DataSN: 1}).Encode(&h)
			if _, err := fw.queuePDU(&h, nil, data, false); err != nil {
				t.Fatal(err)
			}
		}
		if done, err := fw.tryFlush(); err != nil {
			t.Fatal(err)
		} else if !done {
			fw.Flush()
		}
	})
	if allocs > 0 {
		t.Fatalf("queuePDU and a flush to a socket allocate %.1f times per batch", allocs)
	}
}

// A lent data segment goes to the socket from its slice, however short:
// from a mapping of a file truncated underneath, the flush fails with
// EFAULT, where copying it into the buffer would have killed the
// process with SIGBUS. A lent segment still readable arrives intact.
func TestQueuePDULentIsNeverRead(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "lent")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(bytes.Repeat([]byte{0x77}, 8192)); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, 8192, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)

	a, b := tcpPair(t)
	got := make(chan []byte, 1)
	go func() { d, _ := io.ReadAll(b); got <- d }()
	fw := NewFrameWriter(a)
	var h BHS
	(&DataIn{Final: true, ITT: 1, TTT: ReservedTag}).Encode(&h)
	if direct, err := fw.queuePDU(&h, nil, m[:512], true); err != nil || !direct {
		t.Fatalf("queuePDU of a lent 512 bytes: direct %v, %v", direct, err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}

	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	(&DataIn{Final: true, ITT: 2, TTT: ReservedTag}).Encode(&h)
	if _, err := fw.queuePDU(&h, nil, m[4096:4096+512], true); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("flushing lent bytes of a truncated file: %v, want EFAULT", err)
	}
	a.Close()
	wire := <-got
	if len(wire) < BHSLen+512 || !bytes.Equal(wire[BHSLen:BHSLen+512], bytes.Repeat([]byte{0x77}, 512)) {
		t.Errorf("the first lent segment did not arrive intact (%d bytes)", len(wire))
	}
}
