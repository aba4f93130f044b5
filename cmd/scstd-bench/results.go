package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
)

// sample is one raw figure: a line of the raw file.
type sample struct {
	Round  int // 0: measured once, outside the rounds
	Case   string
	System string
	Metric string
	Value  float64
}

// results collects the samples of a run and writes each to w (the raw
// file) as it arrives, so that an interrupted run keeps what it measured.
type results struct {
	mu      sync.Mutex
	w       io.Writer
	samples []sample
	err     error
}

// tsvHeader is the raw file's column line.
const tsvHeader = "round\tcase\tsystem\tmetric\tvalue\n"

func newResults(w io.Writer, comments []string) *results {
	r := &results{w: w}
	for _, c := range comments {
		r.write("# " + c + "\n")
	}
	r.write(tsvHeader)
	return r
}

func (r *results) write(s string) {
	if r.err == nil {
		_, r.err = io.WriteString(r.w, s)
	}
}

// add records one figure.
func (r *results) add(round int, cas, system, metric string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, sample{round, cas, system, metric, v})
	r.write(fmt.Sprintf("%d\t%s\t%s\t%s\t%s\n", round, cas, system, metric, strconv.FormatFloat(v, 'g', 8, 64)))
}

// median is the median of every sample of (cas, system, metric), and
// whether there was one.
func (r *results) median(cas, system, metric string) (float64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var xs []float64
	for _, s := range r.samples {
		if s.Case == cas && s.System == system && s.Metric == metric {
			xs = append(xs, s.Value)
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	return median(xs), true
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
