package iscsi

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// serveForLibiscsi serves wireTarget, with params and a 4 MiB fileio LUN 0,
// on a loopback port and returns the portal address.
func serveForLibiscsi(t *testing.T, network, addr string, params Params) string {
	t.Helper()
	b, err := vdisk.Open(vdisk.Spec{Handler: vdisk.FileIO, Filename: t.TempDir() + "/disk.img", Size: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	luns := scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: scsi.NewDevice(scsi.DeviceConfig{Name: "file0"}, b)}})
	s := wireServer(t, func(snap *Snapshot) {
		tg := snap.Targets[wireTarget]
		tg.Params, tg.LUNs = params, luns
	})
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// runTool runs a libiscsi utility, skipping the test when it is missing.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestLibiscsiDiscoveryAndLogin(t *testing.T) {
	crcOnly := wireParams
	crcOnly.HeaderDigest = []access.Digest{access.DigestCRC32C}
	// libiscsi offers DataDigest=None only, so only the header digest
	// can be required of it.
	small := wireParams
	small.MaxRecvDataSegmentLength = 512
	small.MaxXmitDataSegmentLength = 512
	tests := []struct {
		name    string
		network string
		addr    string
		params  Params
	}{
		{"defaults", "tcp", "127.0.0.1:0", wireParams},
		{"CRC32C header digest required", "tcp", "127.0.0.1:0", crcOnly},
		{"512-byte segments", "tcp", "127.0.0.1:0", small},
		{"IPv6 portal", "tcp6", "[::1]:0", wireParams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveForLibiscsi(t, tc.network, tc.addr, tc.params)
			out := runTool(t, "iscsi-ls", "-i", wireInitiator, "iscsi://"+addr)
			if want := fmt.Sprintf("Target:%s Portal:%s,1", wireTarget, addr); !strings.Contains(out, want) {
				t.Fatalf("iscsi-ls output lacks %q:\n%s", want, out)
			}
			out = runTool(t, "iscsi-ls", "-s", "-i", wireInitiator, "iscsi://"+addr)
			if !strings.Contains(out, "Lun:0") {
				t.Fatalf("iscsi-ls -s shows no LUN 0:\n%s", out)
			}
			out = runTool(t, "iscsi-inq", "-i", wireInitiator, "iscsi://"+addr+"/"+wireTarget+"/0")
			if !strings.Contains(strings.ToLower(out), "peripheral") {
				t.Fatalf("iscsi-inq output:\n%s", out)
			}
		})
	}
}

func TestQemuHeaderDigest(t *testing.T) {
	crcOnly := wireParams
	crcOnly.HeaderDigest = []access.Digest{access.DigestCRC32C}
	for _, tc := range []struct {
		name   string
		params Params
		digest string // qemu's header-digest option
	}{
		{"initiator prefers CRC32C", wireParams, "crc32c-none"},
		{"target requires CRC32C", crcOnly, "none-crc32c"},
		{"no digest", wireParams, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveForLibiscsi(t, "tcp", "127.0.0.1:0", tc.params)
			opts := "driver=iscsi,transport=tcp,portal=" + addr + ",target=" + wireTarget + ",lun=0,header-digest=" + tc.digest
			out := runTool(t, "qemu-io", "--image-opts", opts,
				"-c", "write -P 0xa5 4096 65536", "-c", "read -P 0xa5 4096 65536")
			if strings.Contains(out, "Pattern verification failed") || !strings.Contains(out, "read 65536/65536") {
				t.Fatalf("qemu-io:\n%s", out)
			}
		})
	}
}
