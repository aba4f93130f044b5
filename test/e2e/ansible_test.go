package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/testtarget"
)

// TestAnsibleExample runs examples/ansible with Debian's ansible-playbook
// against localhost (connection: local) on a scratch root, with a daemon
// started by the test: the first run creates the directories and the
// secret, renders and validates the configuration and reloads the daemon,
// which then serves it (a CHAP login reads the secret through file()); a
// second run changes nothing; a check-mode run with one more disk reports
// the change with a diff, from `scstd plan`, and touches nothing.
func TestAnsibleExample(t *testing.T) {
	requireTools(t, "ansible-playbook", "iscsi-inq")
	tgt := testtarget.Start(t, `
iscsi { portals = ["{{.Portal}}"] }
handler "vdisk_nullio" {
  device "before" { size = "16MiB" }
}
target "iqn.2026-11.org.example:before" {
  lun "0" { device = "before" }
}
`)
	root := t.TempDir()
	const target = "iqn.2026-11.org.example:ansible"
	const secret = "ansible-secret-01"
	vars := map[string]any{
		"scstd_root":           root,
		"scstd_config":         tgt.ConfigPath(),
		"scstd_admin_socket":   tgt.AdminSocket(),
		"scstd_bin":            testtarget.Binary(t),
		"scstd_manage_service": false,
		"scstd_become":         false,
		"scstd_portals":        []string{tgt.Portal()},
		"scstd_target":         target,
		"scstd_disks":          []map[string]string{{"name": "data0", "size": "64MiB"}},
		"scstd_chap_secrets":   map[string]string{"alice": secret},
	}

	// First run: everything is new.
	out := ansiblePlaybook(t, root, vars, "--diff")
	recap := playRecap(t, out)
	if recap["failed"] != 0 || recap["changed"] < 5 {
		t.Fatalf("first run: %v, want no failure and changed >= 5 (directories, secret, plan, configuration, reload)\n%s", recap, out)
	}
	if !strings.Contains(out, "RUNNING HANDLER [scstd : reload scstd]") {
		t.Errorf("the first run did not reload the daemon:\n%s", out)
	}
	for path, mode := range map[string]os.FileMode{
		"var/lib/scstd":       0o750 | os.ModeDir,
		"etc/scst/chap":       0o700 | os.ModeDir,
		"etc/scst/chap/alice": 0o600,
	} {
		if st, err := os.Stat(filepath.Join(root, path)); err != nil || st.Mode() != mode {
			t.Errorf("%s: %v %v, want mode %v", path, st.Mode(), err, mode)
		}
	}
	config, _ := os.ReadFile(tgt.ConfigPath())
	if strings.Contains(string(config), secret) || !strings.Contains(string(config), `secret = file("`+root+`/etc/scst/chap/alice")`) {
		t.Errorf("the rendered configuration should read the secret with file():\n%s", config)
	}
	if out, code := testtarget.Run(t, "fmt", "-check", tgt.ConfigPath()); code != 0 {
		t.Errorf("the template does not render in `scstd fmt` format (%s):\n%s", out, config)
	}
	// The daemon runs the rendered configuration.
	var names []string
	for _, raw := range daemonStatusOf(t, tgt).Engine.Targets {
		var ts struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &ts); err != nil {
			t.Fatal(err)
		}
		names = append(names, ts.Name)
	}
	if len(names) != 1 || names[0] != target {
		t.Errorf("targets after the first run: %q, want %s alone", names, target)
	}
	lun := chapURL(tgt.Portal(), "alice", secret, "/"+target+"/0", "", "")
	if out := mustRun(t, "iscsi-inq", lun); !strings.Contains(out, "DIRECT_ACCESS") {
		t.Errorf("iscsi-inq with alice's CHAP secret:\n%s", out)
	}

	// Second run: nothing to do, and no reload.
	out = ansiblePlaybook(t, root, vars)
	if recap := playRecap(t, out); recap["failed"] != 0 || recap["changed"] != 0 {
		t.Errorf("second run: %v, want changed=0\n%s", recap, out)
	}
	if strings.Contains(out, "RUNNING HANDLER") {
		t.Errorf("the second run reloaded the daemon:\n%s", out)
	}

	// Check mode with one more disk: reported, with a diff, not applied.
	vars["scstd_disks"] = []map[string]string{{"name": "data0", "size": "64MiB"}, {"name": "data1", "size": "32MiB"}}
	out = ansiblePlaybook(t, root, vars, "--check", "--diff")
	recap = playRecap(t, out)
	if recap["failed"] != 0 || recap["changed"] != 2 {
		t.Errorf("check run: %v, want changed=2 (plan and configuration)\n%s", recap, out)
	}
	// The diff of the file, and the plan as the debug task prints it (in
	// JSON, so with its quotes escaped).
	for _, want := range []string{`+  device "data1" {`, "+ device.data1", `+ target[\"` + target + `\"].lun[1]`} {
		if !strings.Contains(out, want) {
			t.Errorf("the check run does not show %q:\n%s", want, out)
		}
	}
	if after, _ := os.ReadFile(tgt.ConfigPath()); string(after) != string(config) {
		t.Errorf("the check run changed the configuration file")
	}
	if status, _ := testtarget.Run(t, "status", "-json", "-admin-socket", tgt.AdminSocket()); strings.Contains(status, "data1") {
		t.Errorf("the check run changed the daemon:\n%s", status)
	}
}

// ansiblePlaybook runs the example playbook on localhost with vars and
// returns its output; it fails the test when ansible-playbook exits non-zero.
func ansiblePlaybook(t *testing.T, root string, vars map[string]any, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	inventory := filepath.Join(dir, "inventory")
	writeFile(t, inventory, "[storage]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
	b, err := json.Marshal(vars)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ansible.cfg")
	writeFile(t, cfg, "[defaults]\n")
	varsFile := filepath.Join(dir, "vars.json")
	writeFile(t, varsFile, string(b))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ansible-playbook", append([]string{"-i", inventory, "-e", "@" + varsFile, "playbook.yml"}, args...)...)
	cmd.Dir = "../../examples/ansible"
	// Only this test's files: no user configuration, temporary files in
	// the test's directory, plain output.
	cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+cfg, "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_REMOTE_TEMP="+filepath.Join(dir, "tmp"), "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_HOME="+filepath.Join(dir, "home"), "ANSIBLE_SYSTEM_WARNINGS=0", "ANSIBLE_DEPRECATION_WARNINGS=0",
		"ANSIBLE_PIPELINING=1")
	t.Logf("$ ansible-playbook playbook.yml %s", strings.Join(args, " "))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-playbook %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var recapLine = regexp.MustCompile(`(?m)^localhost\s*:\s*(.*)$`)

// playRecap returns the counts of the PLAY RECAP line for localhost.
func playRecap(t *testing.T, out string) map[string]int {
	t.Helper()
	m := recapLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no PLAY RECAP for localhost in:\n%s", out)
	}
	counts := map[string]int{}
	for _, f := range strings.Fields(m[1]) {
		k, v, ok := strings.Cut(f, "=")
		if n, err := strconv.Atoi(v); ok && err == nil {
			counts[k] = n
		}
	}
	return counts
}
