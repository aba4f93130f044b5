package iscsi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
)

func accessLUNMap(luns ...scsi.LUN) *scsi.LUNMap {
	m := map[scsi.LUN]*scsi.LogicalUnit{}
	for _, l := range luns {
		m[l] = &scsi.LogicalUnit{Device: &scsi.Device{}}
	}
	return scsi.NewLUNMap(m)
}

// TestAccessGroupMatrix checks which LUN map, group, visibility and login
// decision several initiators get on several targets.
func TestAccessGroupMatrix(t *testing.T) {
	defaultLUNs := accessLUNMap(0, 1)
	specialLUNs := accessLUNMap(0)
	linuxLUNs := accessLUNMap(5, 6, 7)
	targets := map[string]*Target{
		// Default LUNs for everyone, Microsoft hosts but the guest see the
		// special group.
		"design": {
			LUNs: defaultLUNs,
			Access: Access{Groups: []Group{{Name: "special_ini", LUNs: specialLUNs,
				Initiators: access.MustPatterns("iqn.1991-05.com.microsoft:*", "!iqn.1991-05.com.microsoft:guest")}}},
		},
		// No default LUNs: only group members get in (SCST README, "allow
		// only a specific set of initiators").
		"allowlist": {
			Access: Access{Groups: []Group{{Name: "linux", LUNs: linuxLUNs, Initiators: access.MustPatterns("iqn.2004-10.com.ubuntu:*")}}},
		},
		// An empty group blocks its members (SCST README, "denied_inis").
		"denylist": {
			LUNs:   defaultLUNs,
			Access: Access{Groups: []Group{{Name: "denied", Initiators: access.MustPatterns("!iqn.2004-10.com.ubuntu:01:good")}}},
		},
		// First matching group wins.
		"ordered": {
			LUNs: defaultLUNs,
			Access: Access{Groups: []Group{
				{Name: "first", LUNs: specialLUNs, Initiators: access.MustPatterns("*:host1")},
				{Name: "second", LUNs: linuxLUNs, Initiators: access.MustPatterns("iqn.*")},
			}},
		},
	}
	initiators := []string{
		"iqn.1991-05.com.microsoft:host1",
		"iqn.1991-05.com.microsoft:guest",
		"iqn.2004-10.com.ubuntu:01:good",
		"iqn.2004-10.com.ubuntu:01:other",
	}
	type cell struct {
		group string
		luns  int // 0: hidden and refused
	}
	want := map[string][]cell{
		"design":    {{"special_ini", 1}, {"", 2}, {"", 2}, {"", 2}},
		"allowlist": {{"", 0}, {"", 0}, {"linux", 3}, {"linux", 3}},
		"denylist":  {{"denied", 0}, {"denied", 0}, {"", 2}, {"denied", 0}},
		"ordered":   {{"first", 1}, {"second", 3}, {"second", 3}, {"second", 3}},
	}
	for tname, tgt := range targets {
		tgt.Name = tname
		for i, ini := range initiators {
			t.Run(tname+"/"+ini, func(t *testing.T) {
				w := want[tname][i]
				m, g := tgt.LUNsFor(ini, "192.0.2.1"), ""
				if gr := tgt.Access.GroupFor(ini, "192.0.2.1"); gr != nil {
					g = gr.Name
				}
				if g != w.group || m.Len() != w.luns {
					t.Fatalf("LUNsFor = %d LUNs in group %q, want %d in %q", m.Len(), g, w.luns, w.group)
				}
				err := tgt.CheckLogin(ini, "192.0.2.1")
				if w.luns > 0 {
					if err != nil {
						t.Fatalf("CheckLogin: %v", err)
					}
					return
				}
				var ae *AccessError
				if !errors.As(err, &ae) || !errors.Is(err, ErrNoLUNs) || ae.LoginStatus() != 0x0203 || ae.Group != w.group {
					t.Fatalf("CheckLogin = %v, want ErrNoLUNs in group %q", err, w.group)
				}
			})
		}
	}
}

func TestAccessPortals(t *testing.T) {
	a := &Target{
		Name:   "iqn.2026-11.org.example:a",
		LUNs:   accessLUNMap(0),
		Access: Access{Portals: PortalRules{Allowed: access.MustPatterns("10.170.7?.*", "!10.170.77.2", "fd00::*")}},
	}
	tests := []struct {
		portal string
		ok     bool
	}{
		{"10.170.75.1", true},
		{"10.170.77.2", false},
		{"10.170.67.2", false},
		{"fd00::1", true},
		{"fe80::1", false},
	}
	for _, tt := range tests {
		err := a.CheckLogin("iqn.x:y", tt.portal)
		if tt.ok != (err == nil) || a.Access.Portals.Allows(tt.portal) != tt.ok {
			t.Errorf("portal %s: CheckLogin = %v, want allowed=%v", tt.portal, err, tt.ok)
		}
		if !tt.ok && !errors.Is(err, ErrPortalNotAllowed) {
			t.Errorf("portal %s: %v, want ErrPortalNotAllowed", tt.portal, err)
		}
	}
	if !(PortalRules{}).Allows("203.0.113.9") {
		t.Error("no allowed_portals must allow every portal")
	}
}

func TestAccessPerPortalACL(t *testing.T) {
	// SCST README example 3: block one initiator on one portal only, and
	// another on every portal.
	tgt := &Target{
		LUNs: accessLUNMap(0),
		Access: Access{
			Groups: []Group{{Name: "BLOCKING_GROUP", Initiators: access.MustPatterns(
				"iqn.2005-03.org.vlnb:cacdcd2520#10.170.77.2",
				"iqn.2005-03.org.vlnb:other*")}},
			Portals: PortalRules{PerPortalACL: true},
		},
	}
	a := &tgt.Access
	tests := []struct {
		ini, portal string
		ok          bool
	}{
		{"iqn.2005-03.org.vlnb:cacdcd2520", "10.170.77.2", false},
		{"iqn.2005-03.org.vlnb:cacdcd2520", "10.170.77.3", true},
		{"iqn.2005-03.org.vlnb:other", "10.170.77.3", false},
		{"iqn.2005-03.org.vlnb:other", "10.170.77.2", false},
		{"iqn.2005-03.org.vlnb:third", "10.170.77.2", true},
	}
	for _, tt := range tests {
		if got := tgt.CheckLogin(tt.ini, tt.portal) == nil; got != tt.ok {
			t.Errorf("%s on %s: visible=%v, want %v", tt.ini, tt.portal, got, tt.ok)
		}
	}
	if k := a.InitiatorKey("iqn.a:b", "fd00::1"); k != "iqn.a:b#fd00::1" {
		t.Errorf("InitiatorKey = %q", k)
	}
	a.Portals.PerPortalACL = false
	if k := a.InitiatorKey("iqn.a:b", "fd00::1"); k != "iqn.a:b" {
		t.Errorf("InitiatorKey without per-portal ACL = %q", k)
	}
}

func TestPortalIP(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 3260}, "192.0.2.1"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 3260}, "192.0.2.1"},
		{&net.TCPAddr{IP: net.ParseIP("fd00::1"), Port: 3260}, "fd00::1"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 3260, Zone: "eth0"}, "fe80::1"},
		{&net.UnixAddr{Name: "/run/x", Net: "unix"}, "/run/x"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := PortalIP(tt.addr); got != tt.want {
			t.Errorf("PortalIP(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestRedirectLogin(t *testing.T) {
	for _, tt := range []struct {
		r      access.Redirect
		status LoginStatus
	}{
		{access.Redirect{Addr: access.MustHostPort("192.0.2.20", access.ISCSIPort)}, 0x0101},
		{access.Redirect{Addr: access.MustHostPort("[2001:db8::1]:3262", access.ISCSIPort), Permanent: true}, 0x0102},
	} {
		if got := redirectStatus(tt.r); got != tt.status {
			t.Errorf("redirectStatus(%v) = %v, want %v", tt.r, got, tt.status)
		}
	}
}

func TestCHAPUserRedacted(t *testing.T) {
	u := CHAPUser{Name: "joe", Secret: []byte("hunter2-hunter2")}
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("login", "user", u, "ptr", &u)
	outputs := []string{
		fmt.Sprint(u), fmt.Sprintf("%v %+v %#v %s", u, u, u, u), fmt.Sprintf("%v", &u),
		fmt.Sprintf("%v", Auth{Incoming: []CHAPUser{u}, Outgoing: &u}),
		logBuf.String(),
	}
	for _, s := range outputs {
		if strings.Contains(s, "hunter2") || strings.Contains(s, fmt.Sprint([]byte("hunter2"))[1:10]) {
			t.Errorf("secret printed: %s", s)
		}
		if !strings.Contains(s, "joe") {
			t.Errorf("name missing: %s", s)
		}
	}
}
