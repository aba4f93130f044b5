package reconcile

import (
	"fmt"
	"maps"
	"slices"

	"github.com/scstd/scstd/scsi"
)

// This file is the engine's part in a cluster of gateways
// (docs/scale-out.md). With a cluster block and a SharedState (SetShared,
// before the first Apply), the engine:
//
//   - derives the NAA designators of devices that do not pin naa_id from
//     the cluster's key prefix instead of the state directory's seed, so
//     that every gateway reports the same logical unit;
//   - serves every target with this gateway's target portal group tag
//     (its member id) and relative target port identifiers id·256 +
//     rel_tgt_id;
//   - gives each logical unit's devices to the SharedState (Attach),
//     which shares their reservations, instead of PR files;
//   - runs, in each device group, the target port groups of every
//     gateway: this gateway's hold its ports, the others' list theirs in
//     REPORT TARGET PORT GROUPS; each reports the state the cluster gives
//     its gateway (SetGatewayStates: joining, absent, drained), else the
//     configured one, and a change of any of them raises ASYMMETRIC
//     ACCESS STATE CHANGED on the sessions of this gateway that reach the
//     device group.
//
// The gateway's name, id and prefix are fixed at the first Apply: a
// reload that changes them applies at the next start, as the plan says.

// SharedState is the state the gateways of a cluster share (package
// cluster).
type SharedState interface {
	// Attach makes d, the device of the logical unit whose NAA
	// designator is naa, share its reservations (scsi.SetSharedPR); d
	// takes over from the device attached for naa before, if any.
	Attach(naa []byte, name string, d *scsi.Device)
	// Detach stops sharing for d, which left service.
	Detach(naa []byte, d *scsi.Device)
}

// SetShared makes the engine run as a gateway of a cluster whose shared
// state is s, when the first Apply's configuration has a cluster block.
// Call it before the first Apply.
func (e *Engine) SetShared(s SharedState) {
	e.mu.Lock()
	e.shared = s
	e.mu.Unlock()
}

// clusterSeed is the seed of derived NAA designators in a cluster: the
// cluster's key prefix, the same on every gateway.
func clusterSeed(prefix string) []byte { return []byte("scstd cluster\x00" + prefix) }

// startCluster fixes the gateway's identity at the first Apply. Called
// with e.mu held.
func (e *Engine) startCluster(c *Cluster) {
	if e.shared == nil || c == nil {
		e.shared = nil
		return
	}
	e.self, e.selfID, e.seed = c.Gateway, c.id(c.Gateway), clusterSeed(c.Prefix)
}

// sharesPR reports whether device m shares its reservations through the
// cluster rather than keeping them in a PR file.
func (e *Engine) sharesPR(m Device) bool { return e.shared != nil && m.Handler != devDisk }

// relPortID is the relative target port identifier of a target with
// rel_tgt_id rel on the gateway with id gw (0: no cluster).
func relPortID(gw, rel uint16) uint16 { return gw<<8 | rel }

// attachShared gives the devices that step s made to the cluster, and
// takes back those it retired. Called with e.mu held, before the
// snapshot that serves them is published.
func (e *Engine) attachShared(s *step) {
	if e.shared == nil {
		return
	}
	for _, r := range s.retire {
		if e.sharesPR(r.d.model) {
			e.shared.Detach(naaBytes(r.d.model.NAA), r.d.dev)
		}
	}
	for _, name := range s.fresh {
		d := s.devices[name]
		if e.sharesPR(d.model) {
			e.shared.Attach(naaBytes(d.model.NAA), name, d.dev)
		}
	}
}

// SetGatewayStates gives the ALUA states of gateways' ports that the
// cluster decides (a joining gateway transitioning, an absent one
// unavailable, a drained one standby), by gateway; a gateway not named
// shows its configured states. A target port group whose state changes
// takes it; the sessions of this gateway that reach its device group
// get ASYMMETRIC ACCESS STATE CHANGED.
func (e *Engine) SetGatewayStates(states map[string]scsi.ALUAState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if maps.Equal(states, e.gwStates) {
		return
	}
	e.gwStates = maps.Clone(states)
	changed := map[string]bool{}
	for k, tpg := range e.tpgs {
		tg := e.running.DeviceGroups[k.dg].TargetGroups[k.tg]
		if tg == nil || tg.Gateway == "" {
			continue
		}
		s, pref := tpg.State()
		if want := e.effectiveState(tg); s != want {
			tpg.SetState(want, pref)
			changed[k.dg] = true
		}
	}
	e.announceALUA(changed, nil)
}

// effectiveState is the state a target group shows: the one the
// cluster gives its gateway, else the configured one. Called with e.mu
// held.
func (e *Engine) effectiveState(tg *TargetGroup) scsi.ALUAState {
	if s, ok := e.gwStates[tg.Gateway]; ok && tg.Gateway != "" {
		return s
	}
	return tg.State
}

// announceALUA raises ASYMMETRIC ACCESS STATE CHANGED on the sessions of
// this gateway in the device groups named by changed, through their own
// target port groups (those of done already raised it). Called with e.mu
// held.
func (e *Engine) announceALUA(changed map[string]bool, done map[tpgKey]bool) {
	if len(changed) == 0 {
		return
	}
	for k, tpg := range e.tpgs {
		if !changed[k.dg] || done[k] {
			continue
		}
		if tg := e.running.DeviceGroups[k.dg].TargetGroups[k.tg]; tg != nil && tg.Gateway == e.self {
			tpg.Changed()
		}
	}
}

// clusterMember is runALUA's target port group member for target group
// tg of a cluster: this gateway's groups hold its ports of their targets;
// every group lists its gateway's relative port identifiers.
func (e *Engine) clusterMember(m Model, tpg *scsi.TargetPortGroup, tg *TargetGroup) scsi.PortGroupMember {
	id := m.Cluster.id(tg.Gateway)
	if tg.Gateway == e.self {
		id = e.selfID
	}
	ports := make([]uint16, 0, len(tg.Targets))
	for _, t := range tg.Targets {
		if mt := m.Targets[t]; mt != nil && id != 0 {
			ports = append(ports, relPortID(id, mt.RelTgtID))
		}
	}
	slices.Sort(ports)
	var targets []string
	if tg.Gateway == e.self {
		targets = tg.Targets
	}
	return scsi.PortGroupMember{Group: tpg, Targets: targets, Ports: ports}
}

// clusterView is what REPORT TARGET PORT GROUPS shows of a device group's
// other target groups in a cluster (aluaView.others): a change of any of
// them reaches every session through the group.
func clusterView(g *DeviceGroup, own string) string {
	s := ""
	for _, name := range sortedKeys(g.TargetGroups) {
		if name == own {
			continue
		}
		tg := g.TargetGroups[name]
		s += fmt.Sprintf("%s:%s:%d:%v:%v:%v;", name, tg.Gateway, tg.GroupID, tg.State, tg.Preferred, tg.Targets)
	}
	return s
}
