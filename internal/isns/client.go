package isns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scstd/scstd/internal/access"
)

// Config configures a Client.
type Config struct {
	// Server is the iSNS server's address.
	Server access.HostPort
	// EntityID names the network entity; empty: "scstd:" + host name.
	EntityID string
	// AccessControl makes Allowed consult the server's discovery domains;
	// without it Allowed always says yes.
	AccessControl bool
	// PortalGroupTag is the TPGT registered for every target and portal
	// (0 means 1, the tag scstd's portals use).
	PortalGroupTag uint16
	// Logger receives registration events; nil: slog.Default().
	Logger *slog.Logger
	// Timeout bounds one exchange with the server; 0 means 5s.
	Timeout time.Duration
	// CacheTTL is how long an Allowed answer is reused; 0 means 10s.
	CacheTTL time.Duration
}

// Client registers scstd with one iSNS server. Methods are safe for
// concurrent use.
type Client struct {
	server  string
	entity  string
	access  atomic.Bool
	pgt     uint16
	log     *slog.Logger
	timeout time.Duration
	ttl     time.Duration
	now     func() time.Time
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	xid     atomic.Uint32

	mu         sync.Mutex // serializes registration changes and exchanges
	targets    []string
	portals    []netip.AddrPort // as configured; unspecified IPs resolved per exchange
	registered []string         // the targets the server holds for the entity
	lastErr    error            // of the last registration or deregistration
	refresh    time.Duration
	closed     bool
	kick       chan struct{}

	cmu   sync.Mutex
	cache map[[2]string]cacheEntry
}

type cacheEntry struct {
	allowed bool
	expires time.Time
}

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("iSNS client closed")

// NewClient returns a client for cfg.Server. It does not contact the
// server: Update does.
func NewClient(cfg Config) *Client {
	c := &Client{
		server:  cfg.Server.String(),
		entity:  cfg.EntityID,
		pgt:     cfg.PortalGroupTag,
		log:     cfg.Logger,
		timeout: cfg.Timeout,
		ttl:     cfg.CacheTTL,
		now:     time.Now,
		refresh: 5 * time.Minute,
		kick:    make(chan struct{}, 1),
		cache:   make(map[[2]string]cacheEntry),
	}
	c.access.Store(cfg.AccessControl)
	d := &net.Dialer{}
	c.dial = d.DialContext
	if c.entity == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.entity = "scstd:" + h
	}
	if c.pgt == 0 {
		c.pgt = 1
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.ttl <= 0 {
		c.ttl = 10 * time.Second
	}
	c.log = c.log.With("isns_server", c.server)
	return c
}

// State is what a Client has achieved, for status displays.
type State struct {
	// Server is the iSNS server's "host:port".
	Server string `json:"server"`
	// Entity is the entity identifier registered.
	Entity string `json:"entity"`
	// AccessControl says whether Allowed consults the server.
	AccessControl bool `json:"access_control"`
	// Registered are the targets the server holds for the entity.
	Registered []string `json:"registered"`
	// Error is why the last registration failed ("" when it succeeded);
	// Run retries it.
	Error string `json:"error,omitempty"`
}

// State returns the client's registration state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := State{Server: c.server, Entity: c.entity, AccessControl: c.access.Load(),
		Registered: slices.Clone(c.registered)}
	if st.Registered == nil {
		st.Registered = []string{}
	}
	if c.lastErr != nil {
		st.Error = c.lastErr.Error()
	}
	return st
}

// Entity returns the entity identifier the client registers.
func (c *Client) Entity() string { return c.entity }

// Update sets what the client registers: the names of the enabled targets
// and the listening portals. A portal on an unspecified address (0.0.0.0,
// [::]) is registered with the local address of the connection to the
// iSNS server. It registers at once, replacing the previous registration,
// or deregisters the entity when targets is empty; on error Run keeps
// retrying.
func (c *Client) Update(targets []string, portals []netip.AddrPort) error {
	ps := make([]netip.AddrPort, 0, len(portals))
	for _, p := range portals {
		ps = append(ps, netip.AddrPortFrom(p.Addr().Unmap().WithZone(""), p.Port()))
	}
	ts := slices.Clone(targets)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	slices.SortFunc(ps, func(a, b netip.AddrPort) int { return a.Compare(b) })
	ps = slices.Compact(ps)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.targets, c.portals = ts, ps
	c.flushCache()
	err := c.syncLocked(context.Background())
	if err != nil {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// syncLocked brings the server in line with c.targets/c.portals. c.mu is
// held.
func (c *Client) syncLocked(ctx context.Context) (err error) {
	defer func() { c.lastErr = err }()
	if len(c.targets) == 0 {
		if len(c.registered) == 0 {
			return nil
		}
		if err := c.deregisterLocked(ctx); err != nil {
			return err
		}
		return nil
	}
	return c.registerLocked(ctx)
}

// source picks the Source attribute for a change of registration: a
// target the server already holds and that stays registered, else any one
// the server holds (still valid while the message is processed), else the
// first new one.
func (c *Client) source() string {
	for _, t := range c.registered {
		if _, found := slices.BinarySearch(c.targets, t); found {
			return t
		}
	}
	if len(c.registered) > 0 {
		return c.registered[0]
	}
	if len(c.targets) > 0 {
		return c.targets[0]
	}
	return ""
}

func (c *Client) registerLocked(ctx context.Context) error {
	var portals []netip.AddrPort
	st, attrs, err := c.exchange(ctx, func(local netip.Addr) *message {
		portals = make([]netip.AddrPort, 0, len(c.portals))
		for _, p := range c.portals {
			if p.Addr().IsUnspecified() {
				p = netip.AddrPortFrom(local, p.Port())
			}
			portals = append(portals, p)
		}
		slices.SortFunc(portals, netip.AddrPort.Compare)
		portals = slices.Compact(portals)
		reg := registration{Entity: c.entity, Source: c.source(), Targets: c.targets, Portals: portals, PGT: c.pgt}
		return &message{Function: devAttrReg, Flags: flagClient | flagReplace, Payload: reg.payload()}
	})
	if err != nil {
		return err
	}
	if st != statusSuccess {
		return fmt.Errorf("iSNS: registering entity %q: %w", c.entity, st)
	}
	c.registered = slices.Clone(c.targets)
	c.refresh = 5 * time.Minute
	for _, a := range attrs {
		if a.Tag == tagRegistrationPeriod && len(a.Value) == 4 {
			if p := time.Duration(binary.BigEndian.Uint32(a.Value)) * time.Second; p > 0 {
				c.refresh = max(p/2, 5*time.Second)
			}
		}
	}
	c.log.Info("registered with iSNS", "entity", c.entity, "targets", len(c.targets), "portals", len(portals))
	return nil
}

func (c *Client) deregisterLocked(ctx context.Context) error {
	st, _, err := c.exchange(ctx, func(netip.Addr) *message {
		return &message{Function: devDereg, Flags: flagClient, Payload: deregPayload(c.source(), c.entity)}
	})
	if err != nil {
		return err
	}
	if st != statusSuccess && st != statusNoSuchEntry {
		return fmt.Errorf("iSNS: deregistering entity %q: %w", c.entity, st)
	}
	c.registered = nil
	c.log.Info("deregistered from iSNS", "entity", c.entity)
	return nil
}

// exchange connects to the server, sends the request that build makes
// (given the local address of the connection, which a registration of
// portals on an unspecified address needs), and returns the status and
// attributes of the matching response, skipping any other message the
// server sends. It takes at most c.timeout in all.
func (c *Client) exchange(ctx context.Context, build func(local netip.Addr) *message) (status, []attr, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.dial(ctx, "tcp", c.server)
	if err != nil {
		return 0, nil, fmt.Errorf("iSNS: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	local := netip.IPv6Unspecified()
	if ta, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		local = ta.AddrPort().Addr().Unmap().WithZone("")
	}
	req := build(local)
	req.XID = uint16(c.xid.Add(1))
	if _, err := conn.Write(req.appendPDUs(nil)); err != nil {
		return 0, nil, fmt.Errorf("iSNS: sending %v: %w", req.Function, err)
	}
	for range 8 {
		rsp, err := readMessage(conn)
		if err != nil {
			return 0, nil, fmt.Errorf("iSNS: reading the answer to %v: %w", req.Function, err)
		}
		if rsp.Function != req.Function|responseBit || rsp.XID != req.XID {
			continue
		}
		return responseStatus(rsp)
	}
	return 0, nil, fmt.Errorf("iSNS: no answer to %v", req.Function)
}

// Run keeps the registration alive until ctx is done: it registers again
// every half registration period, and retries a failed registration every
// 10 seconds.
func (c *Client) Run(ctx context.Context) {
	retry := false
	for {
		c.mu.Lock()
		wait := c.refresh
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		if retry {
			wait = 10 * time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.kick:
			t.Stop()
			// A failed Update: wait a little before retrying.
			retry = true
			continue
		case <-t.C:
		}
		c.mu.Lock()
		var err error
		if !c.closed {
			err = c.syncLocked(ctx)
		}
		c.mu.Unlock()
		retry = err != nil
		if err != nil {
			c.log.Warn("iSNS registration failed; retrying", "err", err)
		}
	}
}

// Close deregisters the entity (if it is registered) and stops Run.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	select {
	case c.kick <- struct{}{}:
	default:
	}
	if len(c.registered) == 0 {
		return nil
	}
	return c.deregisterLocked(context.Background())
}

// Allowed reports whether initiator may see and log in to target: always
// true without access control (or for a nil client); otherwise true only
// when the iSNS server places both in a common discovery domain. Answers
// are cached for CacheTTL; when the server cannot be asked, the answer is
// no (access control fails closed) and the failure is logged.
func (c *Client) Allowed(initiator, target string) bool {
	if c == nil || !c.access.Load() {
		return true
	}
	key := [2]string{initiator, target}
	now := c.now()
	c.cmu.Lock()
	if e, ok := c.cache[key]; ok && now.Before(e.expires) {
		c.cmu.Unlock()
		return e.allowed
	}
	c.cmu.Unlock()

	ok, err := c.query(initiator, target)
	if err != nil {
		c.log.Warn("iSNS access query failed; refusing", "initiator", initiator, "target", target, "err", err)
	}
	c.cmu.Lock()
	if len(c.cache) >= 4096 {
		clear(c.cache)
	}
	c.cache[key] = cacheEntry{allowed: ok, expires: now.Add(c.ttl)}
	c.cmu.Unlock()
	return ok
}

// SetAccessControl turns access control on or off (Config's
// AccessControl) and forgets the cached answers.
func (c *Client) SetAccessControl(on bool) {
	c.access.Store(on)
	c.flushCache()
}

func (c *Client) flushCache() {
	c.cmu.Lock()
	clear(c.cache)
	c.cmu.Unlock()
}

// query asks the server whether target can see initiator.
func (c *Client) query(initiator, target string) (bool, error) {
	st, attrs, err := c.exchange(context.Background(), func(netip.Addr) *message {
		return &message{Function: devAttrQry, Flags: flagClient, Payload: accessQueryPayload(target, initiator)}
	})
	if err != nil {
		return false, err
	}
	switch st {
	case statusSuccess:
	case statusNoSuchEntry:
		return false, nil
	default:
		return false, fmt.Errorf("iSNS: query for %q: %w", initiator, st)
	}
	// The answer repeats the key, then a delimiter, then the operating
	// attributes of every matching node: look past the delimiter.
	past := false
	for _, a := range attrs {
		if a.Tag == tagDelimiter {
			past = true
			continue
		}
		if past && a.Tag == tagISCSIName && strings.EqualFold(attrString(a.Value), initiator) {
			return true, nil
		}
	}
	return false, nil
}
