package scsi

import (
	"errors"
	"fmt"
	"slices"
)

// Reservations shared by several device servers (docs/scale-out.md).
//
// A logical unit that several gateways export from shared storage has
// one reservation state, wherever its initiators come from. A Device
// given a SharedPR (SetSharedPR) keeps a copy of that state and the
// revision it was read at, and changes it only through the store:
//
//	PR OUT, RESERVE, RELEASE   compute the next state from the copy, as a
//	  (and an SPC-2 release      single device server would, then
//	  on nexus loss or reset)    SharedPR.Commit(revision, next): a
//	                             compare-and-swap. A stale copy gets the
//	                             current state back (*StaleError); the
//	                             command is evaluated again against it.
//	                           then SharedPR.Settle(revision): the command
//	                             completes once no device server can act
//	                             on an older state.
//	changes by others          LoadSharedPR (the whole state: at join, after
//	                             the store lost track) and ApplySharedPR (each
//	                             change, in revision order).
//
// The unit attentions a change posts travel with it: every device server
// delivers those for nexuses through its own ports (SharedPR.Local), in
// revision order, its own changes included, before Settle returns.
//
// Until the first LoadSharedPR, and from StaleSharedPR until the next,
// media access answers NOT READY, ASYMMETRIC ACCESS STATE TRANSITION
// (04h/0Ah): the device does not know the state. While the device has
// reservation state (a registration, a persistent or SPC-2 reservation)
// SharedPR.Fence is asked before media access: a device server that may
// no longer hear of changes (its cluster lease may have expired) refuses
// it. A device without reservation state is not fenced: nothing another
// device server may do to it changes what its initiators may access
// without this one settling first.
//
// COMPARE AND WRITE and ORWRITE hold the store's atomic token
// (SharedPR.Atomic) as well as the device's own lock, so that they are
// atomic across device servers.

// SharedPR is a logical unit's reservation state kept with other device
// servers (the gateways of a cluster). Its methods are called with the
// device's reservation lock held, except Settle and Atomic.
type SharedPR interface {
	// Commit replaces the state the device read at revision rev with
	// next, as one compare-and-swap, and returns next's revision. When
	// the state changed since rev it returns a *StaleError carrying
	// the current state; any other error (a *SenseError to answer, or
	// one that maps to NOT READY 04h/0Ah) means nothing was changed.
	Commit(rev int64, next *SharedPRState) (int64, error)
	// Settle returns once every device server sharing the logical unit
	// has applied the state at rev, or can no longer act on an older
	// one, and this one has delivered the unit attentions up to rev.
	// An error fails the command.
	Settle(rev int64) error
	// Local reports whether targetPort ("iqn...,t,0x0002") is a port
	// of this device server.
	Local(targetPort string) bool
	// Fence returns the sense data of media access refused because this
	// device server may have missed changes (nil: it may act).
	Fence() *SenseError
	// Atomic takes the logical unit's token of atomic read-and-write
	// commands, for the caller to release when its command is done.
	Atomic() (release func(), err error)
}

// StaleError is SharedPR.Commit's answer to a compare-and-swap on a
// state that changed: the current state and its revision.
type StaleError struct {
	Rev   int64
	State *SharedPRState
}

// Error says that the change was made on a stale state.
func (e *StaleError) Error() string {
	return fmt.Sprintf("scsi: the shared reservation state changed (revision %d)", e.Rev)
}

// SharedPRState is a logical unit's reservation state as device servers
// share it: the persistent reservations, the SPC-2 reservation, and the
// unit attentions of the change that made it.
type SharedPRState struct {
	PRState
	// SPC2 holds the SPC-2 reservation (RESERVE), nil for none.
	SPC2 *PRNexus `json:"spc2,omitempty"`
	// UnitAttentions are those the change posted, for each device
	// server to deliver to its own nexuses.
	UnitAttentions []PRUnitAttention `json:"unit_attentions,omitempty"`
}

// HasState reports whether the state holds a registration or a
// reservation: what a device server that may miss changes must fence.
func (s *SharedPRState) HasState() bool {
	return s != nil && (len(s.Registrations) > 0 || s.Reservation != nil || s.SPC2 != nil)
}

// PRNexus names an I_T nexus.
type PRNexus struct {
	InitiatorPort string `json:"initiator_port"`
	TargetPort    string `json:"target_port"`
}

// PRUnitAttention is a unit attention that a reservation change posts
// to one I_T nexus: RESERVATIONS PREEMPTED (2Ah/03h), RESERVATIONS
// RELEASED (2Ah/04h) or REGISTRATIONS PREEMPTED (2Ah/05h), by ASCQ.
type PRUnitAttention struct {
	PRNexus
	ASCQ uint8 `json:"ascq"`
}

// reservationUAs are the unit attentions a reservation change posts, by
// ASCQ.
var reservationUAs = map[uint8]*SenseError{
	uaReservationsPreempted.ASCQ:  uaReservationsPreempted,
	uaReservationsReleased.ASCQ:   uaReservationsReleased,
	uaRegistrationsPreempted.ASCQ: uaRegistrationsPreempted,
}

// errSharedUnavailable answers a reservation change that the shared
// store cannot take: NOT READY, LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC
// ACCESS STATE TRANSITION (04h/0Ah), which initiators retry.
var errSharedUnavailable = ErrALUATransition

// maxCommitAttempts bounds the evaluations of one command against a
// shared state that keeps changing under it.
const maxCommitAttempts = 8

// SetSharedPR makes the device keep its reservation state with s,
// instead of alone (and instead of a PRStore): media access waits for
// the first LoadSharedPR. Call it before the device serves commands.
func (d *Device) SetSharedPR(s SharedPR) {
	r := &d.res
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shared, r.store, r.synced = s, nil, false
	r.setWord()
}

// LoadSharedPR makes st, read at revision rev, the device's reservation
// state, with no unit attentions: the state at a join, or after the
// store lost track of changes. A state that does not hold together is
// refused and the device keeps refusing media access (the store says
// why in its log).
func (d *Device) LoadSharedPR(rev int64, st *SharedPRState) error {
	r := &d.res
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.setShared(st); err != nil {
		r.storeErr = err
		r.synced = false
		r.setWord()
		return err
	}
	r.rev, r.uaRev, r.synced, r.storeErr = rev, rev, true, nil
	r.setWord()
	return nil
}

// ApplySharedPR applies the change that made st at revision rev: the
// device takes st unless it holds a newer state (its own commit, or one
// a stale commit brought), and delivers the change's unit attentions
// for nexuses through this device server's ports unless it did already.
// The store calls it for every change, in revision order.
func (d *Device) ApplySharedPR(rev int64, st *SharedPRState) error {
	r := &d.res
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.synced {
		return nil // the next LoadSharedPR brings the state
	}
	if rev > r.rev {
		if err := r.setShared(st); err != nil {
			r.storeErr = err
			r.synced = false
			r.setWord()
			return err
		}
		r.rev = rev
		r.setWord()
	}
	if rev > r.uaRev {
		r.uaRev = rev
		for _, u := range st.UnitAttentions {
			if ua := reservationUAs[u.ASCQ]; ua != nil && r.shared.Local(u.TargetPort) {
				r.deliver(itNexus{u.InitiatorPort, u.TargetPort}, ua)
			}
		}
	}
	return nil
}

// StaleSharedPR says that the device's copy of the shared state may be
// stale (the store lost its place): media access waits for the next
// LoadSharedPR.
func (d *Device) StaleSharedPR() {
	r := &d.res
	r.mu.Lock()
	r.synced = false
	r.setWord()
	r.mu.Unlock()
}

// SharedPRRevision returns the revision of the shared state the device
// holds, and whether it holds one.
func (d *Device) SharedPRRevision() (int64, bool) {
	r := &d.res
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rev, r.synced
}

// setShared replaces the state by st; r.mu must be held.
func (r *reservations) setShared(st *SharedPRState) error {
	if st == nil {
		st = &SharedPRState{}
	}
	regs, holder, err := prFromState(st.PRState)
	if err != nil {
		return err
	}
	if st.SPC2 != nil && len(regs) > 0 {
		return errors.New("scsi: an SPC-2 reservation beside registrations")
	}
	r.regs, r.generation, r.aptpl = regs, st.Generation, st.APTPL
	r.reserved, r.resType, r.resHolder = st.Reservation != nil, 0, holder
	if r.reserved {
		r.resType = st.Reservation.Type
	}
	r.spc2, r.spc2Holder = st.SPC2 != nil, itNexus{}
	if r.spc2 {
		r.spc2Holder = itNexus{st.SPC2.InitiatorPort, st.SPC2.TargetPort}
	}
	return nil
}

// sharedState returns the state to commit, with the unit attentions
// the change in progress posted; r.mu must be held.
func (r *reservations) sharedState() *SharedPRState {
	st := &SharedPRState{PRState: r.state()}
	if r.spc2 {
		st.SPC2 = &PRNexus{r.spc2Holder.initiator, r.spc2Holder.target}
	}
	for _, p := range r.posted {
		st.UnitAttentions = append(st.UnitAttentions, PRUnitAttention{
			PRNexus: PRNexus{p.nexus.initiator, p.nexus.target}, ASCQ: p.ua.ASCQ})
	}
	return st
}

// hasState reports whether the device has reservation state; r.mu must
// be held.
func (r *reservations) hasState() bool { return len(r.regs) > 0 || r.reserved || r.spc2 }

// fence is the check of media access on a device whose reservation
// word asks for it (resGuarded, resUnsynced): the commands that a port in
// the transitioning or unavailable state takes (INQUIRY, REPORT LUNS,
// REQUEST SENSE, REPORT TARGET PORT GROUPS) still run.
func (d *Device) fence(t *task, w uint32) *SenseError {
	switch {
	case w&resUnsynced != 0:
		if !aluaAllowed(Transitioning, t.cdb()) {
			return ErrALUATransition
		}
	case w&resGuarded != 0:
		if e := d.res.shared.Fence(); e != nil && !aluaAllowed(Transitioning, t.cdb()) {
			return e
		}
	}
	return nil
}

// fencedHere reports whether media access through this device server
// is refused now (REPORT TARGET PORT GROUPS then shows its own port
// group unavailable).
func (d *Device) fencedHere() bool {
	w := d.res.word.Load()
	return w&resUnsynced != 0 || w&resGuarded != 0 && d.res.shared.Fence() != nil
}

// sharedStore returns the device's SharedPR, nil when it keeps its
// reservations alone. It takes no lock: SetSharedPR is called before the
// device serves commands.
func (d *Device) sharedStore() SharedPR { return d.res.shared }

// settle waits until the shared state at rev is in force everywhere
// (nothing to wait for without a shared store).
func (r *reservations) settle(shared SharedPR, rev int64) error {
	if shared == nil {
		return nil
	}
	return shared.Settle(rev)
}

// sameAs reports whether the state is the one checkpoint c recorded.
// r.mu must be held.
func (r *reservations) sameAs(c prCheckpoint) bool {
	return r.samePR(c) && r.spc2 == c.spc2 && r.spc2Holder == c.spc2Holder
}

// samePR reports whether the persistent reservation state (what a
// PRStore keeps) is the one checkpoint c recorded. r.mu must be held.
func (r *reservations) samePR(c prCheckpoint) bool {
	return r.generation == c.generation && r.reserved == c.reserved && r.resType == c.resType &&
		r.resHolder == c.resHolder && r.aptpl == c.aptpl && slices.Equal(r.regs, c.regs)
}

// asSense maps a shared store's error to the sense data of the command
// that could not change the state.
func asSense(err error) error {
	var se *SenseError
	if errors.As(err, &se) {
		return se
	}
	return errSharedUnavailable
}
