package iscsi

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
)

// sessLibiscsiSuites are the iscsi-test-cu suites TestLibiscsi runs; -libiscsi-suites
// replaces them (comma-separated), e.g. -libiscsi-suites=ALL.
var sessLibiscsiSuites = flag.String("libiscsi-suites", "iSCSI.iSCSIcmdsn,iSCSI.iSCSIdatasn,iSCSI.iSCSIResiduals,iSCSI.iSCSITMF,iSCSI.iSCSINop,SCSI.Read10,SCSI.Write10,SCSI.TestUnitReady",
	"iscsi-test-cu suites for TestLibiscsi")

// startSessLibiscsiTarget serves a 64 MiB in-memory disk as LUN 0 of
// sessTargetName on a loopback portal and returns the portal address.
func startSessLibiscsiTarget(t *testing.T) string {
	t.Helper()
	mem := &sessMem{b: make([]byte, 64<<20)}
	dev := scsi.NewDevice(scsi.DeviceConfig{Name: "mem0", Type: scsi.TypeDisk, BlockSize: 512}, mem)
	luns := scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: dev}})
	tgt := &Target{Name: sessTargetName, Enabled: true, RelTgtPortID: 1, QueuedCommands: 32, LUNs: luns,
		Params: Params{
			HeaderDigest: []access.Digest{access.DigestNone}, DataDigest: []access.Digest{access.DigestNone}, ImmediateData: true, InitialR2T: false,
			MaxRecvDataSegmentLength: 262144, MaxXmitDataSegmentLength: 262144, MaxBurstLength: 1 << 20,
			FirstBurstLength: 65536, MaxOutstandingR2T: 1, DefaultTime2Wait: 2, DefaultTime2Retain: 0,
		}}
	srv := NewServer(sessLogger(t))
	srv.Publish(&Snapshot{Enabled: true, Targets: map[string]*Target{sessTargetName: tgt}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestSessionLibiscsi runs libiscsi's tools against a Server: iscsi-inq,
// iscsi-ls and iscsi-test-cu suites. It is skipped without libiscsi-bin
// or with -short.
func TestSessionLibiscsi(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, tool := range []string{"iscsi-inq", "iscsi-ls", "iscsi-test-cu"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	addr := startSessLibiscsiTarget(t)
	url := "iscsi://" + addr + "/" + sessTargetName + "/0"
	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	if out := run("iscsi-inq", url); !strings.Contains(out, "Peripheral Device Type") && !strings.Contains(out, "Type:") {
		t.Errorf("iscsi-inq output:\n%s", out)
	}
	if out := run("iscsi-ls", "-s", "iscsi://"+addr); !strings.Contains(out, sessTargetName) {
		t.Errorf("iscsi-ls output:\n%s", out)
	}
	// Large transfers through qemu's libiscsi block driver: 4 MiB spans
	// several bursts, R2Ts and Data-In sequences.
	if _, err := exec.LookPath("qemu-io"); err == nil {
		out := run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 4M", "-c", "read -P 0x5a 1M 4M",
			"-c", "write -P 0xa5 7k 9k", "-c", "read -P 0xa5 7k 9k", url)
		if strings.Count(out, "ops/sec") != 4 || strings.Contains(out, "Pattern verification failed") {
			t.Errorf("qemu-io output:\n%s", out)
		}
	}
	for _, suite := range strings.Split(*sessLibiscsiSuites, ",") {
		t.Run(suite, func(t *testing.T) { runSessSuite(t, suite, url) })
	}
}

// runSessSuite runs one iscsi-test-cu suite (or test) against url.
func runSessSuite(t *testing.T, suite, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "iscsi-test-cu", "--dataloss", "--normal", "--test", suite, url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	ran, failed, ok := sessCUnitSummary(text)
	switch {
	case !ok:
		t.Errorf("iscsi-test-cu %s: %v, no run summary\n%s", suite, err, text)
	case ran == 0:
		t.Skipf("iscsi-test-cu has no test %s", suite)
	case failed > 0:
		t.Errorf("iscsi-test-cu %s: %d of %d tests failed\n%s", suite, failed, ran, text)
	case testing.Verbose():
		t.Logf("%s", text)
	}
}

// sessCUnitSummary reads the "tests" line of a CUnit run summary:
// "tests  Total Ran Passed Failed Inactive".
func sessCUnitSummary(out string) (ran, failed int, ok bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == "tests" {
			r, err1 := strconv.Atoi(f[2])
			fl, err2 := strconv.Atoi(f[4])
			return r, fl, err1 == nil && err2 == nil
		}
	}
	return 0, 0, false
}
