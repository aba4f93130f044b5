package e2e

import (
	"bytes"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/scsi"
)

// inflightConfig is A with disk0 as LUN 0 and, when %s holds it, the
// pre-filled device busy as LUN 1.
const inflightConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
  device "busy" {
    filename = "{{.Dir}}/busy.img"
  }
}

target "iqn.2026-11.org.example:reload-a" {
  lun "0" {
    device = "disk0"
  }
%s}
`

const busyLUNBlock = `  lun "1" {
    device = "busy"
  }
`

// busyFill is the byte busy.img is filled with.
const busyFill = 0x77

// readOutcome is how one READ(16) on the LUN being removed ended.
type readOutcome struct {
	good  bool
	sense sense // of a CHECK CONDITION
}

// TestReloadRemovedLUNFinishesInFlightCommands: a session reads 1 MiB at a
// time from LUN 1 while a reload removes LUN 1. Commands in flight
// complete with the right data; after the removal the LUN answers
// ILLEGAL REQUEST / LOGICAL UNIT NOT SUPPORTED (05h/25h/00h), possibly
// after the REPORTED LUNS DATA HAS CHANGED unit attention, and nothing
// else: no other error, no aborted command, no dropped connection.
func TestReloadRemovedLUNFinishesInFlightCommands(t *testing.T) {
	tgt := testtarget.New(t, fmt.Sprintf(inflightConfig, busyLUNBlock))
	const busySize = 32 * mib
	if err := os.WriteFile(tgt.Path("busy.img"), bytesOf(busyFill, busySize), 0o644); err != nil {
		t.Fatal(err)
	}
	tgt.Start()

	c, err := initiator.Dial(tgt.Portal())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Login(initiator.Options{InitiatorName: liveInitiator, TargetName: iqnA, MaxRecvDSL: 262144}); err != nil {
		t.Fatal(err)
	}
	lun1 := scsi.LUN(1).Encode()
	const readSize = mib
	tur := []byte{0, 0, 0, 0, 0, 0}
	for range 8 { // power on / reset of the new nexus
		if rsp, err := c.Command(lun1, tur, nil, 0); err != nil {
			t.Fatal(err)
		} else if rsp.Status == statusGood {
			break
		}
	}

	var reads atomic.Int64
	stop := make(chan struct{})
	done := make(chan error, 1)
	var outcomes []readOutcome
	go func() {
		want := bytesOf(busyFill, readSize)
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			lba := (i * readSize % busySize) / blockSize
			rsp, err := c.Command(lun1, rw16(0x88, lba, readSize/blockSize), nil, readSize)
			if err != nil {
				done <- fmt.Errorf("read %d: %w", i, err)
				return
			}
			o := readOutcome{good: rsp.Status == statusGood}
			if o.good && !bytes.Equal(rsp.Data, want) {
				done <- fmt.Errorf("read %d at LBA %d returned other data than busy.img holds", i, lba)
				return
			}
			if rsp.Status == statusCheckCondition {
				o.sense, _ = parseSense(rsp.Sense)
			} else if !o.good {
				done <- fmt.Errorf("read %d: status %02Xh", i, rsp.Status)
				return
			}
			outcomes = append(outcomes, o)
			reads.Add(1)
		}
	}()
	waitReads := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for reads.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d reads in 30 s", reads.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitReads(50)
	r := tgt.Reconfigure(fmt.Sprintf(inflightConfig, ""))
	if !r.OK {
		t.Fatalf("reload removing LUN 1: %s\n%s", r.Error, r.Diagnostics)
	}
	at := reads.Load()
	waitReads(at + 20)
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("the session reading LUN 1: %v", err)
	}

	notSupported := sense{key: 0x05, asc: 0x25, ascq: 0x00}
	lunsChanged := sense{key: senseKeyUnitAttention, asc: ascLUNsChanged, ascq: ascqLUNsChanged}
	var good, ua, gone int
	for i, o := range outcomes {
		switch {
		case o.good && gone == 0 && ua == 0:
			good++
		case !o.good && o.sense == lunsChanged && gone == 0 && ua == 0:
			ua++
		case !o.good && o.sense == notSupported:
			gone++
		default:
			t.Errorf("read %d: good=%t sense %v after %d good reads, %d unit attentions and %d LOGICAL UNIT NOT SUPPORTED",
				i, o.good, o.sense, good, ua, gone)
		}
	}
	t.Logf("%d reads completed GOOD, then %d REPORTED LUNS DATA HAS CHANGED, then %d LOGICAL UNIT NOT SUPPORTED", good, ua, gone)
	if gone == 0 {
		t.Errorf("no read answered LOGICAL UNIT NOT SUPPORTED after LUN 1 was removed")
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.NOP(nil); err != nil {
		t.Errorf("the session after the removal: %v", err)
	}
}
