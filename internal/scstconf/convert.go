package scstconf

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/scstd/scstd/config"
)

// Options change how Convert writes the result.
type Options struct {
	// SecretsDir, when set, keeps CHAP secrets out of the result: each
	// secret becomes file("SecretsDir/NAME") and is returned in
	// Result.Secrets for the caller to write. Use an absolute directory:
	// file() resolves a relative one against the configuration's
	// directory. When empty, secrets stay inline, each with a comment
	// saying how to move it out.
	SecretsDir string
}

// Result is a converted configuration.
type Result struct {
	// HCL is the configuration in scstd's schema, formatted as `scstd fmt`
	// formats it.
	HCL []byte
	// Notes list what was kept as a comment and what needs a look, in
	// file order.
	Notes []Note
	// Secrets are the files the HCL reads with file() (Options.SecretsDir).
	Secrets []SecretFile
}

// SecretFile is a CHAP secret to be written to Path.
type SecretFile struct {
	Path   string
	User   string
	Secret config.Secret
}

// Note is one thing the conversion wants the user to know.
type Note struct {
	File    string
	Line    int
	EndLine int
	// Kept is true for what has no scstd counterpart and was kept as a
	// comment, false for what was imported but needs a look.
	Kept bool
	// What names the attribute or section ("setup_id", "TARGET_DRIVER
	// qla2x00t"); Msg says why. Neither ever holds a CHAP secret.
	What string
	Msg  string
}

func (n Note) String() string {
	loc := fmt.Sprintf("%s:%d", n.File, n.Line)
	if n.EndLine > n.Line {
		loc += fmt.Sprintf("-%d", n.EndLine)
	}
	if n.Kept {
		return fmt.Sprintf("%s: kept as a comment: %s: %s", loc, n.What, n.Msg)
	}
	return fmt.Sprintf("%s: note: %s: %s", loc, n.What, n.Msg)
}

// ErrorList is the errors of one conversion, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Convert maps f to scstd's HCL. It fails with an ErrorList when a value
// that has a counterpart cannot be read (a flag that is neither 0 nor 1, a
// LUN without a device, ...); SCST would have refused those too.
func Convert(f *File, opt Options) (*Result, error) {
	c := &converter{file: f.Name, opt: opt, devices: map[string]devInfo{}, secretFiles: map[string]string{},
		iscsiTargets: map[string]bool{}}
	for _, w := range f.Warnings {
		c.notes = append(c.notes, Note{File: w.File, Line: w.Line, EndLine: w.Line, What: "comment", Msg: w.Msg})
	}
	c.declare(f.Entries)
	root := &node{}
	root.note([]string{
		"Converted from " + filepath.Base(f.Name) + " by `scstd import`. What has no scstd",
		"counterpart is kept below as comments; `scstd import` listed it too.",
	})
	for _, e := range f.Entries {
		switch e.Name {
		case "HANDLER":
			c.handler(root, e)
		case "TARGET_DRIVER":
			c.driver(root, e)
		case "DEVICE_GROUP":
			c.deviceGroup(root, e)
		default:
			c.keep(root, e, reasonFor(e.Name))
		}
	}
	c.summary()
	if len(c.errs) > 0 {
		sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].Line < c.errs[j].Line })
		return nil, c.errs
	}
	out := hclwrite.NewEmptyFile()
	render(out.Body(), root, true)
	src, diags := config.Format(out.Bytes(), "import.hcl")
	if diags.HasErrors() {
		// The output is built from tokens, so this is a bug, not bad input.
		return nil, fmt.Errorf("scstconf: the converted configuration does not parse: %s", diags.Error())
	}
	sort.SliceStable(c.notes, func(i, j int) bool { return c.notes[i].Line < c.notes[j].Line })
	return &Result{HCL: src, Notes: c.notes, Secrets: c.secrets}, nil
}

// devInfo is what the conversion knows about a declared device.
type devInfo struct {
	handler string
	line    int
}

type converter struct {
	file    string
	opt     Options
	notes   []Note
	errs    ErrorList
	devices map[string]devInfo
	// iscsiTargets are the targets of TARGET_DRIVER iscsi.
	iscsiTargets map[string]bool

	secretFiles map[string]string // file name in SecretsDir → secret
	secrets     []SecretFile
	inline      []int    // lines of secrets kept inline
	noIdent     []string // devices whose usn or t10_dev_id scst.conf does not give
	iscsiAt     int      // line of TARGET_DRIVER iscsi, 0 before it
}

func (c *converter) errorf(e *Entry, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: e.Line, Msg: fmt.Sprintf(format, args...)})
}

// remark notes something imported that needs a look.
func (c *converter) remark(e *Entry, what, format string, args ...any) {
	c.notes = append(c.notes, Note{File: c.file, Line: e.Line, EndLine: e.EndLine, What: what, Msg: fmt.Sprintf(format, args...)})
}

// keep writes e, which has no counterpart, as a comment into parent and
// notes it. Secrets in it are redacted.
func (c *converter) keep(parent *node, e *Entry, reason string) {
	c.notes = append(c.notes, Note{File: c.file, Line: e.Line, EndLine: e.EndLine, Kept: true, What: describe(e), Msg: reason})
	if !e.HasSection {
		line := fmt.Sprintf("%s:%d: %s  (not imported: %s)", filepath.Base(c.file), e.Line, entryLine(e, true), reason)
		if parent.typ == "" {
			parent.note([]string{line}) // top level: in place
		} else {
			parent.kept = append(parent.kept, line)
		}
		return
	}
	lines := []string{fmt.Sprintf("%s:%d-%d, not imported: %s.", filepath.Base(c.file), e.Line, e.EndLine, reason)}
	lines = append(lines, strings.Split(strings.TrimSuffix(formatRedacted(e), "\n"), "\n")...)
	parent.note(lines)
}

// declare records every device of every HANDLER section, so that LUNs can
// tell a missing device from one of a handler scstd does not have.
func (c *converter) declare(entries []*Entry) {
	for _, h := range entries {
		if h.Name == "TARGET_DRIVER" && len(h.Args) == 1 && h.Args[0] == "iscsi" {
			for _, t := range h.Section {
				if t.Name == "TARGET" && len(t.Args) == 1 {
					c.iscsiTargets[t.Args[0]] = true
				}
			}
		}
		if h.Name != "HANDLER" || len(h.Args) != 1 {
			continue
		}
		for _, d := range h.Section {
			if d.Name == "DEVICE" && len(d.Args) == 1 {
				if _, dup := c.devices[d.Args[0]]; !dup {
					c.devices[d.Args[0]] = devInfo{handler: h.Args[0], line: d.Line}
				}
			}
		}
	}
}

// supported reports whether scstd has the SCST handler h.
func supported(h string) bool {
	_, ok := deviceAttrs[h]
	return ok
}

func (c *converter) handler(root *node, e *Entry) {
	if len(e.Args) != 1 {
		c.errorf(e, "HANDLER takes one handler name, as in \"HANDLER vdisk_fileio {\"")
		return
	}
	h := e.Args[0]
	if !supported(h) {
		c.keep(root, e, fmt.Sprintf("scstd has no %s handler (only vdisk_fileio, vdisk_blockio, vdisk_nullio, vcdrom and dev_disk); LUNs of its devices are kept as comments too", h))
		return
	}
	hb := root.block("handler", h)
	for _, d := range e.Section {
		if d.Name == "DEVICE" {
			c.device(hb, h, d)
			continue
		}
		c.keep(hb, d, reasonFor(d.Name))
	}
}

func (c *converter) device(hb *node, h string, e *Entry) {
	if len(e.Args) != 1 {
		c.errorf(e, "DEVICE takes one device name")
		return
	}
	d := hb.block("device", e.Args[0])
	d.order = deviceOrder
	set := map[string]*Entry{} // HCL attribute → the entry that set it
	for _, a := range e.Section {
		m, ok := deviceAttrs[h][a.Name]
		if a.HasSection {
			c.keep(d, a, "an attribute does not open a section")
			continue
		}
		if !ok {
			reason := reasonFor(a.Name)
			if h == handlerCDROM && (a.Name == "read_only" || a.Name == "removable") {
				reason = "scstd's vcdrom devices are always read-only and removable"
			} else if _, elsewhere := deviceAttrs[handlerFileIO][a.Name]; elsewhere {
				reason = fmt.Sprintf("scstd's %s devices have no %s", h, a.Name)
			}
			c.keep(d, a, reason)
			continue
		}
		if prev := set[m.hcl]; prev != nil {
			c.errorf(a, "device %s: %s repeats %s of line %d; SCST applies only one of them", e.Args[0], a.Name, prev.Name, prev.Line)
			continue
		}
		if v, ok := c.value(a, m.kind); ok {
			set[m.hcl] = a
			d.set(m.hcl, v)
		}
	}
	if h == handlerCDROM && !d.has("filename") {
		d.kept = append(d.kept, "No medium, as in scst.conf: filename = \"/path/to.iso\" inserts one.")
	}
	if h == handlerNullIO && !d.has("size") {
		d.set("size", str(nullioDefaultSize), "SCST's default size for a vdisk_nullio device (2.5 TiB).")
	}
	if h != handlerDevDisk && (!d.has("usn") || !d.has("t10_dev_id")) {
		c.noIdent = append(c.noIdent, e.Args[0])
	}
}

// value reads a's value as kind and returns it as HCL tokens.
func (c *converter) value(a *Entry, kind valueKind) (hclwrite.Tokens, bool) {
	v := a.Value()
	switch kind {
	case kindString:
		return str(v), true
	case kindFlag:
		switch v {
		case "0", "1":
			return boolean(v == "1"), true
		}
		c.errorf(a, "%s: expected 0 or 1, got %q", a.Name, printable(v))
	case kindYesNo:
		switch strings.ToLower(v) {
		case "yes", "no":
			return boolean(strings.EqualFold(v, "yes")), true
		}
		c.errorf(a, "%s: expected Yes or No, got %q", a.Name, printable(v))
	case kindInt:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return integer(n), true
		}
		c.errorf(a, "%s: expected a whole number, got %q", a.Name, printable(v))
	case kindBytes, kindMiB:
		if isDigits(v, false) {
			if kind == kindMiB {
				v += "MiB"
			}
			return str(v), true
		}
		c.errorf(a, "%s: expected a whole number, got %q", a.Name, printable(v))
	case kindDigests:
		var list []string
		for _, d := range strings.Split(v, ",") {
			switch d = strings.TrimSpace(d); {
			case strings.EqualFold(d, "CRC32C"):
				list = append(list, "CRC32C")
			case strings.EqualFold(d, "None"):
				list = append(list, "None")
			default:
				c.errorf(a, "%s: expected a list of CRC32C and None such as \"CRC32C,None\", got %q", a.Name, printable(v))
				return nil, false
			}
		}
		return strList(list), true
	}
	return nil, false
}

// driver converts TARGET_DRIVER iscsi; other target drivers are kept.
func (c *converter) driver(root *node, e *Entry) {
	if len(e.Args) != 1 {
		c.errorf(e, "TARGET_DRIVER takes one driver name, as in \"TARGET_DRIVER iscsi {\"")
		return
	}
	if e.Args[0] != "iscsi" {
		c.keep(root, e, fmt.Sprintf("scstd is an iSCSI target; SCST's %s target driver has no counterpart", e.Args[0]))
		return
	}
	if c.iscsiAt != 0 {
		c.errorf(e, "TARGET_DRIVER iscsi is also declared at line %d; merge the two sections", c.iscsiAt)
		return
	}
	c.iscsiAt = e.Line
	ib := root.block("iscsi")
	ib.order = []string{"enabled"}
	ib.comment = []string{
		"iSCSI-SCST listens on every address (port 3260) and scst.conf does not say",
		"otherwise; scstd's default is portals = [\"0.0.0.0:3260\"]. Name the portals to",
		"narrow it, for example portals = [\"192.0.2.1:3260\"].",
	}
	var targets []*Entry
	var out *Entry
	var perPortal *Entry
	for _, a := range e.Section {
		switch {
		case a.Name == "TARGET":
			targets = append(targets, a)
		case a.HasSection:
			c.keep(ib, a, reasonFor(a.Name))
		case a.Name == "enabled":
			if v, ok := c.value(a, kindFlag); ok {
				ib.set("enabled", v)
			}
		case numbered(a.Name, "IncomingUser"):
			c.user(ib, a, "incoming_user", "discovery")
		case numbered(a.Name, "OutgoingUser"):
			if out != nil {
				c.errorf(a, "%s: only one OutgoingUser is allowed, and line %d has one", a.Name, out.Line)
				continue
			}
			out = a
			c.user(ib, a, "outgoing_user", "discovery")
		case a.Name == "iSNSServer":
			c.isns(ib, a)
		case a.Name == "per_portal_acl":
			if _, ok := c.value(a, kindFlag); ok {
				perPortal = a
			}
		default:
			c.keep(ib, a, reasonFor(a.Name))
		}
	}
	if !ib.has("enabled") {
		ib.set("enabled", boolean(false), "scst.conf has no \"enabled 1\" for the iscsi driver: SCST leaves it disabled.")
		c.remark(e, "TARGET_DRIVER iscsi", "no \"enabled 1\": SCST leaves iSCSI disabled, so this is imported as enabled = false; set it to true to serve")
	}
	global := perPortal != nil && perPortal.Value() == "1"
	if global {
		c.remark(perPortal, "per_portal_acl", "a global setting in iSCSI-SCST, a per-target one in scstd: set on every target that does not set it")
	}
	for _, t := range targets {
		c.target(root, t, global)
	}
}

// isns converts iSNSServer "host [AccessControl]".
func (c *converter) isns(ib *node, a *Entry) {
	f := strings.Fields(a.Value())
	if len(f) == 0 {
		return // no server
	}
	ac := false
	if len(f) == 2 && strings.EqualFold(f[1], "AccessControl") {
		ac = true
	} else if len(f) != 1 {
		c.errorf(a, "iSNSServer: expected \"host\" or \"host AccessControl\", got %q", printable(a.Value()))
		return
	}
	host := f[0]
	if strings.Count(host, ":") > 1 && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]" // a bare IPv6 address
	}
	ib.block("isns_server", host).set("access_control", boolean(ac))
}

// user converts an IncomingUser or OutgoingUser "name secret" attribute.
// Errors never quote the value: it holds the secret.
func (c *converter) user(parent *node, a *Entry, kind, scope string) {
	f := strings.Fields(a.Value())
	if len(f) != 2 {
		c.errorf(a, "%s: expected \"name secret\" (two words), got %d words", a.Name, len(f))
		return
	}
	name, secret := f[0], f[1]
	u := parent.block(kind, name)
	if c.opt.SecretsDir == "" {
		c.inline = append(c.inline, a.Line)
		u.set("secret", str(secret), "Inline as in scst.conf: before this file goes into git, use file() or env().")
		return
	}
	u.set("secret", fileCall(c.secretFile(scope, name, secret)))
}

// secretFile returns the path of the file that holds secret for user name
// in scope, adding it to the files to write. Users share a file when
// their name and secret are the same.
func (c *converter) secretFile(scope, name, secret string) string {
	base := safeFileName(name)
	fname := base
	for i := 1; ; i++ {
		prev, taken := c.secretFiles[fname]
		if !taken || prev == secret {
			break
		}
		fname = base + "@" + safeFileName(scope)
		if i > 1 {
			fname += "." + strconv.Itoa(i)
		}
	}
	p := filepath.Join(c.opt.SecretsDir, fname)
	if _, done := c.secretFiles[fname]; !done {
		c.secretFiles[fname] = secret
		c.secrets = append(c.secrets, SecretFile{Path: p, User: name, Secret: config.NewSecret(secret)})
	}
	return p
}

// safeFileName makes s usable as a file name: characters other than
// letters, digits and ._@:+- become '_', and a leading '.' too.
func safeFileName(s string) string {
	b := []byte(s)
	for i, ch := range b {
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("._@:+-", ch) >= 0
		if !ok || i == 0 && ch == '.' {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

func (c *converter) target(root *node, e *Entry, perPortalACL bool) {
	if len(e.Args) != 1 {
		c.errorf(e, "TARGET takes one target name")
		return
	}
	name := e.Args[0]
	t := root.block("target", name)
	t.order = targetOrder
	set := map[string]*Entry{}
	var portals []string
	var out *Entry
	for _, a := range e.Section {
		if m, ok := targetAttrs[a.Name]; ok && !a.HasSection {
			if prev := set[m.hcl]; prev != nil {
				c.errorf(a, "target %s: %s is also set at line %d; SCST applies only one of them", printable(name), a.Name, prev.Line)
				continue
			}
			set[m.hcl] = a
			if m.hcl == "redirect" && a.Value() == "" {
				continue // no redirection
			}
			if v, ok := c.value(a, m.kind); ok {
				t.set(m.hcl, v)
			}
			continue
		}
		switch {
		case a.Name == "LUN":
			c.lun(t, a)
		case a.Name == "GROUP":
			c.group(t, a)
		case a.HasSection:
			c.keep(t, a, reasonFor(a.Name))
		case numbered(a.Name, "allowed_portal"):
			if a.Value() == "" {
				c.errorf(a, "%s: expected a portal address pattern", a.Name)
				continue
			}
			portals = append(portals, a.Value())
		case numbered(a.Name, "IncomingUser"):
			c.user(t, a, "incoming_user", name)
		case numbered(a.Name, "OutgoingUser"):
			if out != nil {
				c.errorf(a, "%s: only one OutgoingUser is allowed per target, and line %d has one", a.Name, out.Line)
				continue
			}
			out = a
			c.user(t, a, "outgoing_user", name)
		default:
			c.keep(t, a, reasonFor(a.Name))
		}
	}
	if len(portals) > 0 {
		t.set("allowed_portals", strList(portals))
	}
	if perPortalACL && !t.has("per_portal_acl") {
		t.set("per_portal_acl", boolean(true))
	}
	if !t.has("enabled") {
		t.set("enabled", boolean(false), "scst.conf has no \"enabled 1\" for this target: SCST leaves it disabled.")
		c.remark(e, "TARGET "+printable(name), "no \"enabled 1\": SCST leaves the target disabled, so it is imported as enabled = false")
	}
}

// lun converts "LUN number device [{ read_only 1 }]" into owner.
func (c *converter) lun(owner *node, e *Entry) {
	if len(e.Args) != 2 {
		c.errorf(e, "LUN takes a number and a device name, as in \"LUN 0 disk1\"")
		return
	}
	if _, err := config.ParseLUN(e.Args[0]); err != nil {
		c.errorf(e, "LUN: %v; expected a number from 0 to %d", err, config.MaxLUN)
		return
	}
	dev := e.Args[1]
	info, declared := c.devices[dev]
	switch {
	case !declared:
		c.keep(owner, e, fmt.Sprintf("no HANDLER section declares the device %s", printable(dev)))
		return
	case !supported(info.handler):
		c.keep(owner, e, fmt.Sprintf("the device %s is one of handler %s, which scstd does not have", printable(dev), info.handler))
		return
	}
	l := owner.block("lun", e.Args[0])
	l.order = []string{"device", "read_only"}
	l.set("device", str(dev))
	for _, a := range e.Section {
		if a.Name == "read_only" && !a.HasSection {
			if v, ok := c.value(a, kindFlag); ok {
				l.set("read_only", v)
			}
			continue
		}
		c.keep(l, a, reasonFor(a.Name))
	}
}

// group converts "GROUP name { LUN ...; INITIATOR ... }".
func (c *converter) group(t *node, e *Entry) {
	if len(e.Args) != 1 {
		c.errorf(e, "GROUP takes one group name")
		return
	}
	var initiators []*Entry
	for _, a := range e.Section {
		if a.Name == "INITIATOR" {
			initiators = append(initiators, a)
		}
	}
	if len(initiators) == 0 {
		c.keep(t, e, "a group without INITIATOR entries matches no initiator, and scstd needs initiators in a group")
		return
	}
	g := t.block("group", e.Args[0])
	var patterns []string
	for _, a := range e.Section {
		switch a.Name {
		case "INITIATOR":
			if len(a.Args) != 1 {
				c.errorf(a, "INITIATOR takes one initiator name or pattern")
				continue
			}
			patterns = append(patterns, a.Args[0])
			for _, ia := range a.Section {
				c.keep(g, ia, "SCST per-initiator attribute; "+reasonFor(ia.Name))
			}
		case "LUN":
			c.lun(g, a)
		default:
			c.keep(g, a, reasonFor(a.Name))
		}
	}
	g.set("initiators", strList(patterns))
}

// summary adds the notes that concern the whole file.
func (c *converter) summary() {
	if len(c.inline) > 0 {
		lines := make([]string, len(c.inline))
		for i, l := range c.inline {
			lines[i] = strconv.Itoa(l)
		}
		c.notes = append(c.notes, Note{File: c.file, Line: c.inline[0], EndLine: c.inline[0], What: "CHAP secrets",
			Msg: fmt.Sprintf("%d secret(s) kept inline (lines %s), as scst.conf had them: keep the output out of git, or use -secrets-dir to move them to files", len(c.inline), strings.Join(lines, ", "))})
	}
	if len(c.noIdent) > 0 {
		first := c.devices[c.noIdent[0]].line
		c.notes = append(c.notes, Note{File: c.file, Line: first, EndLine: first, What: "device identity",
			Msg: fmt.Sprintf("no usn or t10_dev_id for %s: SCST derives them from the name and setup_id, scstd from the name alone (and its NAA designator from a seed of its own), so initiators (multipath, VMware) will see new devices; copy usn, t10_dev_id and naa_id from /sys/kernel/scst_tgt/devices/NAME/ (or write scst.conf with `scstadmin -write_config FILE -nonkey`) to keep them",
				strings.Join(c.noIdent, ", "))})
	}
}
