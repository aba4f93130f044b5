package metrics

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/reconcile"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func get(t *testing.T, url string) (int, string, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return r.StatusCode, string(b), err
}

// TestEndpointMoves: the endpoint serves /metrics on the listener it was
// given, moves to the next one (the old address stops answering), stops
// with nil, and Close ends it.
func TestEndpointMoves(t *testing.T) {
	ep := NewEndpoint(NewRegistry(newTestCollector(newLiveState())), nil)
	var _ reconcile.MetricsEndpoint = ep
	a := listen(t)
	ep.Serve(a)
	urlA := "http://" + a.Addr().String()
	code, body, err := get(t, urlA+"/metrics")
	if err != nil || code != 200 || !strings.Contains(body, `scstd_build_info{version="1.2.3"} 1`) ||
		!strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_cpu_seconds_total") {
		t.Fatalf("GET /metrics: %d %v\n%.500s", code, err, body)
	}
	if code, _, _ := get(t, urlA+"/"); code != 200 {
		t.Errorf("GET /: %d", code)
	}
	if code, _, _ := get(t, urlA+"/nope"); code != 404 {
		t.Errorf("GET /nope: %d", code)
	}

	b := listen(t)
	ep.Serve(b)
	if ep.Addr() != b.Addr().String() {
		t.Errorf("Addr %q after the move", ep.Addr())
	}
	if code, _, err := get(t, "http://"+b.Addr().String()+"/metrics"); err != nil || code != 200 {
		t.Fatalf("new address: %d %v", code, err)
	}
	waitRefused(t, a.Addr().String())

	ep.Serve(nil)
	waitRefused(t, b.Addr().String())
	if ep.Addr() != "" {
		t.Errorf("Addr %q after Serve(nil)", ep.Addr())
	}

	c := listen(t)
	ep.Serve(c)
	ep.Close()
	waitRefused(t, c.Addr().String())
	d := listen(t)
	ep.Serve(d) // after Close: closed at once
	waitRefused(t, d.Addr().String())
}

// waitRefused waits until nothing accepts connections on addr.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
	}
}

// TestReloadsCountsChanges: failures and successes are counted, the last
// one's outcome kept, changes counted by impact with every class present.
func TestReloadsCountsChanges(t *testing.T) {
	r := &Reloads{}
	var gauges, counters []string
	collect := func() {
		gauges, counters = nil, nil
		r.collect(func(f *family, v float64, l ...string) {
			gauges = append(gauges, f.name+strings.Join(l, ",")+"="+strconvFloat(v))
		}, func(f *family, v uint64, l ...string) {
			counters = append(counters, f.name+"{"+strings.Join(l, ",")+"}="+strconvFloat(float64(v)))
		})
	}
	collect()
	if len(gauges) != 0 || len(counters) != 2+7 {
		t.Fatalf("before any reload: gauges %q counters %q", gauges, counters)
	}
	r.Observe(true, time.Unix(100, 0), time.Second, reconcile.Plan{Changes: []reconcile.Change{{Impact: reconcile.SessionDrop}}})
	r.Observe(false, time.Unix(200, 0), 2*time.Second, reconcile.Plan{})
	collect()
	want := "scstd_reloads_total{success}=1 scstd_reloads_total{failure}=1 scstd_reload_changes_total{hot}=0 " +
		"scstd_reload_changes_total{next-login}=0 scstd_reload_changes_total{unit-attention}=0 " +
		"scstd_reload_changes_total{medium-locked}=0 scstd_reload_changes_total{identity-change}=0 " +
		"scstd_reload_changes_total{device-swap}=0 scstd_reload_changes_total{session-drop}=1"
	if got := strings.Join(counters, " "); got != want {
		t.Errorf("counters\n%s\nwant\n%s", got, want)
	}
	if got := strings.Join(gauges, " "); got != "scstd_reload_last_success=0 scstd_reload_last_timestamp_seconds=200 scstd_reload_last_duration_seconds=2" {
		t.Errorf("gauges %s", got)
	}
}

func strconvFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
