package scsi

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestReportLUNs(t *testing.T) {
	d := NewDevice(DeviceConfig{Name: "d"}, newMem(64*512))
	m := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: d}, 1: {Device: d}, 300: {Device: d}})
	cases := []struct {
		name string
		lun  LUN
		cdb  string
		want string // data-in hex or sense
	}{
		{"all", 0, "a0 00 00 000000 00000100 00 00",
			"00000018 00000000 0000000000000000 0001000000000000 412c000000000000"},
		{"select report 2, on an unmapped LUN", 5, "a0 00 02 000000 00000100 00 00",
			"00000018 00000000 0000000000000000 0001000000000000 412c000000000000"},
		{"well known only: none", 0, "a0 00 01 000000 00000100 00 00", "00000000 00000000"},
		{"allocation 16 truncates", 0, "a0 00 00 000000 00000010 00 00",
			"00000018 00000000 0000000000000000"},
		{"allocation 15 refused", 0, "a0 00 00 000000 0000000f 00 00", want(invalidField(6, -1))},
		{"select report 3 refused", 0, "a0 00 03 000000 00000100 00 00", want(invalidField(2, -1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Execute(&Command{LUNs: m, LUN: c.lun, LUNValid: true, CDB: hx(t, c.cdb)})
			if r.Status != Good {
				if got := senseOf(r); got != c.want {
					t.Fatalf("got %s, want %s", got, c.want)
				}
				return
			}
			if w := hx(t, c.want); !bytes.Equal(r.Data, w) {
				t.Fatalf("data-in\n got % x\nwant % x", r.Data, w)
			}
		})
	}
}

func TestReadCapacity(t *testing.T) {
	cases := []struct {
		name   string
		blocks int
		bs     uint32
		cdb    string
		want   string
	}{
		{"10: 1024 blocks of 512", 1024, 512, "25 00 00000000 0000 00 00", "000003ff 00000200"},
		{"10: 4096-byte blocks", 16, 4096, "25 00 00000000 0000 00 00", "0000000f 00001000"},
		{"10: LBA without PMI", 16, 512, "25 00 00000001 0000 00 00", want(invalidField(2, -1))},
		{"16: 1024 blocks", 1024, 512, "9e 10 0000000000000000 00000020 00 00",
			"00000000000003ff 00000200 00 00 0000 00000000000000000000000000000000"},
		{"16: allocation 12", 1024, 512, "9e 10 0000000000000000 0000000c 00 00", "00000000000003ff 00000200"},
		{"16: allocation 0", 1024, 512, "9e 10 0000000000000000 00000000 00 00", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.blocks, DeviceConfig{BlockSize: c.bs})
			r := f.exec(0, hx(t, c.cdb), nil)
			if r.Status != Good {
				if got := senseOf(r); got != c.want {
					t.Fatalf("got %s, want %s", got, c.want)
				}
				return
			}
			w := hx(t, c.want)
			if len(w) > len(r.Data) || !bytes.Equal(r.Data[:len(w)], w) || (len(w) < 32 && len(r.Data) != len(w)) {
				t.Fatalf("data-in\n got % x\nwant % x", r.Data, w)
			}
		})
	}
}

func TestReadCapacity10Overflow(t *testing.T) {
	d := NewDevice(DeviceConfig{Name: "big"}, newMem(512))
	d.size.Store(1 << 42) // 2^33 blocks of 512: beyond 32 bits
	m := NewLUNMap(map[LUN]*LogicalUnit{0: {Device: d}})
	r := Execute(&Command{LUNs: m, LUNValid: true, CDB: hx(t, "25 00 00000000 0000 00 00")})
	if be32(r.Data[0:4]) != 0xffffffff {
		t.Fatalf("last LBA %x, want ffffffff", r.Data[0:4])
	}
	r = Execute(&Command{LUNs: m, LUNValid: true, CDB: hx(t, "9e 10 0000000000000000 00000020 00 00")})
	if be64(r.Data[0:8]) != 1<<33-1 {
		t.Fatalf("RC16 last LBA %x", r.Data[0:8])
	}
}

func TestCommandChecks(t *testing.T) {
	cases := []struct {
		name string
		cfg  DeviceConfig
		luRO bool
		cdb  string
		out  int
		want string
	}{
		{"unknown opcode", DeviceConfig{}, false, "02 00 00 00 00 00", 0, want(ErrInvalidOpcode)},
		{"unknown service action", DeviceConfig{}, false, "9e 1f 0000000000000000 00000020 00 00", 0, want(invalidField(1, 4))},
		{"empty CDB", DeviceConfig{}, false, "", 0, want(ErrInvalidOpcode)},
		{"NACA set: ACA not supported", DeviceConfig{}, false, "28 00 00000000 00 0001 04", 0, want(invalidField(9, 2))},
		{"short READ(16)", DeviceConfig{}, false, "88 00 00", 0, want(ErrInvalidFieldInCDB)},
		{"disk command on CD-ROM", DeviceConfig{Type: TypeCDROM}, false, "2a 00 00000000 00 0001 00", 2048, want(ErrInvalidOpcode)},
		{"write to read-only device", DeviceConfig{ReadOnly: true}, false, "2a 00 00000000 00 0001 00", 512, want(ErrWriteProtected)},
		{"write to read-only LUN", DeviceConfig{}, true, "8a 00 0000000000000000 00000001 00 00", 512, want(ErrWriteProtected)},
		{"write and verify to read-only LUN", DeviceConfig{}, true, "2e 02 00000000 00 0001 00", 512, want(ErrWriteProtected)},
		{"read from read-only LUN", DeviceConfig{}, true, "28 00 00000000 00 0001 00", 0, "GOOD"},
		{"READ DEFECT DATA(10)", DeviceConfig{}, false, "37 00 18 00000000 0020 00", 0, "GOOD"},
		{"READ DEFECT DATA(12)", DeviceConfig{}, false, "b7 18 00000000 00000020 00 00", 0, "GOOD"},
		{"START STOP UNIT stop, fixed disk", DeviceConfig{}, false, "1b 00 00 00 00 00", 0, "GOOD"},
		{"START STOP UNIT eject, fixed disk", DeviceConfig{}, false, "1b 00 00 00 02 00", 0, "GOOD"},
		{"PREVENT ALLOW 1", DeviceConfig{}, false, "1e 00 00 00 01 00", 0, "GOOD"},
		{"PREVENT ALLOW 2 obsolete", DeviceConfig{}, false, "1e 00 00 00 02 00", 0, want(invalidField(4, 1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 64, c.cfg)
			f.lu.ReadOnly = c.luRO
			r := f.exec(0, hx(t, c.cdb), make([]byte, c.out))
			if got := senseOf(r); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestRemovableMedium(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{Removable: true})
	other := NewNexus("iqn.y,i,0x2", "iqn.t", 1, 1)
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaPowerOnReset)}})
	const (
		prevent = "1e 00 00 00 01 00"
		allow   = "1e 00 00 00 00 00"
		eject   = "1b 00 00 00 02 00"
		load    = "1b 00 00 00 03 00"
		pwrcnd  = "1b 01 00 00 12 00" // POWER CONDITION 1 with LOEJ: LOEJ ignored
		read    = "28 00 00000000 00 0001 00"
	)
	r := f.exec(0, hx(t, uaInquiry), nil)
	if r.Data[1]&0x80 == 0 {
		t.Fatalf("RMB not set")
	}
	runSteps(t, f, f.nex, []step{
		{prevent, 0, "GOOD"},
		{eject, 0, want(ErrMediumRemovalPrevented)},
		{uaTUR, 0, "GOOD"},
	})
	runSteps(t, f, other, []step{{eject, 0, want(ErrMediumRemovalPrevented)}})
	runSteps(t, f, f.nex, []step{
		{allow, 0, "GOOD"},
		{eject, 0, "GOOD"},
		{uaTUR, 0, want(ErrMediumNotPresent)},
		{read, 0, want(ErrMediumNotPresent)},
		{"1a 08 08 00 ff 00", 0, "GOOD"}, // MODE SENSE works without medium
		{prevent, 0, "GOOD"},
		{load, 0, want(ErrMediumRemovalPrevented)},
		{allow, 0, "GOOD"},
		{load, 0, "GOOD"},
		{uaTUR, 0, "GOOD"},
		{pwrcnd, 0, "GOOD"},
		{uaTUR, 0, "GOOD"},
	})
	// REQUEST SENSE reports the missing medium.
	f.exec(0, hx(t, eject), nil)
	r = f.exec(0, hx(t, uaRequestSense), nil)
	if r.Status != Good || r.Data[2] != byte(NotReady) || r.Data[12] != 0x3a {
		t.Fatalf("REQUEST SENSE without medium: % x", r.Data)
	}
	f.exec(0, hx(t, load), nil)

	// The medium f.nex loaded may have changed for the other nexus.
	// Preventions end with a logical unit reset and with the nexus.
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaMediumChanged)}, {uaTUR, 0, "GOOD"}, {prevent, 0, "GOOD"}})
	LogicalUnitReset(f.nex, f.lu)
	runSteps(t, f, f.nex, []step{{uaTUR, 0, want(uaLUReset)}, {eject, 0, "GOOD"}, {load, 0, "GOOD"}})
	// The other nexus hears of the reset, then of the medium f.nex
	// loaded (f.nex, which loaded it, is not told: its eject below meets
	// the prevention, not a unit attention).
	runSteps(t, f, other, []step{{uaTUR, 0, want(uaLUReset)}, {uaTUR, 0, want(uaMediumChanged)}, {prevent, 0, "GOOD"}})
	runSteps(t, f, f.nex, []step{{eject, 0, want(ErrMediumRemovalPrevented)}})
	other.Close()
	runSteps(t, f, f.nex, []step{{eject, 0, "GOOD"}})
}

func TestReportSupportedOpcodes(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	// All commands, no timeouts.
	r := f.exec(0, hx(t, "a3 0c 00 00 0000 00010000 00 00"), nil)
	if r.Status != Good {
		t.Fatalf("RSOC all: %s", senseOf(r))
	}
	n := int(binary.BigEndian.Uint32(r.Data[0:4]))
	if n != len(r.Data)-4 || n%8 != 0 {
		t.Fatalf("command data length %d of %d bytes", n, len(r.Data))
	}
	type key struct {
		op Opcode
		sa uint16
	}
	listed := map[key]bool{}
	for d := r.Data[4:]; len(d) >= 8; d = d[8:] {
		servactv := d[5]&0x01 != 0
		sa := binary.BigEndian.Uint16(d[2:4])
		if !servactv && sa != 0 {
			t.Errorf("opcode %02x: service action %x without SERVACTV", d[0], sa)
		}
		listed[key{Opcode(d[0]), sa}] = true
		// Each one answers the one-command form that fits it.
		opt := byte(rsocOpcode)
		if servactv {
			opt = rsocOpcodeSA
		}
		one := f.exec(0, []byte{0xa3, 0x0c, opt, d[0], d[2], d[3], 0, 0, 1, 0, 0, 0}, nil)
		if one.Status != Good || one.Data[1]&0x07 != supportYes || one.Data[4] != d[0] ||
			int(binary.BigEndian.Uint16(one.Data[2:4])) != len(one.Data)-4 {
			t.Errorf("one command %02x/%x: %s % x", d[0], sa, senseOf(one), one.Data)
		}
		// The other form is refused.
		other := byte(rsocOpcodeSA)
		if servactv {
			other = rsocOpcode
		}
		if bad := f.exec(0, []byte{0xa3, 0x0c, other, d[0], d[2], d[3], 0, 0, 1, 0, 0, 0}, nil); senseOf(bad) != want(ErrInvalidFieldInCDB) {
			t.Errorf("wrong form for %02x/%x: %s", d[0], sa, senseOf(bad))
		}
	}
	for _, k := range []key{{Read10, 0}, {Write16, 0}, {ServiceActionIn16, uint16(SAReadCapacity16)}, {MaintenanceIn, uint16(SAReportSupportedOpcodes)}} {
		if !listed[k] {
			t.Errorf("%s/%x not listed", k.op, k.sa)
		}
	}
	// RCTD: every descriptor carries a 12-byte timeouts descriptor.
	r = f.exec(0, hx(t, "a3 0c 80 00 0000 00010000 00 00"), nil)
	for d := r.Data[4:]; len(d) > 0; d = d[20:] {
		if d[5]&0x02 == 0 || binary.BigEndian.Uint16(d[8:10]) != 0x0a {
			t.Fatalf("RCTD descriptor % x", d[:20])
		}
	}
	// Not supported opcode: SUPPORT 001b.
	r = f.exec(0, hx(t, "a3 0c 01 02 0000 00000100 00 00"), nil)
	if r.Status != Good || r.Data[1]&0x07 != supportNo {
		t.Fatalf("unsupported opcode: %s % x", senseOf(r), r.Data)
	}
	// READ(10) usage data announces DPO and FUA (libiscsi Read10DpoFua).
	r = f.exec(0, hx(t, "a3 0c 01 28 0000 00000100 00 00"), nil)
	if r.Data[4] != 0x28 || r.Data[5]&0x18 != 0x18 {
		t.Fatalf("READ(10) usage % x", r.Data)
	}
	if bad := f.exec(0, hx(t, "a3 0c 05 28 0000 00000100 00 00"), nil); senseOf(bad) != want(ErrInvalidFieldInCDB) {
		t.Fatalf("reporting options 5: %s", senseOf(bad))
	}
}

func TestDispatchTable(t *testing.T) {
	for _, d := range commandList {
		if d.usage[0] != byte(d.op) {
			t.Errorf("%s: usage[0] %02x", d, d.usage[0])
		}
		if d.hasSA && d.usage[1]&0x1f != d.sa {
			t.Errorf("%s: usage[1] %02x does not carry service action %02x", d, d.usage[1], d.sa)
		}
		cdb := make([]byte, d.cdbLen)
		cdb[0] = byte(d.op)
		if d.hasSA {
			cdb[1] = d.sa
		}
		if got := lookupCommand(cdb); got != d {
			t.Errorf("%s: lookup gives %v", d, got)
		}
	}
	for i := 1; i < len(commandList); i++ {
		if compareCommands(commandList[i-1], commandList[i]) >= 0 {
			t.Errorf("command list not sorted at %s", commandList[i])
		}
	}
	// A duplicate entry is refused at start-up.
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate command accepted")
		}
	}()
	var idx [256]opEntry
	buildIndex(&idx, coreCommands, coreCommands[:1])
}

// TestHandlerPanicReachesTransport: Execute does not hide a panic; the
// transport logs it with the CDB and answers INTERNAL TARGET FAILURE
// (iscsi TestSessionPanicIsHardwareError).
func TestHandlerPanicReachesTransport(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	f.dev.SetBackend(panicBackend{f.mem})
	defer func() {
		if v := recover(); v != "boom" {
			t.Fatalf("recovered %v, want the backend's panic", v)
		}
	}()
	f.exec(0, hx(t, "28 00 00000000 00 0001 00"), nil)
	t.Fatal("Execute returned after its handler panicked")
}

type panicBackend struct{ *memBackend }

func (panicBackend) ReadAt([]byte, int64) (int, error) { panic("boom") }

func TestDataInBufferReused(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	buf := make([]byte, 0, 4096)
	r := Execute(&Command{Nexus: f.nex, LUNs: f.lus, LUNValid: true,
		CDB: hx(t, "28 00 00000000 00 0004 00"), ExpectedIn: 2048, DataIn: buf})
	if r.Status != Good || len(r.Data) != 2048 || &r.Data[0] != &buf[:1][0] {
		t.Fatalf("READ did not use the transport's buffer")
	}
	cmd := &Command{Nexus: f.nex, LUNs: f.lus, LUNValid: true,
		CDB: []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 4, 0}, ExpectedIn: 2048, DataIn: buf}
	allocs := testing.AllocsPerRun(100, func() { Execute(cmd) })
	if allocs > 0 {
		t.Fatalf("READ(10) allocates %.0f times per command", allocs)
	}
}
