package scsi

import (
	"math"
	"sync/atomic"
	"time"
)

// This file holds the I/O counters of a logical unit or an I_T nexus:
// commands by class, bytes moved, failures by status and sense key, a
// latency histogram per class and the commands in flight. The transport
// records each command once, when it completes; `scstd status` and the
// Prometheus collector read them. Recording takes no lock and allocates
// nothing after the first command: every counter is an atomic, and the
// histogram's buckets are fixed. The failure counters and histograms
// (ioDetail, 600 bytes) are made by the first command recorded: most
// LUNs of a large configuration never see one.

// CommandClass sorts commands for the counters and latency histograms:
// those that read blocks, those that write blocks, and the rest.
type CommandClass uint8

// Command classes.
const (
	ClassRead  CommandClass = iota // READ(6/10/12/16), READ CD
	ClassWrite                     // WRITE(6/10/12/16), WRITE AND VERIFY, WRITE SAME, COMPARE AND WRITE, ORWRITE, WRITE ATOMIC
	ClassOther                     // everything else: TEST UNIT READY, INQUIRY, SYNCHRONIZE CACHE, UNMAP, ...
	NumClasses
)

var classNames = [NumClasses]string{"read", "write", "other"}

// String returns the class as metrics label it: "read", "write", "other".
func (c CommandClass) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "other"
}

// commandClasses is the class of each opcode.
var commandClasses = func() (t [256]CommandClass) {
	for i := range t {
		t[i] = ClassOther
	}
	for _, op := range []Opcode{Read6, Read10, Read12, Read16, ReadCD} {
		t[op] = ClassRead
	}
	for _, op := range []Opcode{Write6, Write10, Write12, Write16, WriteAndVerify10, WriteAndVerify12,
		WriteAndVerify16, WriteSame10, WriteSame16, CompareAndWrite, OrWrite16, WriteAtomic16} {
		t[op] = ClassWrite
	}
	return t
}()

// ClassOf returns the class of the command a CDB holds.
func ClassOf(cdb []byte) CommandClass {
	if len(cdb) == 0 {
		return ClassOther
	}
	return commandClasses[cdb[0]]
}

// LatencyBuckets are the upper bounds of the latency histograms' buckets,
// from 50µs (a 4 KiB read served from the page cache) to 30s (beyond
// which an initiator has usually given up); the last bucket, above them,
// is +Inf.
var LatencyBuckets = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	time.Second, 5 * time.Second, 30 * time.Second,
}

// numBuckets counts the buckets, +Inf included.
const numBuckets = len(LatencyBuckets) + 1

// histogram counts latencies in the fixed LatencyBuckets.
type histogram struct {
	counts [numBuckets]atomic.Uint64 // per bucket, not cumulative
	sum    atomic.Uint64             // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := 0
	for i < len(LatencyBuckets) && d > LatencyBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(uint64(d))
}

// Error slots of IOStats: CHECK CONDITION by sense key (0..15), CHECK
// CONDITION without readable sense, then the other statuses that are not
// GOOD or CONDITION MET.
const (
	slotNoSense = 16 + iota
	slotBusy
	slotReservationConflict
	slotTaskSetFull
	slotACAActive
	slotTaskAborted
	slotOtherStatus
	numErrorSlots
)

// IOStats are the counters of a logical unit or of an I_T nexus. The zero
// value is ready; it must not be copied once used.
type IOStats struct {
	bytesRead    atomic.Uint64
	bytesWritten atomic.Uint64
	inFlight     atomic.Int64
	detail       atomic.Pointer[ioDetail] // nil until the first Record
}

// ioDetail is the part of IOStats that the first command recorded makes.
type ioDetail struct {
	errors  [numErrorSlots]atomic.Uint64
	latency [NumClasses]histogram
}

// details returns s's ioDetail, made if it is not yet.
func (s *IOStats) details() *ioDetail {
	if d := s.detail.Load(); d != nil {
		return d
	}
	d := new(ioDetail)
	if s.detail.CompareAndSwap(nil, d) {
		return d
	}
	return s.detail.Load()
}

// Start counts a command that begins to execute (the queue depth); Done
// ends it.
func (s *IOStats) Start() { s.inFlight.Add(1) }

// Done counts a command started with Start that completed, as Record.
func (s *IOStats) Done(class CommandClass, st Status, sense []byte, in, out uint64, d time.Duration) {
	s.inFlight.Add(-1)
	s.Record(class, st, sense, in, out, d)
}

// Record counts one completed command: its class, its status (with the
// sense data of a CHECK CONDITION), the data-in bytes sent and data-out
// bytes received, and its latency.
func (s *IOStats) Record(class CommandClass, st Status, sense []byte, in, out uint64, d time.Duration) {
	if class >= NumClasses {
		class = ClassOther
	}
	det := s.details()
	det.latency[class].observe(d)
	if in > 0 {
		s.bytesRead.Add(in)
	}
	if out > 0 {
		s.bytesWritten.Add(out)
	}
	if st != Good && st != ConditionMet {
		det.errors[errorSlot(st, sense)].Add(1)
	}
}

// errorSlot is the error counter a failed command counts in.
func errorSlot(st Status, sense []byte) int {
	switch st {
	case CheckCondition:
		if key, _, _, ok := senseCodes(sense); ok {
			return int(key)
		}
		return slotNoSense
	case Busy:
		return slotBusy
	case ReservationConflict:
		return slotReservationConflict
	case TaskSetFull:
		return slotTaskSetFull
	case ACAActive:
		return slotACAActive
	case TaskAborted:
		return slotTaskAborted
	}
	return slotOtherStatus
}

// slotError names an error slot: its status, and for CHECK CONDITION its
// sense key ("" when the sense data could not be read). Statuses other
// than the SAM-5 ones are "OTHER".
func slotError(i int) (status, senseKey string) {
	switch {
	case i < 16:
		return CheckCondition.String(), SenseKey(i).String()
	case i == slotNoSense:
		return CheckCondition.String(), ""
	case i == slotBusy:
		return Busy.String(), ""
	case i == slotReservationConflict:
		return ReservationConflict.String(), ""
	case i == slotTaskSetFull:
		return TaskSetFull.String(), ""
	case i == slotACAActive:
		return ACAActive.String(), ""
	case i == slotTaskAborted:
		return TaskAborted.String(), ""
	}
	return "OTHER", ""
}

// IOCounters are the values of IOStats at one moment, as status shows
// them. The counts of the classes are the histograms' counts: each
// command is in exactly one.
type IOCounters struct {
	Commands     ClassCounts `json:"commands"`
	ReadBytes    uint64      `json:"read_bytes"`
	WrittenBytes uint64      `json:"written_bytes"`
	// QueueDepth is the number of commands executing now.
	QueueDepth int64 `json:"queue_depth"`
	// Errors are the commands that did not end GOOD (nor CONDITION
	// MET), by status and sense key; only those that happened.
	Errors []ErrorCount `json:"errors,omitempty"`
	// Latency summarizes each class's histogram.
	Latency LatencySummaries `json:"latency"`
	// Histograms are the latency histograms by class, for metrics.
	Histograms [NumClasses]Histogram `json:"-"`
}

// ClassCounts are commands by class.
type ClassCounts struct {
	Read  uint64 `json:"read"`
	Write uint64 `json:"write"`
	Other uint64 `json:"other"`
}

// Total is the commands of every class.
func (c ClassCounts) Total() uint64 { return c.Read + c.Write + c.Other }

// ErrorCount is how many commands failed with one status (and, for CHECK
// CONDITION, one sense key).
type ErrorCount struct {
	Status   string `json:"status"`
	SenseKey string `json:"sense_key,omitempty"`
	Count    uint64 `json:"count"`
}

// LatencySummaries are the latency summaries by class.
type LatencySummaries struct {
	Read  LatencySummary `json:"read"`
	Write LatencySummary `json:"write"`
	Other LatencySummary `json:"other"`
}

// LatencySummary summarizes a latency histogram: the mean, and the upper
// bound of the bucket holding the median and the 99th percentile (the
// true value is at most that, and above the bucket below). Zero without
// commands.
type LatencySummary struct {
	MeanSeconds float64 `json:"mean_seconds"`
	P50Seconds  float64 `json:"p50_le_seconds"`
	P99Seconds  float64 `json:"p99_le_seconds"`
}

// Histogram is a latency histogram's values: Counts per bucket (not
// cumulative; the bucket of LatencyBuckets[i], the last one +Inf), and
// the sum of the latencies.
type Histogram struct {
	Counts [numBuckets]uint64
	Sum    time.Duration
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// quantile returns the upper bound of the bucket holding quantile q, in
// seconds (+Inf beyond the last bound).
func (h *Histogram) quantile(q float64) float64 {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var cum uint64
	for i, c := range h.Counts {
		cum += c
		if cum >= rank {
			if i < len(LatencyBuckets) {
				return LatencyBuckets[i].Seconds()
			}
			break
		}
	}
	return math.Inf(1)
}

func (h *Histogram) summary() LatencySummary {
	n := h.Count()
	if n == 0 {
		return LatencySummary{}
	}
	p99 := h.quantile(0.99)
	if math.IsInf(p99, 1) {
		// JSON has no infinity: say the last bound was passed.
		p99 = LatencyBuckets[len(LatencyBuckets)-1].Seconds()
	}
	p50 := min(h.quantile(0.5), p99)
	return LatencySummary{MeanSeconds: h.Sum.Seconds() / float64(n), P50Seconds: p50, P99Seconds: p99}
}

// Counters reads the counters. Each value is read atomically, not the
// set at once: a command completing meanwhile may be counted in some and
// not yet in others.
func (s *IOStats) Counters() IOCounters {
	var c IOCounters
	if s == nil {
		return c
	}
	c.ReadBytes = s.bytesRead.Load()
	c.WrittenBytes = s.bytesWritten.Load()
	c.QueueDepth = max(s.inFlight.Load(), 0)
	det := s.detail.Load()
	if det == nil {
		return c
	}
	for i := range det.latency {
		h := &c.Histograms[i]
		for b := range h.Counts {
			h.Counts[b] = det.latency[i].counts[b].Load()
		}
		h.Sum = time.Duration(det.latency[i].sum.Load())
	}
	c.Commands = ClassCounts{Read: c.Histograms[ClassRead].Count(), Write: c.Histograms[ClassWrite].Count(),
		Other: c.Histograms[ClassOther].Count()}
	c.Latency = LatencySummaries{Read: c.Histograms[ClassRead].summary(), Write: c.Histograms[ClassWrite].summary(),
		Other: c.Histograms[ClassOther].summary()}
	for i := range det.errors {
		if n := det.errors[i].Load(); n > 0 {
			st, key := slotError(i)
			c.Errors = append(c.Errors, ErrorCount{Status: st, SenseKey: key, Count: n})
		}
	}
	return c
}
