package scsi

import (
	"encoding/binary"
	"sync"
	"testing"
)

// TestConcurrentExecute runs reads, writes, resizes, cache changes and
// resets from several nexuses at once; run with -race.
func TestConcurrentExecute(t *testing.T) {
	f := newFixture(t, 256, DeviceConfig{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		n := NewNexus("iqn.c,i,0x"+string(rune('1'+g)), "iqn.t", 1, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer n.Close()
			buf := make([]byte, 512)
			for i := 0; i < 200; i++ {
				lba := uint32(i % 200)
				cdb := []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}
				binary.BigEndian.PutUint32(cdb[2:6], lba)
				Execute(&Command{Nexus: n, LUNs: f.lus, LUNValid: true, CDB: cdb, DataOut: buf})
				cdb[0] = 0x28
				Execute(&Command{Nexus: n, LUNs: f.lus, LUNValid: true, CDB: cdb})
				Execute(&Command{Nexus: n, LUNs: f.lus, LUNValid: true, CDB: []byte{0x1e, 0, 0, 0, byte(i & 1), 0}})
			}
		}()
	}
	for i := 0; i < 50; i++ {
		f.dev.SetCache(false, i%2 == 0)
		f.dev.RefreshSize()
		LogicalUnitReset(f.nex, f.lu)
		f.nex.ReportedLUNsChanged()
	}
	wg.Wait()
}
