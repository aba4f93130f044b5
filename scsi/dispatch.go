package scsi

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// commandDesc describes one supported command: how the dispatcher checks
// it before its handler runs, and what REPORT SUPPORTED OPERATION CODES
// says about it. The dispatch table is coreCommands + mmcCommands +
// reservationCommands + provisioningCommands; a new command is one new
// entry there.
type commandDesc struct {
	op Opcode
	// sa is the service action (CDB byte 1, bits 4..0) when hasSA; every
	// command of an opcode that has service actions must set hasSA.
	sa    uint8
	hasSA bool
	// name is the command's name in logs when it differs from op.String()
	// (service action commands: "READ_CAPACITY_16").
	name string
	// cdbLen is the CDB length; shorter CDBs are refused.
	cdbLen int
	// usage is the CDB usage data of REPORT SUPPORTED OPERATION CODES
	// (SPC-4 §6.35.3): cdbLen bytes, usage[0] the opcode, then for each
	// byte the bits the device server looks at. usage[1] carries the
	// service action in its low bits for service action commands.
	usage []byte
	// types are the device types that support the command.
	types typeMask
	flags cmdFlags
	// timeout is the recommended command timeout in seconds reported with
	// RCTD (0: defaultTimeout).
	timeout uint32
	handler handler
}

// cmdFlags say how the dispatcher treats a command before its handler.
type cmdFlags uint16

const (
	// flagDataOut: the command transfers data-out (parameter list or
	// blocks).
	flagDataOut cmdFlags = 1 << iota
	// flagWrite: the command modifies the medium; it fails with DATA
	// PROTECT, WRITE PROTECTED on a read-only device or LUN before the
	// handler runs, and backend errors map to WRITE ERROR.
	flagWrite
	// flagNoLU: the handler runs even when the LUN addresses no logical
	// unit (t.lu and t.dev are then nil): INQUIRY, REPORT LUNS, REQUEST
	// SENSE.
	flagNoLU
	// flagNoUA: a pending unit attention neither fails nor is cleared by
	// the command (INQUIRY, REPORT LUNS; REQUEST SENSE reports it itself).
	flagNoUA
	// flagOffline: the command runs on an offline device (t.be is nil).
	flagOffline
	// flagNoMedium: the command runs while a removable device has no
	// medium or it is ejected (others get NOT READY, MEDIUM NOT PRESENT).
	flagNoMedium
	// flagALUA: only a device in a device group offers the command
	// (INVALID COMMAND OPERATION CODE otherwise); flagExplicitALUA: only
	// one whose device group takes SET TARGET PORT GROUPS.
	flagALUA
	flagExplicitALUA
	// flagTry: TryExecute may run the command: it waits for nothing but
	// its backend's I/O, which it tries without waiting (vdisk.NoWaiter).
	flagTry
)

// typeMask is a set of device types.
type typeMask uint32

const (
	typesDisk  = typeMask(1) << TypeDisk
	typesCDROM = typeMask(1) << TypeCDROM
	typesAll   = typesDisk | typesCDROM
)

// has reports whether dt is in the set.
func (m typeMask) has(dt DeviceType) bool { return dt < 32 && m&(1<<dt) != 0 }

// controlNACA is the NACA bit of the CONTROL byte, the last of a CDB.
const controlNACA = 0x04

// defaultTimeout is the recommended command timeout, in seconds, reported
// for commands whose descriptor sets none.
const defaultTimeout = 30

// String names the command for logs.
func (d *commandDesc) String() string {
	if d.name != "" {
		return d.name
	}
	return d.op.String()
}

// opEntry is one slot of the dispatch index: the command for an opcode
// without service actions, or the commands by service action.
type opEntry struct {
	desc *commandDesc
	bySA *[32]*commandDesc
}

// commandIndex is the dispatch index, built once at init from
// allCommands. commandList is the same commands sorted by opcode and
// service action, for REPORT SUPPORTED OPERATION CODES.
var (
	commandIndex [256]opEntry
	commandList  []*commandDesc
)

func init() {
	commandList = buildIndex(&commandIndex, coreCommands, mmcCommands, reservationCommands, provisioningCommands, aluaCommands)
}

// buildIndex fills idx from the tables and returns every command sorted by
// opcode and service action. A malformed or duplicate entry is a
// programming error and panics at start-up.
func buildIndex(idx *[256]opEntry, tables ...[]commandDesc) []*commandDesc {
	var list []*commandDesc
	for _, tab := range tables {
		for i := range tab {
			d := &tab[i]
			if d.handler == nil || d.cdbLen < 6 || len(d.usage) != d.cdbLen || d.sa > 31 {
				panic(fmt.Sprintf("scsi: malformed command descriptor %s", d))
			}
			e := &idx[d.op]
			switch {
			case d.hasSA:
				if e.desc != nil {
					panic(fmt.Sprintf("scsi: %s mixes service actions with none", d))
				}
				if e.bySA == nil {
					e.bySA = new([32]*commandDesc)
				}
				if e.bySA[d.sa] != nil {
					panic(fmt.Sprintf("scsi: duplicate command %s", d))
				}
				e.bySA[d.sa] = d
			default:
				if e.desc != nil || e.bySA != nil {
					panic(fmt.Sprintf("scsi: duplicate command %s", d))
				}
				e.desc = d
			}
			list = append(list, d)
		}
	}
	slices.SortFunc(list, compareCommands)
	return list
}

// compareCommands orders commands by opcode, then service action.
func compareCommands(a, b *commandDesc) int {
	if a.op != b.op {
		return int(a.op) - int(b.op)
	}
	return int(a.sa) - int(b.sa)
}

// lookupCommand returns the descriptor for cdb, or nil when the opcode (or
// its service action) is not supported. cdb must not be empty.
func lookupCommand(cdb []byte) *commandDesc {
	e := &commandIndex[cdb[0]]
	if e.bySA == nil {
		return e.desc
	}
	if len(cdb) < 2 {
		return nil
	}
	return e.bySA[cdb[1]&0x1f]
}

// lookupOpcode returns the descriptor for an opcode and, for opcodes with
// service actions, service action sa; nil when not supported.
func lookupOpcode(op Opcode, sa uint8) *commandDesc {
	e := &commandIndex[op]
	if e.bySA == nil {
		return e.desc
	}
	return e.bySA[sa&0x1f]
}

// Execute runs one command to completion and returns its status, sense and
// data-in. It is safe to call concurrently. A panic in a handler is a bug
// and is not recovered here: the transport logs it with its stack and the
// CDB, answers INTERNAL TARGET FAILURE and counts it, and the fuzz targets
// fail on it.
//
// The checks run in the order SAM-5 and SPC-4 give them: logical unit
// addressed, unit attention, opcode supported, device ready, reservation,
// write protection, then the command's own checks in its handler.
func Execute(cmd *Command) Result {
	if len(cmd.CDB) == 0 {
		return checkCondition(ErrInvalidOpcode)
	}
	t := taskPool.Get().(*task)
	*t = task{cmd: cmd, desc: lookupCommand(cmd.CDB)}
	defer func() {
		// The command is done with the backend, panic or not (the
		// panic goes on to the transport).
		t.st.release()
		*t = task{}
		taskPool.Put(t)
	}()
	return t.execute()
}

// TryExecute runs cmd like Execute when it can complete without waiting,
// so that a transport may run it on a goroutine that must not block (its
// connection's reader) and hand only the others to goroutines that may.
// It takes the commands that wait for nothing but their I/O (READ,
// WRITE, TEST UNIT READY), and tries that I/O without waiting
// (vdisk.NoWaiter: a page cache or memory hit). It returns false, having
// done nothing that matters (no unit attention taken, nothing written),
// when the command would wait: for a device, for a cache flush (FUA,
// write-through), or for the reservation lock. The caller then runs
// Execute. A write the backend took in part is no longer given up: it is
// finished with a write that may wait, and completes (tryIO).
func TryExecute(cmd *Command) (Result, bool) {
	if len(cmd.CDB) == 0 {
		return Result{}, false
	}
	t := taskPool.Get().(*task)
	*t = task{cmd: cmd, desc: lookupCommand(cmd.CDB), try: true}
	defer func() {
		t.st.release()
		*t = task{}
		taskPool.Put(t)
	}()
	if t.desc == nil || t.desc.flags&flagTry == 0 || !cmd.LUNValid || cmd.LUNs == nil {
		return Result{}, false
	}
	r := t.execute()
	return r, !t.blocked
}

// taskPool recycles tasks: a task escapes to the heap through the
// handler call, and the data path should not allocate per command.
var taskPool = sync.Pool{New: func() any { return new(task) }}

// execute is Execute for a task holding the command and its descriptor.
func (t *task) execute() Result {
	cmd := t.cmd
	if cmd.Nexus != nil {
		cmd.Nexus.sync(cmd.LUNs)
	}
	if cmd.LUNValid && cmd.LUNs != nil {
		t.lu = cmd.LUNs.Lookup(cmd.LUN)
	}
	if t.lu == nil || t.lu.Device == nil {
		t.lu = nil
		if t.desc == nil || t.desc.flags&flagNoLU == 0 {
			return checkCondition(ErrLUNotSupported)
		}
		if e := t.checkCDB(); e != nil {
			return checkCondition(e)
		}
		return t.run()
	}
	t.dev = t.lu.Device
	if t.try && t.dev.cfg.Passthrough {
		t.blocked = true
		return Result{}
	}
	if (t.desc == nil || t.desc.flags&flagNoUA == 0) && cmd.Nexus != nil {
		ua, ok := cmd.Nexus.tryTakeUA(cmd.LUN, t.dev, t.try)
		if !ok {
			t.blocked = true
			return Result{}
		}
		if ua != nil {
			return checkCondition(ua)
		}
	}
	if t.dev.cfg.Passthrough {
		return t.passThrough()
	}
	if t.desc == nil || !t.desc.types.has(t.dev.cfg.Type) {
		if t.desc == nil && commandIndex[cmd.CDB[0]].bySA != nil {
			// A supported opcode with a service action it lacks
			// is an invalid field, not an invalid opcode (SPC-4).
			return checkCondition(invalidField(1, 4))
		}
		return checkCondition(ErrInvalidOpcode)
	}
	if !t.dev.offersALUA(t.desc.flags) {
		return checkCondition(ErrInvalidOpcode)
	}
	if e := t.checkCDB(); e != nil {
		return checkCondition(e)
	}
	if e := t.aluaCheck(); e != nil {
		return checkCondition(e)
	}
	t.st = t.dev.acquire()
	t.be = t.st.backend
	t.size = t.dev.size.Load()
	if e := t.notReady(); e != nil {
		return checkCondition(e)
	}
	if e := t.sanitizeCheck(); e != nil {
		return checkCondition(e)
	}
	if w := t.dev.res.word.Load(); w != 0 {
		if r, stop := t.reservationCheck(w); stop {
			return r
		}
	}
	if t.blocked {
		return Result{}
	}
	if t.desc.flags&flagWrite != 0 && t.readOnly() {
		return checkCondition(ErrWriteProtected)
	}
	if t.desc.flags&flagWrite != 0 && t.dev.softWriteProtected() {
		return checkCondition(ErrSoftwareWriteProtected)
	}
	return t.run()
}

// checkCDB refuses a CDB shorter than the command's, and one with NACA
// set in the CONTROL byte: scstd does not support ACA (SAM-5 §5.9.1).
func (t *task) checkCDB() *SenseError {
	if len(t.cmd.CDB) < t.desc.cdbLen {
		return ErrInvalidFieldInCDB
	}
	if ctl := t.desc.cdbLen - 1; t.cmd.CDB[ctl]&controlNACA != 0 {
		return invalidField(ctl, 2)
	}
	return nil
}

// run calls the handler and turns its outcome into a Result: GOOD with
// the data-in, a bare status for a *statusError (RESERVATION CONFLICT,
// CONDITION MET), else CHECK CONDITION with the error mapped to sense.
func (t *task) run() Result {
	data, err := t.desc.handler(t)
	if t.blocked {
		return Result{}
	}
	var r Result
	if err == nil {
		r = Result{Status: Good, Data: data}
	} else {
		r = t.failed(err)
	}
	r.DataOutLen = uint32(min(t.outLen, 0xffffffff))
	return r
}

// failed turns a handler's error into a Result.
func (t *task) failed(err error) Result {
	var st *statusError
	if errors.As(err, &st) {
		return Result{Status: st.status}
	}
	return checkCondition(senseFromError(err, t.desc.flags&flagWrite != 0))
}

// checkCondition returns CHECK CONDITION with e as fixed-format sense.
func checkCondition(e *SenseError) Result {
	return Result{Status: CheckCondition, Sense: e.AppendFixed(make([]byte, 0, FixedSenseLen))}
}

// CommandName names the command of a CDB for logs: the service action's
// command for opcodes that have them ("READ_CAPACITY_16"), else the
// opcode's name ("WRITE_16", "OPCODE_0xc1").
func CommandName(cdb []byte) string {
	if len(cdb) == 0 {
		return "EMPTY_CDB"
	}
	if d := lookupCommand(cdb); d != nil {
		return d.String()
	}
	return Opcode(cdb[0]).String()
}
