package metrics

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/reconcile"
	"github.com/scstd/scstd/scsi"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	iqnA = "iqn.2026-11.org.example:a"
	host = "iqn.1994-05.com.redhat:host1"
)

// counters returns the counters of a few commands: two 4 KiB reads, a
// 64 KiB write, a TEST UNIT READY answered with a unit attention.
func counters() *scsi.IOCounters {
	var s scsi.IOStats
	s.Record(scsi.ClassRead, scsi.Good, nil, 4096, 0, 40*time.Microsecond)
	s.Record(scsi.ClassRead, scsi.Good, nil, 4096, 0, 3*time.Millisecond)
	s.Record(scsi.ClassWrite, scsi.Good, nil, 0, 65536, 700*time.Microsecond)
	s.Record(scsi.ClassOther, scsi.CheckCondition, scsi.FixedSense(scsi.UnitAttention, 0x29, 0), 0, 0, 20*time.Microsecond)
	s.Start()
	c := s.Counters()
	return &c
}

// liveState is a daemon with one target (a LUN in its own map and one in
// a group's), one session, an online and an offline device.
type liveState struct {
	sessions []iscsi.SessionInfo
	luns     []reconcile.LUNStatus
}

func newLiveState() *liveState {
	io := counters()
	io.QueueDepth = 1
	return &liveState{
		sessions: []iscsi.SessionInfo{{Target: iqnA, Initiator: host, ISID: "400001370000", TSIH: 3, LUNMap: "default",
			IO: *io, Connections: []iscsi.ConnInfo{{Remote: "127.0.0.1:51000"}}}},
		luns: []reconcile.LUNStatus{{LUN: 0, Device: "disk1", IO: counters()}},
	}
}

func (l *liveState) status() reconcile.Status {
	return reconcile.Status{
		Generation: 3,
		Devices: []reconcile.DeviceStatus{
			{Name: "disk1", Handler: "vdisk_fileio", Size: 2 << 30, ConfiguredSize: 1 << 30, Online: true},
			{Name: "disk2", Handler: "vdisk_fileio", Online: false, Reason: "vdisk: open /srv/disk2.img: no such file or directory"},
		},
		Targets: []reconcile.TargetStatus{{Name: iqnA, Enabled: true, LUNs: l.luns,
			Groups: []reconcile.GroupStatus{{Name: "special", LUNs: []reconcile.LUNStatus{{LUN: 0, Device: "disk2", IO: &scsi.IOCounters{}}}}}}},
		Sessions: l.sessions,
	}
}

func newTestCollector(l *liveState) *Collector {
	r := &Reloads{}
	plan := reconcile.Plan{Changes: []reconcile.Change{{Impact: reconcile.Hot}, {Impact: reconcile.UnitAttention}, {Impact: reconcile.Hot}}}
	r.Observe(true, time.Unix(1796000000, 0), 250*time.Millisecond, plan)
	r.Observe(false, time.Unix(1796000100, 500e6), 20*time.Millisecond, reconcile.Plan{})
	return NewCollector(Sources{
		Status: l.status,
		Logins: func() []iscsi.TargetLogins {
			return []iscsi.TargetLogins{{Target: "", Logins: 2, Failures: map[string]uint64{"not_found": 1}},
				{Target: iqnA, Logins: 1, Failures: map[string]uint64{"authentication": 2}}}
		},
		Reloads: r,
		Version: "1.2.3",
	})
}

// TestCollectorGolden: every family's HELP, TYPE, names and labels, and
// the values of a known state, as a scrape shows them.
func TestCollectorGolden(t *testing.T) {
	c := newTestCollector(newLiveState())
	var names []string
	for _, f := range families {
		names = append(names, f.name)
	}
	got, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, names...)
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/collector.golden"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(c, bytes.NewReader(want)); err != nil {
		t.Error(err)
	}
	for _, f := range families {
		if !bytes.Contains(want, []byte("# HELP "+f.name+" ")) || !bytes.Contains(want, []byte("# TYPE "+f.name+" "+f.typ+"\n")) {
			t.Errorf("%s: no HELP or TYPE %s in the scrape", f.name, f.typ)
		}
	}
}

// TestCollectorLint: names, units and types follow Prometheus's
// conventions as promlint checks them, for scstd's families and the
// collectors it registers.
func TestCollectorLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(NewRegistry(newTestCollector(newLiveState())))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestCollectorNoLeakedSeries: a session that ended and a LUN that was
// removed leave no series behind.
func TestCollectorNoLeakedSeries(t *testing.T) {
	l := newLiveState()
	c := newTestCollector(l)
	sessionNames := []string{"scstd_session_info", "scstd_session_commands_total", "scstd_session_read_bytes_total",
		"scstd_session_written_bytes_total", "scstd_session_errors_total", "scstd_session_command_duration_seconds",
		"scstd_session_queue_depth"}
	if n := testutil.CollectAndCount(c, sessionNames...); n != 1+3+1+1+1+3+1 {
		t.Fatalf("%d session series with a session, want 11", n)
	}
	if n := testutil.CollectAndCount(c, "scstd_lun_read_bytes_total"); n != 2 {
		t.Fatalf("%d LUN series, want 2", n)
	}
	l.sessions, l.luns = nil, nil
	if n := testutil.CollectAndCount(c, sessionNames...); n != 0 {
		t.Errorf("%d session series after the session ended", n)
	}
	if n := testutil.CollectAndCount(c, "scstd_lun_read_bytes_total"); n != 1 {
		t.Errorf("%d LUN series after lun 0 of the target's map went, want 1 (the group's)", n)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`# HELP scstd_target_sessions Live sessions of the target.
# TYPE scstd_target_sessions gauge
scstd_target_sessions{target="iqn.2026-11.org.example:a"} 0
`), "scstd_target_sessions"); err != nil {
		t.Error(err)
	}
}

// TestREADMEListsEveryMetric keeps the README's metric list whole.
func TestREADMEListsEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		row := "| `" + f.name + "` | " + f.typ + " | "
		if !bytes.Contains(b, []byte(row)) {
			t.Errorf("README.md has no row %q...", row)
		}
	}
}
