package scsi

import (
	"reflect"
	"testing"
)

func TestLUNEncodeDecode(t *testing.T) {
	cases := []struct {
		lun  LUN
		wire string // SAM-5 §4.7 eight-byte LUN
	}{
		{0, "0000 0000 0000 0000"},      // peripheral device addressing
		{1, "0001 0000 0000 0000"},      // peripheral device addressing
		{255, "00ff 0000 0000 0000"},    // largest peripheral LUN
		{256, "4100 0000 0000 0000"},    // flat space: 40h | 01h, 00h
		{16383, "7fff 0000 0000 0000"},  // largest flat space LUN
		{0x1234, "5234 0000 0000 0000"}, // flat space
	}
	for _, c := range cases {
		var want [8]byte
		copy(want[:], hx(t, c.wire))
		if got := c.lun.Encode(); got != want {
			t.Errorf("Encode(%d) = % x, want % x", c.lun, got, want)
		}
		got, ok := DecodeLUN(want)
		if !ok || got != c.lun {
			t.Errorf("DecodeLUN(% x) = %d, %v, want %d", want, got, ok, c.lun)
		}
	}
}

func TestDecodeLUNRejects(t *testing.T) {
	for _, wire := range []string{
		"0100 0000 0000 0000", // peripheral addressing, bus 1
		"8001 0000 0000 0000", // logical unit addressing
		"c001 0000 0000 0000", // extended addressing
		"0001 0001 0000 0000", // second level
		"4001 0000 0000 00ff", // trailing garbage
	} {
		var b [8]byte
		copy(b[:], hx(t, wire))
		if l, ok := DecodeLUN(b); ok {
			t.Errorf("DecodeLUN(%s) = %d, want rejected", wire, l)
		}
	}
}

func FuzzDecodeLUN(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x41, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var b [8]byte
		copy(b[:], in)
		l, ok := DecodeLUN(b)
		if !ok {
			return
		}
		if l > MaxLUN {
			t.Fatalf("decoded %d > MaxLUN", l)
		}
		if back, ok := DecodeLUN(l.Encode()); !ok || back != l {
			t.Fatalf("round trip of %d gave %d, %v", l, back, ok)
		}
	})
}

func TestLUNMap(t *testing.T) {
	d := NewDevice(DeviceConfig{Name: "d"}, newMem(4096))
	m := NewLUNMap(map[LUN]*LogicalUnit{
		7:     {Device: d},
		0:     {Device: d, ReadOnly: true},
		300:   {Device: d},
		20000: {Device: d}, // above MaxLUN: left out
		5:     nil,         // no unit: left out
	})
	if got, want := m.LUNs(), []LUN{0, 7, 300}; !reflect.DeepEqual(got, want) {
		t.Fatalf("LUNs() = %v, want %v", got, want)
	}
	if m.Len() != 3 || m.Lookup(5) != nil || !m.Lookup(0).ReadOnly {
		t.Fatalf("unexpected map contents")
	}
	var nilMap *LUNMap
	if nilMap.Len() != 0 || nilMap.Lookup(0) != nil || nilMap.LUNs() != nil {
		t.Fatalf("nil map is not empty")
	}
}
