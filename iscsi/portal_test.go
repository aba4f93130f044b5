package iscsi

import (
	"context"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPortalListenConfig: a portal is bound in its own address family,
// IPv6 ones IPv6-only, so that "[::]:P" and "0.0.0.0:P" can both listen
// (Go's "tcp" would bind either wildcard dual-stack). The option is
// checked on a loopback socket made with the same ListenConfig (tests do
// not listen on wildcards; test/e2e does, in a network namespace).
func TestPortalListenConfig(t *testing.T) {
	for _, tc := range []struct {
		portal, network, probe string
	}{
		{"[::]:3260", "tcp6", "[::1]:0"},
		{"[::0]:3260", "tcp6", "[::1]:0"},
		{"[::1]:3260", "tcp6", "[::1]:0"},
		{"0.0.0.0:3260", "tcp4", "127.0.0.1:0"},
		{"127.0.0.1:3260", "tcp4", "127.0.0.1:0"},
		{"storage.example.org:3260", "tcp", ""},
	} {
		t.Run(tc.portal, func(t *testing.T) {
			network, lc := portalListenConfig(tc.portal)
			if network != tc.network {
				t.Fatalf("network %q, want %q", network, tc.network)
			}
			if tc.probe == "" {
				return
			}
			ln, err := lc.Listen(context.Background(), network, tc.probe)
			if err != nil {
				t.Skipf("cannot listen on %s here: %v", tc.probe, err)
			}
			defer ln.Close()
			rc, err := ln.(*net.TCPListener).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var domain, v6only int
			var gerr error
			if err := rc.Control(func(fd uintptr) {
				domain, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
				if gerr == nil && domain == unix.AF_INET6 {
					v6only, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
				}
			}); err != nil || gerr != nil {
				t.Fatal(err, gerr)
			}
			wantDomain := map[string]int{"tcp4": unix.AF_INET, "tcp6": unix.AF_INET6}[network]
			if domain != wantDomain || (domain == unix.AF_INET6 && v6only != 1) {
				t.Errorf("socket domain %d (IPV6_V6ONLY %d), want domain %d, IPv6-only", domain, v6only, wantDomain)
			}
		})
	}
}
