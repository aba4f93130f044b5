package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// The "metrics" variant: the daemon with its metrics endpoint on, scraped
// every second as a Prometheus server would, to show what metrics cost.
func init() {
	builtinVariants["metrics"] = variant{Scrape: time.Second}
}

// metricsBlock is the configuration of a variant that scrapes: the
// endpoint on addr.
func metricsBlock(addr string) string {
	return fmt.Sprintf("metrics {\n  listen = %q\n}\n", addr)
}

// scrapeEvery GETs http://addr/metrics every interval until the returned
// stop is called, which logs how many scrapes there were, how many failed
// and their mean duration.
func scrapeEvery(name, addr string, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var n, failed int
	var took time.Duration
	wg.Go(func() {
		c := &http.Client{Timeout: 5 * time.Second}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			start := time.Now()
			r, err := c.Get("http://" + addr + "/metrics")
			if err == nil {
				_, err = io.Copy(io.Discard, r.Body)
				r.Body.Close()
				if err == nil && r.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s", r.Status)
				}
			}
			n++
			took += time.Since(start)
			if err != nil {
				failed++
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		mean := time.Duration(0)
		if n > 0 {
			mean = took / time.Duration(n)
		}
		logf("%s: %d scrapes of %s (%d failed), %s each on average", name, n, addr, failed, mean.Round(10*time.Microsecond))
	}
}
