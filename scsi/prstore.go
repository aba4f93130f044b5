package scsi

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Persistence through power loss (APTPL, SPC-4 §5.13.5).
//
// A REGISTER (or REGISTER AND IGNORE EXISTING KEY) with APTPL set asks
// the device server to keep the registrations and the persistent
// reservation through power loss; the last such command's bit decides,
// from any I_T nexus. scstd keeps them through a daemon restart: while
// APTPL is in force every PERSISTENT RESERVE OUT that succeeds saves the
// device's state (PRState) to its PRStore before it completes, and one
// whose state cannot be saved is undone and fails. A REGISTER with APTPL
// clear removes what was saved. The engine gives each device its store
// and restores the saved state when it makes the device (RestorePR).
//
// The SPC-2 reservation (RESERVE/RELEASE) and pending unit attentions
// are not kept: a restart is a power loss for them.

// PRStore keeps one device's persistent reservation state through power
// loss. The device calls it with its reservation lock held, so calls for
// one device never overlap; Save must make the state durable before it
// returns.
type PRStore interface {
	// Save records st, replacing what was saved.
	Save(st PRState) error
	// Remove forgets what was saved (APTPL turned off).
	Remove() error
}

// PRState is a device's persistent reservation state as it is kept
// through power loss.
type PRState struct {
	// APTPL is the APTPL bit of the last REGISTER.
	APTPL bool `json:"aptpl"`
	// Generation is the PRgeneration (PERSISTENT RESERVE IN).
	Generation uint32 `json:"generation"`
	// Registrations in registration order.
	Registrations []PRRegistration `json:"registrations"`
	// Reservation is the persistent reservation, nil for none.
	Reservation *PRReservation `json:"reservation,omitempty"`
}

// PRRegistration is one registered I_T nexus and its key.
type PRRegistration struct {
	// InitiatorPort and TargetPort name the I_T nexus
	// ("iqn...,i,0x<isid>", "iqn...,t,0x<tpgt>").
	InitiatorPort string         `json:"initiator_port"`
	TargetPort    string         `json:"target_port"`
	Key           ReservationKey `json:"key"`
	// RelTgtPortID is the relative target port the nexus registered
	// through.
	RelTgtPortID uint16 `json:"rel_tgt_port_id"`
}

// ReservationKey is a persistent reservation key. It prints as 0x and 16
// hex digits (JSON too: a JSON number cannot hold every key exactly).
type ReservationKey uint64

// String returns the key as 0x and 16 hex digits.
func (k ReservationKey) String() string { return fmt.Sprintf("0x%016x", uint64(k)) }

// MarshalText makes a ReservationKey a JSON string.
func (k ReservationKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a key as MarshalText writes it.
func (k *ReservationKey) UnmarshalText(b []byte) error {
	hexDigits, ok := strings.CutPrefix(string(b), "0x")
	v, err := strconv.ParseUint(hexDigits, 16, 64)
	if !ok || err != nil {
		return fmt.Errorf("reservation key %q: want 0x and up to 16 hex digits", b)
	}
	*k = ReservationKey(v)
	return nil
}

// PRReservation is a persistent reservation: its type and, for the types
// that are not all-registrants types, its holder's I_T nexus.
type PRReservation struct {
	Type          PRType `json:"type"`
	InitiatorPort string `json:"initiator_port,omitempty"`
	TargetPort    string `json:"target_port,omitempty"`
}

// errPersistFailed fails a PERSISTENT RESERVE OUT whose new state could
// not be saved: ILLEGAL REQUEST, INSUFFICIENT REGISTRATION RESOURCES
// (55h/04h), the device server cannot keep what was asked.
var errPersistFailed = &SenseError{Key: IllegalRequest, ASC: 0x55, ASCQ: 0x04}

// SetPRStore gives the device the store that keeps its persistent
// reservations through power loss (nil: none, APTPL is refused). Call it
// before the device serves commands.
func (d *Device) SetPRStore(s PRStore) {
	r := &d.res
	r.mu.Lock()
	r.store = s
	r.mu.Unlock()
}

// MovePRStore hands the device's persistent reservations to store s: move,
// run under the reservation lock so that no save comes between, moves
// what the old store saved to where s keeps it. When move fails the device
// keeps its store.
func (d *Device) MovePRStore(s PRStore, move func() error) error {
	r := &d.res
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := move(); err != nil {
		return err
	}
	r.store = s
	return nil
}

// RestorePR makes st the device's persistent reservation state, as it
// was saved before a restart. A state that does not hold together (a
// reservation without its holder's registration, an invalid type) is
// refused: the device keeps none, and PRStatus says why, as it does for
// readErr, why no state could be read.
func (d *Device) RestorePR(st PRState, readErr error) error {
	r := &d.res
	r.mu.Lock()
	defer r.mu.Unlock()
	err := readErr
	if err == nil {
		err = r.restore(st)
	}
	r.storeErr = err
	return err
}

// CheckPRState reports why st cannot be a device's persistent
// reservation state (RestorePR would refuse it), or nil.
func CheckPRState(st PRState) error {
	_, _, err := prFromState(st)
	return err
}

// prFromState checks st and returns its registrations and the holder of
// its reservation.
func prFromState(st PRState) ([]registration, itNexus, error) {
	regs := make([]registration, 0, len(st.Registrations))
	for _, g := range st.Registrations {
		n := itNexus{g.InitiatorPort, g.TargetPort}
		if g.Key == 0 || g.InitiatorPort == "" || slices.ContainsFunc(regs, func(o registration) bool { return o.nexus == n }) {
			return nil, itNexus{}, fmt.Errorf("scsi: registration of %q: zero key, no name or registered twice", g.InitiatorPort)
		}
		regs = append(regs, registration{nexus: n, key: uint64(g.Key), rtpi: g.RelTgtPortID})
	}
	var holder itNexus
	if res := st.Reservation; res != nil {
		holder = itNexus{res.InitiatorPort, res.TargetPort}
		switch {
		case !res.Type.valid():
			return nil, itNexus{}, fmt.Errorf("scsi: reservation type %d", res.Type)
		case len(regs) == 0:
			return nil, itNexus{}, errors.New("scsi: a reservation without registrations")
		case !res.Type.allRegistrants() && !slices.ContainsFunc(regs, func(o registration) bool { return o.nexus == holder }):
			return nil, itNexus{}, fmt.Errorf("scsi: the reservation holder %q is not registered", res.InitiatorPort)
		case res.Type.allRegistrants():
			holder = itNexus{}
		}
	}
	return regs, holder, nil
}

// restore is RestorePR for a state that was read; r.mu must be held.
func (r *reservations) restore(st PRState) error {
	regs, holder, err := prFromState(st)
	if err != nil {
		return err
	}
	r.regs, r.generation, r.aptpl = regs, st.Generation, st.APTPL
	r.reserved, r.resType, r.resHolder = st.Reservation != nil, 0, holder
	if r.reserved {
		r.resType = st.Reservation.Type
	}
	r.setWord()
	return nil
}

// PRStatus is what status shows of a device's persistent reservations.
type PRStatus struct {
	PRState
	// Persistent says whether the device can keep its state through
	// power loss (it has a store: PTPL_C).
	Persistent bool `json:"persistent"`
	// Shared says whether the state is shared with other device servers
	// (a cluster), Revision the revision of the shared state held.
	Shared   bool  `json:"shared,omitempty"`
	Revision int64 `json:"revision,omitempty"`
	// Error is why the saved state could not be read at start (the
	// device started with none) or the last change could not be saved.
	Error string `json:"error,omitempty"`
}

// PRStatus returns the device's persistent reservation state.
func (d *Device) PRStatus() PRStatus {
	r := &d.res
	r.mu.Lock()
	defer r.mu.Unlock()
	st := PRStatus{PRState: r.state(), Persistent: r.store != nil || r.shared != nil, Shared: r.shared != nil, Revision: r.rev}
	if r.storeErr != nil {
		st.Error = r.storeErr.Error()
	}
	return st
}

// state returns the persistent reservation state; r.mu must be held.
func (r *reservations) state() PRState {
	st := PRState{APTPL: r.aptpl, Generation: r.generation, Registrations: make([]PRRegistration, 0, len(r.regs))}
	for _, g := range r.regs {
		st.Registrations = append(st.Registrations, PRRegistration{InitiatorPort: g.nexus.initiator,
			TargetPort: g.nexus.target, Key: ReservationKey(g.key), RelTgtPortID: g.rtpi})
	}
	if r.reserved {
		st.Reservation = &PRReservation{Type: r.resType}
		if !r.resType.allRegistrants() {
			st.Reservation.InitiatorPort, st.Reservation.TargetPort = r.resHolder.initiator, r.resHolder.target
		}
	}
	return st
}

// prCheckpoint is the reservation state before a change, to undo it
// when its outcome cannot be saved or committed. Unit attentions need no
// undoing: a change queues them only once it is made.
type prCheckpoint struct {
	generation uint32
	regs       []registration
	reserved   bool
	resType    PRType
	resHolder  itNexus
	aptpl      bool
	spc2       bool
	spc2Holder itNexus
}

// checkpoint records the state; r.mu must be held.
func (r *reservations) checkpoint() prCheckpoint {
	return prCheckpoint{generation: r.generation, regs: slices.Clone(r.regs), reserved: r.reserved,
		resType: r.resType, resHolder: r.resHolder, aptpl: r.aptpl, spc2: r.spc2, spc2Holder: r.spc2Holder}
}

// rollback returns to a checkpoint; r.mu must be held.
func (r *reservations) rollback(c prCheckpoint) {
	r.generation, r.regs, r.reserved, r.resType, r.resHolder, r.aptpl, r.spc2, r.spc2Holder =
		c.generation, c.regs, c.reserved, c.resType, c.resHolder, c.aptpl, c.spc2, c.spc2Holder
	r.posted = r.posted[:0]
	r.setWord()
}

// persist saves the state after a change when APTPL is in force, and
// removes what was saved when the change turned APTPL off (was: its
// value before). r.mu must be held.
func (r *reservations) persist(was bool) error {
	var err error
	switch {
	case r.aptpl:
		err = r.store.Save(r.state())
	case was:
		err = r.store.Remove()
	default:
		return nil
	}
	r.storeErr = err
	return err
}
