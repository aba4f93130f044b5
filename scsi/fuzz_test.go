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
