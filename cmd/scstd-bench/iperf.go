package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// loopback measures the loopback ceiling: iperf3, one TCP stream of 1 MiB
// writes on 127.0.0.1 for seconds, in decimal MB/s as the receiver
// counted them. The server is started for this one test (-1) and stopped
// by its PID if it outlives it. A failed attempt is retried once on
// another port.
func loopback(ctx context.Context, seconds float64) (float64, error) {
	v, err := loopbackOnce(ctx, seconds)
	if err != nil && ctx.Err() == nil {
		logf("loopback: %v; once more", err)
		v, err = loopbackOnce(ctx, seconds)
	}
	return v, err
}

func loopbackOnce(ctx context.Context, seconds float64) (float64, error) {
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
	// A probe connection would count as the server's one test: watch
	// for its listening socket instead.
	for end := time.Now().Add(30 * time.Second); !listening(port); {
		select {
		case <-srv.exited:
			return 0, fmt.Errorf("iperf3 server exited: %s", srv.Tail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(end) {
			return 0, fmt.Errorf("iperf3 server not listening on 127.0.0.1:%d after 30s", port)
		}
	}
	t := strconv.Itoa(max(1, int(seconds+0.5)))
	out, _, err := runTool(ctx, "iperf3", "-c", "127.0.0.1", "-p", p, "-l", "1M", "-t", t, "-J")
	if err != nil {
		return 0, fmt.Errorf("%v (server: %s)", err, srv.Tail())
	}
	return parseIperf(out)
}

// listening says whether a socket listens on 127.0.0.1:port (or on every
// IPv4 address), from /proc/net/tcp.
func listening(port int) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	return listensIn(string(b), port)
}

func listensIn(procNetTCP string, port int) bool {
	for _, local := range []string{fmt.Sprintf("0100007F:%04X", port), fmt.Sprintf("00000000:%04X", port)} {
		for line := range strings.Lines(procNetTCP) {
			f := strings.Fields(line)
			// sl local_address rem_address st ...; st 0A is LISTEN.
			if len(f) > 3 && f[1] == local && f[3] == "0A" {
				return true
			}
		}
	}
	return false
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
