package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/initiator"
	"github.com/scstd/scstd/internal/testtarget"
)

// The iSCSI-SCST README's advanced sample, as scst.conf; the unit tests of
// internal/scstconf convert the same file.
const readmeSample = "../../internal/scstconf/testdata/readme-advanced.conf"

// Names and secrets of the README sample.
const (
	sampleTgt            = "iqn.2006-10.net.vlnb:tgt"
	sampleTgt1           = "iqn.2006-10.net.vlnb:tgt1"
	sampleSpecial        = "iqn.2005-03.org.open-iscsi:cacdcd2520" // the group special_ini
	sampleOther          = "iqn.2026-11.org.example:other"         // in no group
	sampleDisco          = "joeD"
	sampleDiscoSecret    = "12charsecret"
	sampleDiscoOut       = "jackD"
	sampleDiscoOutSecret = "12charsecret1"
)

// TestImportREADMESample migrates the README's advanced configuration:
// scstd import turns the scst.conf into HCL, scstd validate accepts it, the
// daemon runs it, status shows the same devices, targets, LUNs, group and
// iSNS server, and libiscsi's tools and the Go initiator see what SCST
// would show them: discovery CHAP with mutual CHAP, iSNS access control,
// per-target CHAP, LUN 26 on nullio, the CD-ROM, and the read-only LUN of
// the special_ini group.
func TestImportREADMESample(t *testing.T) {
	requireTools(t, "iscsi-ls", "iscsi-inq", "losetup", "isnsd", "isnsadm")
	dir := t.TempDir()
	isns := startISNSD(t)

	// Storage: two image files and a loop device for the blockio device.
	for _, name := range []string{"disk1", "disk2"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filepath.Join(dir, name), diskSize); err != nil {
			t.Fatal(err)
		}
	}
	blockdev := attachLoop(t, filepath.Join(dir, "blockio.img"), 16<<20)

	sample, err := os.ReadFile(readmeSample)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer(
		"filename /disk1", "filename "+filepath.Join(dir, "disk1"),
		"filename /disk2", "filename "+filepath.Join(dir, "disk2"),
		"filename /dev/sda5", "filename "+blockdev,
		`iSNSServer "192.168.1.16 AccessControl"`, `iSNSServer "`+isns.Addr+` AccessControl"`,
	).Replace(string(sample))
	confPath := filepath.Join(dir, "scst.conf")
	writeFile(t, confPath, conf)

	hcl, notes := scstdImport(t, confPath)
	if strings.Contains(notes, "kept as a comment") {
		t.Errorf("the README sample maps fully, yet import kept something as a comment:\n%s", notes)
	}
	if !strings.Contains(notes, "5 device(s) and 2 target(s) converted") {
		t.Errorf("import's summary:\n%s", notes)
	}
	// scst.conf has no portal: serve on the test's loopback one.
	hcl = strings.Replace(hcl, "iscsi {\n", "iscsi {\n  portals = [\"{{.Portal}}\"]\n", 1)
	tgt := testtarget.New(t, hcl)
	if out, code := testtarget.Run(t, "validate", tgt.ConfigPath()); code != 0 {
		t.Fatalf("scstd validate on the imported configuration: exit %d\n%s\n%s", code, out, hcl)
	}
	tgt.Start()

	t.Run("status", func(t *testing.T) { checkSampleStatus(t, tgt, blockdev, isns.Addr) })

	// iSNS access control: both targets and both initiators in one
	// discovery domain.
	registered := regexp.MustCompile(`vlnb:tgt\b(?s:.*)vlnb:tgt1\b|vlnb:tgt1\b(?s:.*)vlnb:tgt\b`)
	waitForISNS(t, isns, "nodes", "tgt and tgt1 registered", registered.MatchString)
	isns.Adm(t, "--register", "entity=hosts", "initiator,iscsi-name="+sampleSpecial, "initiator,iscsi-name="+sampleOther)
	isns.Adm(t, "--dd-register", "dd-name=sample", "dd-member-name="+sampleTgt, "dd-member-name="+sampleTgt1,
		"dd-member-name="+sampleSpecial, "dd-member-name="+sampleOther)

	p := tgt.Portal()
	t.Run("discovery", func(t *testing.T) {
		out := mustRun(t, "iscsi-ls", "-i", sampleOther, chapURL(p, sampleDisco, sampleDiscoSecret, "", sampleDiscoOut, sampleDiscoOutSecret))
		for _, name := range []string{sampleTgt, sampleTgt1} {
			if !strings.Contains(out, "Target:"+name+" ") {
				t.Errorf("discovery does not list %s:\n%s", name, out)
			}
		}
		if out, err := run(t, toolTimeout, "iscsi-ls", "-i", sampleOther, chapURL(p, "", "", "", "", "")); err == nil {
			t.Errorf("discovery without CHAP succeeded; the sample requires discovery CHAP:\n%s", out)
		}
		if out, err := run(t, toolTimeout, "iscsi-ls", "-i", "iqn.2026-11.org.example:stranger", chapURL(p, sampleDisco, sampleDiscoSecret, "", "", "")); err == nil && strings.Contains(out, "Target:") {
			t.Errorf("an initiator outside the iSNS discovery domain sees targets:\n%s", out)
		}
	})

	t.Run("LUNs", func(t *testing.T) {
		for _, c := range []struct {
			url, want string
		}{
			{"iscsi://" + p + "/" + sampleTgt + "/0", "DIRECT_ACCESS"},
			{chapURL(p, "joe", "12charsecret", "/"+sampleTgt1+"/0", "jim1", "12charpasswd"), "DIRECT_ACCESS"},
			{chapURL(p, "joe2", "12charsecret2", "/"+sampleTgt1+"/26", "", ""), "DIRECT_ACCESS"},
		} {
			if out := mustRun(t, "iscsi-inq", "-i", sampleOther, c.url); !strings.Contains(out, c.want) {
				t.Errorf("iscsi-inq %s: want %s in:\n%s", c.url, c.want, out)
			}
		}
		if out, err := run(t, toolTimeout, "iscsi-inq", "-i", sampleOther, "iscsi://"+p+"/"+sampleTgt1+"/0"); err == nil {
			t.Errorf("tgt1 without CHAP answered:\n%s", out)
		}
		// The CD-ROM has no medium (scst.conf gives it no filename), so
		// libiscsi's login, which wants TEST UNIT READY to pass, fails on
		// it; INQUIRY answers all the same.
		c, err := goLogin(t, "", p, initiator.Options{InitiatorName: sampleOther, TargetName: sampleTgt})
		if err != nil {
			t.Fatal(err)
		}
		d, _, _, err := scsiCmd(c, 1, []byte{0x12, 0, 0, 0, 96, 0}, nil, 96)
		if err != nil || len(d) < 1 || d[0]&0x1f != 0x05 {
			t.Errorf("INQUIRY of tgt LUN 1: %x, %v; want peripheral device type 05h (CD/DVD)", d, err)
		}
	})

	t.Run("special_ini", func(t *testing.T) {
		chap := &initiator.CHAP{Name: "joe", Secret: "12charsecret", TargetName: "jim1", TargetSecret: "12charpasswd"}
		other, err := goLogin(t, "", p, initiator.Options{InitiatorName: sampleOther, TargetName: sampleTgt1, CHAP: chap})
		if err != nil {
			t.Fatal(err)
		}
		if got := reportLUNs(t, other); !slices.Equal(got, []int{0, 26}) {
			t.Errorf("REPORT LUNS of tgt1 for an initiator in no group: %v, want [0 26]", got)
		}
		special, err := goLogin(t, "", p, initiator.Options{InitiatorName: sampleSpecial, TargetName: sampleTgt1, CHAP: chap})
		if err != nil {
			t.Fatal(err)
		}
		if got := reportLUNs(t, special); !slices.Equal(got, []int{0}) {
			t.Errorf("REPORT LUNS of tgt1 for %s: %v, want [0]", sampleSpecial, got)
		}
		w := []byte{0x2a, 0, 0, 0, 0, 7, 0, 0, 1, 0}
		if _, key, asc, err := scsiCmd(special, 0, w, make([]byte, 512), 0); err == nil || key != 0x07 || asc != 0x27 {
			t.Errorf("WRITE(10) to special_ini's LUN 0 (read_only 1): %v (key %Xh ASC %02Xh), want DATA PROTECT / WRITE PROTECTED", err, key, asc)
		}
	})
}

// scstdImport runs `scstd import path` and returns its standard output
// and standard error.
func scstdImport(t *testing.T, path string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, testtarget.Binary(t), "import", path)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("scstd import %s: %v\n%s", path, err, errb.String())
	}
	return out.String(), errb.String()
}

// attachLoop creates a file of size bytes and attaches a loop device to
// it, detached (by its name) when the test ends.
func attachLoop(t *testing.T, file string, size int64) string {
	t.Helper()
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", file).CombinedOutput()
	if err != nil {
		if os.Getenv(optionalEnv) == "1" {
			t.Skipf("losetup: %v: %s (a loop device needs root); skipped because %s=1", err, out, optionalEnv)
		}
		t.Fatalf("losetup: %v: %s (a loop device needs root; set %s=1 to skip)", err, out, optionalEnv)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// sampleStatus is the part of `scstd status -json` the import test reads.
type sampleStatus struct {
	Engine struct {
		Devices []struct {
			Name      string `json:"name"`
			Handler   string `json:"handler"`
			Filename  string `json:"filename"`
			Blocksize int    `json:"blocksize"`
			NVCache   bool   `json:"nv_cache"`
			Size      int64  `json:"size"`
		} `json:"devices"`
		Targets []struct {
			Name    string      `json:"name"`
			Enabled bool        `json:"enabled"`
			LUNs    []sampleLUN `json:"luns"`
			Groups  []struct {
				Name       string      `json:"name"`
				Initiators []string    `json:"initiators"`
				LUNs       []sampleLUN `json:"luns"`
			} `json:"groups"`
		} `json:"targets"`
		ISNS []struct {
			Server        string `json:"server"`
			AccessControl bool   `json:"access_control"`
		} `json:"isns"`
	} `json:"engine"`
}

type sampleLUN struct {
	LUN      int    `json:"lun"`
	Device   string `json:"device"`
	ReadOnly bool   `json:"read_only"`
}

// checkSampleStatus compares the running daemon with the README sample.
func checkSampleStatus(t *testing.T, tgt *testtarget.Target, blockdev, isnsAddr string) {
	out, code := testtarget.Run(t, "status", "-json", "-admin-socket", tgt.AdminSocket())
	var st sampleStatus
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("scstd status -json: exit %d, %v\n%s", code, err, out)
	}
	var devices []string
	for _, d := range st.Engine.Devices {
		devices = append(devices, d.Name+":"+d.Handler)
		switch d.Name {
		case "disk2":
			if d.Blocksize != 4096 || !d.NVCache || d.Size != diskSize {
				t.Errorf("disk2: %+v, want blocksize 4096, nv_cache, %d bytes", d, diskSize)
			}
		case "blockio":
			if d.Filename != blockdev || d.Size != 16<<20 {
				t.Errorf("blockio: %+v, want %s of 16 MiB", d, blockdev)
			}
		case "nullio":
			if d.Size != 2560<<30 {
				t.Errorf("nullio: %d bytes, want SCST's default of 2.5 TiB", d.Size)
			}
		}
	}
	slices.Sort(devices)
	if want := []string{"blockio:vdisk_blockio", "cdrom:vcdrom", "disk1:vdisk_fileio", "disk2:vdisk_fileio", "nullio:vdisk_nullio"}; !slices.Equal(devices, want) {
		t.Errorf("devices %v, want %v", devices, want)
	}
	var targets []string
	for _, tg := range st.Engine.Targets {
		desc := tg.Name + " " + lunList(tg.LUNs)
		for _, g := range tg.Groups {
			desc += " group " + g.Name + strings.Join(g.Initiators, ",") + " " + lunList(g.LUNs)
		}
		if !tg.Enabled {
			desc += " disabled"
		}
		targets = append(targets, desc)
	}
	want := []string{
		sampleTgt + " [0:disk1 1:cdrom]",
		sampleTgt1 + " [0:disk2 26:nullio] group special_ini" + sampleSpecial + " [0:blockio(ro)]",
	}
	if !slices.Equal(targets, want) {
		t.Errorf("targets:\n %q\nwant\n %q", targets, want)
	}
	if s := st.Engine.ISNS; len(s) != 1 || s[0].Server != isnsAddr || !s[0].AccessControl {
		t.Errorf("iSNS %+v, want %s with access control", s, isnsAddr)
	}
}

func lunList(luns []sampleLUN) string {
	var s []string
	for _, l := range luns {
		e := strconv.Itoa(l.LUN) + ":" + l.Device
		if l.ReadOnly {
			e += "(ro)"
		}
		s = append(s, e)
	}
	return "[" + strings.Join(s, " ") + "]"
}
