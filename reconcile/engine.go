package reconcile

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/internal/diskid"
	"github.com/scstd/scstd/internal/state"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// Server is the part of the iSCSI server the engine drives. *iscsi.Server
// implements it; tests use a recorder.
type Server interface {
	// Commit makes snap the state every session reads from now on and
	// delivers to live sessions the effects the plan printed: unit
	// attentions and Async Messages for changed LUN maps, logout
	// requests for sessions of removed or disabled targets.
	Commit(snap *iscsi.Snapshot, effects []iscsi.SessionEffect)
	// SetPortals listens on exactly addrs, keeping the listeners (and the
	// connections) of addresses it already had. On error nothing changed.
	SetPortals(addrs []string) error
	// Sessions lists the live sessions, for Diff and Status.
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
	// LogoutGrace is how long the sessions of a removed or disabled target
	// have to log out before they are closed (default 5s).
	LogoutGrace time.Duration
	// OpenTimeout bounds how long opening (or stat'ing) one backing file,
	// block device or pass-through disk may take (default 10s). One that takes longer
	// leaves its device offline, to be retried, and the rest of the
	// reload applies; while it hangs it is not tried again.
	OpenTimeout time.Duration
	// Open opens a backend (default vdisk.Open). Tests give a slow one.
	Open func(vdisk.Spec) (vdisk.Backend, error)
	// OpenDisk opens the disk of a dev_disk device, a device node or
	// H:C:T:L, with its per-command timeout (default: through package
	// sgio). Tests give one without SCSI disks.
	OpenDisk func(path string, timeout time.Duration) (scsi.Passthrough, error)
	// ISNSEntityID is the entity identifier registered with iSNS servers;
	// empty: "scstd:" and the host name.
	ISNSEntityID string
	// StateDir, when set, is the state directory instead of the
	// configuration's state_dir (tests).
	StateDir string
	// Metrics serves the metrics block's endpoint on the listener each
	// Apply binds (metrics.go); nil: the block is carried, nothing
	// listens.
	Metrics MetricsEndpoint
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.RetryInterval, 10*time.Second)
	def(&o.SizePollInterval, 10*time.Second)
	def(&o.LogoutGrace, 5*time.Second)
	def(&o.OpenTimeout, 10*time.Second)
	if o.Open == nil {
		o.Open = vdisk.Open
	}
	if o.OpenDisk == nil {
		o.OpenDisk = openSGIO
	}
	return o
}

// ApplyOptions modify one Apply.
type ApplyOptions struct {
	// Force applies a disruptive plan (one that ends live sessions or
	// changes what they read) even when the running configuration says
	// disruptive_changes = "refuse".
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

// DisruptiveError rejects a reload whose plan would end live sessions or
// change what they read while the running configuration says
// disruptive_changes = "refuse". Nothing was changed.
type DisruptiveError struct {
	// Plan is the whole plan that was refused.
	Plan Plan
	// Changes are its disruptive changes, with the sessions each reaches.
	Changes []Change
}

// Error says that the reload was refused and why, then prints the
// disruptive changes with the sessions they reach and what each would
// see, and how to apply them anyway.
func (e *DisruptiveError) Error() string {
	return "reconcile: the plan is disruptive and the running configuration says disruptive_changes = \"refuse\"; " +
		"nothing was changed (scstd reload -force applies it):\n" + Plan{Changes: e.Changes}.String()
}

// ErrClosed is returned by Apply and Plan after Close.
var ErrClosed = errors.New("reconcile: engine closed")

// Engine runs configurations: it keeps the running model, the devices and
// the last published snapshot, and applies plans to them. Its methods are
// safe for concurrent use. Applies are serialized; Status, Plan and Close
// never wait for one (nor for storage that does not answer).
type Engine struct {
	srv  Server
	log  *slog.Logger
	opts Options
	open *opener

	// applyMu serializes Apply and the retry of offline devices. Their
	// slow parts (stat and open of storage, binding portals) run under
	// applyMu alone; mu is held only to read the running state and to
	// swap in the next one. The device table and its entries change only
	// under both.
	applyMu sync.Mutex

	mu      sync.Mutex
	closed  bool
	started bool // a snapshot has been published
	// policy is the running configuration's disruptive_changes.
	policy  config.DisruptivePolicy
	running Model
	devices map[string]*device
	targets map[string]*runTarget
	snap    *iscsi.Snapshot
	nextTID uint32
	// isns are the links to the iSNS servers.
	isns map[access.HostPort]*isnsLink
	// state is the state directory, opened by the first Apply.
	state *state.Dir
	// tpgs are the running target port groups (runALUA).
	tpgs map[tpgKey]*scsi.TargetPortGroup
	// shared is the cluster's shared state (SetShared), nil for a
	// gateway on its own; self and selfID are this gateway's name and
	// id, seed the seed of derived NAA designators in a cluster, all
	// fixed at the first Apply (shared.go). gwStates are the ALUA
	// states the cluster gives gateways' ports.
	shared   SharedState
	self     string
	selfID   uint16
	seed     []byte
	gwStates map[string]scsi.ALUAState

	// idMu serializes the checks of dev_disk disks against their
	// recorded identity (checkDisk), which run in parallel without mu;
	// unsavedIDs are the identities the state directory could not keep.
	idMu       sync.Mutex
	unsavedIDs map[string]diskid.Identity

	stop chan struct{}
	wg   sync.WaitGroup
}

// device is a running device: the model it was made from, its scsi.Device
// (kept across reloads while its identity holds) and the storage it serves
// from.
type device struct {
	name  string
	model Device
	dev   *scsi.Device
	// backend is the storage the device was given: a vdisk.Backend, or a
	// dev_disk device's scsi.Passthrough; nil while offline. A
	// pass-through disk that is lost stays here until it is replaced
	// (see online).
	backend storage
	// have is the spec backend was opened with; when it differs from
	// specOf(model) a reopen failed and is retried.
	have spec
	// empty is set while the device serves without a medium: a vcdrom
	// whose filename is "" (backend is nil, yet the device is online).
	empty bool
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
		srv:        srv,
		log:        log,
		opts:       opts.withDefaults(),
		devices:    map[string]*device{},
		targets:    map[string]*runTarget{},
		isns:       map[access.HostPort]*isnsLink{},
		unsavedIDs: map[string]diskid.Identity{},
		stop:       make(chan struct{}),
		running:    Model{Devices: map[string]Device{}, Targets: map[string]*Target{}},
	}
	e.open = newOpener(e.opts.openStorage(), e.opts.OpenTimeout, e.stop, log)
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

// Plan returns what applying cfg would change, with the live sessions
// each change reaches. It has no side effects, and does not wait for an
// Apply in progress (it compares with what runs now).
func (e *Engine) Plan(cfg *config.Config) (Plan, error) {
	desired := FromConfig(cfg)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Plan{}, ErrClosed
	}
	running, serving, drives, seed := e.running, e.serving(), e.drives(), e.idSeed()
	e.mu.Unlock()
	identify(&desired, seed, running.Devices)
	e.observe(&desired, serving)
	return Diff(running, desired, e.liveSessions(drives)), nil
}

// Close stops the background loops, deregisters from the iSNS servers and
// takes every device offline; each backend is closed once the commands
// using it have completed (those already drained, before Close returns).
// Sessions still running get NOT READY from then on. Close does not wait
// for an Apply in progress nor for storage that hangs: an Apply still
// opening storage gives up and returns ErrClosed.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.stop)
	var errs []error
	for _, d := range e.devices {
		errs = append(errs, e.release(d.name, d.dev.SetOffline(ErrClosed)))
	}
	links := e.isns
	e.isns = map[access.HostPort]*isnsLink{}
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
		NAA:          naaBytes(d.NAA),
		Passthrough:  d.Handler == devDisk,
	}
}

// release closes the storage device name stopped serving from once the
// last command using it has completed: at once, returning Close's error,
// when none is in flight; else a goroutine waits for the drain and logs.
func (e *Engine) release(name string, dr scsi.Drain) error {
	if dr.Empty() {
		return nil
	}
	closeIt := func() error {
		err := dr.Close()
		e.log.Info("storage released", "device", name, "err", err)
		return err
	}
	select {
	case <-dr.Done:
		return closeIt()
	default:
	}
	go func() {
		<-dr.Done
		closeIt()
	}()
	return nil
}

// openState opens the state directory of the first Apply (the
// configuration's state_dir, or Options.StateDir). A later Apply keeps
// it: one whose configuration names another gets a warning (the seed
// and the persistent reservations stay where the daemon found them; the
// new directory is used from the next start).
func (e *Engine) openState(desired, running string, started bool) (warning string, err error) {
	if started {
		if desired != running {
			w := fmt.Sprintf("state_dir %q -> %q applies at the next start; until then the state stays in %q "+
				"(move its files before restarting: identity.seed keeps the devices' NAA designators, pr/ their persistent reservations)",
				running, desired, running)
			e.log.Warn("state_dir changed: it applies at the next start", "running", running, "configured", desired)
			return w, nil
		}
		return "", nil
	}
	dir := desired
	if e.opts.StateDir != "" {
		dir = e.opts.StateDir
	}
	e.mu.Lock()
	have := e.state
	e.mu.Unlock()
	if have != nil && have.Path() == dir {
		return "", nil
	}
	st, err := state.Open(dir)
	if err != nil {
		return "", fmt.Errorf("reconcile: state_dir: %w; nothing was started (set state_dir to a directory scstd can write)", err)
	}
	e.mu.Lock()
	e.state = st
	e.mu.Unlock()
	e.log.Info("state directory", "state_dir", dir)
	return "", nil
}

// idSeed returns the seed of derived NAA designators: the cluster's
// (clusterSeed) in a cluster, else the state directory's; nil before the
// first Apply opened it. Called with e.mu held.
func (e *Engine) idSeed() []byte {
	switch {
	case e.seed != nil:
		return e.seed
	case e.state != nil:
		return e.state.Seed()
	}
	return nil
}

// identify fills in the NAA designator of the devices of m that do not
// pin naa_id: the NAA 6h designator derived from seed and t10_dev_id
// (scsi.DeriveNAA). Without a seed (nothing opened yet) it leaves them
// empty. It changes m.Devices in place: m is a model FromConfig just
// built, whose map nothing else holds (copying 10,000 devices on every
// reload was a tenth of its Apply). A designator that running's device
// of the same name already has is taken from there rather than
// allocated again.
func identify(m *Model, seed []byte, running map[string]Device) {
	if seed == nil {
		return
	}
	var text [2 * 16]byte // the hex of a 16-byte NAA 6h designator
	for name, d := range m.Devices {
		if d.NAA != "" || d.Handler == devDisk {
			continue
		}
		naa := scsi.DeriveNAA(seed, d.T10DevID)
		hex.Encode(text[:], naa[:])
		if r := running[name].NAA; r == string(text[:]) {
			d.NAA = r
		} else {
			d.NAA = string(text[:])
		}
		m.Devices[name] = d
	}
}

// naaBytes decodes a model's NAA designator (nil for none).
func naaBytes(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}
