package scsi

import (
	"bytes"
	"testing"
)

// cdFixture is a CD-ROM of blocks 2048-byte sectors, each filled with
// its own LBA's low byte, at LUN 0.
func cdFixture(t testing.TB, blocks int) *fixture {
	t.Helper()
	f := newFixture(t, blocks, DeviceConfig{Name: "cd1", Type: TypeCDROM, BlockSize: 2048, ReadOnly: true})
	for i := range f.mem.data {
		f.mem.data[i] = byte(i / 2048)
	}
	return f
}

// dvdSized makes f's device report the capacity of a 4 GiB image (a
// DVD-ROM) without holding it.
func dvdSized(f *fixture) { f.dev.size.Store(4 << 30) }

// mmcCase is one command on a CD-ROM and what it must answer: data-in
// as hex ("" for none) or the senseOf string of its CHECK CONDITION.
type mmcCase struct {
	name  string
	setup func(*fixture)
	cdb   string
	want  string
}

func runMMCCases(t *testing.T, cases []mmcCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := cdFixture(t, 1000)
			if c.setup != nil {
				c.setup(f)
			}
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

func TestReadTOC(t *testing.T) {
	// 1000 blocks: the lead-out starts at LBA 1000 (3e8h), absolute time
	// 1150 frames = 00:15:25 (00 0f 19 in MSF).
	runMMCCases(t, []mmcCase{
		{name: "TOC, LBA", cdb: "43 00 00 000000 00 0100 00",
			// DATA LENGTH 18, tracks 1..1 | track 1 (ADR 1, data track) at LBA 0 | lead-out AAh at LBA 1000
			want: "0012 01 01 | 00 14 01 00 00000000 | 00 14 aa 00 000003e8"},
		{name: "TOC, MSF", cdb: "43 02 00 000000 00 0100 00",
			// track 1 at 00:02:00; lead-out at 00:15:25
			want: "0012 01 01 | 00 14 01 00 00 00 02 00 | 00 14 aa 00 00 00 0f 19"},
		{name: "TOC from track 1", cdb: "43 00 00 000000 01 0100 00",
			want: "0012 01 01 | 00 14 01 00 00000000 | 00 14 aa 00 000003e8"},
		{name: "TOC lead-out only", cdb: "43 00 00 000000 aa 0100 00",
			want: "000a 01 01 | 00 14 aa 00 000003e8"},
		{name: "TOC from track 2", cdb: "43 00 00 000000 02 0100 00", want: want(invalidField(6, -1))},
		{name: "TOC cut to the allocation length", cdb: "43 00 00 000000 00 0004 00", want: "0012 01 01"},
		{name: "session info, LBA", cdb: "43 00 01 000000 00 0100 00",
			// first and last complete session 1 | first track of the last session: 1 at LBA 0
			want: "000a 01 01 | 00 14 01 00 00000000"},
		{name: "session info, MSF", cdb: "43 02 01 000000 00 0100 00",
			want: "000a 01 01 | 00 14 01 00 00 00 02 00"},
		{name: "full TOC", cdb: "43 02 02 000000 00 0100 00",
			// DATA LENGTH 46, sessions 1..1, then SESSION ADR/CTL TNO POINT MIN SEC FRAME ZERO PMIN PSEC PFRAME:
			want: "002e 01 01" +
				"| 01 14 00 a0 00 00 00 00 01 00 00" + // A0: first track 1, disc type 00h (CD-ROM)
				"| 01 14 00 a1 00 00 00 00 01 00 00" + // A1: last track 1
				"| 01 14 00 a2 00 00 00 00 00 0f 19" + // A2: lead-out at 00:15:25
				"| 01 14 00 01 00 00 00 00 00 02 00"}, // track 1 at 00:02:00
		{name: "full TOC is MSF without the MSF bit", cdb: "43 00 02 000000 01 0100 00",
			want: "002e 01 01" +
				"| 01 14 00 a0 00 00 00 00 01 00 00 | 01 14 00 a1 00 00 00 00 01 00 00" +
				"| 01 14 00 a2 00 00 00 00 00 0f 19 | 01 14 00 01 00 00 00 00 00 02 00"},
		{name: "full TOC from session 2", cdb: "43 02 02 000000 02 0100 00", want: want(invalidField(6, -1))},
		{name: "PMA: none on a pressed disc", cdb: "43 00 03 000000 00 0100 00", want: "0002 00 00"},
		{name: "ATIP: none on a pressed disc", cdb: "43 00 04 000000 00 0100 00", want: "0002 00 00"},
		{name: "CD-TEXT: none", cdb: "43 00 05 000000 00 0100 00", want: "0002 00 00"},
		{name: "format 6 reserved", cdb: "43 00 06 000000 00 0100 00", want: want(invalidField(2, 3))},
		{name: "SFF-8020i format bits 01b: session info", cdb: "43 00 00 000000 00 0100 40",
			want: "000a 01 01 | 00 14 01 00 00000000"},
		{name: "SFF-8020i format bits 10b: full TOC", cdb: "43 00 00 000000 00 0100 80",
			want: "002e 01 01" +
				"| 01 14 00 a0 00 00 00 00 01 00 00 | 01 14 00 a1 00 00 00 00 01 00 00" +
				"| 01 14 00 a2 00 00 00 00 00 0f 19 | 01 14 00 01 00 00 00 00 00 02 00"},
		{name: "SFF-8020i format bits 11b reserved", cdb: "43 00 00 000000 00 0100 c0", want: want(invalidField(9, 7))},
		{name: "DVD: TOC", setup: dvdSized, cdb: "43 00 00 000000 00 0100 00",
			// 4 GiB: lead-out at LBA 200000h
			want: "0012 01 01 | 00 14 01 00 00000000 | 00 14 aa 00 00200000"},
		{name: "DVD: full TOC is for CDs", setup: dvdSized, cdb: "43 02 02 000000 00 0100 00", want: want(invalidField(2, 3))},
		{name: "DVD: ATIP is for CDs", setup: dvdSized, cdb: "43 00 04 000000 00 0100 00", want: want(invalidField(2, 3))},
		{name: "no medium", setup: func(f *fixture) { f.dev.RemoveMedium() }, cdb: "43 00 00 000000 00 0100 00",
			want: want(ErrNoMediumTrayClosed)},
	})
}

func TestReadDiscInformation(t *testing.T) {
	runMMCCases(t, []mmcCase{
		{name: "CD", cdb: "51 00 00 00 00 00 00 0100 00",
			want: "0020" + // DISC INFORMATION LENGTH 32
				"0e" + // not erasable, last session complete (11b), disc finalized (10b)
				"01 01 01 01" + // first track 1; sessions 1; first and last track of the last session 1
				"00 00" + // no DID/DBC/URU, disc type 00h (CD-ROM)
				"00 00 00" + // MSBs of the session and track numbers
				"00000000" + // disc identification
				"00ffffff 00ffffff" + // last session lead-in, last possible lead-out: FF/FF/FF (finalized)
				"0000000000000000 00 00"}, // bar code, application code, no OPC tables
		{name: "DVD", setup: dvdSized, cdb: "51 00 00 00 00 00 00 0100 00",
			want: "0020 0e 01 01 01 01 00 00 00 00 00 00000000 ffffffff ffffffff 0000000000000000 00 00"},
		{name: "cut to the allocation length", cdb: "51 00 00 00 00 00 00 0004 00", want: "0020 0e 01"},
		{name: "track resources", cdb: "51 01 00 00 00 00 00 0100 00", want: want(invalidField(1, 2))},
		{name: "POW resources", cdb: "51 02 00 00 00 00 00 0100 00", want: want(invalidField(1, 2))},
		{name: "no medium", setup: func(f *fixture) { f.dev.RemoveMedium() }, cdb: "51 00 00 00 00 00 00 0100 00",
			want: want(ErrNoMediumTrayClosed)},
	})
}

func TestReadCD(t *testing.T) {
	const sector1 = "01" // every byte of sector 1 is 01h
	runMMCCases(t, []mmcCase{
		{name: "user data of mode 1 sectors", cdb: "be 08 00000001 000001 10 00 00", want: repeatHex(sector1, 2048)},
		{name: "user data, any sector type", cdb: "be 00 00000001 000001 10 00 00", want: repeatHex(sector1, 2048)},
		{name: "no fields: nothing transferred", cdb: "be 00 00000001 000001 00 00 00", want: ""},
		{name: "transfer length 0", cdb: "be 00 00000001 000000 10 00 00", want: ""},
		{name: "CD-DA sectors", cdb: "be 04 00000001 000001 10 00 00", want: want(ErrIllegalModeForTrack)},
		{name: "mode 2 sectors", cdb: "be 0c 00000001 000001 10 00 00", want: want(ErrIllegalModeForTrack)},
		{name: "mode 2 form 1 sectors", cdb: "be 10 00000001 000001 10 00 00", want: want(ErrIllegalModeForTrack)},
		{name: "mode 2 form 2 sectors", cdb: "be 14 00000001 000001 10 00 00", want: want(ErrIllegalModeForTrack)},
		{name: "sector type 110b reserved", cdb: "be 18 00000001 000001 10 00 00", want: want(invalidField(1, 4))},
		{name: "sync", cdb: "be 00 00000001 000001 90 00 00", want: want(invalidField(9, 7))},
		{name: "all headers", cdb: "be 00 00000001 000001 70 00 00", want: want(invalidField(9, 6))},
		{name: "header only", cdb: "be 00 00000001 000001 30 00 00", want: want(invalidField(9, 5))},
		{name: "EDC and ECC", cdb: "be 00 00000001 000001 18 00 00", want: want(invalidField(9, 3))},
		{name: "C2 error flags", cdb: "be 00 00000001 000001 12 00 00", want: want(invalidField(9, 1))},
		{name: "raw sector", cdb: "be 00 00000001 000001 f8 00 00", want: want(invalidField(9, 7))},
		{name: "sub-channel Q", cdb: "be 00 00000001 000001 10 02 00", want: want(invalidField(10, 2))},
		{name: "beyond the disc", cdb: "be 00 000003e7 000002 10 00 00", want: want(ErrLBAOutOfRange)},
		{name: "DVD", setup: dvdSized, cdb: "be 00 00000001 000001 10 00 00", want: want(ErrIllegalModeForTrack)},
		{name: "no medium", setup: func(f *fixture) { f.dev.RemoveMedium() }, cdb: "be 00 00000001 000001 10 00 00",
			want: want(ErrNoMediumTrayClosed)},
	})
}

// repeatHex is n copies of the hex byte b.
func repeatHex(b string, n int) string { return string(bytes.Repeat([]byte(b), n)) }

func TestGetConfiguration(t *testing.T) {
	const (
		profilesCD  = "0000 03 08 | 0010 00 00 | 0008 01 00" // Profile List v0 persistent current: DVD-ROM, CD-ROM (current)
		profilesDVD = "0000 03 08 | 0010 01 00 | 0008 00 00"
		profilesNo  = "0000 03 08 | 0010 00 00 | 0008 00 00"
		core        = "0001 0b 08 | 00000001 01 000000" // Core v2: SCSI family, DBE
		morphing    = "0002 07 04 | 00 000000"          // Morphing v1: polled GESN, no OCEvent
		removable   = "0003 0b 04 | 3d 000000"          // Removable Medium v2: tray, load, eject, no prevent jumper, lock
		randomCD    = "0010 01 08 | 00000800 0001 00 00"
		randomDVD   = "0010 01 08 | 00000800 0010 00 00" // blocking 16
		randomNo    = "0010 00 08 | 00000800 0001 00 00"
		cdRead      = "001e 09 04 | 00000000" // CD Read v2, current
		cdReadNo    = "001e 08 04 | 00000000"
		dvdRead     = "001f 09 04 | 00000000" // DVD Read v2, current
		dvdReadNo   = "001f 08 04 | 00000000"
	)
	empty := func(f *fixture) { f.dev.RemoveMedium() }
	runMMCCases(t, []mmcCase{
		{name: "all, CD", cdb: "46 00 0000 000000 0100 00",
			want: "00000048 0000 0008 |" + profilesCD + "|" + core + "|" + morphing + "|" + removable + "|" + randomCD + "|" + cdRead + "|" + dvdReadNo},
		{name: "current, CD", cdb: "46 01 0000 000000 0100 00",
			want: "00000040 0000 0008 |" + profilesCD + "|" + core + "|" + morphing + "|" + removable + "|" + randomCD + "|" + cdRead},
		{name: "from Random Readable, DVD", setup: dvdSized, cdb: "46 00 0010 000000 0100 00",
			want: "00000020 0000 0010 |" + randomDVD + "|" + cdReadNo + "|" + dvdRead},
		{name: "all, DVD", setup: dvdSized, cdb: "46 00 0000 000000 0100 00",
			want: "00000048 0000 0010 |" + profilesDVD + "|" + core + "|" + morphing + "|" + removable + "|" + randomDVD + "|" + cdReadNo + "|" + dvdRead},
		{name: "all, no medium", setup: empty, cdb: "46 00 0000 000000 0100 00",
			want: "00000048 0000 0000 |" + profilesNo + "|" + core + "|" + morphing + "|" + removable + "|" + randomNo + "|" + cdReadNo + "|" + dvdReadNo},
		{name: "current, no medium", setup: empty, cdb: "46 01 0000 000000 0100 00",
			want: "0000002c 0000 0000 |" + profilesNo + "|" + core + "|" + morphing + "|" + removable},
		{name: "one feature", cdb: "46 02 0003 000000 0100 00", want: "0000000c 0000 0008 |" + removable},
		{name: "one feature not current", cdb: "46 02 001f 000000 0100 00", want: "0000000c 0000 0008 |" + dvdReadNo},
		{name: "one feature unknown", cdb: "46 02 0004 000000 0100 00", want: "00000004 0000 0008"},
		{name: "cut to the allocation length", cdb: "46 00 0000 000000 0008 00", want: "00000048 0000 0008"},
		{name: "RT 11b", cdb: "46 03 0000 000000 0100 00", want: want(invalidField(1, 1))},
	})
}

func TestGetEventStatusNotification(t *testing.T) {
	eject := func(f *fixture) { f.exec(0, hx(t, "1b 00 00 00 02 00"), nil) }
	runMMCCases(t, []mmcCase{
		{name: "media class", cdb: "4a 01 00 00 10 00 00 0008 00",
			// length 6, class 4 (media), supported: media, device busy | NoChg, MEDIA PRESENT
			want: "0006 04 50 | 00 02 00 00"},
		{name: "media and busy classes: media first", cdb: "4a 01 00 00 50 00 00 0008 00", want: "0006 04 50 | 00 02 00 00"},
		{name: "device busy class", cdb: "4a 01 00 00 40 00 00 0008 00",
			want: "0006 06 50 | 00 00 00 00"}, // NoChg, not busy
		{name: "no supported class", cdb: "4a 01 00 00 02 00 00 0008 00", want: "0002 80 50"}, // NEA
		{name: "cut to the allocation length", cdb: "4a 01 00 00 10 00 00 0004 00", want: "0006 04 50"},
		{name: "asynchronous", cdb: "4a 00 00 00 10 00 00 0008 00", want: want(invalidField(1, 0))},
		{name: "tray opened by START STOP UNIT", setup: eject, cdb: "4a 01 00 00 10 00 00 0008 00",
			want: "0006 04 50 | 03 01 00 00"}, // MediaRemoval, tray open
		{name: "no medium", setup: func(f *fixture) { f.dev.RemoveMedium() }, cdb: "4a 01 00 00 10 00 00 0008 00",
			want: "0006 04 50 | 03 00 00 00"}, // MediaRemoval, no medium, tray closed
	})
}

func TestMechanismStatus(t *testing.T) {
	runMMCCases(t, []mmcCase{
		{name: "idle, door closed", cdb: "bd 00 00 00 00 00 00 00 0008 00 00",
			// no fault, changer ready, slot 0 | idle, door closed | current LBA 0 | no slots, no slot tables
			want: "00 00 000000 00 0000"},
		{name: "after a READ(10)", setup: func(f *fixture) { f.exec(0, hx(t, "28 00 00000005 00 0002 00"), nil) },
			cdb: "bd 00 00 00 00 00 00 00 0008 00 00", want: "00 00 000006 00 0000"},
		{name: "after a READ CD", setup: func(f *fixture) { f.exec(0, hx(t, "be 00 00000009 000001 10 00 00"), nil) },
			cdb: "bd 00 00 00 00 00 00 00 0008 00 00", want: "00 00 000009 00 0000"},
		{name: "door open", setup: func(f *fixture) { f.exec(0, hx(t, "1b 00 00 00 02 00"), nil) },
			cdb: "bd 00 00 00 00 00 00 00 0008 00 00", want: "00 10 000000 00 0000"},
		{name: "no medium", setup: func(f *fixture) { f.dev.RemoveMedium() },
			cdb: "bd 00 00 00 00 00 00 00 0008 00 00", want: "00 00 000000 00 0000"},
		{name: "cut to the allocation length", cdb: "bd 00 00 00 00 00 00 00 0002 00 00", want: "00 00"},
	})
}

func TestCapabilitiesModePage(t *testing.T) {
	// Mode parameter header (10): MODE DATA LENGTH 38, medium type 0,
	// device-specific 0, no block descriptors.
	const (
		hdr10 = "0026 00 00 0000 0000"
		page  = "2a 1e | 08 00 00 00 | 29 00 | 0000 0000 0000 0000 | 00 00 0000 0000 0000 | 000000 00 0000 0000"
	)
	runMMCCases(t, []mmcCase{
		// DVD-ROM read; no writes, audio, mode 2 or sub-channel; tray,
		// eject, no prevent jumper, lock, not locked; no speeds.
		{name: "current", cdb: "5a 08 2a 00 00 00 00 0100 00", want: hdr10 + "|" + page},
		{name: "current, block descriptors asked for", cdb: "5a 00 2a 00 00 00 00 0100 00", want: hdr10 + "|" + page},
		{name: "locked", setup: func(f *fixture) { f.exec(0, hx(t, "1e 00 00 00 01 00"), nil) },
			cdb:  "5a 08 2a 00 00 00 00 0100 00",
			want: hdr10 + "| 2a 1e | 08 00 00 00 | 2b 00 | 0000 0000 0000 0000 | 00 00 0000 0000 0000 | 000000 00 0000 0000"},
		{name: "default", cdb: "5a 08 aa 00 00 00 00 0100 00", want: hdr10 + "|" + page},
		{name: "changeable: nothing", cdb: "5a 08 6a 00 00 00 00 0100 00", want: hdr10 + "| 2a 1e" + repeatHex("00", 30)},
		{name: "MODE SENSE(6)", cdb: "1a 08 2a 00 ff 00", want: "23 00 00 00 |" + page},
		{name: "no medium", setup: func(f *fixture) { f.dev.RemoveMedium() }, cdb: "1a 08 2a 00 ff 00", want: "23 00 00 00 |" + page},
	})
	// All pages end with 2Ah on a CD-ROM; a disk has no page 2Ah.
	f := cdFixture(t, 16)
	r := f.exec(0, hx(t, "1a 08 3f 00 ff 00"), nil)
	if r.Status != Good || len(r.Data) != 4+20+12+12+32 || !bytes.Equal(r.Data[len(r.Data)-32:], hx(t, page)) {
		t.Fatalf("MODE SENSE all pages on a CD-ROM: %s % x", senseOf(r), r.Data)
	}
	// MODE SELECT takes the page back unchanged and refuses a change.
	sel := func(p string) string {
		return senseOf(f.exec(0, hx(t, "15 10 00 00 24 00"), hx(t, "23 00 00 00 |"+p)))
	}
	if got := sel(page); got != "GOOD" {
		t.Fatalf("MODE SELECT of page 2Ah as it is: %s", got)
	}
	if got, w := sel("2a 1e | 08 01 00 00 | 29 00"+repeatHex("00", 24)), want(invalidParam(4+3, -1)); got != w {
		t.Fatalf("MODE SELECT setting CD-R WRITE: %s, want %s", got, w)
	}
	d := newFixture(t, 16, DeviceConfig{})
	if got, w := senseOf(d.exec(0, hx(t, "5a 08 2a 00 00 00 00 0100 00"), nil)), want(invalidField(2, 5)); got != w {
		t.Fatalf("page 2Ah on a disk: %s, want %s", got, w)
	}
}

func TestMMCOnDisk(t *testing.T) {
	f := newFixture(t, 64, DeviceConfig{})
	for _, cdb := range []string{
		"43 00 00 000000 00 0100 00", "46 00 0000 000000 0100 00", "4a 01 00 00 10 00 00 0008 00",
		"51 00 00 00 00 00 00 0100 00", "bd 00 00 00 00 00 00 00 0008 00 00", "be 00 00000001 000001 10 00 00",
	} {
		if got := senseOf(f.exec(0, hx(t, cdb), nil)); got != want(ErrInvalidOpcode) {
			t.Errorf("%s on a disk: %s, want INVALID COMMAND OPERATION CODE", cdb, got)
		}
	}
}

func TestMMCProfiles(t *testing.T) {
	f := cdFixture(t, 1000)
	r := f.exec(0, hx(t, "12 00 00 00ff 00"), nil)
	if r.Data[0] != 0x05 || r.Data[1]&0x80 == 0 {
		t.Fatalf("INQUIRY type %02x RMB %02x", r.Data[0], r.Data[1])
	}
	profile := func() uint16 {
		r := f.exec(0, hx(t, "46 00 0000 000000 0100 00"), nil)
		if r.Status != Good {
			t.Fatalf("GET CONFIGURATION: %s", senseOf(r))
		}
		return be16(r.Data[6:8])
	}
	if p := profile(); p != mmcProfileCDROM {
		t.Fatalf("profile %04x, want CD-ROM", p)
	}
	// Eject: no current profile, TEST UNIT READY says the tray is open.
	runSteps(t, f, f.nex, []step{{"1b 00 00 00 02 00", 0, "GOOD"}, {uaTUR, 0, want(ErrNoMediumTrayOpen)}})
	if p := profile(); p != mmcProfileNone {
		t.Fatalf("profile %04x after eject", p)
	}
	runSteps(t, f, f.nex, []step{{"43 00 00 000000 00 0100 00", 0, want(ErrNoMediumTrayOpen)}})
	// An 80-minute CD is the largest CD-ROM; a block more is a DVD-ROM.
	g := cdFixture(t, 16)
	for _, c := range []struct {
		blocks int64
		want   uint16
	}{{mmcCDMaxBlocks, mmcProfileCDROM}, {mmcCDMaxBlocks + 1, mmcProfileDVDROM}} {
		g.dev.size.Store(c.blocks * 2048)
		r := g.exec(0, hx(t, "46 01 0000 000000 0100 00"), nil)
		if p := be16(r.Data[6:8]); p != c.want {
			t.Fatalf("%d blocks: profile %04x, want %04x", c.blocks, p, c.want)
		}
	}
}

// TestCDROMReadsDoNotAllocate: READ(10) and READ CD of a CD-ROM fill the
// transport's buffer and allocate nothing per command (the data path).
func TestCDROMReadsDoNotAllocate(t *testing.T) {
	f := cdFixture(t, 64)
	buf := make([]byte, 0, 4*2048)
	for _, cdb := range []string{"28 00 00000001 00 0004 00", "be 08 00000001 000004 10 00 00"} {
		cmd := &Command{Nexus: f.nex, LUNs: f.lus, LUNValid: true, CDB: hx(t, cdb), ExpectedIn: 4 * 2048, DataIn: buf}
		if r := Execute(cmd); r.Status != Good || len(r.Data) != 4*2048 || &r.Data[0] != &buf[:1][0] || r.Data[0] != 1 {
			t.Fatalf("%s: %s, did not read sector 1 into the transport's buffer", cdb, senseOf(r))
		}
		if allocs := testing.AllocsPerRun(100, func() { Execute(cmd) }); allocs > 0 {
			t.Errorf("%s allocates %.0f times per command", cdb, allocs)
		}
	}
}
