package scsi

import (
	"bytes"
	"testing"
)

func TestModeSense(t *testing.T) {
	cases := []struct {
		name string
		cfg  DeviceConfig
		luRO bool
		cdb  string
		want string // hex of the whole data-in, or a sense
	}{
		{"6: caching page, current, with block descriptor", DeviceConfig{}, false,
			"1a 00 08 00 ff 00",
			// header: length 1Bh, medium 0, DPOFUA, bd length 8
			"1f 00 10 08" +
				// block descriptor: 64 blocks, length 512
				"00000040 00 000200" +
				// caching page, WCE=1
				"0812 04 00 0000000000000000000000000000 0000"},
		{"6: caching page, write-through, DBD", DeviceConfig{WriteThrough: true}, false,
			"1a 08 08 00 ff 00",
			"17 00 10 00 0812 00 00 0000000000000000000000000000 0000"},
		{"6: changeable caching page", DeviceConfig{}, false,
			"1a 08 48 00 ff 00",
			"17 00 10 00 0812 04 00 0000000000000000000000000000 0000"},
		{"6: read-only device sets WP", DeviceConfig{ReadOnly: true}, false,
			"1a 08 0a 00 ff 00",
			"0f 00 90 00 0a0a 02 10 00 00 0000 ffff 0000"},
		{"6: read-only LUN sets WP", DeviceConfig{}, true,
			"1a 08 1c 00 ff 00",
			"0f 00 90 00 1c0a 08 00 00000000 00000000"},
		{"6: allocation length 4", DeviceConfig{}, false,
			"1a 00 3f 00 04 00",
			"37 00 10 08"},
		{"10: long LBA block descriptor", DeviceConfig{}, false,
			"5a 10 1c 00 000000 00ff 00",
			"0022 00 10 01 00 0010" +
				"0000000000000040 00000000 00000200" +
				"1c0a 08 00 00000000 00000000"},
		{"6: saved values", DeviceConfig{}, false,
			"1a 00 c8 00 ff 00", want(ErrSavingParamsUnsupported)},
		{"6: unsupported page", DeviceConfig{}, false,
			"1a 00 19 00 ff 00", want(invalidField(2, 5))},
		{"6: unsupported subpage", DeviceConfig{}, false,
			"1a 00 08 01 ff 00", want(invalidField(3, -1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 64, c.cfg)
			f.lu.ReadOnly = c.luRO
			r := f.exec(0, hx(t, c.cdb), nil)
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

func TestModeSenseAllPages(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	for _, cdb := range []string{"1a 08 3f 00 ff 00", "1a 08 3f ff ff 00"} {
		r := f.exec(0, hx(t, cdb), nil)
		if r.Status != Good {
			t.Fatalf("%s: %s", cdb, senseOf(r))
		}
		var codes []byte
		for p := r.Data[4:]; len(p) >= 2; p = p[2+int(p[1]):] {
			codes = append(codes, p[0]&0x3f)
		}
		if !bytes.Equal(codes, []byte{0x08, 0x0a, 0x1c}) || int(r.Data[0]) != len(r.Data)-1 {
			t.Fatalf("%s: pages % x, length %d of %d", cdb, codes, r.Data[0], len(r.Data))
		}
	}
}

func TestModeSelect(t *testing.T) {
	caching := func(b2 string) string {
		return "0812 " + b2 + " 00 0000000000000000000000000000 0000"
	}
	cases := []struct {
		name  string
		cdb   string
		param string
		want  string
		wt    bool // write-through afterwards
	}{
		{"6: WCE=0", "15 10 00 00 18 00", "00000000" + caching("00"), "GOOD", true},
		{"6: WCE=1 unchanged", "15 10 00 00 18 00", "00000000" + caching("04"), "GOOD", false},
		{"6: with block descriptor", "15 10 00 00 20 00",
			"00000008 00000040 00 000200" + caching("00"), "GOOD", true},
		{"6: block length change refused", "15 10 00 00 20 00",
			"00000008 00000000 00 001000" + caching("00"), want(invalidParam(9, -1)), false},
		{"10: WCE=0", "55 10 00 00 00 00 00 001c 00", "0000 00 00 00 00 0000" + caching("00"), "GOOD", true},
		{"6: PF=0", "15 00 00 00 18 00", "00000000" + caching("00"), want(invalidField(1, 4)), false},
		{"6: SP=1", "15 11 00 00 18 00", "00000000" + caching("00"), want(invalidField(1, 0)), false},
		{"6: non-changeable bit (RCD)", "15 10 00 00 18 00", "00000000" + caching("05"), want(invalidParam(6, -1)), false},
		{"6: wrong page length", "15 10 00 00 18 00", "00000000 0811 00 00 0000000000000000000000000000 0000",
			want(invalidParam(5, -1)), false},
		{"6: unknown page", "15 10 00 00 0c 00", "00000000 1906 000000000000", want(invalidParam(4, 5)), false},
		{"6: short data-out", "15 10 00 00 18 00", "00000000", want(ErrParamListLength), false},
		{"6: length 0 is a no-op", "15 10 00 00 00 00", "", "GOOD", false},
		{"6: control page as is", "15 10 00 00 10 00", "00000000 0a0a 02 10 00 00 0000 ffff 0000", "GOOD", false},
		{"6: control page QAM not changeable", "15 10 00 00 10 00", "00000000 0a0a 02 00 00 00 0000 ffff 0000",
			want(invalidParam(7, -1)), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 64, DeviceConfig{})
			r := f.exec(0, hx(t, c.cdb), hx(t, c.param))
			if got := senseOf(r); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			if got := f.dev.Config().WriteThrough; got != c.wt {
				t.Fatalf("write-through %v, want %v", got, c.wt)
			}
		})
	}
}
