package iscsi

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/scstd/scstd/scsi"
)

// benchCommands pipelines b.N SCSI commands at queue depth 16 over a
// loopback session and reads their answers; the initiator side reuses
// its buffers, so allocations are the target's.
func benchCommands(b *testing.B, cdb []byte, read bool, edtl uint32, imm []byte) {
	srv, tgt, _ := newSessTarget(&testing.T{})
	tgt.QueuedCommands = 64
	p := sessParams()
	p.MaxXmitDSL, p.MaxRecvDSL, p.MaxBurstLength, p.FirstBurstLength = 262144, 262144, 1<<20, 65536
	ti := startSessInit(&testing.T{}, srv, tgt, 1, p)
	ti.fr.SetMaxRecvDSL(262144)
	ti.clearUA()
	const depth = 16
	slots := make(chan struct{}, depth)
	ti.nc.SetReadDeadline(time.Time{})
	errc := make(chan string, 1)
	go func() {
		for i := 0; i < b.N; {
			q, err := ti.fr.Read()
			if err != nil {
				errc <- err.Error()
				return
			}
			switch q.BHS.Opcode() {
			case OpSCSIResponse:
				if q.BHS[3] != 0 {
					errc <- "status not GOOD"
					return
				}
				i++
				<-slots
			case OpDataIn:
				if q.BHS[1]&0x01 != 0 {
					i++
					<-slots
				}
			}
			q.Release()
		}
		errc <- ""
	}()
	var h BHS
	cmd := SCSICommand{Final: true, Read: read, Write: !read && edtl > 0, Attr: scsi.Simple,
		ExpectedDataTransferLength: edtl}
	copy(cmd.CDB[:], cdb)
	buf := make([]byte, 0, 48+len(imm)+8)
	b.ReportAllocs()
	b.SetBytes(int64(edtl))
	b.ResetTimer()
	sn := ti.cmdSN
	for i := range b.N {
		slots <- struct{}{}
		cmd.ITT, cmd.CmdSN = uint32(i), sn
		sn++
		h = BHS{}
		cmd.Encode(&h)
		buf = AppendFrame(buf[:0], &h, nil, imm, false, false)
		if _, err := ti.nc.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if e := <-errc; e != "" {
		b.Fatal(e)
	}
	b.StopTimer()
	ti.nc.Close()
	<-ti.done
}

func BenchmarkSessionRead4K(b *testing.B) {
	c := sessCDB10(sessOpRead10, 0, 8)
	benchCommands(b, c, true, 4096, nil)
}

func BenchmarkSessionWrite4KImmediate(b *testing.B) {
	c := sessCDB10(sessOpWrite10, 0, 8)
	benchCommands(b, c, false, 4096, make([]byte, 4096))
}

func BenchmarkSessionRead256K(b *testing.B) {
	c := sessCDB10(sessOpRead10, 0, 512)
	binary.BigEndian.PutUint16(c[7:], 512)
	benchCommands(b, c, true, 256<<10, nil)
}
