package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// loopback measures the loopback ceiling: iperf3, one TCP stream of 1 MiB
// writes on 127.0.0.1 for seconds, in decimal MB/s as the receiver
// counted them. The server is started for this one test (-1) and stopped
// by its PID if it outlives it.
func loopback(ctx context.Context, seconds float64) (float64, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	p := strconv.Itoa(port)
	srv, err := startDaemon("iperf3 server", nil, "iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", p)
	if err != nil {
		return 0, err
	}
	defer srv.stop(5 * time.Second)
	t := strconv.Itoa(max(1, int(seconds+0.5)))
	var out string
	// The server may not listen yet; a probe connection would count as
	// its one test, so the client is retried instead.
	for try := 0; ; try++ {
		out, _, err = runTool(ctx, "iperf3", "-c", "127.0.0.1", "-p", p, "-l", "1M", "-t", t, "-J")
		if err == nil || try == 50 || !strings.Contains(out, "unable to connect") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return 0, err
	}
	return parseIperf(out)
}

func parseIperf(out string) (float64, error) {
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return 0, fmt.Errorf("iperf3: %v", err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, fmt.Errorf("iperf3: no received throughput in its report")
	}
	return r.End.SumReceived.BitsPerSecond / 8 / 1e6, nil
}
