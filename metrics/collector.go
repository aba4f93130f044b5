package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/reconcile"
	"github.com/scstd/scstd/scsi"
)

// Sources are what the collector reads at each scrape.
type Sources struct {
	// Status is the engine's live tree (reconcile.Engine.Status): its
	// generation, devices, targets with their LUN counters, and the live
	// sessions with theirs.
	Status func() reconcile.Status
	// Logins are the login counts per target (iscsi.Server.Logins).
	Logins func() []iscsi.TargetLogins
	// Reloads are the outcomes of the reloads.
	Reloads *Reloads
	// Version is the daemon's version, for scstd_build_info.
	Version string
}

// Collector is the prometheus.Collector of scstd's own metrics. It keeps
// nothing between scrapes: each Collect reads the live state, so that the
// series of a session that ended, a LUN removed or a device gone vanish
// with them.
type Collector struct {
	src Sources
}

// NewCollector returns a collector reading src.
func NewCollector(src Sources) *Collector { return &Collector{src: src} }

// Describe sends the descriptors of every family.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range families {
		ch <- f.desc
	}
}

// Collect sends the current value of every series.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(f *family, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(f *family, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(buildInfo, 1, c.src.Version)

	st := c.src.Status()
	gauge(configGeneration, float64(st.Generation))
	if c.src.Reloads != nil {
		c.src.Reloads.collect(gauge, counter)
	}

	sessions := map[string]int{}
	for _, s := range st.Sessions {
		sessions[s.Target]++
	}
	for _, t := range st.Targets {
		gauge(targetEnabled, boolValue(t.Enabled), t.Name)
		gauge(targetSessions, float64(sessions[t.Name]), t.Name)
	}
	if c.src.Logins != nil {
		for _, tl := range c.src.Logins() {
			counter(targetLogins, tl.Logins, tl.Target)
			for reason, n := range tl.Failures {
				counter(targetLoginFailures, n, tl.Target, reason)
			}
		}
	}

	for i := range st.Sessions {
		s := &st.Sessions[i]
		id := []string{s.Target, s.Initiator, s.ISID, strconv.Itoa(int(s.TSIH))}
		remote := ""
		if len(s.Connections) > 0 {
			remote = s.Connections[0].Remote
		}
		gauge(sessionInfo, 1, with(id, s.LUNMap, remote)...)
		ioSeries(ch, &s.IO, id, sessionCommands, sessionReadBytes, sessionWrittenBytes, sessionErrors, sessionDuration)
		gauge(sessionQueueDepth, float64(s.IO.QueueDepth), id...)
	}

	for _, t := range st.Targets {
		lunSeries(ch, gauge, t.Name, "", t.LUNs)
		for _, g := range t.Groups {
			lunSeries(ch, gauge, t.Name, g.Name, g.LUNs)
		}
	}

	for _, d := range st.Devices {
		gauge(deviceOnline, boolValue(d.Online), d.Name, d.Handler)
		if !d.Online {
			gauge(deviceOfflineInfo, 1, d.Name, d.Reason)
		}
		gauge(deviceSize, float64(d.Size), d.Name)
		if d.ConfiguredSize > 0 {
			gauge(deviceConfiguredSize, float64(d.ConfiguredSize), d.Name)
		}
	}
}

// lunSeries sends the series of the LUNs of one LUN map.
func lunSeries(ch chan<- prometheus.Metric, gauge func(*family, float64, ...string), target, group string, luns []reconcile.LUNStatus) {
	for _, l := range luns {
		if l.IO == nil {
			continue
		}
		id := []string{target, group, strconv.Itoa(int(l.LUN)), l.Device}
		ioSeries(ch, l.IO, id, lunCommands, lunReadBytes, lunWrittenBytes, lunErrors, lunDuration)
		gauge(lunQueueDepth, float64(l.IO.QueueDepth), id...)
	}
}

// ioSeries sends the counters of one session or LUN, labelled id.
func ioSeries(ch chan<- prometheus.Metric, io *scsi.IOCounters, id []string, commands, read, written, errs, duration *family) {
	counter := func(f *family, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.CounterValue, float64(v), labels...)
	}
	for class := range scsi.NumClasses {
		h := &io.Histograms[class]
		name := class.String()
		counter(commands, h.Count(), with(id, name)...)
		ch <- prometheus.MustNewConstHistogram(duration.desc, h.Count(), h.Sum.Seconds(), buckets(h), with(id, name)...)
	}
	counter(read, io.ReadBytes, id...)
	counter(written, io.WrittenBytes, id...)
	for _, e := range io.Errors {
		counter(errs, e.Count, with(id, e.Status, e.SenseKey)...)
	}
}

// buckets returns a histogram's cumulative counts by upper bound in
// seconds, as client_golang takes them (without +Inf, which is the
// count).
func buckets(h *scsi.Histogram) map[float64]uint64 {
	m := make(map[float64]uint64, len(scsi.LatencyBuckets))
	var cum uint64
	for i, b := range scsi.LatencyBuckets {
		cum += h.Counts[i]
		m[b.Seconds()] = cum
	}
	return m
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
