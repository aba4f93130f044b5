package metrics

import (
	"io"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/reconcile"
)

// BenchmarkScrape is one GET /metrics of a daemon with 17 targets of one
// LUN each and a session on each, the benchmark's configuration: the
// collector, the Go and process collectors, and the text encoding (the
// engine's Status is given, not computed).
func BenchmarkScrape(b *testing.B) {
	l := newLiveState()
	s0, l0 := l.sessions[0], l.luns[0]
	var targets []reconcile.TargetStatus
	l.sessions = nil
	for i := range 17 {
		name := iqnA + strconv.Itoa(i)
		targets = append(targets, reconcile.TargetStatus{Name: name, Enabled: true, LUNs: []reconcile.LUNStatus{l0}})
		s := s0
		s.Target = name
		l.sessions = append(l.sessions, s)
	}
	st := l.status()
	st.Targets = targets
	c := NewCollector(Sources{Status: func() reconcile.Status { return st }, Logins: func() []iscsi.TargetLogins { return nil },
		Reloads: &Reloads{}, Version: "1"})
	h := promhttp.HandlerFor(NewRegistry(c), promhttp.HandlerOpts{})
	req := httptest.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		io.Copy(io.Discard, w.Body)
	}
}
