package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// SCSI values the reload scenario reads.
const (
	statusGood           = 0x00
	statusCheckCondition = 0x02

	senseKeyNotReady                        = 0x02
	senseKeyUnitAttention                   = 0x06
	ascLUNsChanged, ascqLUNsChanged         = 0x3f, 0x0e
	ascCapacityChanged, ascqCapacityChanged = 0x2a, 0x09
)

// sense is the key, ASC and ASCQ of fixed or descriptor sense data.
type sense struct{ key, asc, ascq uint8 }

func (s sense) String() string { return fmt.Sprintf("%02Xh/%02Xh/%02Xh", s.key, s.asc, s.ascq) }

func parseSense(b []byte) (sense, bool) {
	if len(b) < 4 {
		return sense{}, false
	}
	switch b[0] & 0x7f {
	case 0x70, 0x71:
		if len(b) < 14 {
			return sense{key: b[2] & 0x0f}, true
		}
		return sense{key: b[2] & 0x0f, asc: b[12], ascq: b[13]}, true
	case 0x72, 0x73:
		return sense{key: b[1] & 0x0f, asc: b[2], ascq: b[3]}, true
	}
	return sense{}, false
}

// liveEvent is a unit attention or an Asynchronous Message that the live
// session received.
type liveEvent struct {
	// cycle is the load cycle during which it arrived.
	cycle int64
	// ua is set for a unit attention (sense), unset for an Async Message.
	ua    bool
	sense sense
	async iscsi.AsyncEvent
}

func (e liveEvent) String() string {
	if e.ua {
		return "UNIT ATTENTION " + e.sense.String()
	}
	return "Async Message " + e.async.String()
}

// liveSession is the Go initiator session that stays logged in to A for
// the whole scenario, writing and reading back its own region of LUN 0.
type liveSession struct {
	c     *initiator.Conn
	local string // the TCP connection's local address
	tsih  uint16

	// started and cycles count the load cycles begun and completed; ops
	// the SCSI commands that completed with GOOD status.
	started, cycles, ops atomic.Int64
	// window is the command window (MaxCmdSN - CmdSN + 1) after the last
	// response.
	window atomic.Int64

	mu     sync.Mutex
	events []liveEvent
	errs   []string // I/O errors: commands that did not complete GOOD
	fatal  error    // the session broke

	stop chan struct{}
	done chan struct{}

	finishOnce sync.Once
	finishErr  error
}

// liveRegion is where the live session writes on LUN 0: 32 MiB on, 8 MiB
// long, out of the qemu-io load's way (0..16 MiB).
const (
	liveBase  = 32 * mib
	liveSpan  = 8 * mib
	liveIO    = 64 << 10
	blockSize = 512
)

// startLiveSession logs in to target on portal and starts the load loop.
func startLiveSession(portal, target string) (*liveSession, error) {
	c, err := initiator.Dial(portal)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Login(initiator.Options{InitiatorName: liveInitiator, TargetName: target, MaxRecvDSL: 262144,
		ImmediateData: true}); err != nil {
		c.Close()
		return nil, err
	}
	s := &liveSession{c: c, local: c.NetConn().LocalAddr().String(), tsih: c.TSIH,
		stop: make(chan struct{}), done: make(chan struct{})}
	// Clear what a new nexus reports first (power on, reset), outside the
	// scenario's accounting.
	for range 8 {
		rsp, err := c.Command(scsi.LUN(0).Encode(), []byte{0, 0, 0, 0, 0, 0}, nil, 0)
		if err != nil {
			c.Close()
			return nil, err
		}
		if rsp.Status == statusGood {
			break
		}
	}
	c.Async = c.Async[:0]
	go s.loop()
	return s, nil
}

// loop runs load cycles until stop: write a tagged 64 KiB block, read it
// back and compare; every eighth cycle a TEST UNIT READY too.
func (s *liveSession) loop() {
	defer close(s.done)
	wbuf := make([]byte, liveIO)
	for cycle := int64(0); ; cycle++ {
		select {
		case <-s.stop:
			return
		default:
		}
		s.started.Store(cycle + 1)
		lba := uint64(liveBase+(cycle*liveIO)%liveSpan) / blockSize
		for i := range wbuf {
			wbuf[i] = byte(cycle) ^ byte(i>>9)
		}
		binary.BigEndian.PutUint64(wbuf, uint64(cycle))
		if _, ok := s.command(cycle, rw16(0x8a, lba, liveIO/blockSize), wbuf, 0); !ok {
			return
		}
		got, ok := s.command(cycle, rw16(0x88, lba, liveIO/blockSize), nil, liveIO)
		if !ok {
			return
		}
		if got != nil && !bytes.Equal(got, wbuf) {
			s.ioError("cycle %d: READ(16) at LBA %d returned other data than was written", cycle, lba)
		}
		if cycle%8 == 0 {
			if _, ok := s.command(cycle, []byte{0, 0, 0, 0, 0, 0}, nil, 0); !ok {
				return
			}
		}
		s.cycles.Store(cycle + 1)
		time.Sleep(2 * time.Millisecond)
	}
}

// rw16 is a READ(16) or WRITE(16) CDB.
func rw16(op byte, lba uint64, blocks uint32) []byte {
	cdb := make([]byte, 16)
	cdb[0] = op
	binary.BigEndian.PutUint64(cdb[2:], lba)
	binary.BigEndian.PutUint32(cdb[10:], blocks)
	return cdb
}

// command runs one command on LUN 0 as an initiator would: a unit
// attention is recorded and the command retried. A command that fails
// otherwise is an I/O error (recorded, the data is nil); a broken
// connection ends the loop (ok is false).
func (s *liveSession) command(cycle int64, cdb, out []byte, readLen int) (data []byte, ok bool) {
	for attempt := 0; attempt < 8; attempt++ {
		s.c.SetDeadline(time.Now().Add(30 * time.Second))
		rsp, err := s.c.Command(scsi.LUN(0).Encode(), cdb, out, readLen)
		s.collectAsync(cycle)
		if err != nil {
			s.mu.Lock()
			s.fatal = fmt.Errorf("cycle %d: %s: %w", cycle, scsiOp(cdb), err)
			s.mu.Unlock()
			return nil, false
		}
		if rsp.Response != iscsi.CommandCompleted {
			s.ioError("cycle %d: %s: iSCSI response %v", cycle, scsiOp(cdb), rsp.Response)
			return nil, true
		}
		s.window.Store(int64(int32(s.c.MaxCmdSN() - s.c.CmdSN() + 1)))
		if rsp.Status == statusGood {
			s.ops.Add(1)
			return rsp.Data, true
		}
		sn, _ := parseSense(rsp.Sense)
		if rsp.Status == statusCheckCondition && sn.key == senseKeyUnitAttention {
			s.mu.Lock()
			s.events = append(s.events, liveEvent{cycle: cycle, ua: true, sense: sn})
			s.mu.Unlock()
			continue
		}
		s.ioError("cycle %d: %s: status %02Xh sense %v", cycle, scsiOp(cdb), rsp.Status, sn)
		return nil, true
	}
	s.ioError("cycle %d: %s: still UNIT ATTENTION after 8 attempts", cycle, scsiOp(cdb))
	return nil, true
}

func scsiOp(cdb []byte) string {
	switch cdb[0] {
	case 0x00:
		return "TEST UNIT READY"
	case 0x88:
		return "READ(16)"
	case 0x8a:
		return "WRITE(16)"
	}
	return fmt.Sprintf("opcode %02Xh", cdb[0])
}

func (s *liveSession) collectAsync(cycle int64) {
	if len(s.c.Async) == 0 {
		return
	}
	s.mu.Lock()
	for _, m := range s.c.Async {
		s.events = append(s.events, liveEvent{cycle: cycle, async: m.Event})
	}
	s.mu.Unlock()
	s.c.Async = s.c.Async[:0]
}

func (s *liveSession) ioError(format string, args ...any) {
	s.mu.Lock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// sync waits until two load cycles that began after the call have
// completed, so that whatever the target raised before the call has been
// reported to the session. It returns the session's fatal error, if any.
func (s *liveSession) sync(timeout time.Duration) error {
	want := s.started.Load() + 2
	deadline := time.Now().Add(timeout)
	for s.cycles.Load() < want {
		if err := s.err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the live session completed no load cycle within %v (at cycle %d)", timeout, s.cycles.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s.err()
}

func (s *liveSession) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// eventsSince returns the events from index from on, and the next index.
func (s *liveSession) eventsSince(from int) ([]liveEvent, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]liveEvent(nil), s.events[from:]...), len(s.events)
}

func (s *liveSession) ioErrors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

// finish stops the load loop, pings, and logs out: the session must still
// be the one that logged in at the start. Later calls return the first
// call's outcome.
func (s *liveSession) finish() error {
	s.finishOnce.Do(func() { s.finishErr = s.end() })
	return s.finishErr
}

func (s *liveSession) end() error {
	close(s.stop)
	<-s.done
	if err := s.err(); err != nil {
		s.c.Close()
		return err
	}
	defer s.c.Close()
	s.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.c.NOP([]byte("still here")); err != nil {
		return fmt.Errorf("NOP-Out after the scenario: %w", err)
	}
	rsp, err := s.c.Logout()
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if rsp != iscsi.LogoutSuccess {
		return fmt.Errorf("logout answered %v", rsp)
	}
	return nil
}

// qemuLoad runs qemu-io against A's LUN 0 in a loop, each run writing and
// reading back (with pattern verification) 16 blocks of 256 KiB spread
// over the first 16 MiB.
type qemuLoad struct {
	url  string
	base int          // byte offset of the first block
	ops  atomic.Int64 // qemu-io commands that completed
	runs atomic.Int64

	mu   sync.Mutex
	errs []string
	// notes counts the other lines qemu-io printed, such as the unit
	// attentions its iSCSI driver retried after.
	notes map[string]int

	cancel context.CancelFunc
	done   chan struct{}
}

const (
	qemuIOSize   = 256 << 10
	qemuIOBlocks = 16
	qemuIOStride = mib
)

func startQemuLoad(url string) *qemuLoad { return startQemuLoadAt(url, 0) }

// startQemuLoadAt is startQemuLoad over the 16 MiB from byte base, so
// that loads through several paths to one LU keep out of each other's way.
func startQemuLoadAt(url string, base int) *qemuLoad {
	ctx, cancel := context.WithCancel(context.Background())
	q := &qemuLoad{url: url, base: base, cancel: cancel, done: make(chan struct{}), notes: map[string]int{}}
	go func() {
		defer close(q.done)
		for run := 0; ctx.Err() == nil; run++ {
			q.once(ctx, byte(run%250+1))
		}
	}()
	return q
}

// once is one qemu-io run; a run cut short by stop is not counted.
func (q *qemuLoad) once(ctx context.Context, pat byte) {
	args := []string{"-f", "raw"}
	for i := range qemuIOBlocks {
		off := q.base + i*qemuIOStride
		args = append(args, "-c", fmt.Sprintf("write -P 0x%02x %d %d", pat, off, qemuIOSize),
			"-c", fmt.Sprintf("read -P 0x%02x %d %d", pat, off, qemuIOSize))
	}
	args = append(args, q.url)
	out, err := exec.CommandContext(ctx, "qemu-io", args...).CombinedOutput()
	if ctx.Err() != nil {
		return
	}
	wrote := fmt.Sprintf("wrote %d/%d bytes", qemuIOSize, qemuIOSize)
	read := fmt.Sprintf("read %d/%d bytes", qemuIOSize, qemuIOSize)
	var n int64
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, wrote) || strings.HasPrefix(line, read):
			n++
		case line == "" || strings.Contains(line, " ops; "):
		default:
			q.mu.Lock()
			q.notes[line]++
			q.mu.Unlock()
		}
	}
	q.ops.Add(n)
	q.runs.Add(1)
	text := string(out)
	if err != nil || n != 2*qemuIOBlocks || strings.Contains(text, "Pattern verification failed") ||
		strings.Contains(text, "failed") {
		q.mu.Lock()
		q.errs = append(q.errs, fmt.Sprintf("qemu-io run with pattern 0x%02x: %v, %d of %d commands completed\n%s",
			pat, err, n, 2*qemuIOBlocks, text))
		q.mu.Unlock()
	}
}

func (q *qemuLoad) finish() {
	q.cancel()
	<-q.done
}

func (q *qemuLoad) ioErrors() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.errs...)
}

// messages returns what else qemu-io printed, with counts.
func (q *qemuLoad) messages() map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return maps.Clone(q.notes)
}
