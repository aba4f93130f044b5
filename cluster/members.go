package cluster

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// members is the member list as the session's watch last saw it.
type members struct {
	byName map[string]Member
	// at is when the list was last known current: the last answer or
	// event of the watch.
	at time.Time
}

// watch keeps the member list: it lists PREFIX/gateways/, then follows
// the changes from the next revision; when the watch ends (a compacted
// revision, a canceled stream) it lists again.
func (s *session) watch(cli *clientv3.Client) {
	prefix := s.opts.membersPrefix()
	for s.ctx.Err() == nil {
		ctx, cancel := s.request()
		rsp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		all := map[string]Member{}
		for _, kv := range rsp.Kvs {
			if m, ok := decodeMember(prefix, kv.Key, kv.Value); ok {
				all[m.Gateway] = m
			}
		}
		s.setMembers(all)
		wctx, wcancel := context.WithCancel(s.ctx)
		for wr := range cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rsp.Header.Revision+1)) {
			if wr.Err() != nil {
				break
			}
			next := s.memberMap()
			for _, ev := range wr.Events {
				name := strings.TrimPrefix(string(ev.Kv.Key), prefix)
				switch ev.Type {
				case clientv3.EventTypeDelete:
					delete(next, name)
				default:
					if m, ok := decodeMember(prefix, ev.Kv.Key, ev.Kv.Value); ok {
						next[m.Gateway] = m
					}
				}
			}
			s.setMembers(next)
		}
		wcancel()
	}
}

// decodeMember reads a member key's value; the name is the key's.
func decodeMember(prefix string, key, val []byte) (Member, bool) {
	name := strings.TrimPrefix(string(key), prefix)
	if name == "" || strings.Contains(name, "/") {
		return Member{}, false
	}
	var m Member
	if err := json.Unmarshal(val, &m); err != nil {
		m = Member{}
	}
	m.Gateway = name
	return m, true
}

func (s *session) memberMap() map[string]Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.view.byName)
}

// setMembers replaces the member list and logs who joined and who left.
func (s *session) setMembers(next map[string]Member) {
	s.mu.Lock()
	prev := s.view.byName
	first := s.view.at.IsZero()
	s.view = members{byName: next, at: time.Now()}
	s.mu.Unlock()
	log := s.node.log
	if first {
		log.Info("cluster: members", "gateways", slices.Sorted(maps.Keys(next)))
		return
	}
	for _, name := range slices.Sorted(maps.Keys(next)) {
		m := next[name]
		if old, ok := prev[name]; !ok {
			log.Info("cluster: a gateway joined", "gateway", name, "host", m.Hostname, "pid", m.PID)
		} else if old.ConfigHash != m.ConfigHash && name != s.opts.Gateway {
			log.Info("cluster: a gateway runs another configuration", "gateway", name, "config_hash", short(m.ConfigHash))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := next[name]; !ok {
			log.Warn("cluster: a gateway left (lease revoked or expired)", "gateway", name)
		}
	}
}

// short abbreviates a hash for logs and status.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
