package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
	"github.com/scstd/scstd/scsi"
)

// metricsConfig: c1 needs CHAP (alice), open does not; both serve one
// 64 MiB file. listen is the metrics block's address ("" leaves the
// block out).
func metricsConfig(listen string) string {
	block := ""
	if listen != "" {
		block = "metrics {\n  listen = \"" + listen + "\"\n}\n"
	}
	return `
iscsi { portals = ["{{.Portal}}"] }
` + block + `
handler "vdisk_fileio" {
  device "m0" {
    filename = "{{.Dir}}/m0.img"
    size     = "64MiB"
  }
  device "m1" {
    filename = "{{.Dir}}/m1.img"
    size     = "16MiB"
  }
}

target "iqn.2026-11.org.example:c1" {
  incoming_user "alice" { secret = "` + aliceSecret + `" }
  lun "0" { device = "m1" }
}

target "iqn.2026-11.org.example:open" {
  lun "0" { device = "m0" }
}
`
}

// scrape is one GET /metrics, parsed.
type scrape map[string]*dto.MetricFamily

func getMetrics(t *testing.T, addr string) (scrape, error) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	r, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(r.Body)
		return nil, fmt.Errorf("GET /metrics: %s\n%s", r.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r.Body)
	return scrape(fams), err
}

func mustScrape(t *testing.T, addr string) scrape {
	t.Helper()
	s, err := getMetrics(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// value returns the value of the series of name whose labels include
// labels ("k=v" each), and whether there is one; a histogram's value is
// its count.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range f.Metric {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			ok := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					ok = true
				}
			}
			if !ok {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum, found
}

func (s scrape) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.value(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v in the scrape", name, labels)
	}
	return v
}

// TestMetrics: with a metrics block the daemon serves /metrics; qemu-io's
// writes and reads show in the LUN's byte counters (within the few
// kilobytes of INQUIRY and READ CAPACITY data), a failed CHAP login in
// the target's login failures, a live session in its own series, which
// go when it ends; status -json shows the same counters; a reload to an
// address in use is rejected, one moves the endpoint, another turns it
// off.
func TestMetrics(t *testing.T) {
	requireTools(t, "qemu-io")
	ports := make([]int, 2)
	for i := range ports {
		p, err := testtarget.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	addr1, addr2 := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	tgt := testtarget.Start(t, metricsConfig(addr1))

	before := mustScrape(t, addr1)
	if v := before.must(t, "scstd_reloads_total", "result=success"); v != 1 {
		t.Errorf("reloads before any: %v, want 1 (the start)", v)
	}
	for _, name := range []string{"scstd_build_info", "go_goroutines", "process_cpu_seconds_total", "scstd_config_generation"} {
		before.must(t, name)
	}
	if v := before.must(t, "scstd_device_online", "device=m0"); v != 1 {
		t.Errorf("m0 online = %v", v)
	}
	if v := before.must(t, "scstd_device_size_bytes", "device=m0"); v != 64<<20 {
		t.Errorf("m0 size = %v", v)
	}

	// qemu-io: 1 MiB + 256 KiB written, 1 MiB read, in one session.
	open := []string{"-f", "raw", tgt.LUNURL(org("open"), 0)}
	const wrote, read = 1<<20 + 256<<10, 1 << 20
	out, err := qemuIO(t, open, "write -P 0x4d 0 1M", "write -P 0x4e 4M 256k", "read -P 0x4d 0 1M")
	if err != nil || strings.Contains(out, "Pattern verification failed") {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}
	// A CHAP login with the wrong secret.
	bad := []string{"-f", "raw", chapURL(tgt.Portal(), "alice", wrongSecret, "/"+org("c1")+"/0", "", "")}
	if out, err := qemuIO(t, bad, "read 0 4096"); err == nil {
		t.Fatalf("qemu-io with a wrong secret opened the LUN:\n%s", out)
	}

	s := mustScrape(t, addr1)
	lun := []string{"target=" + org("open"), "group=", "lun=0", "device=m0"}
	w := s.must(t, "scstd_lun_written_bytes_total", lun...)
	r := s.must(t, "scstd_lun_read_bytes_total", lun...)
	// The data, plus what qemu reads at open (INQUIRY pages, READ
	// CAPACITY, REPORT LUNS: a few kilobytes).
	if w != wrote || r < read || r > read+64<<10 {
		t.Errorf("LUN bytes written %v (want %d), read %v (want %d and a few KiB)", w, wrote, r, read)
	}
	if n := s.must(t, "scstd_lun_commands_total", append(lun, "class=write")...); n < 2 {
		t.Errorf("write commands %v, want at least 2", n)
	}
	reads := s.must(t, "scstd_lun_commands_total", append(lun, "class=read")...)
	if h := s.must(t, "scstd_lun_command_duration_seconds", append(lun, "class=read")...); reads < 1 || h != reads {
		t.Errorf("read commands %v, read latency observations %v", reads, h)
	}
	if v := s.must(t, "scstd_lun_errors_total", append(lun, "status=CHECK_CONDITION", "sense_key=UNIT_ATTENTION")...); v < 1 {
		t.Errorf("unit attentions %v: the new nexus's power-on unit attention is not counted", v)
	}
	if v := s.must(t, "scstd_target_logins_total", "target="+org("open")); v != 1 {
		t.Errorf("logins to open: %v, want 1", v)
	}
	if v := s.must(t, "scstd_target_login_failures_total", "target="+org("c1"), "reason=authentication"); v < 1 {
		t.Errorf("CHAP failures of c1: %v", v)
	}
	if v, ok := s.value("scstd_session_info"); ok {
		t.Errorf("a session series after qemu-io logged out: %v", v)
	}
	if v := s.must(t, "scstd_target_sessions", "target="+org("open")); v != 0 {
		t.Errorf("sessions of open: %v", v)
	}

	// A live session of the Go initiator: its own series while it lasts.
	conn, err := goLogin(t, "", tgt.Portal(), initiator.Options{TargetName: org("open")})
	if err != nil {
		t.Fatal(err)
	}
	lun0 := scsi.LUN(0).Encode()
	conn.Command(lun0, []byte{0, 0, 0, 0, 0, 0}, nil, 0) // the unit attention
	rsp, err := conn.Command(lun0, []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0}, nil, 4096)
	if err != nil || rsp.Status != 0 || len(rsp.Data) != 4096 {
		t.Fatalf("READ(10): %v %+v", err, rsp)
	}
	s = mustScrape(t, addr1)
	sess := []string{"target=" + org("open"), "initiator=" + initiator.DefaultInitiatorName}
	if v := s.must(t, "scstd_session_info", append(sess, "lun_map=default")...); v != 1 {
		t.Errorf("session info %v", v)
	}
	if v := s.must(t, "scstd_session_read_bytes_total", sess...); v != 4096 {
		t.Errorf("session read bytes %v, want 4096", v)
	}
	if v := s.must(t, "scstd_session_commands_total", append(sess, "class=other")...); v != 1 {
		t.Errorf("session other commands %v, want 1 (TEST UNIT READY)", v)
	}
	if v := s.must(t, "scstd_target_sessions", "target="+org("open")); v != 1 {
		t.Errorf("sessions of open: %v", v)
	}
	st := engineStatus(t, tgt)
	if len(st.Sessions) != 1 || st.Sessions[0].IO.ReadBytes != 4096 || st.Sessions[0].IO.Commands.Read != 1 {
		t.Errorf("status -json sessions: %+v", st.Sessions)
	}
	var lunIO *scsi.IOCounters
	for _, tg := range st.Targets {
		if tg.Name == org("open") && len(tg.LUNs) == 1 {
			lunIO = tg.LUNs[0].IO
		}
	}
	if lunIO == nil || float64(lunIO.WrittenBytes) != w || lunIO.ReadBytes != uint64(r)+4096 {
		t.Errorf("status -json LUN counters %+v, want written %v, read %v", lunIO, w, r+4096)
	}
	conn.Logout()
	conn.Close()
	waitFor(t, "the session to end", func() bool { return len(engineStatus(t, tgt).Sessions) == 0 })
	s = mustScrape(t, addr1)
	for _, name := range []string{"scstd_session_info", "scstd_session_read_bytes_total", "scstd_session_command_duration_seconds", "scstd_session_queue_depth"} {
		if _, ok := s.value(name); ok {
			t.Errorf("%s still has series after the session ended", name)
		}
	}

	// A reload to an address in use is rejected; the endpoint stays.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rep := tgt.Reconfigure(metricsConfig(busy.Addr().String()))
	busy.Close()
	if rep.OK || !strings.Contains(rep.Error, "metrics listen "+busy.Addr().String()) {
		t.Fatalf("reload to a busy address: %+v", rep)
	}
	if v := mustScrape(t, addr1).must(t, "scstd_reloads_total", "result=failure"); v < 1 {
		t.Errorf("failed reloads %v after the rejection", v)
	}

	// A reload moves the endpoint.
	if rep := tgt.Reconfigure(metricsConfig(addr2)); !rep.OK || !strings.Contains(rep.Plan, "metrics.listen") {
		t.Fatalf("reload moving the endpoint: %+v", rep)
	}
	if _, err := getMetrics(t, addr1); err == nil {
		t.Error("the old address still serves metrics")
	}
	s = mustScrape(t, addr2)
	// The start and the move; the file watch may have reloaded too.
	if v := s.must(t, "scstd_reloads_total", "result=success"); v < 2 {
		t.Errorf("successful reloads %v, want at least 2", v)
	}
	if v := s.must(t, "scstd_reload_changes_total", "impact=hot"); v < 1 {
		t.Errorf("hot changes %v", v)
	}
	if v := s.must(t, "scstd_lun_written_bytes_total", lun...); v != w {
		t.Errorf("LUN bytes written %v after the reload, want %v (the counters go on)", v, w)
	}
	// And another turns it off.
	if rep := tgt.Reconfigure(metricsConfig("")); !rep.OK {
		t.Fatalf("reload removing the endpoint: %+v", rep)
	}
	if _, err := getMetrics(t, addr2); err == nil {
		t.Error("metrics still served after the block was removed")
	}
}

// engineStatus is the engine part of `scstd status -json`.
func engineStatus(t *testing.T, tgt *testtarget.Target) engineTree {
	t.Helper()
	out, code := testtarget.Run(t, "status", "-json", "-admin-socket", tgt.AdminSocket())
	if code != 0 {
		t.Fatalf("status -json: exit %d\n%s", code, out)
	}
	var st struct {
		Engine engineTree `json:"engine"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -json: %v\n%s", err, out)
	}
	return st.Engine
}

// engineTree is what TestMetrics reads of the engine's status.
type engineTree struct {
	Sessions []struct {
		Target string          `json:"target"`
		IO     scsi.IOCounters `json:"io"`
	} `json:"sessions"`
	Targets []struct {
		Name string `json:"name"`
		LUNs []struct {
			LUN int              `json:"lun"`
			IO  *scsi.IOCounters `json:"io"`
		} `json:"luns"`
	} `json:"targets"`
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
