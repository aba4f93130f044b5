package scsi

import "testing"

func benchmarkRW(b *testing.B, cdb []byte, out []byte) {
	f := newFixture(b, 4096, DeviceConfig{})
	cmd := &Command{Nexus: f.nex, LUNs: f.lus, LUNValid: true, CDB: cdb, DataOut: out,
		ExpectedIn: 1 << 16, DataIn: make([]byte, 0, 1<<16)}
	b.SetBytes(1 << 16)
	b.ReportAllocs()
	for b.Loop() {
		if r := Execute(cmd); r.Status != Good {
			b.Fatal(senseOf(r))
		}
	}
}

// BenchmarkRead10 reads 64 KiB per command into the transport's buffer.
func BenchmarkRead10(b *testing.B) {
	benchmarkRW(b, []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 128, 0}, nil)
}

// BenchmarkWrite10 writes 64 KiB per command.
func BenchmarkWrite10(b *testing.B) {
	benchmarkRW(b, []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 128, 0}, make([]byte, 1<<16))
}

func TestCommandName(t *testing.T) {
	for _, c := range []struct {
		cdb  string
		want string
	}{
		{"9e 10 00", "READ_CAPACITY_16"},
		{"8a 00", "WRITE_16"},
		{"c1", "OPCODE_0xc1"},
		{"", "EMPTY_CDB"},
	} {
		if got := CommandName(hx(t, c.cdb)); got != c.want {
			t.Errorf("CommandName(%s) = %s, want %s", c.cdb, got, c.want)
		}
	}
	if SenseKey(5).String() != "ILLEGAL_REQUEST" || Status(0x18).String() != "RESERVATION_CONFLICT" ||
		Opcode(0x28).String() != "READ_10" || Status(0x77).String() != "STATUS_0x77" {
		t.Errorf("String() names")
	}
}
