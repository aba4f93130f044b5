package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// The hostile-client suite: each attack runs against a fresh daemon
// while an innocent qemu-io session writes and reads back verified data
// beside it, and a login is timed while the attack goes on. Each checks
// that the daemon's resident memory stays under hostileRSSLimit, that
// the innocent session sees no error, that the login takes less than
// hostileLoginLimit, and, once the attacker is gone, that the memory
// comes back to within hostileRSSReturn of where it was. Attackers come
// from addresses of 127.0.0.0/8 other than 127.0.0.1, the innocent's.

const hostileConfig = `
iscsi { portals = ["{{.Portal}}"] }

handler "vdisk_fileio" {
  device "disk0" {
    filename = "{{.Dir}}/disk0.img"
    size     = "64MiB"
  }
}
handler "vdisk_nullio" {
  device "null0" { size = "1GiB" }
  device "null1" { size = "64MiB" }
}

target "iqn.2026-11.org.example:t1" {
  lun "0" { device = "disk0" }
}
target "iqn.2026-11.org.example:t2" {
  lun "0" { device = "null0" }
}
target "iqn.2026-11.org.example:chap" {
  incoming_user "joe" { secret = "` + hostileSecret + `" }
  lun "0" { device = "null1" }
}
`

const (
	hostileSecret     = "joe-secret-0042"
	hostileChap       = "iqn.2026-11.org.example:chap"
	hostileRSSLimit   = 256 << 20
	hostileRSSReturn  = 64 << 20
	hostileLoginLimit = 2 * time.Second
	// hostileAttack is how long the floods last.
	hostileAttack = 4 * time.Second
)

// hostileRun is one attack: the daemon, the innocent session, the memory
// watch and the timed logins around it.
type hostileRun struct {
	t        *testing.T
	tgt      *testtarget.Target
	pid      int
	idle     int64
	runs0    int64 // innocent runs before the attack
	peak     atomic.Int64
	stop     chan struct{}
	sampled  chan struct{}
	innocent *qemuLoad
	logins   []time.Duration
}

// hostileNoFile raises the test process's open file limit (hard limit
// too, when allowed): the attacks hold 20,000 sockets.
var hostileNoFile = sync.OnceValue(func() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	want := lim
	want.Cur, want.Max = max(lim.Max, 65536), max(lim.Max, 65536)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		want.Cur, want.Max = lim.Max, lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return int(lim.Cur)
})

// startHostile starts the daemon on hostileConfig and the innocent
// session, and measures the idle memory.
func startHostile(t *testing.T) *hostileRun {
	t.Helper()
	requireTools(t, "qemu-io")
	hostileNoFile()
	tgt := testtarget.Start(t, hostileConfig)
	h := &hostileRun{t: t, tgt: tgt, pid: tgt.PID(), stop: make(chan struct{}), sampled: make(chan struct{})}
	h.innocent = startQemuLoad(tgt.LUNURL(iqnT1, 0))
	t.Cleanup(h.innocent.finish)
	// Let the innocent session run once, so that idle counts its buffers.
	for deadline := time.Now().Add(time.Minute); h.innocent.runs.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the innocent qemu-io never completed a run: %v", h.innocent.ioErrors())
		}
	}
	h.idle = vmRSS(t, h.pid)
	h.peak.Store(h.idle)
	h.runs0 = h.innocent.runs.Load()
	go h.sample()
	return h
}

// vmRSS reads the resident memory of pid from /proc.
func vmRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the daemon's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// sample records the peak resident memory until stop.
func (h *hostileRun) sample() {
	defer close(h.sampled)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				if kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64); err == nil {
					for n, p := kb<<10, h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
					}
				}
			}
		}
	}
}

// timedLogin logs in to target from 127.0.0.1 (the innocent's address)
// as the attack goes on and records how long it took.
func (h *hostileRun) timedLogin(target string, chap *initiator.CHAP) {
	h.t.Helper()
	h.timedLoginFrom("127.0.0.1", target, chap, hostileLoginLimit)
}

// timedLoginFrom is timedLogin from another address, whose login must
// take less than limit.
func (h *hostileRun) timedLoginFrom(from, target string, chap *initiator.CHAP, limit time.Duration) time.Duration {
	h.t.Helper()
	start := time.Now()
	c, err := dialFrom(from, h.tgt.Portal())
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		err = c.Login(initiator.Options{InitiatorName: "iqn.2026-11.org.example:innocent", TargetName: target,
			ISID: [6]byte{0x80, 0, 0, 0, 0x77, byte(len(h.logins))}, CHAP: chap})
	}
	d := time.Since(start)
	if err != nil {
		h.t.Errorf("a login from %s during the attack failed after %s: %v", from, d.Round(time.Millisecond), err)
		return d
	}
	h.logins = append(h.logins, d)
	if d > limit {
		h.t.Errorf("a login from %s during the attack took %s, want under %s", from, d.Round(time.Millisecond), limit)
	}
	if _, err := c.Logout(); err != nil {
		h.t.Errorf("logout after the timed login: %v", err)
	}
	return d
}

// end checks the memory and the innocent session once the attacker is
// gone (the caller closed its connections).
func (h *hostileRun) end(name string) {
	t := h.t
	t.Helper()
	closeAt := time.Now()
	back := h.idle + hostileRSSReturn
	var rss int64
	for {
		rss = vmRSS(t, h.pid)
		if rss <= back && h.innocent.runs.Load() > h.runs0 || time.Since(closeAt) > time.Minute {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	returned := time.Since(closeAt)
	close(h.stop)
	<-h.sampled
	runs := h.innocent.runs.Load()
	h.innocent.finish()
	peak := h.peak.Load()
	t.Logf("%s: RSS idle %d MiB, peak %d MiB, %d MiB %s after the attacker left; innocent qemu-io: %d runs, %d verified I/Os; logins during the attack: %v",
		name, h.idle>>20, peak>>20, rss>>20, returned.Round(100*time.Millisecond), runs, h.innocent.ops.Load(), h.logins)
	if peak > hostileRSSLimit {
		t.Errorf("%s: the daemon's RSS peaked at %d MiB, limit %d MiB", name, peak>>20, hostileRSSLimit>>20)
	}
	if rss > back {
		t.Errorf("%s: a minute after the attacker left, RSS is %d MiB, idle was %d MiB", name, rss>>20, h.idle>>20)
	}
	if errs := h.innocent.ioErrors(); len(errs) > 0 {
		t.Errorf("%s: the innocent session saw errors:\n%s", name, strings.Join(errs, "\n"))
	}
	if runs <= h.runs0 {
		t.Errorf("%s: the innocent session completed no run since the attack began", name)
	}
	if len(h.logins) == 0 && !t.Failed() {
		t.Errorf("%s: no login was timed during the attack", name)
	}
}

// dialFrom connects to portal from the local address from.
func dialFrom(from, portal string) (*initiator.Conn, error) {
	nc, err := rawDialFrom(from, portal)
	if err != nil {
		return nil, err
	}
	return initiator.NewConn(nc), nil
}

func rawDialFrom(from, portal string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return d.Dial("tcp", portal)
}

// attacker logs in to t2 from from with its own initiator name.
func (h *hostileRun) attacker(from string, maxRecvDSL uint32) *initiator.Conn {
	h.t.Helper()
	c, err := dialFrom(from, h.tgt.Portal())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	// A session of its own per address (same name, ISID from the address).
	ip := net.ParseIP(from).To4()
	isid := [6]byte{0x80, 0, ip[0], ip[1], ip[2], ip[3]}
	if err := c.Login(initiator.Options{InitiatorName: "iqn.2026-11.org.example:attacker", TargetName: iqnT2,
		ISID: isid, MaxRecvDSL: maxRecvDSL, ImmediateData: true}); err != nil {
		h.t.Fatalf("attacker login: %v", err)
	}
	return c
}

// flood writes PDUs made by next to c for d without reading anything,
// and returns how many went out. A write that blocks (the target stopped
// reading) is retried until d is over.
func flood(c *initiator.Conn, d time.Duration, next func(i int) []byte) int {
	nc := c.NetConn()
	end := time.Now().Add(d)
	n := 0
	var pending []byte
	for time.Now().Before(end) {
		if len(pending) == 0 {
			pending = next(n)
			n++
		}
		nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		w, err := nc.Write(pending)
		pending = pending[w:]
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	return n
}

// frame encodes one PDU for flood.
func frame(h *iscsi.BHS, data []byte) []byte {
	return iscsi.AppendFrame(nil, h, nil, data, false, false)
}

// floodAttack runs one flood per attacker session for hostileAttack,
// times a login halfway, closes the attackers and checks the outcome. A
// flood's next makes its i-th PDU; what counts how many PDUs a call
// of next makes.
func (h *hostileRun) floodAttack(name, what string, per int, attackers []*initiator.Conn, next func(c *initiator.Conn) func(i int) []byte) {
	h.t.Helper()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for _, c := range attackers {
		gen := next(c)
		wg.Go(func() { sent.Add(int64(per * flood(c, hostileAttack, gen))) })
	}
	time.Sleep(hostileAttack / 2)
	h.timedLogin(iqnT1, nil)
	wg.Wait()
	h.t.Logf("%s: %d %s sent by %d session(s), none of the answers read", name, sent.Load(), what, len(attackers))
	for _, c := range attackers {
		c.Close()
	}
	h.end(name)
}

// scsiFrame encodes a SCSI command for a flood.
func scsiFrame(cmd iscsi.SCSICommand, cdb []byte) []byte {
	copy(cmd.CDB[:], cdb)
	var b iscsi.BHS
	cmd.Encode(&b)
	return frame(&b, nil)
}

// TestHostileUnreadNOPOutFlood: six sessions ping with 1 MiB each and
// never read the answers; together they would hold far more than the
// innocent, and must give it back once gone.
func TestHostileUnreadNOPOutFlood(t *testing.T) {
	h := startHostile(t)
	ping := make([]byte, 1<<20)
	var attackers []*initiator.Conn
	for i := range 6 {
		attackers = append(attackers, h.attacker(fmt.Sprintf("127.0.2.%d", 10+i), 1<<20))
	}
	h.floodAttack("unread NOP-Out flood", "pings of 1 MiB", 1, attackers, func(c *initiator.Conn) func(int) []byte {
		cmdSN := c.CmdSN()
		return func(i int) []byte {
			var b iscsi.BHS
			(&iscsi.NOPOut{Immediate: true, ITT: uint32(i), TTT: iscsi.ReservedTag, CmdSN: cmdSN}).Encode(&b)
			return frame(&b, ping)
		}
	})
}

// TestHostileUnreadReadFlood: READs of 8 MiB, numbered on past MaxCmdSN,
// whose data is never read.
func TestHostileUnreadReadFlood(t *testing.T) {
	h := startHostile(t)
	attackers := []*initiator.Conn{h.attacker("127.0.2.2", 1<<20)}
	h.floodAttack("unread READ flood", "READs of 8 MiB", 1, attackers, func(c *initiator.Conn) func(int) []byte {
		sn := c.CmdSN()
		return func(i int) []byte {
			return scsiFrame(iscsi.SCSICommand{Final: true, Read: true, Attr: scsi.Simple, ITT: uint32(i),
				CmdSN: sn + uint32(i), ExpectedDataTransferLength: 8 << 20}, rw10(0x28, uint32(i%64)*16384, 16384))
		}
	})
}

// TestHostileInquiryHugeEDTL: windowed and immediate INQUIRYs announcing
// 16 MiB each, none of the answers read.
func TestHostileInquiryHugeEDTL(t *testing.T) {
	h := startHostile(t)
	attackers := []*initiator.Conn{h.attacker("127.0.2.3", 1<<20)}
	h.floodAttack("INQUIRY with 16 MiB EDTL", "INQUIRYs", 1, attackers, func(c *initiator.Conn) func(int) []byte {
		sn := c.CmdSN()
		return func(i int) []byte {
			return scsiFrame(iscsi.SCSICommand{Immediate: i%2 == 1, Final: true, Read: true, Attr: scsi.Simple,
				ITT: uint32(i), CmdSN: sn + uint32(i/2), ExpectedDataTransferLength: 16 << 20},
				[]byte{0x12, 0, 0, 0xff, 0xff, 0})
		}
	})
}

// TestHostileRejectFlood: headers of an opcode that does not exist, each
// answered with a Reject that is never read.
func TestHostileRejectFlood(t *testing.T) {
	h := startHostile(t)
	batch := make([]byte, 0, 1024*iscsi.BHSLen)
	for i := range 1024 {
		var b iscsi.BHS
		b.SetOpcode(0x1f, true) // no such opcode: Reject
		b.SetITT(uint32(i))
		batch = append(batch, frame(&b, nil)...)
	}
	attackers := []*initiator.Conn{h.attacker("127.0.2.4", 0)}
	h.floodAttack("Reject flood", "unknown-opcode headers", 1024, attackers, func(*initiator.Conn) func(int) []byte {
		return func(int) []byte { return batch }
	})
}

func TestHostileOutOfWindowCommands(t *testing.T) {
	h := startHostile(t)
	c := h.attacker("127.0.2.5", 0)
	// WRITEs announcing 8 MiB that never send data, numbered on past
	// MaxCmdSN, and immediate ones beside them.
	sn := c.CmdSN()
	sent := flood(c, time.Second, func(i int) []byte {
		return scsiFrame(iscsi.SCSICommand{Immediate: i%4 == 3, Final: true, Write: true, Attr: scsi.Simple,
			ITT: uint32(i), CmdSN: sn + uint32(i), ExpectedDataTransferLength: 8 << 20}, rw10(0x2a, uint32(i%64)*16384, 16384))
	})
	time.Sleep(500 * time.Millisecond)
	active := -1
	for _, s := range liveSessions(t, h.tgt) {
		if s.Initiator == "iqn.2026-11.org.example:attacker" {
			active = s.ActiveCommands
		}
	}
	t.Logf("%d WRITEs of 8 MiB sent without data; %d tasks live", sent, active)
	// queued_commands (32) in the window, immediate ones bounded at
	// 2*32+64.
	if active < 0 || active > 32+2*32+64 {
		t.Errorf("%d tasks live after %d WRITEs without data", active, sent)
	}
	h.timedLogin(iqnT1, nil)
	c.Close()
	h.end("out-of-window commands")
}

// sources spreads n connections over loopback source addresses of
// 127.0.x.y, at most per of them on one address.
func sources(base byte, n, per int) []string {
	out := make([]string, n)
	for i := range n {
		a := i / per
		out[i] = fmt.Sprintf("127.%d.%d.%d", base, a/250, 1+a%250)
	}
	return out
}

// openMany opens the connections to portal from the given sources with
// workers goroutines, running prepare on each, and returns those open.
func openMany(t *testing.T, portal string, from []string, prepare func(net.Conn) error) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, len(from))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(from) {
					return
				}
				nc, err := rawDialFrom(from[i], portal)
				if err != nil {
					continue
				}
				if prepare != nil && prepare(nc) != nil {
					nc.Close()
					continue
				}
				conns[i] = nc
			}
		})
	}
	wg.Wait()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// holderEnv makes the test binary a helper process that holds idle
// connections: "portal mode base n", see TestHostileHolder.
const holderEnv = "SCSTD_E2E_HOLDER"

// TestHostileHolder is not a test but the helper process of the idle
// connection attacks: one process may not open 20,000 files here (the
// hard limit is 20,000 and cannot be raised without CAP_SYS_RESOURCE),
// so a second one holds half of them. It opens n connections from
// 127.<base>.x.y ("tcp": idle; "discovery": logged in to discovery
// sessions), prints how many are open, and holds them until its stdin
// closes.
func TestHostileHolder(t *testing.T) {
	spec := os.Getenv(holderEnv)
	if spec == "" {
		t.Skip("the helper process of the idle connection attacks")
	}
	var portal, mode string
	var base, n int
	if _, err := fmt.Sscan(spec, &portal, &mode, &base, &n); err != nil {
		t.Fatalf("%s=%q: %v", holderEnv, spec, err)
	}
	var prepare func(net.Conn) error
	if mode == "discovery" {
		prepare = discoveryLogin
	}
	conns := openMany(t, portal, sources(byte(base), n, 200), prepare)
	fmt.Printf("opened %d\n", len(conns))
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// holdMany opens 2n connections: n here, n in a helper process (see
// TestHostileHolder). It returns how many are open and a function that
// closes them all.
func holdMany(t *testing.T, portal, mode string, base byte, n int) (int, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostileHolder$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %d", holderEnv, portal, mode, base+1, n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var prepare func(net.Conn) error
	if mode == "discovery" {
		prepare = discoveryLogin
	}
	mine := openMany(t, portal, sources(base, n, 200), prepare)
	var theirs int
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "opened %d", &theirs); err == nil {
			break
		}
	}
	closeAll := func() {
		for _, c := range mine {
			c.Close()
		}
		stdin.Close()
		io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil {
			t.Errorf("the helper process holding connections: %v", err)
		}
	}
	return len(mine) + theirs, closeAll
}

func TestHostileIdleTCPConnections(t *testing.T) {
	h := startHostile(t)
	start := time.Now()
	open, closeAll := holdMany(t, h.tgt.Portal(), "tcp", 3, 10000)
	t.Logf("%d of 20,000 idle TCP connections open after %s", open, time.Since(start).Round(time.Millisecond))
	h.timedLogin(iqnT1, nil)
	h.timedLogin(iqnT2, nil)
	// The admin socket has its descriptors kept in reserve.
	if out, code := testtarget.Run(t, "status", "-admin-socket", h.tgt.AdminSocket()); code != 0 {
		t.Errorf("scstd status during the attack: exit %d\n%s", code, out)
	}
	closeAll()
	if !strings.Contains(h.tgt.Stderr(), "cap=max_connections") {
		t.Error("no log line says the max_connections cap refused connections")
	}
	h.end("20,000 idle TCP connections")
}

// discoveryLogin sends a one-PDU discovery login on nc and reads its
// answer with a small buffer.
func discoveryLogin(nc net.Conn) error {
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	defer nc.SetDeadline(time.Time{})
	req := iscsi.LoginRequest{Transit: true, CSG: iscsi.StageOperational, NSG: iscsi.StageFullFeature,
		ISID: [6]byte{0x80, 0, 0, 0, 0, 9}, CmdSN: 1}
	var b iscsi.BHS
	req.Encode(&b)
	keys := iscsi.Text{{Key: "InitiatorName", Value: "iqn.2026-11.org.example:crowd"}, {Key: "SessionType", Value: "Discovery"},
		{Key: "HeaderDigest", Value: "None"}, {Key: "DataDigest", Value: "None"}}
	if _, err := nc.Write(frame(&b, iscsi.AppendText(nil, keys))); err != nil {
		return err
	}
	r := bufio.NewReaderSize(nc, 512)
	var rh iscsi.BHS
	if _, err := io.ReadFull(r, rh[:]); err != nil {
		return err
	}
	var rsp iscsi.LoginResponse
	if err := rsp.Decode(&rh); err != nil || rsp.Status != iscsi.LoginSuccess || !rsp.Transit {
		return fmt.Errorf("discovery login: %+v %v", rsp, err)
	}
	_, err := io.CopyN(io.Discard, r, int64(rh.DataSegmentLength()+uint32((4-rh.DataSegmentLength()%4)%4)))
	return err
}

func TestHostileIdleDiscoverySessions(t *testing.T) {
	h := startHostile(t)
	start := time.Now()
	open, closeAll := holdMany(t, h.tgt.Portal(), "discovery", 5, 10000)
	t.Logf("%d of 20,000 idle discovery sessions logged in after %s", open, time.Since(start).Round(time.Millisecond))
	if open == 0 {
		t.Error("no discovery session logged in")
	}
	h.timedLogin(iqnT1, nil)
	closeAll()
	h.end("20,000 idle discovery sessions")
}

// chapGuesses runs attackers goroutines that guess joe's secret in turn
// from the given addresses for d, and returns how many wrong guesses were
// checked (answered AUTHENTICATION FAILURE) and how many were refused
// unchecked (SERVICE UNAVAILABLE, or the connection refused by a cap).
func chapGuesses(h *hostileRun, from []string, d time.Duration) (checked, unchecked int64) {
	var ok, no atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, src := range from {
		wg.Go(func() {
			for time.Now().Before(end) {
				c, err := dialFrom(src, h.tgt.Portal())
				if err != nil {
					no.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				c.SetDeadline(time.Now().Add(30 * time.Second))
				err = c.Login(initiator.Options{InitiatorName: "iqn.2026-11.org.example:guesser", TargetName: hostileChap,
					CHAP: &initiator.CHAP{Name: "joe", Secret: "guess-" + src, Algorithms: []access.CHAPAlgorithm{access.CHAPMD5}}})
				c.Close()
				var le *initiator.LoginError
				switch {
				case errors.As(err, &le) && le.Status == iscsi.LoginAuthFailed:
					ok.Add(1)
				case err == nil:
					h.t.Errorf("a guess from %s logged in", src)
				default:
					no.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return ok.Load(), no.Load()
}

// chapAttack guesses joe's secret from the given addresses for d while
// the right secret logs in from the user's own address (within
// hostileLoginLimit) and from a clean one (within cleanLimit), and checks
// the throttle's figures.
func chapAttack(t *testing.T, name string, from []string, cleanLimit time.Duration) {
	h := startHostile(t)
	joe := &initiator.CHAP{Name: "joe", Secret: hostileSecret}
	h.timedLogin(hostileChap, joe) // the user's own address, before the attack
	h.logins = nil
	const d = 15 * time.Second
	start := time.Now()
	var checked, unchecked int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		checked, unchecked = chapGuesses(h, from, d)
	}()
	time.Sleep(d / 3)
	h.timedLogin(hostileChap, joe)
	time.Sleep(time.Until(start.Add(d * 2 / 3)))
	clean := h.timedLoginFrom("127.0.0.77", hostileChap, joe, cleanLimit)
	<-done
	elapsed := time.Since(start)
	t.Logf("%s: %d wrong guesses checked (%.1f a minute beyond the first 5), %d refused unchecked, in %s; right secret from a clean address after %s",
		name, checked, float64(max(checked-5, 0))/elapsed.Minutes(), unchecked, elapsed.Round(time.Millisecond), clean.Round(time.Millisecond))
	if limit := 5 + int64(elapsed/(6*time.Second)) + 1; checked > limit {
		t.Errorf("%s: %d wrong guesses checked in %s, want at most %d (5, then 10 a minute)", name, checked, elapsed, limit)
	}
	h.end(name)
}

func TestHostileCHAPParallelGuesses(t *testing.T) {
	from := make([]string, 300)
	for i := range from {
		from[i] = "127.0.5.1"
	}
	chapAttack(t, "300 parallel CHAP guesses", from, hostileLoginLimit)
}

// TestHostileCHAPRotatingAddresses: a guess from an address the
// throttle has not seen looks like a correct login from a new address:
// that one waits for the user's next check (at most 7.5 s, ahead of the
// attackers whose addresses failed); the user's own address not at all.
func TestHostileCHAPRotatingAddresses(t *testing.T) {
	chapAttack(t, "CHAP guesses from 64 addresses", sources(9, 64, 1), 10*time.Second)
}

func TestHostileCraftedInitiatorName(t *testing.T) {
	h := startHostile(t)
	for _, name := range []string{
		"iqn.2026-11.org.example:\x1b[2J\x1b[Hengine: forged",
		"iqn.2026-11.org.example:x\r\nengine: forged",
		"not an iscsi name",
	} {
		c, err := dialFrom("127.0.2.9", h.tgt.Portal())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(time.Minute))
		err = c.Login(initiator.Options{InitiatorName: name, TargetName: iqnT1})
		c.Close()
		if st := statusOf(t, err); st != iscsi.LoginInitiatorError {
			t.Errorf("InitiatorName %q: login %v, want %v", name, st, iscsi.LoginInitiatorError)
		}
	}
	h.timedLogin(iqnT1, nil)
	status, code := testtarget.Run(t, "status", "-admin-socket", h.tgt.AdminSocket())
	if code != 0 {
		t.Fatalf("scstd status: exit %d\n%s", code, status)
	}
	for what, out := range map[string]string{"scstd status": status, "the daemon's log": h.tgt.Stderr()} {
		if strings.ContainsAny(out, "\x1b\r") {
			t.Errorf("%s prints a control character raw:\n%q", what, out)
		}
		if strings.Contains(out, "\nengine: forged") {
			t.Errorf("%s shows a forged line", what)
		}
	}
	h.end("crafted initiator name")
}
