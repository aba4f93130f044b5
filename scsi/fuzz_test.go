package scsi

import (
	"testing"
)

// FuzzExecute runs arbitrary CDBs and data-out against a small thin
// device seen through two LUNs (one read-only): a disk, or (sel bit 5) a
// CD-ROM with a disc or (sel bit 6) without one. Execute must never panic
// (it recovers nothing, so a panic fails the target), must answer a valid
// status, and CHECK CONDITION must carry sense data.
func FuzzExecute(f *testing.F) {
	f.Add([]byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, []byte{}, uint8(0))
	f.Add([]byte{0x2a, 0x08, 0, 0, 0, 1, 0, 0, 1, 0}, make([]byte, 512), uint8(0))
	f.Add([]byte{0x15, 0x10, 0, 0, 0x18, 0}, []byte{0, 0, 0, 0, 8, 0x12, 4}, uint8(1))
	f.Add([]byte{0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}, []byte{}, uint8(0))
	f.Add([]byte{0xa3, 0x2a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}, []byte{}, uint8(128))
	f.Add([]byte{0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0}, []byte{0, 0, 0, 0, 0x02, 0, 0, 1, 0x00, 0, 0, 2}, uint8(128))
	f.Add([]byte{0x43, 0x02, 0x02, 0, 0, 0, 0, 0, 0xff, 0}, []byte{}, uint8(32))
	f.Add([]byte{0x46, 0x00, 0, 0, 0, 0, 0, 0, 0xff, 0}, []byte{}, uint8(96))
	f.Add([]byte{0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0}, []byte{}, uint8(32))
	f.Add([]byte{0x51, 0x00, 0, 0, 0, 0, 0, 0, 0x22, 0}, []byte{}, uint8(32))
	f.Add([]byte{0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}, []byte{}, uint8(96))
	f.Add([]byte{0xbe, 0x08, 0, 0, 0, 1, 0, 0, 2, 0x10, 0, 0}, []byte{}, uint8(32))
	f.Add([]byte{0x5a, 0x08, 0x2a, 0, 0, 0, 0, 0, 0xff, 0}, []byte{}, uint8(32))
	f.Fuzz(func(t *testing.T, cdb, out []byte, sel uint8) {
		mem := unmapMem{newMem(32 * 512)}
		cfg := DeviceConfig{Name: "fuzz", Removable: sel&4 != 0}
		if sel&32 != 0 {
			cfg.Type, cfg.BlockSize = TypeCDROM, 2048
		}
		dev := NewDevice(cfg, mem)
		if sel&64 != 0 {
			dev.RemoveMedium()
		}
		if sel&128 != 0 {
			// In an explicit device group, through a port whose state
			// bits 6..5 choose.
			state := []ALUAState{ActiveOptimized, Standby, Unavailable, Transitioning}[sel>>5&3]
			a, b := NewTargetPortGroup("a", 1, state, true), NewTargetPortGroup("b", 2, Standby, false)
			dev.SetDeviceGroup(NewDeviceGroup("dg", true, []PortGroupMember{
				{Group: a, Targets: []string{"iqn.t"}, Ports: []uint16{1}},
				{Group: b, Targets: []string{"iqn.u"}, Ports: []uint16{2, 3}},
			}, nil))
		}
		m := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: dev}, 1: {Device: dev, ReadOnly: true}})
		n := NewNexus("iqn.fuzz,i,0x1", "iqn.t", 1, 1)
		cmd := &Command{Nexus: n, LUNs: m, LUN: LUN(sel & 3), LUNValid: sel&8 == 0,
			CDB: cdb, DataOut: out, ExpectedIn: 1 << 16}
		if sel&16 != 0 {
			cmd.DataIn = make([]byte, 0, 4096)
		}
		for i := 0; i < 2; i++ { // the first run may meet the power-on UA
			r := Execute(cmd)
			switch r.Status {
			case Good, ConditionMet, ReservationConflict:
				if len(r.Sense) != 0 {
					t.Fatalf("status %s with sense", r.Status)
				}
			case CheckCondition:
				if len(r.Sense) != FixedSenseLen || r.Sense[0]&0x7f != 0x70 {
					t.Fatalf("bad sense % x", r.Sense)
				}
				if SenseKey(r.Sense[2]) == HardwareError && r.Sense[12] == 0x44 {
					t.Fatalf("handler panicked on CDB % x", cdb)
				}
			default:
				t.Fatalf("status %s", r.Status)
			}
		}
		n.Close()
	})
}

// FuzzPassthrough runs arbitrary CDBs and data-out against a pass-through
// device (LUN 0, and read-only at LUN 1) whose device answers every
// command with all the data-in it was given room for. The dispatcher's
// decoding of transfer lengths must never panic, never hand the device
// more than its largest transfer nor more data-out than arrived.
func FuzzPassthrough(f *testing.F) {
	f.Add([]byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, []byte{}, uint8(0))
	f.Add([]byte{0x2a, 0, 0, 0, 0, 1, 0, 0, 2, 0}, make([]byte, 700), uint8(0))
	f.Add([]byte{0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0}, make([]byte, 1500), uint8(0))
	f.Add([]byte{0x12, 0x01, 0x83, 0, 0xff, 0}, []byte{}, uint8(1))
	f.Add([]byte{0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0, 0x0d}, []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, cdb, out []byte, sel uint8) {
		fp := newFakePass(0)
		fp.maxXfer = 1 << 16
		fp.answer = func(c *PassCommand) error {
			if len(c.DataIn) > fp.maxXfer || len(c.DataOut) > len(out) {
				t.Fatalf("passed %d bytes in, %d out (%d arrived) for CDB % x", len(c.DataIn), len(c.DataOut), len(out), cdb)
			}
			c.InLen = len(c.DataIn)
			if sel&32 != 0 {
				c.Status, c.SenseLen = CheckCondition, copy(c.Sense, []byte{0x72, 6, 0x2a, 0x09, 0, 0, 0, 0})
			}
			return nil
		}
		dev := NewDevice(DeviceConfig{Name: "fuzz", Passthrough: true}, nil)
		dev.SetPassthrough(fp)
		m := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: dev}, 1: {Device: dev, ReadOnly: true}})
		n := NewNexus("iqn.fuzz,i,0x1", "iqn.t", 1, 1)
		cmd := &Command{Nexus: n, LUNs: m, LUN: LUN(sel & 1), LUNValid: true,
			CDB: cdb, DataOut: out, ExpectedIn: uint32(sel&16) << 8}
		for i := 0; i < 2; i++ {
			r := Execute(cmd)
			if r.Status == CheckCondition && len(r.Sense) == FixedSenseLen &&
				SenseKey(r.Sense[2]) == HardwareError && r.Sense[12] == 0x44 {
				t.Fatalf("dispatcher panicked on CDB % x", cdb)
			}
		}
		n.Close()
	})
}
