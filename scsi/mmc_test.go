package scsi

import (
	"bytes"
	"testing"
)

func TestMMC(t *testing.T) {
	cases := []struct {
		name   string
		blocks int // of 2048 bytes
		cdb    string
		want   string // data-in hex or sense
	}{
		{"READ TOC format 0, LBA", 1000, "43 00 00 000000 00 0100 00",
			// length 18, tracks 1..1; track 1 at LBA 0; lead-out at 1000
			"0012 01 01 | 00 14 01 00 00000000 | 00 14 aa 00 000003e8"},
		{"READ TOC format 0, MSF", 1000, "43 02 00 000000 00 0100 00",
			// track 1 at 00:02:00; lead-out 1150 frames = 00:15:25
			"0012 01 01 | 00 14 01 00 00 00 02 00 | 00 14 aa 00 00 00 0f 19"},
		{"READ TOC lead-out only", 1000, "43 00 00 000000 aa 0100 00",
			"000a 01 01 | 00 14 aa 00 000003e8"},
		{"READ TOC track 2", 1000, "43 00 00 000000 02 0100 00", want(invalidField(6, -1))},
		{"READ TOC session info", 1000, "43 00 01 000000 00 0100 00",
			"000a 01 01 | 00 14 01 00 00000000"},
		{"READ TOC format 2 unsupported", 1000, "43 00 02 000000 00 0100 00", want(invalidField(2, 3))},
		{"GET EVENT STATUS media", 1000, "4a 01 00 00 10 00 00 0008 00",
			"0006 04 10 | 00 02 00 00"},
		{"GET EVENT STATUS no class", 1000, "4a 01 00 00 02 00 00 0008 00", "0002 80 10"},
		{"GET EVENT STATUS async", 1000, "4a 00 00 00 10 00 00 0008 00", want(invalidField(1, 0))},
		{"GET CONFIGURATION one feature", 1000, "46 02 0003 000000 0100 00",
			"0000000c 0000 0008 | 0003 0b 04 39000000"},
		{"GET CONFIGURATION RT=3", 1000, "46 03 0000 000000 0100 00", want(invalidField(1, 1))},
		{"READ(10) of a 2048-byte block", 1000, "28 00 00000001 00 0001 00", ""},
		{"WRITE(10) is not a CD-ROM command", 1000, "2a 00 00000001 00 0001 00", want(ErrInvalidOpcode)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.blocks, DeviceConfig{Type: TypeCDROM, BlockSize: 2048, ReadOnly: true})
			r := f.exec(0, hx(t, c.cdb), make([]byte, 2048))
			if r.Status != Good {
				if got := senseOf(r); got != c.want {
					t.Fatalf("got %s, want %s", got, c.want)
				}
				return
			}
			if c.want == "" {
				return
			}
			if w := hx(t, c.want); !bytes.Equal(r.Data, w) {
				t.Fatalf("data-in\n got % x\nwant % x", r.Data, w)
			}
		})
	}
}

func TestMMCProfiles(t *testing.T) {
	f := newFixture(t, 1000, DeviceConfig{Type: TypeCDROM, BlockSize: 2048, ReadOnly: true})
	r := f.exec(0, hx(t, "12 00 00 00ff 00"), nil)
	if r.Data[0] != 0x05 || r.Data[1]&0x80 == 0 {
		t.Fatalf("INQUIRY type %02x RMB %02x", r.Data[0], r.Data[1])
	}
	profile := func() uint16 {
		r := f.exec(0, hx(t, "46 00 0000 000000 0100 00"), nil)
		if r.Status != Good {
			t.Fatalf("GET CONFIGURATION: %s", senseOf(r))
		}
		if int(be32(r.Data[0:4])) != len(r.Data)-4 {
			t.Fatalf("data length %d of %d", be32(r.Data[0:4]), len(r.Data))
		}
		return be16(r.Data[6:8])
	}
	if p := profile(); p != mmcProfileCDROM {
		t.Fatalf("profile %04x, want CD-ROM", p)
	}
	// Eject: no current profile, TEST UNIT READY says no medium.
	runSteps(t, f, f.nex, []step{{"1b 00 00 00 02 00", 0, "GOOD"}, {uaTUR, 0, want(ErrMediumNotPresent)}})
	if p := profile(); p != mmcProfileNone {
		t.Fatalf("profile %04x after eject", p)
	}
	r = f.exec(0, hx(t, "4a 01 00 00 10 00 00 0008 00"), nil)
	if r.Data[5] != 0 {
		t.Fatalf("media present after eject: % x", r.Data)
	}
	runSteps(t, f, f.nex, []step{{"43 00 00 000000 00 0100 00", 0, want(ErrMediumNotPresent)}})
	// A DVD-sized image.
	g := newFixture(t, 16, DeviceConfig{Type: TypeCDROM, BlockSize: 2048, ReadOnly: true})
	g.dev.size.Store(4 << 30) // capacity as a 4 GiB image would report
	r = g.exec(0, hx(t, "46 01 0000 000000 0100 00"), nil)
	if be16(r.Data[6:8]) != mmcProfileDVDROM {
		t.Fatalf("profile %04x, want DVD-ROM", be16(r.Data[6:8]))
	}
}
