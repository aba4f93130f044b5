package cluster

import (
	"context"
	"encoding/json"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// sync reads the whole shared state (one linearizable range of the
// prefix, at revision R), loads it, follows it with a watch from R+1,
// acknowledges R, and, once the others have seen this gateway join,
// activates its ports. A watch that ends (a compacted revision, a
// canceled stream) marks the session unsynced: run reads again.
func (s *session) sync(cli *clientv3.Client) error {
	ctx, cancel := s.request()
	rsp, err := cli.Get(ctx, s.opts.Prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return err
	}
	rev := rsp.Header.Revision
	s.node.load(rev, rsp.Kvs)
	wctx, wcancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	if s.stopWatch != nil {
		s.stopWatch()
	}
	s.stopWatch, s.synced = wcancel, true
	joinRev := s.joinRev
	s.mu.Unlock()
	go s.watch(cli, wctx, rev+1)
	go s.node.activate(s, joinRev)
	return nil
}

// watch follows the prefix from revision from, dispatching each
// response, until ctx ends or the watch fails.
func (s *session) watch(cli *clientv3.Client, ctx context.Context, from int64) {
	for wr := range cli.Watch(ctx, s.opts.Prefix, clientv3.WithPrefix(), clientv3.WithRev(from)) {
		if err := wr.Err(); err != nil {
			if ctx.Err() == nil {
				s.unsync("the watch ended: " + err.Error())
			}
			return
		}
		s.node.dispatch(wr.Header.Revision, wr.Events)
	}
	if ctx.Err() == nil {
		s.unsync("the watch ended")
	}
}

// unsync marks the session as not following the shared state: the node's
// copy may be stale until run reads it again.
func (s *session) unsync(why string) {
	s.mu.Lock()
	s.synced = false
	if s.stopWatch != nil {
		s.stopWatch()
		s.stopWatch = nil
	}
	s.mu.Unlock()
	s.node.lost(why)
	s.republish()
}

// resync makes the session read the shared state again (it took over the
// member key from another).
func (s *session) resync() {
	s.mu.Lock()
	s.synced = false
	s.mu.Unlock()
	s.republish()
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

// short abbreviates a hash for logs and status.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
