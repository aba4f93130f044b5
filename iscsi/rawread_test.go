package iscsi

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// rawFrameReader is the FrameReader of a full-feature connection on the
// server end of a loopback TCP connection, its yields counted.
func rawFrameReader(t *testing.T) (client net.Conn, fr *FrameReader, yields *int) {
	t.Helper()
	client, server := tcpPair(t)
	fr = newUnbufferedFrameReader(server)
	fr.buffer()
	if fr.raw == nil {
		t.Fatal("a TCP connection is not read through a rawReader")
	}
	yields = new(int)
	fr.raw.yield = func() { *yields++ }
	return client, fr, yields
}

// A PDU whose data segment follows its header late, as an initiator
// that sends them in two system calls does, is read whole, and the
// reader yields while it waits for the rest; between PDUs it does not.
func TestRawReaderPDUInPieces(t *testing.T) {
	for _, dig := range []struct{ hd, dd bool }{{false, false}, {true, true}} {
		client, fr, yields := rawFrameReader(t)
		fr.SetDigests(dig.hd, dig.dd)
		fr.SetMaxRecvDSL(1 << 20)
		datas := [][]byte{[]byte("abcde"), bytes.Repeat([]byte{7}, 4096), bytes.Repeat([]byte{9}, 200000)}
		var pdus [][]byte
		for _, d := range datas {
			pdus = append(pdus, frames(t, dig.hd, dig.dd, d))
		}
		hlen := BHSLen
		if dig.hd {
			hlen += DigestLen
		}
		errc := make(chan error, 1)
		go func() {
			for _, pdu := range pdus {
				if _, err := client.Write(pdu[:hlen]); err != nil {
					errc <- err
					return
				}
				time.Sleep(20 * time.Millisecond)
				if _, err := client.Write(pdu[hlen:]); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		for i, want := range datas {
			before := *yields
			p, err := fr.Read()
			if err != nil {
				t.Fatalf("digests %v: pdu %d: %v", dig, i, err)
			}
			if !bytes.Equal(p.Data, want) {
				t.Fatalf("digests %v: pdu %d: %d bytes of data, want %d", dig, i, len(p.Data), len(want))
			}
			p.Release()
			if *yields == before {
				t.Errorf("digests %v: pdu %d: no yield while its data was late", dig, i)
			}
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}

		// A whole PDU sent in one write, after the connection was idle.
		before := *yields
		whole := frames(t, dig.hd, dig.dd, []byte("whole"))
		go func() {
			time.Sleep(20 * time.Millisecond)
			client.Write(whole)
		}()
		p, err := fr.Read()
		if err != nil || string(p.Data) != "whole" {
			t.Fatalf("digests %v: whole PDU: %v, %q", dig, err, p.Data)
		}
		p.Release()
		if *yields != before {
			t.Errorf("digests %v: %d yields while idle between PDUs, want none", dig, *yields-before)
		}
	}
}

// The end of the stream, a deadline and a close read as they do through
// net.Conn: io.EOF between PDUs, io.ErrUnexpectedEOF inside one,
// os.ErrDeadlineExceeded and net.ErrClosed.
func TestRawReaderErrors(t *testing.T) {
	client, fr, _ := rawFrameReader(t)
	client.Write(frames(t, false, false, []byte("x")))
	client.Close()
	if p, err := fr.Read(); err != nil {
		t.Fatalf("PDU before the end: %v", err)
	} else {
		p.Release()
	}
	if _, err := fr.Read(); err != io.EOF {
		t.Fatalf("end between PDUs: %v, want io.EOF", err)
	}

	client, fr, _ = rawFrameReader(t)
	client.Write(frames(t, false, false, []byte("truncated"))[:BHSLen+3])
	client.Close()
	if _, err := fr.Read(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("end inside a PDU: %v, want io.ErrUnexpectedEOF", err)
	}

	_, fr, _ = rawFrameReader(t)
	server := fr.src.(net.Conn)
	server.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := fr.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v, want os.ErrDeadlineExceeded", err)
	}

	_, fr, _ = rawFrameReader(t)
	server = fr.src.(net.Conn)
	time.AfterFunc(10*time.Millisecond, func() { server.Close() })
	if _, err := fr.Read(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed while reading: %v, want net.ErrClosed", err)
	}
}

// Reading a 4 KiB write command's PDU from a socket allocates nothing.
func TestRawReaderAllocationFree(t *testing.T) {
	client, fr, _ := rawFrameReader(t)
	stream := frames(t, false, false, bytes.Repeat([]byte{1}, 4096))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := client.Write(stream); err != nil {
			t.Fatal(err)
		}
		p, err := fr.Read()
		if err != nil {
			t.Fatal(err)
		}
		p.Release()
	})
	if allocs > 0 {
		t.Fatalf("Read from a socket allocates %.1f times per PDU", allocs)
	}
}
