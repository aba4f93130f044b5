package scsi

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func TestClassOf(t *testing.T) {
	for _, c := range []struct {
		cdb  string
		want CommandClass
	}{
		{"28 00 00000000 00 0008 00", ClassRead},             // READ(10)
		{"88 00 0000000000000000 00000008 00 00", ClassRead}, // READ(16)
		{"08 00 00 00 08 00", ClassRead},                     // READ(6)
		{"be 00 00000000 000001 00 00 00", ClassRead},        // READ CD
		{"2a 00 00000000 00 0008 00", ClassWrite},            // WRITE(10)
		{"8a 00", ClassWrite},                                // WRITE(16)
		{"93 00", ClassWrite},                                // WRITE SAME(16)
		{"89 00", ClassWrite},                                // COMPARE AND WRITE
		{"2e 00", ClassWrite},                                // WRITE AND VERIFY(10)
		{"00 00 00 00 00 00", ClassOther},                    // TEST UNIT READY
		{"12 00 00 00 24 00", ClassOther},                    // INQUIRY
		{"35 00", ClassOther},                                // SYNCHRONIZE CACHE(10)
		{"42 00", ClassOther},                                // UNMAP
		{"2f 00", ClassOther},                                // VERIFY(10) moves no data
		{"", ClassOther},
	} {
		if got := ClassOf(hx(t, c.cdb)); got != c.want {
			t.Errorf("ClassOf(%s) = %s, want %s", c.cdb, got, c.want)
		}
	}
	if ClassRead.String() != "read" || ClassWrite.String() != "write" || ClassOther.String() != "other" || CommandClass(9).String() != "other" {
		t.Error("class names")
	}
}

func TestIOStatsRecord(t *testing.T) {
	var s IOStats
	s.Start()
	s.Start()
	if c := s.Counters(); c.QueueDepth != 2 {
		t.Fatalf("queue depth %d, want 2", c.QueueDepth)
	}
	s.Done(ClassRead, Good, nil, 4096, 0, 30*time.Microsecond)
	s.Done(ClassWrite, Good, nil, 0, 8192, 2*time.Millisecond)
	s.Record(ClassOther, CheckCondition, FixedSense(UnitAttention, 0x29, 0x00), 0, 0, 10*time.Microsecond)
	s.Record(ClassOther, CheckCondition, FixedSense(UnitAttention, 0x3f, 0x0e), 0, 0, 10*time.Microsecond)
	s.Record(ClassRead, CheckCondition, FixedSense(IllegalRequest, 0x21, 0x00), 0, 0, time.Minute)
	// Descriptor-format sense (72h) from a pass-through disk.
	s.Record(ClassRead, CheckCondition, hx(t, "72 03 11 00 00000000"), 0, 0, time.Millisecond)
	s.Record(ClassOther, CheckCondition, nil, 0, 0, 0)
	s.Record(ClassOther, ReservationConflict, nil, 0, 0, 0)
	s.Record(ClassWrite, TaskAborted, nil, 0, 512, 0)
	s.Record(ClassOther, ConditionMet, nil, 0, 0, 0)
	s.Record(ClassOther, Status(0x22), nil, 0, 0, -time.Second) // a clock step back counts as 0

	c := s.Counters()
	if c.QueueDepth != 0 {
		t.Errorf("queue depth %d after Done", c.QueueDepth)
	}
	if want := (ClassCounts{Read: 3, Write: 2, Other: 6}); c.Commands != want {
		t.Errorf("commands %+v, want %+v", c.Commands, want)
	}
	if c.ReadBytes != 4096 || c.WrittenBytes != 8192+512 {
		t.Errorf("bytes read %d written %d", c.ReadBytes, c.WrittenBytes)
	}
	want := []ErrorCount{
		{Status: "CHECK_CONDITION", SenseKey: "MEDIUM_ERROR", Count: 1},
		{Status: "CHECK_CONDITION", SenseKey: "ILLEGAL_REQUEST", Count: 1},
		{Status: "CHECK_CONDITION", SenseKey: "UNIT_ATTENTION", Count: 2},
		{Status: "CHECK_CONDITION", Count: 1},
		{Status: "RESERVATION_CONFLICT", Count: 1},
		{Status: "TASK_ABORTED", Count: 1},
		{Status: "OTHER", Count: 1},
	}
	if !slices.Equal(c.Errors, want) {
		t.Errorf("errors\n%+v\nwant\n%+v", c.Errors, want)
	}
	r := c.Histograms[ClassRead]
	// 30µs is in the 50µs bucket, 1ms in the 1ms bucket (bounds are
	// inclusive), a minute beyond the last bound.
	if r.Counts[0] != 1 || r.Counts[4] != 1 || r.Counts[numBuckets-1] != 1 || r.Count() != 3 {
		t.Errorf("read histogram %v", r.Counts)
	}
	if r.Sum != 30*time.Microsecond+time.Minute+time.Millisecond {
		t.Errorf("read sum %v", r.Sum)
	}
	if c.Latency.Read.P99Seconds != 30 || c.Latency.Read.P50Seconds != 0.001 {
		t.Errorf("read latency %+v", c.Latency.Read)
	}
	// The aborted write counts as 0s: the median is in the first bucket.
	if w := c.Latency.Write; w.P50Seconds != 50e-6 || w.P99Seconds != 0.0025 || math.Abs(w.MeanSeconds-0.001) > 1e-12 {
		t.Errorf("write latency %+v", w)
	}
}

func TestHistogramQuantile(t *testing.T) {
	for _, c := range []struct {
		name   string
		counts map[int]uint64
		q      float64
		want   float64
	}{
		{"empty", nil, 0.5, 0},
		{"one bucket", map[int]uint64{3: 10}, 0.99, LatencyBuckets[3].Seconds()},
		{"median in the lower", map[int]uint64{0: 6, 10: 4}, 0.5, LatencyBuckets[0].Seconds()},
		{"p99 in the upper", map[int]uint64{0: 98, 10: 2}, 0.99, LatencyBuckets[10].Seconds()},
		{"beyond the bounds", map[int]uint64{numBuckets - 1: 1}, 0.5, math.Inf(1)},
	} {
		var h Histogram
		for i, n := range c.counts {
			h.Counts[i] = n
		}
		if got := h.quantile(c.q); got != c.want {
			t.Errorf("%s: quantile(%v) = %v, want %v", c.name, c.q, got, c.want)
		}
	}
}

// TestIOStatsConcurrent records from many goroutines (run with -race):
// nothing is lost.
func TestIOStatsConcurrent(t *testing.T) {
	var s IOStats
	var wg sync.WaitGroup
	const workers, each = 8, 1000
	for range workers {
		wg.Go(func() {
			for range each {
				s.Start()
				s.Done(ClassRead, Good, nil, 512, 0, time.Microsecond)
			}
		})
	}
	wg.Wait()
	c := s.Counters()
	if c.Commands.Read != workers*each || c.ReadBytes != 512*workers*each || c.QueueDepth != 0 {
		t.Errorf("%+v", c)
	}
}

func TestIOStatsRecordAllocs(t *testing.T) {
	var s IOStats
	sense := FixedSense(NotReady, 0x04, 0x00)
	if n := testing.AllocsPerRun(100, func() {
		s.Start()
		s.Done(ClassWrite, CheckCondition, sense, 0, 4096, time.Millisecond)
	}); n != 0 {
		t.Errorf("%v allocations per command", n)
	}
}

// TestIOStatsSmallUntilUsed holds a LUN's counters to a few words until
// its first command: a 10,000-LUN configuration makes 10,000 of them, and
// most never count a command.
func TestIOStatsSmallUntilUsed(t *testing.T) {
	var s IOStats
	if n := unsafe.Sizeof(s); n > 64 {
		t.Errorf("IOStats is %d bytes, want at most 64", n)
	}
	if c := s.Counters(); c.Commands.Total() != 0 || c.Errors != nil || c.Latency != (LatencySummaries{}) {
		t.Errorf("unused counters: %+v", c)
	}
	if s.detail.Load() != nil {
		t.Error("reading the counters made their detail")
	}
	s.Record(ClassRead, Good, nil, 512, 0, time.Millisecond)
	if c := s.Counters(); c.Commands.Read != 1 || c.Latency.Read.MeanSeconds != 0.001 {
		t.Errorf("after one read: %+v", c)
	}
}

// BenchmarkIOStatsRecord is the cost of counting one command in a LUN's
// counters shared by every CPU (Start and Done).
func BenchmarkIOStatsRecord(b *testing.B) {
	var s IOStats
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Start()
			s.Done(ClassRead, Good, nil, 4096, 0, 40*time.Microsecond)
		}
	})
}

func TestNewLUNMapGivesStats(t *testing.T) {
	own := new(IOStats)
	dev := NewDevice(DeviceConfig{Name: "d", BlockSize: 512}, nil)
	m := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: dev}, 1: {Device: dev, Stats: own}})
	if m.Lookup(0).Stats == nil {
		t.Error("a unit without counters got none")
	}
	if m.Lookup(1).Stats != own {
		t.Error("a unit's own counters were replaced")
	}
}
