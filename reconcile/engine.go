package reconcile

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// Server is the part of the iSCSI server the engine drives. *iscsi.Server
// implements it; tests use a recorder.
type Server interface {
	// Publish makes snap the state every session reads from now on.
	Publish(snap *iscsi.Snapshot)
	// SetPortals listens on exactly addrs, keeping the listeners (and the
	// connections) of addresses it already had. On error nothing changed.
	SetPortals(addrs []string) error
	// NotifyLUNsChanged raises REPORTED LUNS DATA HAS CHANGED on every
	// session of the target and sends them the SCSI asynchronous event.
	NotifyLUNsChanged(target string)
	// RequestLogout asks the target's sessions to log out (Async Message
	// event 1) and closes those still there after grace.
	RequestLogout(target string, grace time.Duration)
	// Sessions lists the live sessions, for Status.
	Sessions() []iscsi.SessionInfo
}

// Options tune the engine's background work. Zero values take the
// defaults; a negative interval turns that work off.
type Options struct {
	// RetryInterval is how often offline devices are reopened (default 10s).
	RetryInterval time.Duration
	// SizePollInterval is how often backing files and block devices are
	// checked for growth (default 10s).
	SizePollInterval time.Duration
	// ReleaseDelay is how long a removed or replaced backend stays open
	// after the snapshot that stopped using it was published (default 5s).
	ReleaseDelay time.Duration
	// LogoutGrace is how long the sessions of a removed or disabled target
	// have to log out before they are closed (default 5s).
	LogoutGrace time.Duration
	// ISNSEntityID is the entity identifier registered with iSNS servers;
	// empty: "scstd:" and the host name.
	ISNSEntityID string
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.RetryInterval, 10*time.Second)
	def(&o.SizePollInterval, 10*time.Second)
	def(&o.ReleaseDelay, 5*time.Second)
	def(&o.LogoutGrace, 5*time.Second)
	return o
}

// ApplyOptions modify one Apply.
type ApplyOptions struct {
	// Force applies a plan that ends sessions even when the configuration
	// says disruptive_changes = "refuse".
	Force bool
}

// Result is the outcome of a successful Apply.
type Result struct {
	// Plan is what was applied.
	Plan Plan `json:"plan"`
	// Generation is the snapshot generation now running.
	Generation uint64 `json:"generation"`
	// Offline lists the devices that could not be opened, with why; they
	// answer NOT READY and are retried.
	Offline []OfflineDevice `json:"offline,omitempty"`
	// Warnings are storage problems that did not stop the reload (a
	// backing file that could not be reopened with new attributes keeps
	// serving with the old ones, and is retried).
	Warnings []string `json:"warnings,omitempty"`
}

// OfflineDevice names a device that is offline and why.
type OfflineDevice struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// DisruptiveError rejects a reload whose plan would end sessions while
// the configuration says disruptive_changes = "refuse".
type DisruptiveError struct {
	// Changes are the session-ending changes.
	Changes []Change
}

// Error names the session-ending changes and how to apply them anyway.
func (e *DisruptiveError) Error() string {
	addrs := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		addrs[i] = c.Addr.String()
	}
	return fmt.Sprintf("reconcile: the plan ends sessions (%s) and disruptive_changes = \"refuse\"; nothing was changed (scstd reload -force applies it)",
		strings.Join(addrs, ", "))
}

// ErrClosed is returned by Apply and Plan after Close.
var ErrClosed = errors.New("reconcile: engine closed")

// Engine runs configurations: it keeps the running model, the devices and
// the last published snapshot, and applies plans to them. Its methods are
// safe for concurrent use; Applies are serialized.
type Engine struct {
	srv  Server
	log  *slog.Logger
	opts Options

	mu      sync.Mutex
	closed  bool
	started bool // a snapshot has been published
	running Model
	devices map[string]*device
	targets map[string]*runTarget
	snap    *iscsi.Snapshot
	nextTID uint32
	// releasing are backends waiting out ReleaseDelay before Close.
	releasing map[storage]*time.Timer
	// isns are the links to the iSNS servers, by "host:port".
	isns map[string]*isnsLink

	stop chan struct{}
	wg   sync.WaitGroup
}

// device is a running device: the model it was made from, its scsi.Device
// (kept across reloads while its identity holds) and the backend it serves
// from.
type device struct {
	name    string
	model   Device
	dev     *scsi.Device
	backend storage // nil while offline
	// have is the spec backend was opened with; when it differs from
	// specOf(model) a reopen failed and is retried.
	have spec
	// reason is why the device is offline, or why a reopen failed.
	reason error
}

// runTarget is what the engine assigns a target for its lifetime.
type runTarget struct {
	tid   uint32
	relID uint16
}

// NewEngine returns an engine serving through srv, with nothing running
// yet. Its retry and size-poll loops run until Close.
func NewEngine(srv Server, log *slog.Logger, opts Options) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		srv:       srv,
		log:       log,
		opts:      opts.withDefaults(),
		devices:   map[string]*device{},
		targets:   map[string]*runTarget{},
		releasing: map[storage]*time.Timer{},
		isns:      map[string]*isnsLink{},
		stop:      make(chan struct{}),
		running:   Model{Devices: map[string]Device{}, Targets: map[string]*Target{}},
	}
	if e.opts.RetryInterval > 0 {
		e.loop(e.opts.RetryInterval, e.retryOffline)
	}
	if e.opts.SizePollInterval > 0 {
		e.loop(e.opts.SizePollInterval, e.pollSizes)
	}
	return e
}

func (e *Engine) loop(every time.Duration, f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				return
			case <-t.C:
				f()
			}
		}
	}()
}

// Plan returns what applying cfg would change. It has no side effects.
func (e *Engine) Plan(cfg *config.Config) (Plan, error) {
	desired := FromConfig(cfg)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return Plan{}, ErrClosed
	}
	e.observe(&desired)
	return Diff(e.running, desired), nil
}

// Close stops the background loops, deregisters from the iSNS servers and
// closes every backend. Sessions still running get NOT READY from then on.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.stop)
	var errs []error
	for b, t := range e.releasing {
		t.Stop()
		errs = append(errs, b.Close())
	}
	clear(e.releasing)
	for _, d := range e.devices {
		d.dev.SetOffline(ErrClosed)
		if d.backend != nil {
			errs = append(errs, d.backend.Close())
		}
		d.backend = nil
	}
	links := e.isns
	e.isns = map[string]*isnsLink{}
	e.mu.Unlock()
	errs = append(errs, closeISNS(links))
	e.wg.Wait()
	return errors.Join(errs...)
}

// scsiConfig is what a device's scsi.Device is made with.
func scsiConfig(name string, d Device) scsi.DeviceConfig {
	t := scsi.TypeDisk
	if d.Handler == vdisk.CDROM {
		t = scsi.TypeCDROM
	}
	return scsi.DeviceConfig{
		Name:         name,
		Type:         t,
		BlockSize:    d.BlockSize,
		ReadOnly:     d.ReadOnly,
		NVCache:      d.NVCache,
		WriteThrough: d.WriteThrough,
		Removable:    d.Removable,
		T10DevID:     d.T10DevID,
		USN:          d.USN,
		Passthrough:  d.Handler == devDisk,
	}
}

// release takes b out of service: it is closed after ReleaseDelay, so
// that commands that picked it up before the swap finish with it. (A
// read or write already inside the file keeps the descriptor alive until
// it returns: os.File defers close(2) until then.) Called with e.mu held.
func (e *Engine) release(b storage) {
	if b == nil {
		return
	}
	if _, ok := e.releasing[b]; ok {
		return
	}
	e.releasing[b] = time.AfterFunc(e.opts.ReleaseDelay, func() {
		e.mu.Lock()
		_, ok := e.releasing[b]
		delete(e.releasing, b)
		e.mu.Unlock()
		if ok {
			if err := b.Close(); err != nil {
				e.log.Warn("closing a released backend", "err", err)
			}
		}
	})
}
