package iscsi

import (
	"context"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPortalListenConfigV6Only: the IPv6 wildcard portal is bound
// IPv6-only, so that "[::]:P" and "0.0.0.0:P" can both listen; other
// portals keep the defaults. The option is checked on a loopback socket
// made with the same ListenConfig (tests do not listen on wildcards).
func TestPortalListenConfigV6Only(t *testing.T) {
	for _, tc := range []struct {
		portal string
		v6only bool
	}{
		{"[::]:3260", true},
		{"[::0]:3260", true},
		{"0.0.0.0:3260", false},
		{"[::1]:3260", false},
		{"127.0.0.1:3260", false},
		{"storage.example.org:3260", false},
	} {
		t.Run(tc.portal, func(t *testing.T) {
			lc := portalListenConfig(tc.portal)
			if (lc.Control != nil) != tc.v6only {
				t.Fatalf("Control set = %v, want %v", lc.Control != nil, tc.v6only)
			}
			if !tc.v6only {
				return
			}
			ln, err := lc.Listen(context.Background(), "tcp", "[::1]:0")
			if err != nil {
				t.Skipf("no IPv6 loopback here: %v", err)
			}
			defer ln.Close()
			rc, err := ln.(*net.TCPListener).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var v int
			var gerr error
			if err := rc.Control(func(fd uintptr) {
				v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
			}); err != nil {
				t.Fatal(err)
			}
			if gerr != nil || v != 1 {
				t.Errorf("IPV6_V6ONLY = %d, %v; want 1", v, gerr)
			}
		})
	}
}
