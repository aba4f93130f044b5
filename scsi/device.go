package scsi

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/scstd/scstd/vdisk"
)

// Device is one SCSI device (an SCST "device"): a backend plus identity,
// attributes and runtime state shared by every LUN and nexus that maps it.
// It outlives engine snapshots: a reload that keeps a device keeps its
// Device value. All methods are safe for concurrent use.
type Device struct {
	// cfg holds the identity (Name, Type, BlockSize, Removable, T10DevID,
	// USN), fixed at creation; ReadOnly, NVCache and WriteThrough here are
	// only initial values, the live ones are the atomics below.
	cfg DeviceConfig
	id  identity

	state atomic.Pointer[devState]
	// size is the capacity in bytes, cached: commands never stat.
	size atomic.Int64

	readOnly     atomic.Bool
	nvCache      atomic.Bool
	writeThrough atomic.Bool // WCE=0

	// Device-wide event counters; each nexus remembers the values it has
	// seen per LUN and reports a unit attention when one moved.
	capacityEpoch atomic.Uint64 // CAPACITY DATA HAS CHANGED
	modeEpoch     atomic.Uint64 // MODE PARAMETERS CHANGED
	resetEpoch    atomic.Uint64 // LOGICAL UNIT RESET

	// ejected is true while a removable device's medium is out (START
	// STOP UNIT with LOEJ; a CD-ROM's tray is open).
	ejected atomic.Bool
	// mediumEpoch counts media loaded (NOT READY TO READY CHANGE, MEDIUM
	// MAY HAVE CHANGED); mediaEvent is the last media event for GET EVENT
	// STATUS NOTIFICATION and its sequence number; lastRead is the last
	// block a CD-ROM read (MECHANISM STATUS). See medium.go.
	mediumEpoch atomic.Uint64
	mediaEvent  atomic.Uint64
	lastRead    atomic.Uint32
	// preventers are the nexuses with a PREVENT ALLOW MEDIUM REMOVAL in
	// force; nprevent is len(preventers), read without the lock.
	preventMu  sync.Mutex
	preventers map[*Nexus]struct{}
	nprevent   atomic.Int32

	res reservations

	// atomicMu serializes the commands that read and write the medium as
	// one step (atomic.go).
	atomicMu sync.Mutex
	// alua is the device group the device is in, nil for none.
	alua atomic.Pointer[DeviceGroup]

	// extras holds the rarely used SANITIZE and software write protect
	// state, nil until a command needs it (see sanitize.go).
	extras atomic.Pointer[devExtra]
}

// devState is the storage a device serves from, swapped atomically as
// the device goes offline and online: backend for a virtual device, pass
// for a pass-through device, both nil while offline, and in a removable
// device that is online without a medium (noMedium).
//
// A command that uses the storage holds a reference on the state it took
// it from (acquire, release); a state replaced by the next one is retired,
// and once retired and without references it is drained: its idle
// channel closes and whoever took the device's old storage may close it.
// The counter's high bit marks retirement, so that taking and dropping a
// reference is one atomic add each, with no lock and no allocation.
type devState struct {
	backend  vdisk.Backend
	pass     Passthrough
	offline  error
	noMedium bool
	// lost is set when the pass-through disk reported that it has gone
	// (see Device.lose): the state keeps pass, so that the disk is
	// closed through the state's Drain like any storage, but serves no
	// more commands.
	lost atomic.Pointer[error]
	refs atomic.Int64
	// idle is closed when drained; retire makes it, before the state
	// can drain (most states are never retired: 96 bytes a device).
	idle    chan struct{}
	drained atomic.Bool
}

// stateRetired is the bit of devState.refs set when the state is retired.
const stateRetired = 1 << 62

func newState(b vdisk.Backend, p Passthrough, offline error) *devState {
	return &devState{backend: b, pass: p, offline: offline}
}

// serves reports whether the state holds storage (it may have been lost
// since).
func (st *devState) serves() bool { return st.backend != nil || st.pass != nil }

// acquire returns the device's current state with a reference on its
// storage, which the caller drops with release once it no longer uses
// it. A state retired between the load and the reference is given up for
// the one that replaced it.
func (d *Device) acquire() *devState {
	for {
		st := d.state.Load()
		if !st.serves() {
			return st
		}
		if st.refs.Add(1)&stateRetired == 0 {
			return st
		}
		st.release()
	}
}

// hold takes one more reference on a state the caller already holds one
// on (a job that outlives its command).
func (st *devState) hold() {
	if st != nil && st.serves() {
		st.refs.Add(1)
	}
}

// release drops a reference taken by acquire or hold; nil-safe.
func (st *devState) release() {
	if st == nil || !st.serves() {
		return
	}
	if st.refs.Add(-1) == stateRetired {
		st.drain()
	}
}

// retire marks a state that the device no longer serves from; it drains
// at once when no command holds it, else when the last one releases it.
func (st *devState) retire() Drain {
	if !st.serves() {
		return Drain{}
	}
	// Made before the retired bit is set: the release that drains the
	// state sees the bit, and so the channel.
	st.idle = make(chan struct{})
	if st.refs.Add(stateRetired) == stateRetired {
		st.drain()
	}
	return Drain{Backend: st.backend, Pass: st.pass, Done: st.idle}
}

func (st *devState) drain() {
	if st.drained.CompareAndSwap(false, true) {
		close(st.idle)
	}
}

// Drain is the storage a device stopped serving from: Backend for a
// virtual device, Pass for a pass-through device, both nil when it served
// from none. Done is closed when the last command that picked it up has
// completed, and only then may the owner close it.
type Drain struct {
	Backend vdisk.Backend
	Pass    Passthrough
	Done    <-chan struct{}
}

// Empty reports whether the device served from no storage.
func (dr Drain) Empty() bool { return dr.Backend == nil && dr.Pass == nil }

// Close closes the drained storage (nil for none). Call it once Done is
// closed.
func (dr Drain) Close() error {
	switch {
	case dr.Backend != nil:
		return dr.Backend.Close()
	case dr.Pass != nil:
		return dr.Pass.Close()
	}
	return nil
}

// ErrOffline is the reason Offline reports for a device created or set
// offline without one.
var ErrOffline = errors.New("scsi: device is offline")

// NewDevice makes a device. A nil backend makes an offline device, whose
// LUNs answer NOT READY until SetBackend gives it one. A zero BlockSize
// means 512 (2048 for CD-ROM).
func NewDevice(cfg DeviceConfig, b vdisk.Backend) *Device {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 512
		if cfg.Type == TypeCDROM {
			cfg.BlockSize = 2048
		}
	}
	d := &Device{cfg: cfg}
	d.id = newIdentity(&d.cfg)
	d.readOnly.Store(cfg.ReadOnly)
	d.nvCache.Store(cfg.NVCache)
	d.writeThrough.Store(cfg.WriteThrough)
	d.state.Store(newState(nil, nil, ErrOffline))
	if b != nil {
		d.SetBackend(b)
	}
	return d
}

// Name returns the device's name.
func (d *Device) Name() string { return d.cfg.Name }

// Config returns the device's configuration with the live values of
// ReadOnly, NVCache and WriteThrough (MODE SELECT may change the latter).
func (d *Device) Config() DeviceConfig {
	c := d.cfg
	c.ReadOnly = d.readOnly.Load()
	c.NVCache = d.nvCache.Load()
	c.WriteThrough = d.writeThrough.Load()
	return c
}

// SetBackend makes the device serve from b (bringing an offline device
// online) and reads its size; a size that differs from the last one known
// posts CAPACITY DATA HAS CHANGED to every nexus. On a CD-ROM b is a new
// disc, loaded with the tray closed: every nexus gets NOT READY TO READY
// CHANGE, MEDIUM MAY HAVE CHANGED instead, and GET EVENT STATUS
// NOTIFICATION reports new media. When b.Size() fails the
// device goes offline with that error as the reason (see Offline) and the
// caller keeps b. A nil b is SetOffline(nil). The backend the device
// served from before is returned as a Drain: the caller closes it once
// Drain.Done is closed, when no command uses it any more.
func (d *Device) SetBackend(b vdisk.Backend) Drain {
	if b == nil {
		return d.SetOffline(nil)
	}
	n, err := b.Size()
	if err != nil {
		return d.swap(newState(nil, nil, fmt.Errorf("scsi: device %s: size: %w", d.cfg.Name, err)))
	}
	if d.cfg.Type == TypeCDROM {
		return d.loadMedium(b, n)
	}
	d.setSize(n)
	return d.swap(newState(b, nil, nil))
}

// SetOffline takes the device offline for reason (nil: ErrOffline): its
// LUNs answer NOT READY, LOGICAL UNIT NOT READY, MANUAL INTERVENTION
// REQUIRED until SetBackend (SetPassthrough). It returns the storage it
// served from as a Drain, for the caller to close once the commands in
// flight have finished with it.
func (d *Device) SetOffline(reason error) Drain {
	if reason == nil {
		reason = ErrOffline
	}
	return d.swap(newState(nil, nil, reason))
}

func (d *Device) swap(st *devState) Drain {
	return d.state.Swap(st).retire()
}

// Offline returns why the device is offline, or nil when it is online. A
// pass-through device whose disk has gone is offline by itself; its
// storage is still to be taken from it (SetPassthrough, SetOffline) and
// closed.
func (d *Device) Offline() error {
	st := d.state.Load()
	if st.offline != nil {
		return st.offline
	}
	if err := st.lost.Load(); err != nil {
		return *err
	}
	return nil
}

// Backend returns the backend the device serves from, or nil when offline.
// It takes no reference: commands get theirs through acquire; this is for
// status and tests.
func (d *Device) Backend() vdisk.Backend {
	return d.state.Load().backend
}

// Size returns the cached capacity in bytes (0 while never online).
func (d *Device) Size() int64 { return d.size.Load() }

// RefreshSize re-reads the backend's size. When it changed, every nexus
// gets CAPACITY DATA HAS CHANGED on its next command to a LUN of this
// device. An offline device does nothing.
func (d *Device) RefreshSize() (changed bool, err error) {
	st := d.acquire()
	defer st.release()
	if st.backend == nil {
		return false, nil
	}
	n, err := st.backend.Size()
	if err != nil {
		return false, err
	}
	return d.setSize(n), nil
}

// setSize caches a new capacity and reports whether it changed, posting
// CAPACITY DATA HAS CHANGED when it did.
func (d *Device) setSize(n int64) bool {
	if n < 0 {
		n = 0
	}
	if d.size.Swap(n) == n {
		return false
	}
	d.capacityEpoch.Add(1)
	return true
}

// SetReadOnly write-protects the device (or lifts it). A change posts MODE
// PARAMETERS CHANGED, since the WP bit of the mode parameter header moves.
func (d *Device) SetReadOnly(ro bool) {
	if d.readOnly.Swap(ro) != ro {
		d.modeEpoch.Add(1)
	}
}

// SetCache sets nv_cache (ignore SYNCHRONIZE CACHE and FUA) and
// write_through (WCE=0 in the caching mode page). A change posts MODE
// PARAMETERS CHANGED.
func (d *Device) SetCache(nvCache, writeThrough bool) {
	a := d.nvCache.Swap(nvCache) != nvCache
	b := d.writeThrough.Swap(writeThrough) != writeThrough
	if a || b {
		d.modeEpoch.Add(1)
	}
}

// unmapper returns the backend's Unmapper for t's command, or nil when the
// backend cannot deallocate.
func (t *task) unmapper() vdisk.Unmapper {
	if t.be == nil {
		return nil
	}
	u, _ := t.be.(vdisk.Unmapper)
	return u
}

// syncNeeded reports whether a write must be made durable before it
// completes: FUA was set or the cache is write-through, and the device
// does not ignore flushes (nv_cache).
func (t *task) syncNeeded(fua bool) bool {
	if t.dev.nvCache.Load() {
		return false
	}
	return fua || t.dev.writeThrough.Load()
}

// setPrevent records whether nexus n prevents medium removal.
func (d *Device) setPrevent(n *Nexus, on bool) {
	d.preventMu.Lock()
	defer d.preventMu.Unlock()
	if on {
		if d.preventers == nil {
			d.preventers = make(map[*Nexus]struct{})
		}
		d.preventers[n] = struct{}{}
		if n != nil {
			n.remember(d)
		}
	} else {
		delete(d.preventers, n)
	}
	d.nprevent.Store(int32(len(d.preventers)))
}

// clearPrevent drops every nexus's prevention (logical unit reset).
func (d *Device) clearPrevent() {
	d.preventMu.Lock()
	clear(d.preventers)
	d.nprevent.Store(0)
	d.preventMu.Unlock()
}

// removalPrevented reports whether any nexus prevents medium removal.
func (d *Device) removalPrevented() bool { return d.nprevent.Load() > 0 }

// removable reports whether the device's medium can be ejected: a
// removable disk, or any CD-ROM.
func (d *Device) removable() bool { return d.cfg.Removable || d.cfg.Type == TypeCDROM }
