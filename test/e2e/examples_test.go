package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scstd/scstd/admin"
	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/internal/testtarget"
)

// Daemons that must listen on wildcard addresses or on port 3260, as the
// examples are written, run in a network namespace of their own (unshare
// --net, with only a loopback interface): nothing outside the test can
// reach them, and they take no port of the machine. Initiators reach them
// through nsenter.

// nsDaemon is scstd run in a private network namespace.
type nsDaemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    lockedBuffer
	socket string
	exited chan struct{}
	err    error
}

// startInNetns starts `scstd run -config cfg` in a new network namespace
// with env added to its environment, and waits until its admin socket
// answers. It fails the test when the daemon exits first.
func startInNetns(t *testing.T, cfg string, env ...string) *nsDaemon {
	t.Helper()
	requireTools(t, "unshare", "nsenter", "ip")
	socket := filepath.Join(t.TempDir(), "a.sock")
	// unshare and sh exec the daemon: it keeps their PID.
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`,
		testtarget.Binary(t), "run", "-config", cfg, "-admin-socket", socket)
	cmd.Env = append(os.Environ(), env...)
	d := &nsDaemon{t: t, cmd: cmd, socket: socket, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &d.out, &d.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare --net: %v", err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() { d.stop() })
	deadline := time.Now().Add(testtarget.StartTimeout)
	for {
		if _, err := admin.NewClient(socket).Status(); err == nil {
			return d
		}
		select {
		case <-d.exited:
			t.Fatalf("scstd run -config %s in a network namespace exited: %v\n%s", cfg, d.err, d.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("scstd run -config %s: admin socket not up within %v\n%s", cfg, testtarget.StartTimeout, d.out.String())
		}
	}
}

// nsenter runs a tool in the daemon's network namespace.
func (d *nsDaemon) nsenter(name string, args ...string) (string, error) {
	d.t.Helper()
	return run(d.t, toolTimeout, "nsenter", append([]string{"-t", strconv.Itoa(d.cmd.Process.Pid), "-n", name}, args...)...)
}

// status returns the daemon's status.
func (d *nsDaemon) status() nsStatus {
	d.t.Helper()
	raw, err := admin.NewClient(d.socket).Status()
	if err != nil {
		d.t.Fatal(err)
	}
	var st nsStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		d.t.Fatal(err)
	}
	return st
}

// stop sends SIGTERM to the daemon's PID and waits for it to exit.
func (d *nsDaemon) stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(testtarget.StopTimeout):
		d.cmd.Process.Kill()
		<-d.exited
		d.t.Errorf("scstd in a network namespace ignored SIGTERM for %v", testtarget.StopTimeout)
	}
}

// nsStatus is the part of the status the examples check.
type nsStatus struct {
	Engine struct {
		Portals []string `json:"portals"`
		Devices []struct {
			Name   string `json:"name"`
			Online bool   `json:"online"`
			Reason string `json:"reason"`
		} `json:"devices"`
		Targets []struct {
			Name string `json:"name"`
		} `json:"targets"`
	} `json:"engine"`
}

// loopbackOf is the address an initiator in the namespace reaches portal
// on: a wildcard's loopback address, else the portal itself.
func loopbackOf(portal string) string {
	host, port, err := splitPortal(portal)
	if err != nil {
		return portal
	}
	switch host {
	case "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

func splitPortal(p string) (host, port string, err error) {
	i := strings.LastIndexByte(p, ':')
	if i < 0 {
		return "", "", fmt.Errorf("no port in %q", p)
	}
	return strings.Trim(p[:i], "[]"), p[i+1:], nil
}

const wildcardPortals = `
iscsi {
  portals = ["0.0.0.0:3260", "[::]:3260"]
}

handler "vdisk_nullio" {
  device "null0" {
    size = "16MiB"
  }
}

target "iqn.2026-11.org.example:both" {
  lun "0" {
    device = "null0"
  }
}

state_dir = "state"
`

// TestPortalsWildcardsOfBothFamilies: "0.0.0.0:3260" and "[::]:3260" on
// one port both listen (the IPv6 wildcard is IPv6-only) and both serve
// discovery; a wildcard beside a specific address of its family on the
// same port is refused by validate and run with file:line:col.
func TestPortalsWildcardsOfBothFamilies(t *testing.T) {
	requireTools(t, "iscsi-ls")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "scstd.hcl")
	writeFile(t, cfg, wildcardPortals)
	d := startInNetns(t, cfg)
	if got := d.status().Engine.Portals; !slices.Equal(got, []string{"0.0.0.0:3260", "[::]:3260"}) {
		t.Errorf("portals %q, want both wildcards", got)
	}
	for _, url := range []string{"iscsi://127.0.0.1:3260", "iscsi://[::1]:3260"} {
		out, err := d.nsenter("iscsi-ls", url)
		if err != nil || !strings.Contains(out, "Target:iqn.2026-11.org.example:both ") {
			t.Errorf("iscsi-ls %s: %v, want the target listed\n%s", url, err, out)
		}
	}
	d.stop()

	clash := strings.Replace(wildcardPortals, `"[::]:3260"`, `"127.0.0.1:3260"`, 1)
	writeFile(t, cfg, clash)
	want := diagAt(cfg, 3, "Portals cannot both be bound")
	out, code := testtarget.Run(t, "validate", cfg)
	if code != 1 || !want.MatchString(out) {
		t.Errorf("scstd validate: exit %d, want 1 with %q:\n%s", code, want, out)
	}
	out, code, _ = runBounded(t, 20*time.Second, "run", "-config", cfg, "-admin-socket", filepath.Join(dir, "b.sock"))
	if code != 1 || !want.MatchString(out) {
		t.Errorf("scstd run: exit %d, want 1 with %q:\n%s", code, want, out)
	}
}

// exampleEnv are the secrets the examples read with env().
var exampleEnv = []string{
	"DB_CHAP_SECRET=db-chap-secret-1",
	"DB_MUTUAL_SECRET=db-mutual-secret-2",
	"BACKUP_CHAP_SECRET=backup-chap-secret-3",
}

// exampleConfigs returns every configuration of examples/: each *.hcl
// file, and each ```hcl block of a README.md, by name.
func exampleConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	fence := regexp.MustCompile("(?s)```hcl\n(.*?)```")
	err := filepath.WalkDir("../../examples", func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "../../")
		switch {
		case strings.HasSuffix(p, ".hcl"):
			out[name] = src
		case strings.HasSuffix(p, "README.md"):
			for i, m := range fence.FindAllSubmatch(src, -1) {
				out[fmt.Sprintf("%s#%d", name, i+1)] = m[1]
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 4 {
		t.Fatalf("only %d example configurations found", len(out))
	}
	return out
}

// exampleLoader is a config loader whose env() sees exampleEnv.
func exampleLoader() *config.Loader {
	l := config.NewLoader()
	l.LookupEnv = func(k string) (string, bool) {
		for _, kv := range exampleEnv {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	return l
}

// rewriteStorage returns src with every device's filename moved into dir:
// image files keep their base name (created from size, or an ISO of 32 KiB
// made here), and block devices become a loop device over a sparse file.
// Nothing else changes.
func rewriteStorage(t *testing.T, name string, src []byte, dir string) []byte {
	t.Helper()
	cfg, diags := exampleLoader().Parse(src, filepath.Join(dir, "orig.hcl"))
	if diags.HasErrors() {
		t.Fatalf("%s: %v", name, diags)
	}
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	if r, set := cfg.Attrs["state_dir"]; set {
		edits = append(edits, edit{r.Start.Byte, r.End.Byte, fmt.Sprintf("state_dir = %q", filepath.Join(dir, "state"))})
	}
	for _, d := range cfg.Devices {
		if !d.Attrs.Has("filename") {
			continue
		}
		path := filepath.Join(dir, filepath.Base(d.Filename))
		switch d.Handler {
		case config.HandlerBlockIO:
			path = loopDevice(t, filepath.Join(dir, d.Name+".blk"))
		case config.HandlerCDROM:
			writeFile(t, path, strings.Repeat("\x00", 32<<10))
		}
		r := d.Range("filename")
		edits = append(edits, edit{r.Start.Byte, r.End.Byte, fmt.Sprintf("filename = %q", path)})
	}
	slices.SortFunc(edits, func(a, b edit) int { return b.start - a.start })
	out := slices.Clone(src)
	for _, e := range edits {
		out = slices.Concat(out[:e.start], []byte(e.text), out[e.end:])
	}
	if _, set := cfg.Attrs["state_dir"]; !set {
		out = fmt.Appendf(out, "\nstate_dir = %q\n", filepath.Join(dir, "state"))
	}
	return out
}

// loopDevice attaches a loop device over a new 64 MiB sparse file and
// detaches it when the test ends.
func loopDevice(t *testing.T, backing string) string {
	t.Helper()
	requireTools(t, "losetup")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup --find --show %s: %v\n%s", backing, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
		}
	})
	return dev
}

// TestExamplesStartAsWritten: every configuration of examples/ passes
// `scstd validate -no-storage` as written, where its storage is not (a CI
// runner); and with its backing files moved to a scratch directory and
// nothing else changed (portals included: the daemon runs in a network
// namespace of its own), it passes `scstd validate` and starts with
// `scstd run`: every portal it names listens and answers discovery, every
// device is online, every target is there.
func TestExamplesStartAsWritten(t *testing.T) {
	requireTools(t, "iscsi-ls")
	for name, src := range exampleConfigs(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			asWritten := filepath.Join(t.TempDir(), "scst.hcl")
			if err := os.WriteFile(asWritten, src, 0o644); err != nil {
				t.Fatal(err)
			}
			validate := exec.Command(testtarget.Binary(t), "validate", "-no-storage", asWritten)
			validate.Env = append(os.Environ(), exampleEnv...)
			if out, err := validate.CombinedOutput(); err != nil {
				t.Errorf("scstd validate -no-storage, as written: %v\n%s", err, out)
			}
			cfg := filepath.Join(dir, "scst.hcl")
			if err := os.WriteFile(cfg, rewriteStorage(t, name, src, dir), 0o644); err != nil {
				t.Fatal(err)
			}
			validate = exec.Command(testtarget.Binary(t), "validate", cfg)
			validate.Env = append(os.Environ(), exampleEnv...)
			if out, err := validate.CombinedOutput(); err != nil {
				t.Fatalf("scstd validate: %v\n%s", err, out)
			}
			want, diags := exampleLoader().Parse(src, name)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			d := startInNetns(t, cfg, exampleEnv...)
			st := d.status()
			var portals []string
			for _, p := range want.ISCSI.Portals {
				portals = append(portals, p.Addr.String())
			}
			if !slices.Equal(st.Engine.Portals, portals) {
				t.Errorf("portals %q, want %q as written", st.Engine.Portals, portals)
			}
			for _, dev := range st.Engine.Devices {
				if !dev.Online {
					t.Errorf("device %s offline: %s", dev.Name, dev.Reason)
				}
			}
			if len(st.Engine.Targets) != len(want.Targets) || len(st.Engine.Devices) != len(want.Devices) {
				t.Errorf("%d target(s) and %d device(s) running, want %d and %d",
					len(st.Engine.Targets), len(st.Engine.Devices), len(want.Targets), len(want.Devices))
			}
			for _, p := range portals {
				url := "iscsi://" + loopbackOf(p)
				if out, err := d.nsenter("iscsi-ls", url); err != nil {
					t.Errorf("iscsi-ls %s (portal %s): %v\n%s", url, p, err, out)
				}
			}
		})
	}
}

// TestSystemdUnitReloadReportsRejection: the example unit's ExecReload is
// `scstd reload`, and run as written (with this test's binary and admin
// socket) it exits non-zero when the daemon rejects the file, so that
// `systemctl reload` fails, and 0 when the file is applied.
func TestSystemdUnitReloadReportsRejection(t *testing.T) {
	f, err := os.Open("../../examples/systemd/scstd.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var reload []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecReload="); ok {
			reload = strings.Fields(v)
		}
	}
	if len(reload) < 2 || filepath.Base(reload[0]) != "scstd" || reload[1] != "reload" || slices.Contains(reload, "-force") {
		t.Fatalf("ExecReload=%s: want `scstd reload` (its exit status says whether the file was applied)", strings.Join(reload, " "))
	}
	tgt := testtarget.Start(t, oneDisk)
	args := slices.Clone(reload[1:])
	if i := slices.Index(args, "-admin-socket"); i >= 0 && i+1 < len(args) {
		args[i+1] = tgt.AdminSocket()
	} else {
		args = append(args, "-admin-socket", tgt.AdminSocket())
	}
	writeFile(t, tgt.ConfigPath(), "target {\n")
	if out, code := testtarget.Run(t, args...); code == 0 {
		t.Errorf("ExecReload (%s) with a broken file: exit 0, want non-zero\n%s", strings.Join(reload, " "), out)
	}
	text, err := testtarget.Render(oneDiskTwoLUNs, tgt.Params())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, tgt.ConfigPath(), text)
	if out, code := testtarget.Run(t, args...); code != 0 {
		t.Errorf("ExecReload (%s) with a good file: exit %d, want 0\n%s", strings.Join(reload, " "), code, out)
	}
}
