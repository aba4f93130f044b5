package iscsi

import (
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/scstd/scstd/scsi"
)

// TestSessionCounters: a session's and its LUN's counters count each
// completed command once, by class, with the bytes moved (data-in as
// sent, truncated to what the initiator expected) and failures by sense
// key; a LUN the map does not have counts for the session alone. The
// same whether the reader ran the commands (scsi.TryExecute) or gave
// them up to an executor because the backend would wait.
func TestSessionCounters(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(fmt.Sprintf("slow=%v", slow), func(t *testing.T) { testSessionCounters(t, slow) })
	}
}

func testSessionCounters(t *testing.T, slow bool) {
	srv, tgt, mem := newSessTarget(t)
	mem.slow = slow
	ti := startSessInit(t, srv, tgt, 1, sessParams())
	ti.clearUA() // TEST UNIT READY: UNIT ATTENTION

	data := make([]byte, 24*512)
	itt := ti.command(sessCDB10(sessOpWrite10, 0, 24), false, true, uint32(len(data)), data[:8192], true)
	if res := ti.await(itt, data); res.status != 0 {
		t.Fatalf("WRITE10 status %#x", res.status)
	}
	// READ(10) of 8 blocks with an expected length of 2048: 2048 bytes
	// go out, the residual says the rest.
	itt = ti.command(sessCDB10(sessOpRead10, 0, 8), true, false, 2048, nil, true)
	if res := ti.await(itt, nil); res.status != 0 || len(res.data) != 2048 {
		t.Fatalf("READ10 status %#x, %d bytes", res.status, len(res.data))
	}
	// Beyond the capacity: ILLEGAL REQUEST.
	itt = ti.command(sessCDB10(sessOpRead10, sessBlocks, 1), true, false, 512, nil, true)
	if res := ti.await(itt, nil); res.status != uint8(scsi.CheckCondition) {
		t.Fatalf("READ10 beyond the end: status %#x", res.status)
	}
	// LUN 5 does not exist: LOGICAL UNIT NOT SUPPORTED, for the session only.
	ti.itt++
	cmd := SCSICommand{Final: true, Attr: scsi.Simple, ITT: ti.itt, CmdSN: ti.cmdSN, LUN: scsi.LUN(5).Encode()}
	cmd.CDB[0] = sessOpTUR
	ti.cmdSN++
	var h BHS
	cmd.Encode(&h)
	ti.send(&h, nil)
	if res := ti.await(ti.itt, nil); res.status != uint8(scsi.CheckCondition) {
		t.Fatalf("TEST UNIT READY on LUN 5: status %#x", res.status)
	}

	sessions := srv.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("%d sessions", len(sessions))
	}
	io := sessions[0].IO
	if want := (scsi.ClassCounts{Read: 2, Write: 1, Other: 2}); io.Commands != want {
		t.Errorf("session commands %+v, want %+v", io.Commands, want)
	}
	if io.ReadBytes != 2048 || io.WrittenBytes != uint64(len(data)) || io.QueueDepth != 0 {
		t.Errorf("session bytes read %d written %d, queue depth %d", io.ReadBytes, io.WrittenBytes, io.QueueDepth)
	}
	wantErrs := []scsi.ErrorCount{
		{Status: "CHECK_CONDITION", SenseKey: "ILLEGAL_REQUEST", Count: 2},
		{Status: "CHECK_CONDITION", SenseKey: "UNIT_ATTENTION", Count: 1},
	}
	if !reflect.DeepEqual(io.Errors, wantErrs) {
		t.Errorf("session errors %+v, want %+v", io.Errors, wantErrs)
	}

	lu := tgt.LUNs.Lookup(0).Stats.Counters()
	if want := (scsi.ClassCounts{Read: 2, Write: 1, Other: 1}); lu.Commands != want {
		t.Errorf("LUN commands %+v, want %+v", lu.Commands, want)
	}
	if lu.ReadBytes != 2048 || lu.WrittenBytes != uint64(len(data)) || lu.QueueDepth != 0 || len(lu.Errors) != 2 {
		t.Errorf("LUN counters %+v", lu)
	}
	if n := lu.Histograms[scsi.ClassRead].Count() + lu.Histograms[scsi.ClassWrite].Count(); n != 3 {
		t.Errorf("LUN latency samples of reads and writes: %d, want 3", n)
	}
	if waited := mem.waited.Load(); (waited > 0) != slow {
		t.Errorf("%d reads and writes waited; slow backend %v", waited, slow)
	}
}

// TestLoginCounts: logins count under their target, discovery sessions
// under ""; the counts of a target the snapshot no longer has are gone.
func TestLoginCounts(t *testing.T) {
	s := wireServer(t, nil)
	for _, keys := range []Text{
		{{"InitiatorName", wireInitiator}, {"TargetName", wireTarget}, {"AuthMethod", "None"}},
		discoveryKeys,
	} {
		c, done := startLogin(t, s)
		c.login(LoginRequest{Transit: true, CSG: StageSecurity, NSG: StageFullFeature, CID: 1}, keys)
		if rsp, _ := c.loginResponse(); rsp.Status != LoginSuccess {
			t.Fatalf("login %q: %s", keys, rsp.Status)
		}
		c.nc.Close()
		<-done
	}
	want := []TargetLogins{{Target: "", Logins: 1}, {Target: wireTarget, Logins: 1}}
	if got := s.Logins(); !reflect.DeepEqual(got, want) {
		t.Fatalf("logins %+v, want %+v", got, want)
	}
	with := s.Snapshot()
	snap := *with
	snap.Targets = map[string]*Target{}
	s.Publish(&snap)
	// Added again before anyone asked for the counts: from zero.
	again := *with
	s.Publish(&again)
	if got := s.Logins(); !reflect.DeepEqual(got, want[:1]) {
		t.Errorf("after the target went and came back: %+v", got)
	}
}

func TestLoginReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{ErrThrottled, LoginReasonThrottled},
		{&LoginError{Status: LoginAuthFailed}, LoginReasonAuthentication},
		{&LoginError{Status: LoginAuthorizationFailure}, LoginReasonAuthorization},
		{&LoginError{Status: LoginTargetRemoved}, LoginReasonTargetRemoved},
		{&LoginError{Status: LoginTargetMovedPerm}, LoginReasonRedirected},
		{&AdmitError{Status: LoginOutOfResources}, LoginReasonOutOfResources},
		{&LoginError{Status: LoginTargetError}, LoginReasonTargetError},
		{&LoginError{Status: LoginSessionTypeUnsupported}, LoginReasonInitiatorError},
		{fmt.Errorf("iscsi: read: %w", os.ErrDeadlineExceeded), LoginReasonTimeout},
		{errPlain("EOF"), LoginReasonConnection},
	} {
		if got := loginReason(c.err); got != c.want {
			t.Errorf("loginReason(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

type errPlain string

func (e errPlain) Error() string { return string(e) }
