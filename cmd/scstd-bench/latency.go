package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/scsi"
)

// latencyCases are the QD1 latency workloads.
var latencyCases = []struct {
	Name, Label string
	Write       bool
}{
	{"4k-qd1-read", "4 KiB QD1 read", false},
	{"4k-qd1-write", "4 KiB QD1 write", true},
}

// latencyProbe logs in to sys with the Go initiator (ImmediateData=Yes,
// InitialR2T=No, no digests: what libiscsi negotiates) and times 4 KiB
// READ(10) or WRITE(10) commands, one at a time, at random 4 KiB-aligned
// offsets, for d after a warm-up of 200 commands. Each sample runs from
// before the command PDU is written to after its status is read, on the
// monotonic clock. The probe's own cost is in the figure, as qemu-img's is
// in the throughput figures.
func latencyProbe(ctx context.Context, sys *system, write bool, d time.Duration) ([]time.Duration, error) {
	c, err := initiator.Dial(sys.Portal)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(initiator.Options{InitiatorName: "iqn.2026-11.org.scstd:bench-latency",
		TargetName: sys.Target, ImmediateData: true}); err != nil {
		return nil, err
	}
	lun := scsi.LUN(sys.LUN).Encode()
	// READ CAPACITY(10), again after the unit attentions a new nexus
	// may have pending (power on, reported LUNs changed).
	var rc *initiator.Response
	for range 5 {
		if rc, err = c.Command(lun, []byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, 8); err != nil {
			return nil, err
		}
		if rc.Status != 2 || len(rc.Sense) < 3 || rc.Sense[2]&0x0f != 6 {
			break
		}
	}
	if rc.Status != 0 || len(rc.Data) < 8 {
		return nil, fmt.Errorf("READ CAPACITY: status %#x, %d bytes", rc.Status, len(rc.Data))
	}
	blocks := uint64(binary.BigEndian.Uint32(rc.Data[0:4])) + 1
	bs := binary.BigEndian.Uint32(rc.Data[4:8])
	if bs == 0 || 4096%bs != 0 {
		return nil, fmt.Errorf("block size %d does not divide 4 KiB", bs)
	}
	per := uint64(4096 / bs)
	slots := min(blocks, 1<<32-1) / per
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	cdb := make([]byte, 10)
	one := func() (time.Duration, error) {
		lba := rng.Uint64N(slots) * per
		cdb[0] = 0x28 // READ(10)
		var out []byte
		readLen := 4096
		if write {
			cdb[0], out, readLen = 0x2a, buf, 0 // WRITE(10)
		}
		binary.BigEndian.PutUint32(cdb[2:6], uint32(lba))
		binary.BigEndian.PutUint16(cdb[7:9], uint16(per))
		start := time.Now()
		rsp, err := c.Command(lun, cdb, out, readLen)
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if rsp.Status != 0 {
			return 0, fmt.Errorf("status %#x, sense % x", rsp.Status, rsp.Sense)
		}
		return took, nil
	}
	for range 200 {
		if _, err := one(); err != nil {
			return nil, err
		}
	}
	samples := make([]time.Duration, 0, 1<<16)
	for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; {
		t, err := one()
		if err != nil {
			return nil, err
		}
		samples = append(samples, t)
	}
	c.Logout()
	return samples, ctx.Err()
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
