package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/scsi"
)

// lunView is what a fresh initiator sees of one LUN.
type lunView struct {
	// notReady is set when TEST UNIT READY answers NOT READY; capacity
	// (bytes, from READ CAPACITY(16)) and writeProtect (MODE SENSE WP)
	// are then unset.
	notReady      bool
	notReadySense sense
	capacity      int64
	writeProtect  bool
}

// targetView is what a fresh initiator sees of one target.
type targetView struct {
	luns map[int]lunView
	// maxRecvDSL is the MaxRecvDataSegmentLength the target declared;
	// maxBurst the MaxBurstLength agreed (this initiator offers 262144).
	maxRecvDSL, maxBurst uint32
}

// discover lists the targets iscsi-ls finds at url, sorted.
func discover(url string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iscsi-ls", "-i", probeInitiator, url).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("iscsi-ls %s: %v\n%s", url, err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "Target:") {
			names = append(names, strings.TrimPrefix(f[0], "Target:"))
		}
	}
	slices.Sort(names)
	return names, nil
}

// probe logs in to target as a fresh initiator and reads REPORT LUNS, then
// TEST UNIT READY, READ CAPACITY(16) and MODE SENSE(6) of every LUN.
func probe(portal, target string) (targetView, error) {
	var v targetView
	c, err := initiator.Dial(portal)
	if err != nil {
		return v, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := c.Login(initiator.Options{InitiatorName: probeInitiator, TargetName: target, MaxRecvDSL: 262144}); err != nil {
		return v, fmt.Errorf("login to %s: %w", target, err)
	}
	v.maxRecvDSL, v.maxBurst = c.Params.MaxXmitDSL, c.Params.MaxBurstLength
	rl, _, err := probeCommand(c, 0, []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}, 4096)
	if err != nil {
		return v, fmt.Errorf("%s: REPORT LUNS: %w", target, err)
	}
	if len(rl) < 8 {
		return v, fmt.Errorf("%s: REPORT LUNS returned %d bytes", target, len(rl))
	}
	n := int(binary.BigEndian.Uint32(rl)) / 8
	v.luns = map[int]lunView{}
	for i := 0; i < n && 8+8*i+8 <= len(rl); i++ {
		l, ok := scsi.DecodeLUN([8]byte(rl[8+8*i : 16+8*i]))
		if !ok {
			return v, fmt.Errorf("%s: REPORT LUNS entry % x does not decode", target, rl[8+8*i:16+8*i])
		}
		lv, err := probeLUN(c, l)
		if err != nil {
			return v, fmt.Errorf("%s LUN %d: %w", target, l, err)
		}
		v.luns[int(l)] = lv
	}
	if _, err := c.Logout(); err != nil {
		return v, fmt.Errorf("%s: logout: %w", target, err)
	}
	return v, nil
}

func probeLUN(c *initiator.Conn, l scsi.LUN) (lunView, error) {
	var lv lunView
	_, sn, err := probeCommand(c, l, []byte{0, 0, 0, 0, 0, 0}, 0)
	if err != nil {
		if sn.key == senseKeyNotReady {
			lv.notReady, lv.notReadySense = true, sn
			return lv, nil
		}
		return lv, fmt.Errorf("TEST UNIT READY: %w", err)
	}
	rc, _, err := probeCommand(c, l, []byte{0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, 32)
	if err != nil {
		return lv, fmt.Errorf("READ CAPACITY(16): %w", err)
	}
	if len(rc) < 12 {
		return lv, fmt.Errorf("READ CAPACITY(16) returned %d bytes", len(rc))
	}
	lv.capacity = int64(binary.BigEndian.Uint64(rc)+1) * int64(binary.BigEndian.Uint32(rc[8:]))
	ms, _, err := probeCommand(c, l, []byte{0x1a, 0, 0x3f, 0, 255, 0}, 255)
	if err != nil {
		return lv, fmt.Errorf("MODE SENSE(6): %w", err)
	}
	if len(ms) < 4 {
		return lv, fmt.Errorf("MODE SENSE(6) returned %d bytes", len(ms))
	}
	lv.writeProtect = ms[2]&0x80 != 0
	return lv, nil
}

// probeCommand runs a command, retrying past unit attentions (a new nexus
// may first report power on or a changed LUN inventory). A CHECK
// CONDITION comes back as an error along with its sense.
func probeCommand(c *initiator.Conn, l scsi.LUN, cdb []byte, readLen int) ([]byte, sense, error) {
	for range 8 {
		rsp, err := c.Command(l.Encode(), cdb, nil, readLen)
		if err != nil {
			return nil, sense{}, err
		}
		if rsp.Status == statusGood {
			return rsp.Data, sense{}, nil
		}
		sn, _ := parseSense(rsp.Sense)
		if rsp.Status == statusCheckCondition && sn.key == senseKeyUnitAttention {
			continue
		}
		return nil, sn, fmt.Errorf("status %02Xh, sense %v", rsp.Status, sn)
	}
	return nil, sense{}, fmt.Errorf("still UNIT ATTENTION after 8 attempts")
}

// verifyView checks what a fresh initiator sees against the state: the
// targets discovery lists, each target's LUNs, their capacities, B's
// negotiation limits, rodev's write protection, and flaky's readiness
// (offline: NOT READY).
func verifyView(url, portal string, s reloadState, flakyOnline bool) []string {
	var problems []string
	got, err := discover(url)
	if err != nil {
		return []string{err.Error()}
	}
	if want := s.targets(); !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("discovery lists %v, want %v", got, want))
	}
	for _, name := range s.targets() {
		v, err := probe(portal, name)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		want := s.lunsOf(name)
		if g, w := slices.Sorted(maps.Keys(v.luns)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
			problems = append(problems, fmt.Sprintf("%s: REPORT LUNS %v, want %v", name, g, w))
		}
		for l, dev := range want {
			lv, ok := v.luns[l]
			if !ok {
				continue
			}
			if dev == "flaky" && !flakyOnline {
				if !lv.notReady {
					problems = append(problems, fmt.Sprintf("%s LUN %d (flaky, backing file missing): ready with %d bytes, want NOT READY",
						name, l, lv.capacity))
				}
				continue
			}
			if lv.notReady {
				problems = append(problems, fmt.Sprintf("%s LUN %d (%s): NOT READY (%v)", name, l, dev, lv.notReadySense))
				continue
			}
			if w := s.deviceSize(dev); lv.capacity != w {
				problems = append(problems, fmt.Sprintf("%s LUN %d (%s): READ CAPACITY %d bytes, want %d", name, l, dev, lv.capacity, w))
			}
			if dev == "rodev" && lv.writeProtect != s.roOn {
				problems = append(problems, fmt.Sprintf("%s LUN %d (rodev): MODE SENSE WP=%t, want read_only=%t", name, l, lv.writeProtect, s.roOn))
			}
		}
		if name == iqnA && v.maxBurst != uint32(min(s.aMaxBurst, 262144)) {
			problems = append(problems, fmt.Sprintf("%s: MaxBurstLength=%d agreed, want %d", name, v.maxBurst, min(s.aMaxBurst, 262144)))
		}
		if name == iqnB {
			if v.maxRecvDSL != uint32(s.bMaxRecvDSL) {
				problems = append(problems, fmt.Sprintf("%s: declares MaxRecvDataSegmentLength=%d, want %d", name, v.maxRecvDSL, s.bMaxRecvDSL))
			}
			if v.maxBurst != uint32(min(s.bMaxBurst, 262144)) {
				problems = append(problems, fmt.Sprintf("%s: MaxBurstLength=%d agreed, want %d", name, v.maxBurst, min(s.bMaxBurst, 262144)))
			}
		}
	}
	return problems
}

// daemonStatus is the part of `scstd status -json` the scenario reads.
type daemonStatus struct {
	LastReload admin.ReloadReply `json:"last_reload"`
	Engine     struct {
		Generation uint64            `json:"generation"`
		Devices    []json.RawMessage `json:"devices"`
		Targets    []json.RawMessage `json:"targets"`
		Sessions   []struct {
			Initiator   string `json:"initiator"`
			TSIH        uint16 `json:"tsih"`
			Target      string `json:"target"`
			Connections []struct {
				Remote string `json:"remote"`
			} `json:"connections"`
		} `json:"sessions"`
	} `json:"engine"`
}

// device returns the status entry of the named device.
func (st daemonStatus) device(name string) (deviceStatus, bool) {
	for _, raw := range st.Engine.Devices {
		var d deviceStatus
		if json.Unmarshal(raw, &d) == nil && d.Name == name {
			return d, true
		}
	}
	return deviceStatus{}, false
}

// deviceStatus is one device of `scstd status -json`.
type deviceStatus struct {
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	ReadOnly bool   `json:"read_only"`
	Online   bool   `json:"online"`
	Reason   string `json:"reason"`
}

// engineTree is the engine's configuration part of the status (devices and
// targets, not sessions, nor the LUNs' I/O counters, which the load
// moves), to compare before and after a rejected reload.
func (st daemonStatus) engineTree() string {
	targets := make([]any, 0, len(st.Engine.Targets))
	for _, raw := range st.Engine.Targets {
		var t map[string]any
		if err := json.Unmarshal(raw, &t); err != nil {
			targets = append(targets, string(raw))
			continue
		}
		dropIO(t["luns"])
		if groups, ok := t["groups"].([]any); ok {
			for _, g := range groups {
				if g, ok := g.(map[string]any); ok {
					dropIO(g["luns"])
				}
			}
		}
		targets = append(targets, t)
	}
	b, _ := json.Marshal([]any{st.Engine.Generation, st.Engine.Devices, targets})
	return string(b)
}

// dropIO removes the I/O counters from a LUN list of the status.
func dropIO(luns any) {
	list, _ := luns.([]any)
	for _, l := range list {
		if l, ok := l.(map[string]any); ok {
			delete(l, "io")
		}
	}
}

// readBlock logs in to target as a fresh initiator and reads one block of
// lun with READ(16).
func readBlock(portal, target string, lun int, lba uint64) ([]byte, error) {
	c, err := initiator.Dial(portal)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := c.Login(initiator.Options{InitiatorName: probeInitiator, TargetName: target, MaxRecvDSL: 262144}); err != nil {
		return nil, fmt.Errorf("login to %s: %w", target, err)
	}
	data, _, err := probeCommand(c, scsi.LUN(lun), rw16(0x88, lba, 1), blockSize)
	if err != nil {
		return nil, err
	}
	if len(data) != blockSize {
		return nil, fmt.Errorf("READ(16) returned %d bytes, want %d", len(data), blockSize)
	}
	if _, err := c.Logout(); err != nil {
		return nil, err
	}
	return data, nil
}
