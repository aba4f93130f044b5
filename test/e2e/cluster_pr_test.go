package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/cluster"
	"github.com/scstd/scstd/internal/etcdtest"
	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/scsi"
)

// startGateways starts one gateway of gatewayConfig per name, on
// 127.0.0.1, 127.0.0.2, ..., sharing one backing file, and waits until
// each sees them all with their ports active. It returns the gateways
// and the shared file.
func startGateways(t *testing.T, etcd *etcdtest.Server, names ...string) ([]*testtarget.Target, string) {
	t.Helper()
	shared := filepath.Join(t.TempDir(), "shared0.img")
	gws := make([]*testtarget.Target, len(names))
	for i, name := range names {
		gws[i] = testtarget.New(t, gatewayFile(etcd.Endpoint(), shared, 32))
		gws[i].SetHost(fmt.Sprintf("127.0.0.%d", i+1))
		gws[i].SetEnv("SCSTD_GATEWAY="+name, "SCSTD_PORTAL="+gws[i].Portal())
		gws[i].Start()
	}
	for _, g := range gws {
		waitUntil(t, 20*time.Second, g.Portal()+" sees every gateway, its ports active", func() bool {
			st := clusterOf(t, g)
			return st.State == cluster.Connected && slices.Equal(memberNames(st), names) && allActive(st)
		})
	}
	return gws, shared
}

// allActive reports whether a gateway and every member it sees have
// their ports active.
func allActive(st cluster.Status) bool {
	for _, m := range st.Members {
		if m.State != "active" {
			return false
		}
	}
	return st.PortState == "active"
}

const (
	statusReservationConflict = 0x18
	outcomeTransition         = "02h/04h/0Ah" // NOT READY, LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION
	outcomePreempted          = "06h/2Ah/05h" // UNIT ATTENTION, REGISTRATIONS PREEMPTED
	outcomeUnavailable        = "02h/04h/0Ch" // NOT READY, LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE
)

// TestClusterReservations: persistent reservations are one state for the
// logical unit through every gateway. A reservation taken through gw1
// gives RESERVATION CONFLICT through gw2 as soon as the PR OUT completed;
// a preemption through gw2 cuts off the holder on gw1; with etcd stopped
// a PR OUT is refused with NOT READY (the initiator retries) and a log
// line, and works again once etcd is back.
func TestClusterReservations(t *testing.T) {
	etcd := etcdtest.Start(t, etcdtest.Options{})
	gws, _ := startGateways(t, etcd, "gw1", "gw2")
	gw1, gw2 := gws[0], gws[1]
	a := pathSession(t, gw1.Portal(), iqnT1, "iqn.2026-11.org.example:host-a")
	defer a.Close()
	b := pathSession(t, gw2.Portal(), iqnT1, "iqn.2026-11.org.example:host-b")
	defer b.Close()
	block := make([]byte, 512)

	// A registers and reserves (write exclusive) through gw1.
	start := time.Now()
	if got := outcome(command(t, a, "5f 00 00 0000 00000018 00", prParams(0, 0xa, false), 0)); got != "GOOD" {
		t.Fatalf("REGISTER through gw1: %s", got)
	}
	register := time.Since(start)
	start = time.Now()
	if got := outcome(command(t, a, "5f 01 01 0000 00000018 00", prParams(0xa, 0, false), 0)); got != "GOOD" {
		t.Fatalf("RESERVE through gw1: %s", got)
	}
	reserve := time.Since(start)
	t.Logf("PR OUT through gw1 with gw2 in the cluster: REGISTER %v, RESERVE %v", register, reserve)

	// Right after: B, through gw2, is held off writing and may read.
	if rsp := command(t, b, "2a 00 00000000 00 0001 00", block, 0); rsp.Status != statusReservationConflict {
		t.Errorf("WRITE through gw2 right after the reservation through gw1: %s, want RESERVATION CONFLICT", outcome(rsp))
	}
	if got := outcome(command(t, b, "28 00 00000000 00 0001 00", nil, 512)); got != "GOOD" {
		t.Errorf("READ through gw2 under a write exclusive reservation: %s", got)
	}
	keys := command(t, b, "5e 00 00000000 00 1000 00", nil, 4096)
	if keys.Status != statusGood || hex.EncodeToString(keys.Data) != "00000001"+"00000008"+"000000000000000a" {
		t.Errorf("READ KEYS through gw2: %s % x; want generation 1, key Ah", outcome(keys), keys.Data)
	}
	res := command(t, b, "5e 01 00000000 00 1000 00", nil, 4096)
	if res.Status != statusGood || hex.EncodeToString(res.Data) != "00000001"+"00000010"+"000000000000000a"+"00000000"+"00"+"01"+"0000" {
		t.Errorf("READ RESERVATION through gw2: %s % x; want key Ah, write exclusive", outcome(res), res.Data)
	}
	if got := outcome(command(t, a, "2a 00 00000000 00 0001 00", block, 0)); got != "GOOD" {
		t.Errorf("WRITE by the holder through gw1: %s", got)
	}

	// B registers and preempts A through gw2: A, through gw1, is told
	// and held off.
	if got := outcome(command(t, b, "5f 00 00 0000 00000018 00", prParams(0, 0xb, false), 0)); got != "GOOD" {
		t.Fatalf("REGISTER through gw2: %s", got)
	}
	if got := outcome(command(t, b, "5f 04 01 0000 00000018 00", prParams(0xb, 0xa, false), 0)); got != "GOOD" {
		t.Fatalf("PREEMPT through gw2: %s", got)
	}
	if got := outcome(command(t, a, "2a 00 00000000 00 0001 00", block, 0)); got != outcomePreempted {
		t.Errorf("first command through gw1 after the preemption: %s, want %s", got, outcomePreempted)
	}
	if rsp := command(t, a, "2a 00 00000000 00 0001 00", block, 0); rsp.Status != statusReservationConflict {
		t.Errorf("WRITE through gw1 after the preemption: %s, want RESERVATION CONFLICT", outcome(rsp))
	}
	if got := outcome(command(t, b, "2a 00 00000000 00 0001 00", block, 0)); got != "GOOD" {
		t.Errorf("WRITE by the new holder through gw2: %s", got)
	}

	// etcd stops: past two thirds of the lease TTL the gateway fences
	// itself from the logical unit, which has reservations: media
	// access answers TARGET PORT IN UNAVAILABLE STATE, so that the
	// initiator moves on, and the log says why.
	etcd.Stop()
	waitUntil(t, 10*time.Second, "gw2 fences itself", func() bool { return clusterOf(t, gw2).Fence != "" })
	if got := outcome(command(t, b, "2a 00 00000000 00 0001 00", block, 0)); got != outcomeUnavailable {
		t.Errorf("WRITE through a fenced gw2: %s, want %s", got, outcomeUnavailable)
	}
	waitUntil(t, 5*time.Second, "gw2 logs its fence", func() bool { return strings.Contains(gw2.Stderr(), "cluster: fenced") })
	etcdBack := func() {
		t.Helper()
		etcd.Start()
		for _, g := range gws {
			waitUntil(t, 20*time.Second, g.Portal()+" may act again", func() bool {
				st := clusterOf(t, g)
				return st.State == cluster.Connected && st.Fence == ""
			})
		}
	}
	etcdBack()
	if got := outcome(command(t, b, "2a 00 00000000 00 0001 00", block, 0)); got != "GOOD" {
		t.Errorf("WRITE through gw2 with etcd back: %s", got)
	}

	// Without reservations the logical unit serves through an etcd
	// outage, but a PR OUT is refused with NOT READY (the initiator
	// retries) and a log line.
	if got := outcome(command(t, b, "5f 03 00 0000 00000018 00", prParams(0xb, 0, false), 0)); got != "GOOD" {
		t.Fatalf("CLEAR through gw2: %s", got)
	}
	etcd.Stop()
	waitUntil(t, 10*time.Second, "gw1 fences itself", func() bool { return clusterOf(t, gw1).Fence != "" })
	command(t, a, "00 00000000 00", nil, 0) // the unit attention of the CLEAR
	if got := outcome(command(t, a, "5f 00 00 0000 00000018 00", prParams(0, 0xa, false), 0)); got != outcomeTransition {
		t.Errorf("REGISTER through gw1 with etcd down: %s, want %s", got, outcomeTransition)
	}
	waitUntil(t, 5*time.Second, "gw1 logs the refused PR OUT", func() bool {
		return strings.Contains(gw1.Stderr(), `persistent reservation refused (NOT READY, the initiator retries)" device=shared0`)
	})
	if got := outcome(command(t, a, "2a 00 00000000 00 0001 00", block, 0)); got != "GOOD" {
		t.Errorf("WRITE through gw1 with etcd down and no reservations: %s", got)
	}
	etcdBack()
	if got := outcome(command(t, a, "5f 00 00 0000 00000018 00", prParams(0, 0xa, false), 0)); got != "GOOD" {
		t.Errorf("REGISTER through gw1 with etcd back: %s", got)
	}
	keys = command(t, b, "5e 00 00000000 00 1000 00", nil, 4096)
	if keys.Status != statusGood || !strings.HasSuffix(hex.EncodeToString(keys.Data), "00000008"+"000000000000000a") {
		t.Errorf("READ KEYS through gw2: %s % x; want key Ah alone", outcome(keys), keys.Data)
	}
}

// clusterCUSuites are the iscsi-test-cu runs through two gateways:
// the persistent reservation suites, then COMPARE AND WRITE (alone and
// racing through both paths) with multipath I/O.
var clusterCUSuites = []string{
	"SCSI.PrinReadKeys,SCSI.PrinServiceactionRange,SCSI.PrinReportCapabilities,SCSI.ProutRegister,SCSI.ProutReserve,SCSI.ProutClear,SCSI.ProutPreempt,SCSI.Reserve6",
	"SCSI.CompareAndWrite,SCSI.MultipathIO",
}

// clusterCUKnown are the iscsi-test-cu tests that fail through two
// gateways by design (docs/scale-out.md, "Left for later"): task
// management reaches the commands of the gateway that receives it only.
var clusterCUKnown = map[string]string{
	"MultipathIO.Reset": "a LOGICAL UNIT RESET through gw1 posts no unit attention to the nexuses of gw2 (no cross-gateway task management)",
}

// TestClusterLibiscsi runs libiscsi's reservation and COMPARE AND WRITE
// suites with the first path through gw1 and the second through gw2.
func TestClusterLibiscsi(t *testing.T) {
	requireTools(t, "iscsi-test-cu")
	all := ParseCUList(mustRun(t, "iscsi-test-cu", "-l"))
	etcd := etcdtest.Start(t, etcdtest.Options{})
	gws, _ := startGateways(t, etcd, "gw1", "gw2")
	for _, suites := range clusterCUSuites {
		list := selectTests(all, suites)
		if len(list) == 0 {
			t.Fatalf("iscsi-test-cu lists none of %s", suites)
		}
		out, err := run(t, cuTimeout, "iscsi-test-cu", "--dataloss", "-t", suites,
			"-i", initiatorFirst, "-I", initiatorSecond, gws[0].LUNURL(iqnT1, 0), gws[1].LUNURL(iqnT1, 0))
		results, sum := ParseCURun(list, out)
		t.Logf("iscsi-test-cu -t %s through gw1 and gw2 (exit: %v):\n%s", suites, err,
			FormatReport(results, func(CUTest) bool { return true }))
		if !sum.Found {
			t.Errorf("iscsi-test-cu ended without its summary (%v): the run was cut short", err)
		}
		for _, r := range results {
			why, known := clusterCUKnown[r.Suite+"."+r.Name]
			switch {
			case known && r.Outcome == Failed:
				t.Logf("known failure through two gateways %s: %s", r, why)
			case r.Outcome == Failed || r.Outcome == NotRun:
				t.Errorf("%s through two gateways: %v %s", r, r.Outcome, r.Detail)
			}
		}
	}
}

// TestClusterDrain: `scstd cluster drain gw1`, run on gw2, moves gw1's
// ports to standby — every gateway reports it and tells its sessions —
// while qemu-io goes on through gw2 with no I/O error; gw1 restarted
// stays standby; `undrain` gives gw1 back its configured state; a
// configuration edit does the same as a drain.
func TestClusterDrain(t *testing.T) {
	requireTools(t, "qemu-io")
	etcd := etcdtest.Start(t, etcdtest.Options{})
	gws, shared := startGateways(t, etcd, "gw1", "gw2")
	gw1, gw2 := gws[0], gws[1]
	// One host with a path through each gateway.
	const host = "iqn.2026-11.org.example:host-a"
	a := pathSession(t, gw1.Portal(), iqnT1, host)
	defer a.Close()
	b := pathSession(t, gw2.Portal(), iqnT1, host)
	defer b.Close()
	load := startQemuLoadAt(gw2.LUNURL(iqnT1, 0), 16<<20)
	defer load.finish()
	waitUntil(t, 30*time.Second, "qemu-io runs through gw2", func() bool { return load.ops.Load() > 0 })

	clusterCmd := func(op, gw string) (string, int) {
		return testtarget.Run(t, "cluster", "-admin-socket", gw2.AdminSocket(), op, gw)
	}
	start := time.Now()
	if out, code := clusterCmd("drain", "gw1"); code != 0 || !strings.Contains(out, "gateway gw1 drained") {
		t.Fatalf("scstd cluster drain gw1 (exit %d):\n%s", code, out)
	}
	t.Logf("drain of gw1 took %v", time.Since(start))
	for _, g := range gws {
		if got := targetGroupState(t, g, "gw1"); got != "standby" {
			t.Errorf("%s reports gw1's target port group %q, want standby", g.Portal(), got)
		}
	}
	if st := clusterOf(t, gw1); st.PortState != "standby" {
		t.Errorf("gw1's own state after the drain: %q", st.PortState)
	}
	// The host is told on both paths; gw1's is standby, gw2's serves.
	for _, c := range []struct {
		path string
		conn *initiator.Conn
		want []string
	}{{"gw1", a, []string{outcomeALUAChanged, outcomeStandby}}, {"gw2", b, []string{outcomeALUAChanged, "GOOD"}}} {
		for _, want := range c.want {
			if got := outcome(command(t, c.conn, "28 00 00000000 00 0001 00", nil, 512)); got != want {
				t.Errorf("READ through %s after the drain: %s, want %s", c.path, got, want)
			}
		}
	}
	before := load.ops.Load()
	waitUntil(t, 30*time.Second, "qemu-io goes on through gw2", func() bool { return load.ops.Load() > before+8 })

	if out, code := clusterCmd("drain", "gw9"); code != 1 || !strings.Contains(out, "not a member") {
		t.Errorf("scstd cluster drain gw9 (exit %d):\n%s", code, out)
	}
	// A drained gateway that restarts stays standby.
	a.Close()
	gw1.Restart()
	waitUntil(t, 20*time.Second, "gw1 rejoins, standby", func() bool {
		st := clusterOf(t, gw1)
		return st.State == cluster.Connected && st.PortState == "standby" && targetGroupState(t, gw2, "gw1") == "standby"
	})
	a = pathSession(t, gw1.Portal(), iqnT1, host)
	defer a.Close()
	if got := outcome(command(t, a, "28 00 00000000 00 0001 00", nil, 512)); got != outcomeStandby {
		t.Errorf("READ through gw1 restarted while drained: %s, want %s", got, outcomeStandby)
	}
	if out, code := clusterCmd("undrain", "gw1"); code != 0 || !strings.Contains(out, "gateway gw1 undrained") {
		t.Fatalf("scstd cluster undrain gw1 (exit %d):\n%s", code, out)
	}
	for _, g := range gws {
		if got := targetGroupState(t, g, "gw1"); got != "active/optimized" {
			t.Errorf("%s reports gw1's target port group %q after the undrain, want active/optimized", g.Portal(), got)
		}
	}
	if got := outcome(command(t, a, "28 00 00000000 00 0001 00", nil, 512)); got != outcomeALUAChanged {
		t.Errorf("READ through gw1 after the undrain: %s, want %s", got, outcomeALUAChanged)
	}
	if got := outcome(command(t, a, "28 00 00000000 00 0001 00", nil, 512)); got != "GOOD" {
		t.Errorf("READ through gw1 after the undrain: %s", got)
	}

	// The same by a configuration edit: gw1's target group standby in
	// the shared file, applied by every gateway.
	file := strings.Replace(gatewayFile(etcd.Endpoint(), shared, 32), `group_id  = 1`, `group_id  = 1
    state     = "standby"`, 1)
	for _, g := range gws {
		if r := g.Reconfigure(file); !r.OK {
			t.Fatalf("reload of %s: %s\n%s", g.Portal(), r.Error, r.Diagnostics)
		}
	}
	for _, g := range gws {
		waitUntil(t, 10*time.Second, g.Portal()+" reports gw1 standby by configuration", func() bool {
			return targetGroupState(t, g, "gw1") == "standby"
		})
	}
	command(t, a, "00 00000000 00", nil, 0) // the unit attention of the change
	if got := outcome(command(t, a, "28 00 00000000 00 0001 00", nil, 512)); got != outcomeStandby {
		t.Errorf("READ through gw1 configured standby: %s, want %s", got, outcomeStandby)
	}
	load.finish()
	if errs := load.ioErrors(); len(errs) > 0 {
		t.Errorf("qemu-io errors through gw2 during the drain:\n%s", strings.Join(errs, "\n"))
	}
}

// outcomeMiscompare is COMPARE AND WRITE's answer when the data differ.
const outcomeMiscompare = "0Eh/1Dh/00h" // MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION

// TestClusterCompareAndWriteAtomic: COMPARE AND WRITE is atomic across
// gateways. Initiators on gw1 and gw2 increment one counter at the
// start of a 255-block range (the longest COMPARE AND WRITE, so that the
// compare and the write take long) with READ, then COMPARE AND WRITE
// (old value -> old + 1), again on a miscompare: with the compare and
// the write of two gateways interleaved, both would see the same value
// and one increment would be lost.
func TestClusterCompareAndWriteAtomic(t *testing.T) {
	etcd := etcdtest.Start(t, etcdtest.Options{})
	gws, _ := startGateways(t, etcd, "gw1", "gw2")
	const perWorker, workers, blocks = 25, 8, 255
	var conns []*initiator.Conn
	for i := range workers {
		g := gws[i%2]
		c := pathSession(t, g.Portal(), iqnT1, fmt.Sprintf("iqn.2026-11.org.example:caw%d", i))
		defer c.Close()
		conns = append(conns, c)
	}
	// The counter starts at zero.
	if got := outcome(command(t, conns[0], "2a 00 00000000 00 00ff 00", make([]byte, blocks*512), 0)); got != "GOOD" {
		t.Fatalf("WRITE of blocks 0-254: %s", got)
	}
	type result struct {
		done, miscompares int
		latencies         []time.Duration
		err               error
	}
	results := make(chan result, len(conns))
	readCDB, _ := hex.DecodeString("28000000000000000100")
	cawCDB, _ := hex.DecodeString("890000000000000000000000" + "00ff0000")
	for _, c := range conns {
		go func() {
			var r result
			defer func() { results <- r }()
			for r.done < perWorker {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				rsp, err := c.Command(scsi.LUN(0).Encode(), readCDB, nil, 512)
				if err != nil || rsp.Status != statusGood {
					r.err = fmt.Errorf("READ: %v %v", err, rsp)
					return
				}
				old := binary.BigEndian.Uint64(rsp.Data)
				data := make([]byte, 2*blocks*512)
				binary.BigEndian.PutUint64(data, old)
				binary.BigEndian.PutUint64(data[blocks*512:], old+1)
				start := time.Now()
				rsp, err = c.Command(scsi.LUN(0).Encode(), cawCDB, data, 0)
				if err != nil {
					r.err = fmt.Errorf("COMPARE AND WRITE: %v", err)
					return
				}
				switch got := outcome(rsp); got {
				case "GOOD":
					r.done++
					r.latencies = append(r.latencies, time.Since(start))
				case outcomeMiscompare:
					r.miscompares++
				default:
					r.err = fmt.Errorf("COMPARE AND WRITE %d -> %d: %s", old, old+1, got)
					return
				}
			}
		}()
	}
	var all []time.Duration
	miscompares := 0
	for range conns {
		r := <-results
		if r.err != nil {
			t.Error(r.err)
		}
		miscompares += r.miscompares
		all = append(all, r.latencies...)
	}
	rsp := command(t, conns[1], "28 00 00000000 00 0001 00", nil, 512)
	if got, want := binary.BigEndian.Uint64(rsp.Data), uint64(len(all)); got != want || len(all) != perWorker*len(conns) {
		t.Errorf("the counter is %d after %d successful increments (%d expected): COMPARE AND WRITE was not atomic across gateways", got, want, perWorker*len(conns))
	}
	slices.Sort(all)
	if len(all) > 0 {
		t.Logf("%d increments through two gateways, %d miscompares; COMPARE AND WRITE latency median %v, 90th percentile %v, max %v",
			len(all), miscompares, all[len(all)/2], all[len(all)*9/10], all[len(all)-1])
	}
}
