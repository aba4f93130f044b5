package iscsi

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/scstd/scstd/scsi"
)

// SessionInfo describes one live session for `scstd status`.
type SessionInfo struct {
	Initiator      string `json:"initiator"`
	InitiatorAlias string `json:"initiator_alias,omitempty"`
	ISID           string `json:"isid"` // 12 hex digits
	TSIH           uint16 `json:"tsih"`
	Target         string `json:"target"`
	TPGT           uint16 `json:"tpgt"`
	// PortalIP is the IP of the portal the session logged in on, as
	// per-portal ACLs match it.
	PortalIP string `json:"portal_ip"`
	// LUNMap is the LUN map the session sees now: "default" (the
	// target's LUNs), `group["name"]` (an initiator group's), or "none"
	// (its target is gone or disabled). Group is the group's name alone.
	LUNMap         string     `json:"lun_map"`
	Group          string     `json:"group,omitempty"`
	Created        time.Time  `json:"created"`
	Params         Negotiated `json:"negotiated"`
	ActiveCommands int        `json:"active_commands"`
	Commands       uint64     `json:"commands"`
	// Panics counts the panics recovered while serving the session's
	// commands (each logged with its stack and answered INTERNAL TARGET
	// FAILURE).
	Panics uint64 `json:"panics"`
	// IO counts the session's completed commands; its queue depth is
	// ActiveCommands.
	IO          scsi.IOCounters `json:"io"`
	Connections []ConnInfo      `json:"connections"`
	// Nexus is the session's SCSI state, for the engine to ask what it
	// holds (a PREVENT ALLOW MEDIUM REMOVAL, see scsi.Device.PreventedBy).
	Nexus *scsi.Nexus `json:"-"`
}

// ConnInfo describes one connection of a session.
type ConnInfo struct {
	CID    uint16 `json:"cid"`
	Remote string `json:"remote"` // initiator address, ip:port
	Portal string `json:"portal"` // local address the connection came in on
	State  string `json:"state"`
}

// Sessions returns the live sessions, sorted by target, initiator and
// TSIH.
func (s *Server) Sessions() []SessionInfo {
	list := s.sessionsOf("")
	out := make([]SessionInfo, 0, len(list))
	for _, ss := range list {
		ss.mu.Lock()
		active := len(ss.tasks)
		ss.mu.Unlock()
		si := SessionInfo{
			Initiator:      ss.key.initiator,
			InitiatorAlias: ss.alias,
			ISID:           fmt.Sprintf("%012x", ss.key.isid[:]),
			TSIH:           ss.tsih,
			Target:         ss.key.target,
			TPGT:           ss.tpgt,
			PortalIP:       ss.portalIP,
			LUNMap:         "none",
			Created:        ss.created,
			Params:         ss.params,
			ActiveCommands: active,
			Commands:       ss.commands.Load(),
			Panics:         ss.panics.Load(),
			IO:             ss.io.Counters(),
			Connections:    []ConnInfo{},
			Nexus:          ss.nexus,
		}
		si.IO.QueueDepth = int64(active)
		if _, t := ss.lunMap(); t != nil && t.Enabled {
			si.LUNMap = "default"
			if g := t.Access.GroupFor(ss.key.initiator, ss.portalIP); g != nil {
				si.Group = g.Name
				si.LUNMap = "group[" + strconv.Quote(g.Name) + "]"
			}
		}
		if c := ss.conn.Load(); c != nil {
			ci := ConnInfo{CID: c.cid, State: ConnState(c.state.Load()).String()}
			if c.remote != nil {
				ci.Remote = c.remote.String()
			}
			if c.portal != nil {
				ci.Portal = c.portal.String()
			}
			si.Connections = append(si.Connections, ci)
		}
		out = append(out, si)
	}
	slices.SortFunc(out, func(a, b SessionInfo) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Initiator, b.Initiator),
			cmp.Compare(a.TSIH, b.TSIH))
	})
	return out
}

// ID returns the session's identity, as SessionEffect names it.
func (si *SessionInfo) ID() SessionID {
	return SessionID{Target: si.Target, Initiator: si.Initiator, ISID: si.ISID, TSIH: si.TSIH}
}
