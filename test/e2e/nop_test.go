package e2e

import (
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
)

const nopConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_nullio" {
  device "null0" {
    size = "64MiB"
  }
}

target "iqn.2026-11.org.example:t1" {
  nop_in_interval = 1
  nop_in_timeout  = 1
  lun "0" { device = "null0" }
}
`

// TestNopInDropsSilentInitiator: the target pings idle connections every
// nop_in_interval and drops one that does not answer within
// nop_in_timeout, while an initiator that answers its pings stays.
func TestNopInDropsSilentInitiator(t *testing.T) {
	tgt := testtarget.Start(t, nopConfig)
	login := func(name string) *initiator.Conn {
		c, err := initiator.Dial(tgt.Portal())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(time.Minute))
		if err := c.Login(initiator.Options{InitiatorName: name, TargetName: iqnT1}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	silent := login("iqn.2026-11.org.example:silent")
	alive := login("iqn.2026-11.org.example:alive")

	// alive reads (and so answers the target's pings) all along; silent
	// reads nothing for four ping intervals.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if _, err := alive.NOP([]byte("x")); err != nil {
			t.Fatalf("an initiator that answers NOP-In pings was dropped: %v", err)
		}
	}
	if _, err := silent.NOP([]byte("x")); err == nil {
		t.Fatal("an initiator that never answered the target's NOP-In pings is still connected")
	}
	for _, s := range liveSessions(t, tgt) {
		if s.Initiator == "iqn.2026-11.org.example:silent" {
			t.Errorf("status still shows the dropped session: %+v", s)
		}
	}
}
