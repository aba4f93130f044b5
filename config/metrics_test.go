package config

import "testing"

// TestMetricsBlock: listen takes host[:port] (port 9470 by default), ""
// or no block means no endpoint.
func TestMetricsBlock(t *testing.T) {
	for _, tt := range []struct {
		name, src string
		want      string // Listen, "" for none
		block     bool
		wantErr   string
	}{
		{name: "no block", src: ``},
		{name: "empty block", src: "metrics {}", block: true},
		{name: "listen off", src: "metrics {\n  listen = \"\"\n}", block: true},
		{name: "address", src: "metrics {\n  listen = \"127.0.0.1:9100\"\n}", want: "127.0.0.1:9100", block: true},
		{name: "default port", src: "metrics {\n  listen = \"127.0.0.1\"\n}", want: "127.0.0.1:9470", block: true},
		{name: "IPv6", src: "metrics {\n  listen = \"[::1]:9470\"\n}", want: "[::1]:9470", block: true},
		{name: "host name", src: "metrics {\n  listen = \"localhost:9470\"\n}", want: "localhost:9470", block: true},
		{name: "wildcard on another port", src: "metrics {\n  listen = \"0.0.0.0:9470\"\n}", want: "0.0.0.0:9470", block: true},
		{name: "unbracketed IPv6", src: "metrics {\n  listen = \"::1\"\n}", wantErr: "an IPv6 address must be in brackets"},
		{name: "bad port", src: "metrics {\n  listen = \"127.0.0.1:http\"\n}", wantErr: "Invalid metrics listen address"},
		{name: "number", src: "metrics {\n  listen = 9470\n}", wantErr: `"9470" is a number, not a host. Expected "host:port" such as "127.0.0.1:9470".`},
		{name: "label", src: "metrics \"a\" {\n}", wantErr: "Extraneous label"},
		{name: "on the default portal", src: "metrics {\n  listen = \"0.0.0.0:3260\"\n}", wantErr: "Metrics endpoint on a portal"},
		{name: "beside the wildcard portal", src: "metrics {\n  listen = \"127.0.0.1:3260\"\n}", wantErr: "Metrics endpoint cannot be bound"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseExpect(t, tt.src, "metrics.hcl", tt.wantErr)
			if cfg == nil {
				return
			}
			if (cfg.Metrics != nil) != tt.block {
				t.Fatalf("Metrics %+v, want a block: %v", cfg.Metrics, tt.block)
			}
			got := ""
			if cfg.Metrics != nil && !cfg.Metrics.Listen.IsZero() {
				got = cfg.Metrics.Listen.String()
			}
			if got != tt.want {
				t.Errorf("Listen %q, want %q", got, tt.want)
			}
		})
	}
}
