package scsi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Reservations (SPC-4 §5.13 and, for RESERVE/RELEASE, SPC-2 §5.5.1).
//
// A device holds two kinds of reservation state:
//
//   - an SPC-2 reservation (RESERVE(6/10) / RELEASE(6/10)): one I_T nexus
//     holds the device exclusively; released by RELEASE, logical unit reset
//     and loss of the holding I_T nexus;
//   - persistent reservations (PERSISTENT RESERVE IN/OUT): registrations of
//     reservation keys per I_T nexus, and at most one reservation of one of
//     six types. They survive sessions, resets and nexus loss, and, when
//     the last REGISTER set APTPL and the device has a PRStore, a restart
//     (see prstore.go).
//
// An I_T nexus is named by its initiator port and target port names, so a
// session that logs in again with the same names is the same nexus.
//
// Exceptions between the two (SPC-4 §5.13.3, "compatible reservation
// handling", CRH=1): while any registration exists RESERVE and RELEASE
// conflict; while an SPC-2 reservation exists every PERSISTENT RESERVE IN
// and OUT conflicts.
//
// Unit attentions that reservation changes post to one I_T nexus
// (RESERVATIONS PREEMPTED, RESERVATIONS RELEASED, REGISTRATIONS PREEMPTED)
// are queued here per nexus, once the change is made (saved, or
// committed to a shared store), and reported through reservationUA.
//
// Every change of the state goes through reservations.change, which
// makes it durable as the device's mode asks: in memory alone, saved to
// a PRStore while APTPL is in force (prstore.go), or committed to a
// SharedPR that other device servers share (shared.go).

// itNexus names an I_T nexus: initiator port and target port names.
type itNexus struct {
	initiator, target string
}

// nexusOf returns the I_T nexus of n; a nil Nexus (a command without a
// transport, in tests) is the nexus with empty names.
func nexusOf(n *Nexus) itNexus {
	if n == nil {
		return itNexus{}
	}
	return itNexus{n.InitiatorPort, n.TargetPort}
}

// PRType is a persistent reservation type (SPC-4 table 211).
type PRType uint8

// Persistent reservation types.
const (
	PRWriteExclusive         PRType = 0x1
	PRExclusiveAccess        PRType = 0x3
	PRWriteExclusiveRegOnly  PRType = 0x5
	PRExclusiveAccessRegOnly PRType = 0x6
	PRWriteExclusiveAllReg   PRType = 0x7
	PRExclusiveAccessAllReg  PRType = 0x8
)

// String names the type as SPC-4 abbreviates it.
func (p PRType) String() string {
	switch p {
	case PRWriteExclusive:
		return "WRITE_EXCLUSIVE"
	case PRExclusiveAccess:
		return "EXCLUSIVE_ACCESS"
	case PRWriteExclusiveRegOnly:
		return "WRITE_EXCLUSIVE_REGISTRANTS_ONLY"
	case PRExclusiveAccessRegOnly:
		return "EXCLUSIVE_ACCESS_REGISTRANTS_ONLY"
	case PRWriteExclusiveAllReg:
		return "WRITE_EXCLUSIVE_ALL_REGISTRANTS"
	case PRExclusiveAccessAllReg:
		return "EXCLUSIVE_ACCESS_ALL_REGISTRANTS"
	}
	return "PR_TYPE_" + strconv.Itoa(int(p))
}

// MarshalText makes a PRType a JSON string.
func (p PRType) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a type as MarshalText writes it.
func (p *PRType) UnmarshalText(b []byte) error {
	s := string(b)
	if n, ok := strings.CutPrefix(s, "PR_TYPE_"); ok {
		v, err := strconv.ParseUint(n, 10, 8)
		if err != nil {
			return fmt.Errorf("persistent reservation type %q", s)
		}
		*p = PRType(v)
		return nil
	}
	for _, t := range []PRType{PRWriteExclusive, PRExclusiveAccess, PRWriteExclusiveRegOnly,
		PRExclusiveAccessRegOnly, PRWriteExclusiveAllReg, PRExclusiveAccessAllReg} {
		if t.String() == s {
			*p = t
			return nil
		}
	}
	return fmt.Errorf("persistent reservation type %q", s)
}

func (p PRType) valid() bool {
	switch p {
	case PRWriteExclusive, PRExclusiveAccess, PRWriteExclusiveRegOnly,
		PRExclusiveAccessRegOnly, PRWriteExclusiveAllReg, PRExclusiveAccessAllReg:
		return true
	}
	return false
}

// allRegistrants reports whether every registrant holds the reservation.
func (p PRType) allRegistrants() bool {
	return p == PRWriteExclusiveAllReg || p == PRExclusiveAccessAllReg
}

// registrantsShare reports whether registrants that do not hold the
// reservation have the holder's access (the RO and AR types).
func (p PRType) registrantsShare() bool {
	return p >= PRWriteExclusiveRegOnly
}

// exclusiveAccess reports whether reads conflict too (EA types).
func (p PRType) exclusiveAccess() bool {
	return p == PRExclusiveAccess || p == PRExclusiveAccessRegOnly || p == PRExclusiveAccessAllReg
}

// PRInAction is a PERSISTENT RESERVE IN service action.
type PRInAction uint8

// PERSISTENT RESERVE IN service actions (SPC-4 table 207).
const (
	PRInReadKeys           PRInAction = 0x00
	PRInReadReservation    PRInAction = 0x01
	PRInReportCapabilities PRInAction = 0x02
	PRInReadFullStatus     PRInAction = 0x03
)

// String names the service action.
func (a PRInAction) String() string {
	switch a {
	case PRInReadKeys:
		return "READ_KEYS"
	case PRInReadReservation:
		return "READ_RESERVATION"
	case PRInReportCapabilities:
		return "REPORT_CAPABILITIES"
	case PRInReadFullStatus:
		return "READ_FULL_STATUS"
	}
	return "PRIN_SA_" + strconv.Itoa(int(a))
}

// PROutAction is a PERSISTENT RESERVE OUT service action.
type PROutAction uint8

// PERSISTENT RESERVE OUT service actions (SPC-4 table 214).
const (
	PROutRegister            PROutAction = 0x00
	PROutReserve             PROutAction = 0x01
	PROutRelease             PROutAction = 0x02
	PROutClear               PROutAction = 0x03
	PROutPreempt             PROutAction = 0x04
	PROutPreemptAndAbort     PROutAction = 0x05
	PROutRegisterIgnore      PROutAction = 0x06
	PROutRegisterAndMove     PROutAction = 0x07
	PROutReplaceLostReserved PROutAction = 0x08
)

// String names the service action.
func (a PROutAction) String() string {
	switch a {
	case PROutRegister:
		return "REGISTER"
	case PROutReserve:
		return "RESERVE"
	case PROutRelease:
		return "RELEASE"
	case PROutClear:
		return "CLEAR"
	case PROutPreempt:
		return "PREEMPT"
	case PROutPreemptAndAbort:
		return "PREEMPT_AND_ABORT"
	case PROutRegisterIgnore:
		return "REGISTER_AND_IGNORE_EXISTING_KEY"
	case PROutRegisterAndMove:
		return "REGISTER_AND_MOVE"
	case PROutReplaceLostReserved:
		return "REPLACE_LOST_RESERVATION"
	}
	return "PROUT_SA_" + strconv.Itoa(int(a))
}

// Unit attentions of reservation changes (SPC-4 §5.13.11).
var (
	uaReservationsPreempted  = &SenseError{Key: UnitAttention, ASC: 0x2a, ASCQ: 0x03}
	uaReservationsReleased   = &SenseError{Key: UnitAttention, ASC: 0x2a, ASCQ: 0x04}
	uaRegistrationsPreempted = &SenseError{Key: UnitAttention, ASC: 0x2a, ASCQ: 0x05}
)

// errInvalidRelease is INVALID RELEASE OF PERSISTENT RESERVATION
// (26h/04h): the holder released with another type or scope.
var errInvalidRelease = &SenseError{Key: IllegalRequest, ASC: 0x26, ASCQ: 0x04}

// maxPendingUA bounds the unit attentions queued for one I_T nexus that
// never comes back; older ones are dropped first.
const maxPendingUA = 8

// registration is one registered I_T nexus and its key.
type registration struct {
	nexus itNexus
	key   uint64
	// rtpi is the relative target port identifier the nexus registered
	// through (READ FULL STATUS).
	rtpi uint16
}

// Bits of reservations.word, which every command reads: a command on a
// device whose word is zero takes no lock.
const (
	// resReserved: an SPC-2 or persistent reservation exists; commands
	// are checked for conflicts.
	resReserved uint32 = 1 << iota
	// resGuarded: the device shares its state (SharedPR) and has
	// reservation state; media access asks SharedPR.Fence.
	resGuarded
	// resUnsynced: the device shares its state and does not hold it
	// (yet, or any more); media access waits.
	resUnsynced
)

// postedUA is a unit attention that the change in progress posts.
type postedUA struct {
	nexus itNexus
	ua    *SenseError
}

// reservations is a device's SPC-2 and persistent reservation state.
type reservations struct {
	mu sync.Mutex
	// word holds the res* bits (setWord).
	word atomic.Uint32
	// pending counts queued unit attentions, so that commands take no
	// lock when there is none.
	pending atomic.Int32

	spc2       bool // an SPC-2 reservation is held
	spc2Holder itNexus

	generation uint32
	regs       []registration // in registration order
	reserved   bool
	resType    PRType
	// resHolder is the holder of a reservation whose type is not an
	// all-registrants type.
	resHolder itNexus

	ua map[itNexus][]*SenseError
	// posted are the unit attentions the change in progress posted,
	// queued in ua once it is made.
	posted []postedUA

	// aptpl is the APTPL bit of the last REGISTER: while it is set every
	// change is saved to store before its command completes.
	aptpl bool
	// store keeps the state through power loss; nil: APTPL is refused.
	store PRStore
	// storeErr is why the state could not be loaded or saved, nil when
	// it could.
	storeErr error

	// shared, when set, is the store the device shares its state with
	// (shared.go); store is then nil. rev is the revision of the state
	// held, uaRev the last revision whose unit attentions were
	// delivered, synced whether the device holds the state.
	shared SharedPR
	rev    int64
	uaRev  int64
	synced bool
}

// setWord recomputes word; r.mu must be held.
func (r *reservations) setWord() {
	var w uint32
	if r.spc2 || r.reserved {
		w |= resReserved
	}
	if r.shared != nil {
		switch {
		case !r.synced:
			w |= resUnsynced
		case r.hasState():
			w |= resGuarded
		}
	}
	r.word.Store(w)
}

// change carries out op, a change of the state, and makes it durable as
// the device's mode asks: in memory alone; saved to its PRStore while
// APTPL is in force (a change that cannot be saved is undone and fails
// with INSUFFICIENT REGISTRATION RESOURCES); or committed to its
// SharedPR, op evaluated again against the current state when the copy
// was stale. The unit attentions op posted are queued once the change
// is made (shared: by ApplySharedPR, for this device server's nexuses).
// It returns the shared revision the caller settles once r.mu is
// released. r.mu must be held; op must change nothing when it fails.
func (r *reservations) change(op func() error) (int64, error) {
	if r.shared == nil && r.store == nil {
		r.posted = r.posted[:0]
		if err := op(); err != nil {
			return 0, err
		}
		r.deliverPosted()
		return 0, nil
	}
	for attempt := 1; ; attempt++ {
		cp := r.checkpoint()
		r.posted = r.posted[:0]
		if err := op(); err != nil {
			r.rollback(cp)
			return r.rev, err
		}
		if r.shared == nil {
			if r.samePR(cp) {
				r.deliverPosted()
				return 0, nil
			}
			if err := r.persist(cp.aptpl); err != nil {
				r.rollback(cp)
				return 0, errPersistFailed
			}
			r.deliverPosted()
			return 0, nil
		}
		if r.sameAs(cp) && len(r.posted) == 0 {
			return r.rev, nil
		}
		rev, err := r.shared.Commit(r.rev, r.sharedState())
		var stale *StaleError
		switch {
		case errors.As(err, &stale) && attempt < maxCommitAttempts:
			r.rollback(cp)
			if err := r.setShared(stale.State); err != nil {
				r.storeErr = err
				return 0, errSharedUnavailable
			}
			r.rev = stale.Rev
			r.setWord()
			continue
		case err != nil:
			r.rollback(cp)
			return 0, asSense(err)
		}
		r.posted = r.posted[:0]
		r.rev = rev
		r.setWord()
		return rev, nil
	}
}

// deliverPosted queues the unit attentions the change posted; r.mu must
// be held.
func (r *reservations) deliverPosted() {
	for _, p := range r.posted {
		r.deliver(p.nexus, p.ua)
	}
	r.posted = r.posted[:0]
}

// reg returns the registration of n, or nil; r.mu must be held.
func (r *reservations) reg(n itNexus) *registration {
	for i := range r.regs {
		if r.regs[i].nexus == n {
			return &r.regs[i]
		}
	}
	return nil
}

// holds reports whether n holds the persistent reservation; r.mu must be
// held.
func (r *reservations) holds(n itNexus) bool {
	if !r.reserved {
		return false
	}
	if r.resType.allRegistrants() {
		return r.reg(n) != nil
	}
	return r.resHolder == n
}

// holderKey is the RESERVATION KEY that READ RESERVATION and READ FULL
// STATUS report for the reservation: the holder's key, or zero for the
// all-registrants types (SPC-4 §6.15.3.1).
func (r *reservations) holderKey() uint64 {
	if r.resType.allRegistrants() {
		return 0
	}
	if g := r.reg(r.resHolder); g != nil {
		return g.key
	}
	return 0
}

// release drops the persistent reservation; r.mu must be held.
func (r *reservations) release() {
	r.reserved = false
	r.resType = 0
	r.resHolder = itNexus{}
	r.setWord()
}

// unregister removes the registration at index i and, when that leaves
// the reservation without a holder, releases it (SPC-4 §5.13.11.2.2):
// for the registrants-only types the other registrants are told
// RESERVATIONS RELEASED. r.mu must be held.
func (r *reservations) unregister(i int) {
	gone := r.regs[i].nexus
	r.regs = append(r.regs[:i], r.regs[i+1:]...)
	if !r.reserved {
		return
	}
	if r.resType.allRegistrants() {
		if len(r.regs) == 0 {
			r.release()
		}
		return
	}
	if r.resHolder != gone {
		return
	}
	typ := r.resType
	r.release()
	if typ == PRWriteExclusiveRegOnly || typ == PRExclusiveAccessRegOnly {
		for _, g := range r.regs {
			r.postUA(g.nexus, uaReservationsReleased)
		}
	}
}

// postUA posts a unit attention for n as part of the change in
// progress; r.mu must be held.
func (r *reservations) postUA(n itNexus, ua *SenseError) {
	r.posted = append(r.posted, postedUA{n, ua})
}

// deliver queues a unit attention for n; r.mu must be held.
func (r *reservations) deliver(n itNexus, ua *SenseError) {
	if r.ua == nil {
		r.ua = make(map[itNexus][]*SenseError)
	}
	q := r.ua[n]
	for _, e := range q {
		if e == ua {
			return
		}
	}
	if len(q) == maxPendingUA {
		q = q[1:]
		r.pending.Add(-1)
	}
	r.ua[n] = append(q, ua)
	r.pending.Add(1)
}

// reservationUA returns the oldest unit attention that reservation
// changes queued for the nexus n at this device, removing it, or nil. It
// never takes n.mu.
func (d *Device) reservationUA(n *Nexus) *SenseError {
	ua, _ := d.takeReservationUA(n, false)
	return ua
}

// takeReservationUA is reservationUA that, when try is set, returns
// false instead of waiting for the reservation lock.
func (d *Device) takeReservationUA(n *Nexus, try bool) (*SenseError, bool) {
	r := &d.res
	if r.pending.Load() == 0 {
		return nil, true
	}
	if !r.lock(try) {
		return nil, false
	}
	defer r.mu.Unlock()
	key := nexusOf(n)
	q := r.ua[key]
	if len(q) == 0 {
		return nil, true
	}
	ua := q[0]
	if len(q) == 1 {
		delete(r.ua, key)
	} else {
		r.ua[key] = q[1:]
	}
	r.pending.Add(-1)
	return ua, true
}

// lock takes r.mu; when try is set only if it is free, reporting whether
// it took it.
func (r *reservations) lock(try bool) bool {
	if try {
		return r.mu.TryLock()
	}
	r.mu.Lock()
	return true
}

// resetReservations drops the device's SPC-2 reservation (logical unit
// reset, SPC-4 §5.13.2); persistent reservations survive it.
func (d *Device) resetReservations() {
	d.releaseSPC2(func(itNexus) bool { return true })
}

// nexusLost releases the SPC-2 reservation that the I_T nexus n holds,
// if any: the transport calls it (through the Nexus) when the session
// ends or is about to (a logout). Persistent reservations and
// registrations survive. The channel is closed once the release is
// settled, or at once when there is nothing to release.
func (d *Device) nexusLost(n *Nexus) <-chan struct{} {
	gone := nexusOf(n)
	return d.releaseSPC2(func(h itNexus) bool { return h == gone })
}

// ReleaseSPC2Through releases the SPC-2 reservation when its holder's
// target port is one that port says is gone (another device server's
// ports, when that server left the cluster): SPC-2 releases it on I_T
// nexus loss.
func (d *Device) ReleaseSPC2Through(port func(targetPort string) bool) {
	d.releaseSPC2(func(h itNexus) bool { return port(h.target) })
}

// releaseSPC2 drops the SPC-2 reservation when its holder matches. A
// device that shares its state commits the release in the background,
// retrying for a while: the caller (a session ending, a reset) cannot
// wait for the store. The retries stop when the store ends (a SharedPR
// with a Done channel: the cluster node shut down, and the other device
// servers release the reservations held through its ports). The
// returned channel is closed once the release is done (settled, or given
// up).
func (d *Device) releaseSPC2(match func(itNexus) bool) <-chan struct{} {
	r := &d.res
	done := make(chan struct{})
	op := func() error {
		if r.spc2 && match(r.spc2Holder) {
			r.spc2 = false
			r.spc2Holder = itNexus{}
			r.setWord()
		}
		return nil
	}
	r.mu.Lock()
	if !r.spc2 || !match(r.spc2Holder) {
		r.mu.Unlock()
		close(done)
		return done
	}
	if r.shared == nil {
		op()
		r.mu.Unlock()
		close(done)
		return done
	}
	var ended <-chan struct{}
	if e, ok := r.shared.(sharedEnds); ok {
		ended = e.Done()
	}
	r.mu.Unlock()
	go func() {
		defer close(done)
		retry := time.NewTimer(0)
		defer retry.Stop()
		for range spc2ReleaseAttempts {
			select {
			case <-retry.C:
			case <-ended:
				return
			}
			r.mu.Lock()
			shared := r.shared
			rev, err := r.change(op)
			r.mu.Unlock()
			if err == nil {
				r.settle(shared, rev)
				return
			}
			retry.Reset(time.Second)
		}
	}()
	return done
}

// sharedEnds is implemented by a SharedPR whose store can end: Done is
// closed when it has (a cluster node that shut down).
type sharedEnds interface {
	Done() <-chan struct{}
}

// spc2ReleaseAttempts bounds the background commits of an SPC-2
// release, one a second.
const spc2ReleaseAttempts = 60

// access says how a command is treated under a reservation held by
// another I_T nexus (SPC-4 table 62, SBC-3 table 13).
type access uint8

const (
	// accessWrite commands conflict under every reservation type unless
	// the nexus shares the holder's access: anything that changes the
	// medium or the device's state, and every command not listed.
	accessWrite access = iota
	// accessRead commands conflict under the exclusive access types only.
	accessRead
	// accessAllowed commands never conflict with a persistent
	// reservation.
	accessAllowed
)

// commandAccess classifies cdb for reservation checks.
func commandAccess(cdb []byte) access {
	switch Opcode(cdb[0]) {
	case Inquiry, ReportLUNs, RequestSense, TestUnitReady, LogSense,
		ReadCapacity10, PersistentReserveIn, PersistentReserveOut, MaintenanceIn,
		PreventAllowMedium:
		return accessAllowed
	case ServiceActionIn16:
		if len(cdb) > 1 && cdb[1]&0x1f == SAReadCapacity16 {
			return accessAllowed
		}
		return accessRead
	case Read6, Read10, Read12, Read16, Verify10, Verify12, Verify16,
		PreFetch10, PreFetch16, ModeSense6, ModeSense10, ReadBuffer,
		ReadDefectData10, ReadDefectData12, ReceiveDiagnostic:
		return accessRead
	}
	return accessWrite
}

// reservationConflict reports whether t may not run because of a
// reservation (SPC-4 §5.13.1, SPC-2 §5.5.1). Commands on a device without
// a reservation take no lock. A command tried without waiting (t.try)
// that finds the lock held sets t.blocked instead.
func (d *Device) reservationConflict(t *task) bool {
	return d.res.word.Load()&resReserved != 0 && d.conflicts(t)
}

// reservationCheck is what the dispatcher asks of a device whose
// reservation word is not zero: the fence of a device that shares its
// state, then reservation conflicts.
func (t *task) reservationCheck(w uint32) (Result, bool) {
	if e := t.dev.fence(t, w); e != nil {
		return checkCondition(e), true
	}
	if w&resReserved != 0 && t.dev.conflicts(t) {
		return Result{Status: ReservationConflict}, true
	}
	return Result{}, false
}

// conflicts is reservationConflict for a device with a reservation.
func (d *Device) conflicts(t *task) bool {
	r := &d.res
	cdb := t.cdb()
	n := nexusOf(t.cmd.Nexus)
	if !r.lock(t.try) {
		t.blocked = true
		return false
	}
	defer r.mu.Unlock()
	if r.spc2 {
		switch Opcode(cdb[0]) {
		case PersistentReserveIn, PersistentReserveOut:
			return true
		case Inquiry, ReportLUNs, RequestSense, Release6, Release10:
			return false
		}
		return r.spc2Holder != n
	}
	if !r.reserved || r.holds(n) {
		return false
	}
	acc := commandAccess(cdb)
	if acc == accessAllowed {
		return false
	}
	if r.resType.registrantsShare() && r.reg(n) != nil {
		return false
	}
	return acc == accessWrite || r.resType.exclusiveAccess()
}

// reserve6 handles RESERVE(6) and RESERVE(10) (SPC-2 §7.21, §7.22): the
// nexus reserves the whole logical unit. Extents and third-party
// reservations are not supported. Registrations of persistent
// reservations make it conflict (SPC-4 §5.13.3).
//
//	RESERVE(6):  byte 1 bit 0 EXTENT (obsolete, must be 0)
//	RESERVE(10): byte 1 bit 4 3RDPTY, bit 1 LONGID (must be 0)
func reserve6(t *task) ([]byte, error) {
	if err := checkSPC2CDB(t.cdb()); err != nil {
		return nil, err
	}
	r := &t.dev.res
	n := nexusOf(t.cmd.Nexus)
	r.mu.Lock()
	shared := r.shared
	rev, err := r.change(func() error {
		if len(r.regs) > 0 || (r.spc2 && r.spc2Holder != n) {
			return errReservationConflict
		}
		r.spc2 = true
		r.spc2Holder = n
		r.setWord()
		return nil
	})
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return nil, r.settle(shared, rev)
}

// checkSPC2CDB refuses the unsupported options of RESERVE and RELEASE:
// EXTENT in the 6-byte CDBs, 3RDPTY and LONGID in the 10-byte ones.
func checkSPC2CDB(cdb []byte) error {
	switch op := Opcode(cdb[0]); {
	case op == Reserve6 || op == Release6:
		if cdb[1]&0x01 != 0 {
			return invalidField(1, 0)
		}
	case cdb[1]&0x12 != 0:
		return invalidField(1, 4)
	}
	return nil
}

// release6 handles RELEASE(6) and RELEASE(10) (SPC-2 §7.17, §7.18): the
// holder's reservation is released; from another nexus it does nothing
// and succeeds.
func release6(t *task) ([]byte, error) {
	if err := checkSPC2CDB(t.cdb()); err != nil {
		return nil, err
	}
	r := &t.dev.res
	n := nexusOf(t.cmd.Nexus)
	r.mu.Lock()
	shared := r.shared
	rev, err := r.change(func() error {
		if len(r.regs) > 0 {
			return errReservationConflict
		}
		if r.spc2 && r.spc2Holder == n {
			r.spc2 = false
			r.spc2Holder = itNexus{}
			r.setWord()
		}
		return nil
	})
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return nil, r.settle(shared, rev)
}

// persistentReserveIn handles PERSISTENT RESERVE IN (SPC-4 §6.15).
//
//	byte 1   bits 4-0 SERVICE ACTION
//	bytes 7-8         ALLOCATION LENGTH
func persistentReserveIn(t *task) ([]byte, error) {
	cdb := t.cdb()
	sa := PRInAction(cdb[1] & 0x1f)
	alloc := uint32(be16(cdb[7:9]))
	r := &t.dev.res
	r.mu.Lock()
	defer r.mu.Unlock()
	var b []byte
	switch sa {
	case PRInReadKeys:
		b = t.dataIn(8 + 8*len(r.regs))
		binary.BigEndian.PutUint32(b[0:4], r.generation)
		binary.BigEndian.PutUint32(b[4:8], uint32(8*len(r.regs)))
		for i, g := range r.regs {
			binary.BigEndian.PutUint64(b[8+8*i:], g.key)
		}
	case PRInReadReservation:
		if !r.reserved {
			b = t.dataIn(8)
			binary.BigEndian.PutUint32(b[0:4], r.generation)
			break
		}
		b = t.dataIn(24)
		binary.BigEndian.PutUint32(b[0:4], r.generation)
		binary.BigEndian.PutUint32(b[4:8], 16)
		binary.BigEndian.PutUint64(b[8:16], r.holderKey())
		b[21] = byte(r.resType) // SCOPE 0h: logical unit
	case PRInReportCapabilities:
		b = t.dataIn(8)
		binary.BigEndian.PutUint16(b[0:2], 8)
		// CRH: RESERVE/RELEASE follow SPC-4 §5.13.3. SIP_C and ATP_C are
		// zero: no SPEC_I_PT, no ALL_TG_PT. PTPL_C when the device can
		// keep its state through power loss.
		b[2] = 0x10
		if r.store != nil || r.shared != nil {
			b[2] |= 0x01
		}
		// TMV, ALLOW COMMANDS 001b: TEST UNIT READY is allowed through
		// write exclusive and exclusive access reservations; PTPL_A
		// while APTPL is in force.
		b[3] = 0x80 | 0x01<<4
		if r.aptpl {
			b[3] |= 0x01
		}
		b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02 // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
		b[5] = 0x01                             // EX_AC_AR
	case PRInReadFullStatus:
		b = r.appendFullStatus(t.dataIn(8)[:8])
	default:
		return nil, invalidField(1, 4)
	}
	return allocLen(b, alloc), nil
}

// appendFullStatus appends the READ FULL STATUS parameter data (SPC-4
// §6.15.5) to b, whose first 8 bytes are the header; r.mu must be held.
func (r *reservations) appendFullStatus(b []byte) []byte {
	binary.BigEndian.PutUint32(b[0:4], r.generation)
	for _, g := range r.regs {
		var d [24]byte
		binary.BigEndian.PutUint64(d[0:8], g.key)
		if r.holds(g.nexus) {
			d[12] = 0x01 // R_HOLDER
			d[13] = byte(r.resType)
		}
		binary.BigEndian.PutUint16(d[18:20], g.rtpi)
		id := transportID(g.nexus.initiator)
		binary.BigEndian.PutUint32(d[20:24], uint32(len(id)))
		b = append(b, d[:]...)
		b = append(b, id...)
	}
	binary.BigEndian.PutUint32(b[4:8], uint32(len(b)-8))
	return b
}

// transportID builds the iSCSI TransportID (SPC-4 §7.6.4.6) of an
// initiator port name: format 01b (name with ",i,0x" and ISID) when the
// name carries an ISID, format 00b (name only) otherwise; NUL-terminated,
// padded to a multiple of four bytes.
func transportID(port string) []byte {
	const protocolISCSI = 0x5
	format := byte(0x00)
	if strings.Contains(port, ",i,0x") {
		format = 0x40
	}
	n := len(port) + 1
	n = (n + 3) &^ 3
	id := make([]byte, 4+n)
	id[0] = format | protocolISCSI
	binary.BigEndian.PutUint16(id[2:4], uint16(n))
	copy(id[4:], port)
	return id
}

// prOutParamLen is the length of the basic PERSISTENT RESERVE OUT
// parameter list (SPC-4 §6.16.3).
const prOutParamLen = 24

// persistentReserveOut handles PERSISTENT RESERVE OUT (SPC-4 §6.16).
//
//	byte 1    bits 4-0 SERVICE ACTION
//	byte 2    bits 7-4 SCOPE, bits 3-0 TYPE
//	bytes 5-8          PARAMETER LIST LENGTH (24)
//
// Parameter list: RESERVATION KEY (0-7), SERVICE ACTION RESERVATION KEY
// (8-15), byte 20 SPEC_I_PT (bit 3), ALL_TG_PT (bit 2), APTPL (bit 0).
func persistentReserveOut(t *task) ([]byte, error) {
	cdb := t.cdb()
	sa := PROutAction(cdb[1] & 0x1f)
	scope, typ := cdb[2]>>4, PRType(cdb[2]&0x0f)
	switch sa {
	case PROutReserve, PROutRelease, PROutPreempt, PROutPreemptAndAbort:
		if scope != 0 {
			return nil, invalidField(2, 7)
		}
		if !typ.valid() && sa != PROutRelease {
			return nil, invalidField(2, 3)
		}
	}
	plen := be32(cdb[5:9])
	if plen != prOutParamLen {
		t.outLen = uint64(plen)
		return nil, ErrParamListLength
	}
	p, err := t.dataOut(prOutParamLen, true)
	if err != nil {
		return nil, err
	}
	key, saKey := be64(p[0:8]), be64(p[8:16])
	register := sa == PROutRegister || sa == PROutRegisterIgnore
	aptpl := p[20]&0x01 != 0
	switch {
	case p[20]&0x08 != 0:
		return nil, invalidParam(20, 3) // SPEC_I_PT
	case p[20]&0x04 != 0:
		return nil, invalidParam(20, 2) // ALL_TG_PT
	}

	r := &t.dev.res
	n := nexusOf(t.cmd.Nexus)
	r.mu.Lock()
	if aptpl && register && r.store == nil && r.shared == nil {
		r.mu.Unlock()
		return nil, invalidParam(20, 0) // APTPL: nowhere to keep the state
	}
	// APTPL (SPC-4 §5.13.5): the last REGISTER's bit decides whether the
	// state is kept through power loss; while it is, no change completes
	// before it is saved (change). A shared state is kept by its store
	// whatever the bit says.
	shared := r.shared
	rev, err := r.change(func() error {
		if r.spc2 {
			return errReservationConflict
		}
		if err := r.prOut(t, sa, n, key, saKey, typ, scope); err != nil {
			return err
		}
		if register {
			r.aptpl = aptpl
		}
		return nil
	})
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return nil, r.settle(shared, rev)
}

// prOut carries out a PERSISTENT RESERVE OUT service action on the
// state in memory; r.mu must be held.
func (r *reservations) prOut(t *task, sa PROutAction, n itNexus, key, saKey uint64, typ PRType, scope byte) error {
	g := r.reg(n)
	if sa == PROutRegisterIgnore {
		return r.register(t, n, g, saKey)
	}
	if g == nil {
		if sa == PROutRegister && key == 0 {
			return r.register(t, n, g, saKey)
		}
		return errReservationConflict
	}
	if g.key != key {
		return errReservationConflict
	}
	switch sa {
	case PROutRegister:
		return r.register(t, n, g, saKey)
	case PROutReserve:
		return r.reserve(n, typ)
	case PROutRelease:
		return r.releasePR(n, typ, scope)
	case PROutClear:
		for _, o := range r.regs {
			if o.nexus != n {
				r.postUA(o.nexus, uaReservationsPreempted)
			}
		}
		r.regs = r.regs[:0]
		r.release()
		r.generation++
		return nil
	default: // PREEMPT, PREEMPT AND ABORT
		return r.preempt(n, key, saKey, typ)
	}
}

// register carries out REGISTER and REGISTER AND IGNORE EXISTING KEY for
// nexus n, whose registration is g (nil when unregistered): a zero key
// unregisters, another key registers or replaces (SPC-4 §5.13.7).
// r.mu must be held.
func (r *reservations) register(t *task, n itNexus, g *registration, saKey uint64) error {
	switch {
	case g == nil && saKey == 0:
		return nil // nothing to do, generation unchanged
	case g == nil:
		var rtpi uint16
		if t.cmd.Nexus != nil {
			rtpi = t.cmd.Nexus.RelTgtPortID
		}
		r.regs = append(r.regs, registration{nexus: n, key: saKey, rtpi: rtpi})
	case saKey == 0:
		for i := range r.regs {
			if r.regs[i].nexus == n {
				r.unregister(i)
				break
			}
		}
	default:
		g.key = saKey
	}
	r.generation++
	return nil
}

// reserve carries out RESERVE for the registered nexus n (SPC-4
// §5.13.9): the holder asking again for the same type succeeds, any other
// existing reservation conflicts. r.mu must be held.
func (r *reservations) reserve(n itNexus, typ PRType) error {
	if r.reserved {
		if r.holds(n) && r.resType == typ {
			return nil
		}
		return errReservationConflict
	}
	r.reserved = true
	r.resType = typ
	r.resHolder = n
	r.setWord()
	return nil
}

// releasePR carries out RELEASE for the registered nexus n (SPC-4
// §5.13.10.2): releasing when not the holder, or with nothing reserved,
// does nothing; the holder must name the reservation's type. The other
// registrants learn RESERVATIONS RELEASED for the types that give them
// access. r.mu must be held.
func (r *reservations) releasePR(n itNexus, typ PRType, scope byte) error {
	if !r.holds(n) {
		return nil
	}
	if typ != r.resType || scope != 0 {
		return errInvalidRelease
	}
	r.release()
	if typ.registrantsShare() {
		for _, g := range r.regs {
			if g.nexus != n {
				r.postUA(g.nexus, uaReservationsReleased)
			}
		}
	}
	return nil
}

// preempt carries out PREEMPT and PREEMPT AND ABORT for the registered
// nexus n (SPC-4 §5.13.11.2.4). Aborting the preempted nexuses' commands
// is left to them completing: commands run to completion here.
// r.mu must be held.
func (r *reservations) preempt(n itNexus, key, saKey uint64, typ PRType) error {
	switch {
	case r.reserved && r.resType.allRegistrants() && saKey == 0:
		// Preempting an all-registrants reservation with key 0 removes
		// every other registration and takes the reservation.
		r.removeKeyed(n, func(g registration) bool { return g.nexus != n })
		r.reserved, r.resType, r.resHolder = true, typ, n
		r.setWord()
	case r.reserved && !r.resType.allRegistrants() && saKey == r.holderKey():
		// Preempting the holder: its registration (and every other with
		// that key, except ours) goes, and we hold the reservation, with
		// the type we name.
		oldType := r.resType
		r.release() // replaced below: no RESERVATIONS RELEASED for it
		r.removeKeyed(n, func(g registration) bool { return g.key == saKey && g.nexus != n })
		r.reserved, r.resType, r.resHolder = true, typ, n
		r.setWord()
		if oldType != typ {
			for _, g := range r.regs {
				if g.nexus != n {
					r.postUA(g.nexus, uaReservationsReleased)
				}
			}
		}
	default:
		// Removing registrations only; a zero key names none.
		if saKey == 0 {
			return invalidParam(8, -1)
		}
		if r.removeKeyed(n, func(g registration) bool { return g.key == saKey }) == 0 {
			return errReservationConflict
		}
	}
	r.generation++
	return nil
}

// removeKeyed removes the registrations that match, posting REGISTRATIONS
// PREEMPTED to each removed nexus other than n, and returns how many it
// removed. A holder losing its registration loses its reservation as
// unregister says. r.mu must be held.
func (r *reservations) removeKeyed(n itNexus, match func(registration) bool) int {
	removed := 0
	for i := 0; i < len(r.regs); {
		g := r.regs[i]
		if !match(g) {
			i++
			continue
		}
		r.unregister(i)
		if g.nexus != n {
			r.postUA(g.nexus, uaRegistrationsPreempted)
		}
		removed++
	}
	return removed
}

// reservationCommands are RESERVE/RELEASE(6/10) and PERSISTENT RESERVE
// IN/OUT.
var reservationCommands = []commandDesc{
	{op: Reserve6, cdbLen: 6, types: typesAll,
		usage:   []byte{0x16, 0x01, 0x00, 0x00, 0x00, 0x07},
		handler: reserve6},
	{op: Release6, cdbLen: 6, types: typesAll,
		usage:   []byte{0x17, 0x01, 0x00, 0x00, 0x00, 0x07},
		handler: release6},
	{op: Reserve10, cdbLen: 10, types: typesAll,
		usage:   []byte{0x56, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07},
		handler: reserve6},
	{op: Release10, cdbLen: 10, types: typesAll,
		usage:   []byte{0x57, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07},
		handler: release6},
	prIn(PRInReadKeys), prIn(PRInReadReservation), prIn(PRInReportCapabilities), prIn(PRInReadFullStatus),
	prOut(PROutRegister), prOut(PROutReserve), prOut(PROutRelease), prOut(PROutClear),
	prOut(PROutPreempt), prOut(PROutPreemptAndAbort), prOut(PROutRegisterIgnore),
}

// prIn returns the descriptor of one PERSISTENT RESERVE IN service action.
func prIn(sa PRInAction) commandDesc {
	return commandDesc{op: PersistentReserveIn, sa: uint8(sa), hasSA: true,
		name: "PERSISTENT_RESERVE_IN/" + sa.String(), cdbLen: 10, types: typesAll,
		flags:   flagOffline,
		usage:   []byte{0x5e, uint8(sa), 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x07},
		handler: persistentReserveIn}
}

// prOut returns the descriptor of one PERSISTENT RESERVE OUT service
// action.
func prOut(sa PROutAction) commandDesc {
	return commandDesc{op: PersistentReserveOut, sa: uint8(sa), hasSA: true,
		name: "PERSISTENT_RESERVE_OUT/" + sa.String(), cdbLen: 10, types: typesAll,
		flags:   flagDataOut | flagOffline,
		usage:   []byte{0x5f, uint8(sa), 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x07},
		handler: persistentReserveOut}
}
