package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scstd/scstd/internal/testtarget"
)

// The reload scenario's names: target A carries the load, B and C come and
// go around it.
const (
	iqnA = "iqn.2026-11.org.example:reload-a"
	iqnB = "iqn.2026-11.org.example:reload-b"
	iqnC = "iqn.2026-11.org.example:reload-c"

	// liveInitiator is the session that stays logged in to A throughout;
	// probeInitiator is the fresh initiator that checks each edit.
	liveInitiator  = "iqn.2026-11.org.example:reload-live"
	probeInitiator = "iqn.2026-11.org.example:reload-probe"

	mib = 1 << 20

	// flakySize is the size of the backing file that is removed and
	// restored; rodevSize and cdevSize those of B's and C's LUN 0.
	flakySize = 8 * mib
	rodevSize = 16 * mib
	cdevSize  = 50 * mib
)

// spareSize is the capacity of the nullio device xN that A's LUNs 1..4 map:
// distinct, so that a LUN mapped to the wrong device shows.
func spareSize(n int) int64 { return int64(100+n) * mib }

// reloadState is one configuration of the scenario. Edits move from one
// state to the next; the state says what a fresh initiator must see.
type reloadState struct {
	// aLUNs maps A's LUNs beyond 0 to their device (x1..x4); LUN 0 is
	// always disk0, the device under load.
	aLUNs map[int]string
	// aQueued and aMaxBurst are A's queued_commands (applied to live
	// sessions through MaxCmdSN) and max_burst_length (new logins only).
	aQueued, aMaxBurst int
	// disk0MiB is disk0's size; it only grows.
	disk0MiB int64
	b, c     bool
	// bMaxRecvDSL and bMaxBurst are B's max_recv_data_segment_length and
	// max_burst_length.
	bMaxRecvDSL, bMaxBurst int
	// roOn is the read_only attribute of rodev (B's LUN 0).
	roOn bool
	// flaky says whether device flaky (B's LUN 1) is declared.
	flaky bool
}

// initialReloadState is where the scenario starts: A with LUN 0 only, B
// and C absent, flaky declared.
func initialReloadState() reloadState {
	return reloadState{aLUNs: map[int]string{}, aQueued: 32, aMaxBurst: 262144, disk0MiB: 64,
		bMaxRecvDSL: 262144, bMaxBurst: 262144, flaky: true}
}

func (s reloadState) clone() reloadState {
	s.aLUNs = maps.Clone(s.aLUNs)
	return s
}

// targets are the targets discovery must list, sorted.
func (s reloadState) targets() []string {
	t := []string{iqnA}
	if s.b {
		t = append(t, iqnB)
	}
	if s.c {
		t = append(t, iqnC)
	}
	slices.Sort(t)
	return t
}

// lunsOf returns the LUNs of target and each one's device.
func (s reloadState) lunsOf(target string) map[int]string {
	switch target {
	case iqnA:
		m := map[int]string{0: "disk0"}
		maps.Copy(m, s.aLUNs)
		return m
	case iqnB:
		m := map[int]string{0: "rodev"}
		if s.flaky {
			m[1] = "flaky"
		}
		return m
	case iqnC:
		return map[int]string{0: "cdev"}
	}
	return nil
}

// deviceSize is the capacity a device serves in state s.
func (s reloadState) deviceSize(dev string) int64 {
	switch dev {
	case "disk0":
		return s.disk0MiB * mib
	case "rodev":
		return rodevSize
	case "flaky":
		return flakySize
	case "cdev":
		return cdevSize
	}
	var n int
	if _, err := fmt.Sscanf(dev, "x%d", &n); err == nil {
		return spareSize(n)
	}
	return -1
}

// defect is what an invalid edit adds to an otherwise valid file.
type defect struct {
	// name says what is wrong, for the log.
	name string
	// inA goes inside target A's block, devices inside the fileio handler
	// block, top at the end of the file.
	inA, devices, top string
	// mention is a word the diagnostics must contain.
	mention string
}

// hcl renders s as a configuration template (over testtarget.Params) with
// the defect d, if any.
func (s reloadState) hcl(d defect) string {
	var b strings.Builder
	b.WriteString("iscsi { portals = [\"{{.Portal}}\"] }\n\n")
	b.WriteString("handler \"vdisk_fileio\" {\n")
	fmt.Fprintf(&b, "  device \"disk0\" {\n    filename = \"{{.Dir}}/disk0.img\"\n    size     = \"%dMiB\"\n  }\n", s.disk0MiB)
	fmt.Fprintf(&b, "  device \"rodev\" {\n    filename  = \"{{.Dir}}/rodev.img\"\n    size      = \"%dMiB\"\n    read_only = %t\n  }\n",
		rodevSize/mib, s.roOn)
	if s.flaky {
		// No size: a missing file is not created, the device goes offline.
		b.WriteString("  device \"flaky\" {\n    filename = \"{{.Dir}}/flaky.img\"\n  }\n")
	}
	b.WriteString(d.devices)
	b.WriteString("}\n\nhandler \"vdisk_nullio\" {\n")
	for n := 1; n <= 4; n++ {
		fmt.Fprintf(&b, "  device \"x%d\" {\n    size = \"%dMiB\"\n  }\n", n, spareSize(n)/mib)
	}
	fmt.Fprintf(&b, "  device \"cdev\" {\n    size = \"%dMiB\"\n  }\n}\n", cdevSize/mib)
	for _, name := range s.targets() {
		fmt.Fprintf(&b, "\ntarget %q {\n", name)
		if name == iqnA {
			fmt.Fprintf(&b, "  queued_commands = %d\n  max_burst_length = %d\n  first_burst_length = %d\n",
				s.aQueued, s.aMaxBurst, min(s.aMaxBurst, 65536))
		}
		if name == iqnB {
			fmt.Fprintf(&b, "  max_recv_data_segment_length = %d\n  max_burst_length = %d\n  first_burst_length = %d\n",
				s.bMaxRecvDSL, s.bMaxBurst, min(s.bMaxBurst, 65536))
		}
		luns := s.lunsOf(name)
		for _, l := range slices.Sorted(maps.Keys(luns)) {
			fmt.Fprintf(&b, "  lun \"%d\" {\n    device = %q\n  }\n", l, luns[l])
		}
		if name == iqnA {
			b.WriteString(d.inA)
		}
		b.WriteString("}\n")
	}
	b.WriteString(d.top)
	return b.String()
}

// The invalid edits: each is a configuration error that rejects the whole
// file. (A missing backing file is not one: see the flaky steps.)
var (
	defectSyntax = defect{name: "syntax error (unclosed block)",
		top: "\ntarget \"iqn.2026-11.org.example:reload-broken\" {\n  lun \"0\" {\n    device = \"cdev\"\n  }\n", mention: "scstd.hcl"}
	defectUnknownDevice = defect{name: "unknown device reference",
		inA: "  lun \"7\" {\n    device = \"nosuch\"\n  }\n", mention: "nosuch"}
	defectDuplicateLUN = defect{name: "duplicate LUN",
		inA: "  lun \"0\" {\n    device = \"x4\"\n  }\n", mention: "scstd.hcl"}
	defectBadIQN = defect{name: "bad IQN",
		top: "\ntarget \"iqn.bogus:reload-d\" {\n  lun \"0\" {\n    device = \"cdev\"\n  }\n}\n", mention: "iqn.bogus"}
	defectBadSize = defect{name: "bad size",
		devices: "  device \"bad\" {\n    filename = \"{{.Dir}}/bad.img\"\n    size     = \"12XB\"\n  }\n", mention: "12XB"}
	defectUnknownAttr = defect{name: "unknown attribute",
		inA: "  frobnicate = true\n", mention: "frobnicate"}
	defectDuplicateDevice = defect{name: "duplicate device",
		devices: "  device \"disk0\" {\n    filename = \"{{.Dir}}/other.img\"\n    size     = \"1MiB\"\n  }\n", mention: "disk0"}
	defectBlockSize = defect{name: "bad blocksize",
		devices: "  device \"odd\" {\n    filename  = \"{{.Dir}}/odd.img\"\n    size      = \"1MiB\"\n    blocksize = 1000\n  }\n", mention: "blocksize"}
)

// TestReloadScriptFiles checks the scenario's files without a daemon:
// `scstd validate` accepts every state the script moves through and
// rejects every invalid file with diagnostics naming its defect, so that a
// failure of TestReloadUnderLoad is the daemon's and not the script's.
func TestReloadScriptFiles(t *testing.T) {
	dir := t.TempDir()
	params := testtarget.Params{Portal: "127.0.0.1:3260", Host: "127.0.0.1", Port: 3260, Dir: dir}
	path := filepath.Join(dir, "scstd.hcl")
	// validate may check storage: flaky, which has no size, exists.
	if err := os.WriteFile(filepath.Join(dir, "flaky.img"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "flaky.img"), flakySize); err != nil {
		t.Fatal(err)
	}
	check := func(label, tpl string, wantCode int, mention string) {
		t.Helper()
		text, err := testtarget.Render(tpl, params)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := testtarget.Run(t, "validate", path)
		if code != wantCode || !strings.Contains(out, mention) {
			t.Errorf("%s: scstd validate exited %d, want %d with output naming %q\n%s\n--- file ---\n%s",
				label, code, wantCode, mention, out, text)
		}
	}
	s := initialReloadState()
	check("initial state", s.hcl(defect{}), 0, "")
	for i, st := range reloadScript() {
		label := fmt.Sprintf("edit %d %s", i+1, st.name)
		switch st.kind {
		case stepValid:
			st.edit(&s)
			check(label, s.hcl(defect{}), 0, "")
		case stepInvalid:
			bad := s.clone()
			st.edit(&bad)
			check(label, bad.hcl(st.bad), 1, st.bad.mention)
		}
	}
}
