package reconcile

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/internal/isns"
	"github.com/scstd/scstd/iscsi"
)

// isnsPortals returns the portals to register: the configured ones, a
// host name resolved as net.Listen resolves it (one address). A name
// that does not resolve is left out and logged.
func (e *Engine) isnsPortals(configured []access.HostPort) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(configured))
	for _, p := range configured {
		if ip, ok := p.Addr(); ok {
			out = append(out, netip.AddrPortFrom(ip, p.Port()))
			continue
		}
		ta, err := net.ResolveTCPAddr("tcp", p.String())
		if err != nil {
			e.log.Warn("iSNS: portal not registered", "portal", p, "err", err)
			continue
		}
		out = append(out, ta.AddrPort())
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return slices.Compact(out)
}

// isnsRegistration is what one iSNS server is told: the enabled targets
// and the portals.
type isnsRegistration struct {
	targets []string
	portals []netip.AddrPort
}

func (r isnsRegistration) equal(o isnsRegistration) bool {
	return slices.Equal(r.targets, o.targets) && slices.Equal(r.portals, o.portals)
}

// isnsLink is the engine's connection to one iSNS server: the client, its
// refresh loop (isns.Client.Run) and an updater that sends the latest
// registration without holding up Apply, which only posts it.
type isnsLink struct {
	server string
	client *isns.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending *isnsRegistration // not yet sent; nil when there is none
	last    isnsRegistration  // last posted
	wake    chan struct{}     // capacity 1
}

// newISNSLink starts the client's goroutines for server.
func (e *Engine) newISNSLink(server access.HostPort) *isnsLink {
	c := isns.NewClient(isns.Config{Server: server, EntityID: e.opts.ISNSEntityID, Logger: e.log})
	ctx, cancel := context.WithCancel(context.Background())
	l := &isnsLink{server: server.String(), client: c, cancel: cancel, wake: make(chan struct{}, 1)}
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		c.Run(ctx)
	}()
	go func() {
		defer l.wg.Done()
		l.update(ctx, e)
	}()
	return l
}

// post makes r the registration the updater sends next, unless it is the
// one posted last.
func (l *isnsLink) post(r isnsRegistration, force bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !force && l.last.equal(r) {
		return
	}
	l.last, l.pending = r, &r
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// update sends posted registrations until ctx is done. A failed Update is
// retried by the client's Run loop.
func (l *isnsLink) update(ctx context.Context, e *Engine) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		}
		l.mu.Lock()
		r := l.pending
		l.pending = nil
		l.mu.Unlock()
		if r == nil {
			continue
		}
		if err := l.client.Update(r.targets, r.portals); err != nil && !errors.Is(err, isns.ErrClosed) {
			e.log.Warn("iSNS registration failed; retrying", "isns_server", l.server, "err", err)
		}
	}
}

// close stops the link's goroutines and deregisters the entity.
func (l *isnsLink) close() error {
	l.cancel()
	l.wg.Wait()
	return l.client.Close()
}

// syncISNS brings the iSNS links in line with the model m that is about
// to run: it starts links to new servers, posts the enabled targets and
// portals to every link, and closes links to removed servers in the
// background (their deregistration must not hold up the reload). It
// returns the access control the snapshot carries: the client of the
// first server with access_control, or nil. Called with e.mu held.
func (e *Engine) syncISNS(m Model) iscsi.AccessControl {
	g := m.ISCSI
	reg := isnsRegistration{portals: e.isnsPortals(g.Portals)}
	if g.Enabled {
		for _, name := range sortedKeys(m.Targets) {
			if m.Targets[name].Enabled {
				reg.targets = append(reg.targets, name)
			}
		}
	}
	for server, l := range e.isns {
		if !slices.Contains(g.ISNSServers, server) {
			delete(e.isns, server)
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				if err := l.close(); err != nil {
					e.log.Warn("iSNS deregistration failed", "isns_server", server, "err", err)
				}
			}()
		}
	}
	var ac iscsi.AccessControl
	for _, server := range g.ISNSServers {
		l, ok := e.isns[server]
		if !ok {
			l = e.newISNSLink(server)
			e.isns[server] = l
		}
		on := slices.Contains(g.ISNSAccessControl, server)
		l.client.SetAccessControl(on)
		if on && ac == nil {
			ac = l.client
		}
		l.post(reg, !ok)
	}
	return ac
}

// closeISNS deregisters from every iSNS server. Called by Close without
// e.mu held, after the links were taken out of e.isns.
func closeISNS(links map[access.HostPort]*isnsLink) error {
	var errs []error
	for _, l := range links {
		errs = append(errs, l.close())
	}
	return errors.Join(errs...)
}
