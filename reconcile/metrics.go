package reconcile

import (
	"fmt"
	"net"
)

// metricsListen is the attribute of the metrics block's listen address,
// as plans name it.
const metricsListen = "metrics.listen"

// MetricsEndpoint serves metrics on the listener the configuration's
// metrics block asks for. The engine binds the address while it prepares
// a reload, so that one it cannot bind rejects the reload and changes
// nothing, and hands the listener over when the reload commits.
type MetricsEndpoint interface {
	// Serve makes ln the endpoint's only listener (nil: none), closing
	// the one it had. It must not block.
	Serve(ln net.Listener)
}

// metricsMove is what a reload does to the metrics endpoint: when move,
// serve on ln (nil: stop).
type metricsMove struct {
	move bool
	ln   net.Listener
}

// prepareMetrics binds the metrics endpoint's new address when the plan
// changes it (at the first Apply: when the configuration sets one).
// Without Options.Metrics nothing is bound.
func (e *Engine) prepareMetrics(plan Plan, next Model, started bool) (metricsMove, error) {
	if e.opts.Metrics == nil {
		return metricsMove{}, nil
	}
	move := !started
	for _, c := range plan.Changes {
		if c.Op == SetGlobal && c.Attr == metricsListen {
			move = true
		}
	}
	addr := next.ISCSI.MetricsListen
	if !move || addr == "" {
		return metricsMove{move: move}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return metricsMove{}, fmt.Errorf("reconcile: metrics listen %s: %w; nothing was changed", addr, err)
	}
	return metricsMove{move: true, ln: ln}, nil
}

// discard closes a listener bound for a reload that stops before its
// commit.
func (m metricsMove) discard() {
	if m.ln != nil {
		m.ln.Close()
	}
}

// serveMetrics hands the endpoint its new listener at commit.
func (e *Engine) serveMetrics(m metricsMove) {
	if m.move && e.opts.Metrics != nil {
		e.opts.Metrics.Serve(m.ln)
	}
}
