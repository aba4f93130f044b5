package config

import (
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/internal/hctl"
)

var rootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "disruptive_changes"}, {Name: "log_level"},
		{Name: "state_dir"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "iscsi"},
		{Type: "handler", LabelNames: []string{"name"}},
		{Type: "target", LabelNames: []string{"name"}},
		{Type: "cluster"},
		{Type: "device_group", LabelNames: []string{"name"}},
		{Type: "metrics"},
	},
}

var iscsiSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "enabled"}, {Name: "portals"}, {Name: "max_connections"},
		{Name: "max_connections_per_address"}, {Name: "login_timeout"}, {Name: "discovery_idle_timeout"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "isns_server", LabelNames: []string{"address"}},
		{Type: "incoming_user", LabelNames: []string{"name"}},
		{Type: "outgoing_user", LabelNames: []string{"name"}},
	},
}

var isnsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "access_control"}},
}

var userSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "secret", Required: true}},
}

var handlerSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "device", LabelNames: []string{"name"}}},
}

var deviceSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "filename"}, {Name: "size"}, {Name: "blocksize"}, {Name: "nv_cache"},
		{Name: "write_through"}, {Name: "o_direct"}, {Name: "read_only"},
		{Name: "removable"}, {Name: "t10_dev_id"}, {Name: "usn"},
		{Name: "path"}, {Name: "timeout"},
		{Name: "naa_id"},
	},
}

// deviceAttrs lists, per handler, the device attributes that mean something
// for it; the others are rejected rather than ignored.
var deviceAttrs = map[Handler][]string{
	HandlerFileIO:  {"filename", "size", "blocksize", "nv_cache", "write_through", "o_direct", "read_only", "removable", "t10_dev_id", "usn", "naa_id"},
	HandlerBlockIO: {"filename", "blocksize", "nv_cache", "write_through", "read_only", "removable", "t10_dev_id", "usn", "naa_id"},
	HandlerNullIO:  {"size", "blocksize", "read_only", "removable", "t10_dev_id", "usn", "naa_id"},
	HandlerCDROM:   {"filename", "blocksize", "t10_dev_id", "usn", "naa_id"},
	HandlerDevDisk: {"path", "timeout", "read_only"},
}

var targetSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "enabled"}, {Name: "header_digest"}, {Name: "data_digest"},
		{Name: "immediate_data"}, {Name: "initial_r2t"},
		{Name: "max_recv_data_segment_length"}, {Name: "max_xmit_data_segment_length"},
		{Name: "max_burst_length"}, {Name: "first_burst_length"}, {Name: "max_outstanding_r2t"},
		{Name: "queued_commands"}, {Name: "nop_in_interval"}, {Name: "nop_in_timeout"},
		{Name: "rsp_timeout"}, {Name: "allowed_portals"}, {Name: "per_portal_acl"},
		{Name: "redirect"}, {Name: "rel_tgt_id"}, {Name: "chap_algorithms"}, {Name: "max_sessions"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "incoming_user", LabelNames: []string{"name"}},
		{Type: "outgoing_user", LabelNames: []string{"name"}},
		{Type: "lun", LabelNames: []string{"number"}},
		{Type: "group", LabelNames: []string{"name"}},
	},
}

var lunSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "device", Required: true}, {Name: "read_only"}},
}

var groupSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "initiators"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "lun", LabelNames: []string{"number"}}},
}

// decoder turns file bodies into one Config, collecting diagnostics.
type decoder struct {
	cfg       *Config
	lookupEnv func(string) (string, bool)
	ctx       *hcl.EvalContext
	dir       string
	diags     hcl.Diagnostics
	// fast holds the device and LUN blocks that parseFastItems left out
	// of the bodies of handler and target blocks; each is decoded in its
	// place in the source among the blocks of the tree.
	fast map[*hclsyntax.Body]*fastItems
	// item is the fastBlock being decoded, scratch its attributes.
	item    fastBlock
	scratch []hcl.Attribute
	ptrs    []*hcl.Attribute
}

func newDecoder(lookupEnv func(string) (string, bool)) *decoder {
	return &decoder{
		cfg:       &Config{DisruptiveChanges: DisruptiveRefuse, StateDir: DefaultStateDir, Attrs: map[string]hcl.Range{}},
		lookupEnv: lookupEnv,
	}
}

func (d *decoder) errorf(subject hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, diagf(hcl.DiagError, subject, summary, format, args...))
}

func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	return c
}

// attributes returns the attributes of a body whose schema has no blocks,
// in source order, as sortedAttrs(Content(schema).Attributes) would.
// For a body of hclsyntax's with nothing Content would complain of (the
// common case) it skips Content's map; otherwise Content reports.
func (d *decoder) attributes(body hcl.Body, schema *hcl.BodySchema) []*hcl.Attribute {
	if sb, ok := body.(*hclsyntax.Body); ok && len(sb.Blocks) == 0 {
		if out := fittingAttributes(sb, schema); out != nil {
			return out
		}
	}
	return sortedAttrs(d.content(body, schema).Attributes)
}

// fittingAttributes returns body's attributes in source order when they
// are all in schema and those it requires all present, and nil otherwise.
func fittingAttributes(body *hclsyntax.Body, schema *hcl.BodySchema) []*hcl.Attribute {
	for _, s := range schema.Attributes {
		if s.Required && body.Attributes[s.Name] == nil {
			return nil
		}
	}
	vals := make([]hcl.Attribute, 0, len(body.Attributes))
	for _, a := range body.Attributes {
		if !slices.ContainsFunc(schema.Attributes, func(s hcl.AttributeSchema) bool { return s.Name == a.Name }) {
			return nil
		}
		vals = append(vals, hcl.Attribute{Name: a.Name, Expr: a.Expr, Range: a.SrcRange, NameRange: a.NameRange})
	}
	if len(vals) > 1 {
		slices.SortFunc(vals, func(a, b hcl.Attribute) int { return a.Range.Start.Byte - b.Range.Start.Byte })
	}
	out := make([]*hcl.Attribute, len(vals))
	for k := range vals {
		out[k] = &vals[k]
	}
	return out
}

// file decodes one parsed file into the configuration.
func (d *decoder) file(f *hcl.File, dir string) {
	d.dir = dir
	d.ctx = evalContext(dir, d.lookupEnv)
	c := d.content(f.Body, rootSchema)
	if a, ok := c.Attributes["disruptive_changes"]; ok {
		if prev, dup := d.cfg.Attrs[a.Name]; dup {
			d.duplicate(a.NameRange, "Duplicate attribute", fmt.Sprintf("disruptive_changes is also set at %s.", at(prev)))
		} else if s, ok := d.str(a); ok {
			switch p := DisruptivePolicy(s); p {
			case DisruptiveAllow, DisruptiveRefuse:
				d.cfg.DisruptiveChanges = p
				d.cfg.Attrs[a.Name] = a.Range
			default:
				d.errorf(a.Expr.Range(), "Invalid disruptive_changes", "Expected \"allow\" or \"refuse\", got %q.", s)
			}
		}
	}
	if a, ok := c.Attributes["log_level"]; ok {
		d.logLevel(a)
	}
	if a, ok := c.Attributes["state_dir"]; ok {
		d.stateDir(a)
	}
	for _, b := range c.Blocks {
		switch b.Type {
		case "iscsi":
			d.iscsi(b)
		case "handler":
			d.handler(b)
		case "target":
			d.target(b)
		case "cluster":
			d.cluster(b)
		case "device_group":
			d.deviceGroup(b)
		case "metrics":
			d.metrics(b)
		}
	}
}

// logLevel decodes the top-level log_level.
func (d *decoder) logLevel(a *hcl.Attribute) {
	if prev, dup := d.cfg.Attrs[a.Name]; dup {
		d.duplicate(a.NameRange, "Duplicate attribute", fmt.Sprintf("log_level is also set at %s.", at(prev)))
		return
	}
	s, ok := d.str(a)
	if !ok {
		return
	}
	if !slices.Contains(LogLevels, LogLevel(s)) {
		hint := ""
		switch strings.ToLower(s) {
		case "debug", "info", "warn", "error":
			hint = fmt.Sprintf(" Did you mean %q?", strings.ToLower(s))
		case "warning":
			hint = ` Did you mean "warn"?`
		case "trace", "verbose", "all":
			hint = ` The most verbose level is "debug".`
		}
		d.errorf(a.Expr.Range(), "Invalid log_level", "Expected \"debug\", \"info\", \"warn\" or \"error\", got %q.%s", s, hint)
		return
	}
	d.cfg.LogLevel = LogLevel(s)
	d.cfg.Attrs[a.Name] = a.Range
}

// finish fills the defaults of what no file set and returns the Config.
func (d *decoder) finish() *Config {
	if d.cfg.ISCSI == nil {
		d.cfg.ISCSI = newISCSI(hcl.Range{})
	}
	if len(d.cfg.ISCSI.Portals) == 0 {
		d.cfg.ISCSI.Portals = []Portal{{Addr: access.MustHostPort(DefaultPortal, access.ISCSIPort), Range: d.cfg.ISCSI.DeclRange}}
	}
	return d.cfg
}

func (d *decoder) duplicate(subject hcl.Range, summary, detail string) {
	d.errorf(subject, summary, "%s", detail)
}

// at formats a range as "file:line" for "also declared at" messages.
func at(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

func (d *decoder) iscsi(b *hcl.Block) {
	if prev := d.cfg.ISCSI; prev != nil {
		d.duplicate(b.DefRange, "Duplicate iscsi block", fmt.Sprintf("Only one iscsi block is allowed; it is also declared at %s.", at(prev.DeclRange)))
		return
	}
	i := newISCSI(b.DefRange)
	d.cfg.ISCSI = i
	c := d.content(b.Body, iscsiSchema)
	for name, a := range c.Attributes {
		i.Attrs[name] = a.Range
	}
	if a, ok := c.Attributes["enabled"]; ok {
		i.Enabled, _ = d.boolean(a)
	}
	if a, ok := c.Attributes["portals"]; ok {
		list, ranges, ok := d.strList(a)
		if ok && len(list) == 0 {
			d.errorf(a.Expr.Range(), "No portals", "Expected at least one listen address such as \"0.0.0.0:3260\"; to turn iSCSI off set enabled = false.")
		}
		for k, s := range list {
			addr, err := access.ParseHostPort(s, access.ISCSIPort)
			if err != nil {
				d.errorf(ranges[k], "Invalid portal", "%v. Expected \"host:port\", with an IPv6 host in brackets (\"[::]:3260\").", err)
				continue
			}
			i.Portals = append(i.Portals, Portal{Addr: addr, Range: ranges[k]})
		}
	}
	for _, a := range sortedAttrs(c.Attributes) {
		spec, ok := iscsiInts[a.Name]
		if !ok {
			continue
		}
		n, ok := d.intIn(a, spec.min, spec.max)
		if !ok {
			continue
		}
		switch a.Name {
		case "max_connections":
			i.MaxConnections = int(n)
		case "max_connections_per_address":
			i.MaxConnectionsPerAddress = int(n)
		case "login_timeout":
			i.LoginTimeout = time.Duration(n) * time.Second
		case "discovery_idle_timeout":
			i.DiscoveryIdleTimeout = time.Duration(n) * time.Second
		}
	}
	for _, cb := range c.Blocks {
		switch cb.Type {
		case "isns_server":
			addr, err := access.ParseHostPort(cb.Labels[0], access.ISNSPort)
			if err != nil {
				d.errorf(cb.LabelRanges[0], "Invalid iSNS server address", "%v. Expected \"host[:port]\", with an IPv6 host in brackets.", err)
				continue
			}
			s := &ISNSServer{Addr: addr, DeclRange: cb.DefRange, Attrs: map[string]hcl.Range{}}
			sc := d.content(cb.Body, isnsSchema)
			if a, ok := sc.Attributes["access_control"]; ok {
				s.Attrs[a.Name] = a.Range
				s.AccessControl, _ = d.boolean(a)
			}
			i.ISNSServers = append(i.ISNSServers, s)
		case "incoming_user", "outgoing_user":
			d.userBlock(cb, &i.IncomingUsers, &i.OutgoingUser, "")
		}
	}
}

// newISCSI returns an iscsi block declared at r with every default.
func newISCSI(r hcl.Range) *ISCSI {
	return &ISCSI{
		Enabled:                  true,
		MaxConnections:           DefaultMaxConnections,
		MaxConnectionsPerAddress: DefaultMaxConnectionsPerAddress,
		LoginTimeout:             DefaultLoginTimeout,
		DiscoveryIdleTimeout:     DefaultDiscoveryIdleTimeout,
		DeclRange:                r,
		Attrs:                    map[string]hcl.Range{},
	}
}

// iscsiInts are the integer attributes of the iscsi block.
var iscsiInts = map[string]intAttr{
	"max_connections":             {min: 1, max: 1 << 20},
	"max_connections_per_address": {min: 1, max: 1 << 20},
	"login_timeout":               {min: 1, max: 3600},
	"discovery_idle_timeout":      {min: 1, max: 86400},
}

// userBlock decodes an incoming_user block into in, or the one
// outgoing_user block of its scope into out; per says what the scope is
// in the message about a second outgoing_user (" per target").
func (d *decoder) userBlock(b *hcl.Block, in *[]*User, out **User, per string) {
	if b.Type == "incoming_user" {
		if u := d.user(b); u != nil {
			*in = append(*in, u)
		}
		return
	}
	if *out != nil {
		d.duplicate(b.DefRange, "Duplicate outgoing_user", fmt.Sprintf("Only one outgoing_user is allowed%s; it is also declared at %s.", per, at((*out).DeclRange)))
		return
	}
	*out = d.user(b)
}

func (d *decoder) user(b *hcl.Block) *User {
	c := d.content(b.Body, userSchema)
	a, ok := c.Attributes["secret"]
	if !ok {
		return nil
	}
	s, ok := d.str(a)
	if !ok {
		return nil
	}
	return &User{Name: b.Labels[0], Secret: NewSecret(s), DeclRange: b.DefRange, NameRange: b.LabelRanges[0]}
}

func (d *decoder) handler(b *hcl.Block) {
	h := Handler(b.Labels[0])
	attrs, known := deviceAttrs[h]
	if !known {
		d.errorf(b.LabelRanges[0], "Unknown handler", "There is no handler %q. Expected one of %s.", h, quotedList(Handlers))
		// Decode its devices anyway, checking their attributes and keeping
		// LUNs that name them from being reported as dangling.
		attrs = deviceAttrs[HandlerFileIO]
	}
	c := d.content(b.Body, handlerSchema)
	d.blocks(b.Body, c.Blocks, func(db *hcl.Block) {
		d.device(h, attrs, d.newDevice(h, db.Labels[0], db.DefRange, db.LabelRanges[0]), d.attributes(db.Body, deviceSchema))
	}, func(fb *fastBlock) {
		d.device(h, attrs, d.newDevice(h, fb.label, fb.defRange(), fb.labelRange), d.fastAttributes(fb))
	})
}

// blocks calls slow for each block of c (the Content of body) and fast
// for each block that parseFastItems left out of body, in source order.
// The fastBlock is valid until the next call of fast.
func (d *decoder) blocks(body hcl.Body, c []*hcl.Block, slow func(*hcl.Block), fast func(*fastBlock)) {
	var items *fastItems
	if sb, ok := body.(*hclsyntax.Body); ok {
		items = d.fast[sb]
	}
	k := 0
	for items != nil && k < len(items.marks) || len(c) > 0 {
		if items == nil || k == len(items.marks) || len(c) > 0 && c[0].DefRange.Start.Byte < int(items.marks[k].at) {
			slow(c[0])
			c = c[1:]
			continue
		}
		if items.block(k, &d.item) {
			fast(&d.item)
		} else {
			d.errorf(items.markRange(k), "Internal error", "This block parsed once but not when decoded; the configuration is not applied. Please report it with the file.")
		}
		k++
	}
}

// fastAttributes returns b's attributes as attributes would, in
// d.scratch: they are valid until the next call.
func (d *decoder) fastAttributes(b *fastBlock) []*hcl.Attribute {
	d.scratch, d.ptrs = d.scratch[:0], d.ptrs[:0]
	for k := range b.attrs {
		d.scratch = append(d.scratch, b.attrs[k].attribute())
	}
	for k := range d.scratch {
		d.ptrs = append(d.ptrs, &d.scratch[k])
	}
	return d.ptrs
}

// newDevice returns the device name of handler h with its defaults.
func (d *decoder) newDevice(h Handler, name string, decl, nameRange hcl.Range) *Device {
	dev := &Device{
		Name: name, Handler: h, BlockSize: DefaultBlockSize, T10DevID: name, USN: defaultUSN(name),
		DeclRange: decl, NameRange: nameRange,
	}
	switch h {
	case HandlerCDROM:
		dev.BlockSize = 2048
		dev.ReadOnly = true
		dev.Removable = true
	case HandlerDevDisk:
		// Identity and block size are the real disk's.
		dev.BlockSize, dev.T10DevID, dev.USN = 0, "", ""
		dev.Timeout = DefaultDevDiskTimeout
		if hctl.Valid(name) {
			dev.Path = name
		}
	}
	return dev
}

// device decodes the attributes of dev, a device of handler h, which
// takes those allowed, and adds it to the configuration.
func (d *decoder) device(h Handler, allowed []string, dev *Device, attrs []*hcl.Attribute) {
	dev.Attrs = make(AttrRanges, 0, len(attrs))
	for _, a := range attrs {
		if !slices.Contains(allowed, a.Name) {
			d.errorf(a.NameRange, "Attribute not valid for this handler", "%s devices do not take %q. Expected one of: %s.", h, a.Name, joinNames(allowed))
			continue
		}
		dev.Attrs = append(dev.Attrs, AttrRange{Name: a.Name, Range: a.Range})
		switch a.Name {
		case "filename":
			if s, ok := d.str(a); ok {
				if s == "" && h != HandlerCDROM {
					d.errorf(a.Expr.Range(), "Empty filename", "Expected the path of the backing file; remove the attribute for none.")
				} else if s != "" && !filepath.IsAbs(s) {
					s = absPath(d.dir, s)
				}
				dev.Filename = s
			}
		case "size":
			if s, ok := d.str(a); ok {
				n, err := ParseSize(s)
				if err != nil {
					d.errorf(a.Expr.Range(), "Invalid size", "%v. Expected a byte count with an optional unit, such as \"4096\", \"512MiB\", \"10GiB\" or \"1TB\".", err)
				} else {
					dev.Size = Size{Bytes: n, Text: s}
				}
			}
		case "blocksize":
			if n, ok := d.integer(a); ok {
				switch {
				case h == HandlerCDROM && n != 2048:
					d.errorf(a.Expr.Range(), "Invalid blocksize", "A vcdrom device has 2048-byte blocks (MMC); got %d. Remove blocksize or set it to 2048.", n)
				case n == 512, n == 1024, n == 2048, n == 4096:
					dev.BlockSize = int(n)
				default:
					d.errorf(a.Expr.Range(), "Invalid blocksize", "Expected 512, 1024, 2048 or 4096, got %d.", n)
				}
			}
		case "nv_cache":
			dev.NVCache, _ = d.boolean(a)
		case "write_through":
			dev.WriteThrough, _ = d.boolean(a)
		case "o_direct":
			dev.ODirect, _ = d.boolean(a)
		case "read_only":
			dev.ReadOnly, _ = d.boolean(a)
		case "removable":
			dev.Removable, _ = d.boolean(a)
		case "t10_dev_id":
			if s, ok := d.str(a); ok {
				dev.T10DevID = s
			}
		case "usn":
			if s, ok := d.str(a); ok {
				dev.USN = s
			}
		case "naa_id":
			if s, ok := d.naaID(a); ok {
				dev.NAAID = s
			}
		case "path":
			if s, ok := d.str(a); ok {
				if !filepath.IsAbs(s) && !hctl.Valid(s) {
					d.errorf(a.Expr.Range(), "Invalid path", "%q is neither an absolute device node path (\"/dev/sg2\") nor a SCSI address H:C:T:L (\"0:0:1:0\", as lsscsi prints it).", s)
					continue
				}
				dev.Path = s
			}
		case "timeout":
			if n, ok := d.intIn(a, 1, 65535); ok {
				dev.Timeout = time.Duration(n) * time.Second
			}
		}
	}
	d.cfg.Devices = append(d.cfg.Devices, dev)
}

// absPath resolves the relative path p against dir and makes it absolute,
// so that the engine's view does not depend on its working directory.
func absPath(dir, p string) string {
	j := filepath.Join(dir, p)
	if a, err := filepath.Abs(j); err == nil {
		return a
	}
	return j
}

// defaultUSN derives a stable unit serial number from a device name: its
// FNV-1a hash in 8 hex digits.
func defaultUSN(name string) string {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * prime32
	}
	var b [8]byte
	for k := range b {
		b[k] = "0123456789abcdef"[h>>(28-4*k)&0xf]
	}
	return string(b[:])
}

// intAttr is the allowed range of an integer target attribute.
type intAttr struct {
	min, max int64
}

var targetInts = map[string]intAttr{
	"max_recv_data_segment_length": {min: 512, max: 16777215},
	"max_xmit_data_segment_length": {min: 512, max: 16777215},
	"max_burst_length":             {min: 512, max: 16777215},
	"first_burst_length":           {min: 512, max: 16777215},
	"max_outstanding_r2t":          {min: 1, max: 65535},
	"queued_commands":              {min: 1, max: 2048},
	"nop_in_interval":              {min: 0, max: 65535},
	"nop_in_timeout":               {min: 1, max: 65535},
	"rsp_timeout":                  {min: 1, max: 65535},
	"rel_tgt_id":                   {min: 0, max: 65535},
	"max_sessions":                 {min: 0, max: 65535},
}

func (d *decoder) target(b *hcl.Block) {
	t := NewTarget(b.Labels[0])
	t.DeclRange, t.NameRange = b.DefRange, b.LabelRanges[0]
	c := d.content(b.Body, targetSchema)
	for _, a := range sortedAttrs(c.Attributes) {
		t.Attrs[a.Name] = a.Range
		if spec, ok := targetInts[a.Name]; ok {
			n, ok := d.intIn(a, spec.min, spec.max)
			if !ok {
				continue
			}
			d.setTargetInt(t, a.Name, n)
			continue
		}
		switch a.Name {
		case "enabled":
			t.Enabled, _ = d.boolean(a)
		case "immediate_data":
			t.ImmediateData, _ = d.boolean(a)
		case "initial_r2t":
			t.InitialR2T, _ = d.boolean(a)
		case "per_portal_acl":
			t.PerPortalACL, _ = d.boolean(a)
		case "header_digest":
			t.HeaderDigest = d.digests(a)
		case "data_digest":
			t.DataDigest = d.digests(a)
		case "chap_algorithms":
			t.CHAPAlgorithms = d.chapAlgorithms(a)
		case "allowed_portals":
			t.AllowedPortals = d.patterns(a, "portal address")
		case "redirect":
			s, ok := d.str(a)
			if !ok || s == "" {
				continue
			}
			r, err := access.ParseRedirect(s)
			if err != nil {
				d.errorf(a.Expr.Range(), "Invalid redirect", "%v. Expected \"address[:port] temp\" or \"address[:port] perm\", with an IPv6 address in brackets.", err)
				continue
			}
			t.Redirect = r
		}
	}
	d.blocks(b.Body, c.Blocks, func(cb *hcl.Block) {
		switch cb.Type {
		case "incoming_user", "outgoing_user":
			d.userBlock(cb, &t.IncomingUsers, &t.OutgoingUser, " per target")
		case "lun":
			if l := d.lun(cb); l != nil {
				t.LUNs = append(t.LUNs, l)
			}
		case "group":
			t.Groups = append(t.Groups, d.group(cb))
		}
	}, func(fb *fastBlock) {
		if l := d.lunOf(fb.label, fb.defRange(), fb.labelRange, func() []*hcl.Attribute { return d.fastAttributes(fb) }); l != nil {
			t.LUNs = append(t.LUNs, l)
		}
	})
	d.cfg.Targets = append(d.cfg.Targets, t)
}

// NewTarget returns a target named name with every default filled in.
func NewTarget(name string) *Target {
	return &Target{
		Name:                     name,
		Enabled:                  true,
		HeaderDigest:             []access.Digest{access.DigestNone},
		DataDigest:               []access.Digest{access.DigestNone},
		ImmediateData:            true,
		InitialR2T:               false,
		MaxRecvDataSegmentLength: DefaultMaxRecvDataSegmentLength,
		MaxXmitDataSegmentLength: DefaultMaxXmitDataSegmentLength,
		MaxBurstLength:           DefaultMaxBurstLength,
		FirstBurstLength:         DefaultFirstBurstLength,
		MaxOutstandingR2T:        DefaultMaxOutstandingR2T,
		QueuedCommands:           DefaultQueuedCommands,
		NopInInterval:            DefaultNopInInterval,
		NopInTimeout:             DefaultNopInTimeout,
		RspTimeout:               DefaultRspTimeout,
		MaxSessions:              DefaultMaxSessions,
		CHAPAlgorithms:           slices.Clone(access.DefaultCHAPAlgorithms),
		Attrs:                    map[string]hcl.Range{},
	}
}

func (d *decoder) setTargetInt(t *Target, name string, n int64) {
	switch name {
	case "max_recv_data_segment_length":
		t.MaxRecvDataSegmentLength = int(n)
	case "max_xmit_data_segment_length":
		t.MaxXmitDataSegmentLength = int(n)
	case "max_burst_length":
		t.MaxBurstLength = int(n)
	case "first_burst_length":
		t.FirstBurstLength = int(n)
	case "max_outstanding_r2t":
		t.MaxOutstandingR2T = int(n)
	case "queued_commands":
		t.QueuedCommands = int(n)
	case "nop_in_interval":
		t.NopInInterval = time.Duration(n) * time.Second
	case "nop_in_timeout":
		t.NopInTimeout = time.Duration(n) * time.Second
	case "rsp_timeout":
		t.RspTimeout = time.Duration(n) * time.Second
	case "rel_tgt_id":
		t.RelTgtID = int(n)
	case "max_sessions":
		t.MaxSessions = int(n)
	}
}

func (d *decoder) lun(b *hcl.Block) *LUN {
	return d.lunOf(b.Labels[0], b.DefRange, b.LabelRanges[0], func() []*hcl.Attribute { return d.attributes(b.Body, lunSchema) })
}

// lunOf decodes a lun block labelled label; attrs returns its attributes
// (and reports what is wrong with them) once the label is a LUN number.
func (d *decoder) lunOf(label string, decl, numberRange hcl.Range, attrs func() []*hcl.Attribute) *LUN {
	n, err := ParseLUN(label)
	if err != nil {
		d.errorf(numberRange, "Invalid LUN number", "%v. Expected a whole number from 0 to %d.", err, MaxLUN)
		return nil
	}
	l := &LUN{Number: n, DeclRange: decl, NumberRange: numberRange}
	var device, readOnly *hcl.Attribute
	for _, a := range attrs() {
		switch a.Name {
		case "device":
			device = a
		case "read_only":
			readOnly = a
		}
	}
	if device != nil && readOnly != nil {
		l.Attrs = make(AttrRanges, 0, 2)
	}
	if a := device; a != nil {
		l.Attrs = append(l.Attrs, AttrRange{Name: a.Name, Range: a.Range})
		if s, ok := d.str(a); ok {
			l.Device = s
		}
	}
	if a := readOnly; a != nil {
		l.Attrs = append(l.Attrs, AttrRange{Name: a.Name, Range: a.Range})
		l.ReadOnly, _ = d.boolean(a)
	}
	if l.Device == "" {
		return nil
	}
	return l
}

func (d *decoder) group(b *hcl.Block) *Group {
	g := &Group{Name: b.Labels[0], DeclRange: b.DefRange, NameRange: b.LabelRanges[0], Attrs: map[string]hcl.Range{}}
	c := d.content(b.Body, groupSchema)
	if a, ok := c.Attributes["initiators"]; ok {
		g.Attrs[a.Name] = a.Range
		g.Initiators = d.patterns(a, "initiator name")
	}
	for _, lb := range c.Blocks {
		if l := d.lun(lb); l != nil {
			g.LUNs = append(g.LUNs, l)
		}
	}
	return g
}

// distinctList decodes a non-empty list of distinct values, each parsed
// by parse: what names one value in the summaries ("digest"); atLeast and
// oneOf say in the details which values there are.
func distinctList[T comparable](d *decoder, a *hcl.Attribute, what string, parse func(string) (T, error), atLeast, oneOf string) []T {
	list, ranges, ok := d.strList(a)
	if !ok {
		return nil
	}
	if len(list) == 0 {
		d.errorf(a.Expr.Range(), "No "+what, "Expected %s.", atLeast)
		return nil
	}
	var out []T
	for k, s := range list {
		v, err := parse(s)
		switch {
		case err != nil:
			d.errorf(ranges[k], "Invalid "+what, "Expected %s, got %q.", oneOf, s)
		case slices.Contains(out, v):
			d.errorf(ranges[k], "Duplicate "+what, "%q is listed twice.", s)
		default:
			out = append(out, v)
		}
	}
	return out
}

func (d *decoder) digests(a *hcl.Attribute) []access.Digest {
	return distinctList(d, a, "digest", access.ParseDigest,
		`at least one of "CRC32C" and "None"`, `"CRC32C" or "None"`)
}

func (d *decoder) chapAlgorithms(a *hcl.Attribute) []access.CHAPAlgorithm {
	return distinctList(d, a, "CHAP algorithm", access.ParseCHAPAlgorithm,
		`at least one of "SHA3-256", "SHA-256", "SHA-1" and "MD5"`, `one of "SHA3-256", "SHA-256", "SHA-1" and "MD5"`)
}

// patterns decodes a list of wildcard patterns (package access): none
// may be empty or a bare "!", nor hold a control character.
func (d *decoder) patterns(a *hcl.Attribute, what string) access.Patterns {
	list, ranges, ok := d.strList(a)
	if !ok {
		return nil
	}
	if len(list) == 0 {
		d.errorf(a.Expr.Range(), "Empty pattern list", "Expected at least one %s pattern; remove the attribute to allow every %s.", what, what)
		return nil
	}
	out := make(access.Patterns, 0, len(list))
	for k, s := range list {
		p, err := access.ParsePattern(s)
		switch {
		case errors.Is(err, access.ErrEmptyPattern):
			d.errorf(ranges[k], "Empty pattern", "Each %s pattern must match something (using \"*\", \"?\", and a leading \"!\" to exclude), got %q.", what, s)
		case err != nil:
			d.errorf(ranges[k], "Invalid pattern", "%v. Expected the %s itself, with \"*\", \"?\", and a leading \"!\" to exclude.", err, what)
		default:
			out = append(out, p)
		}
	}
	return out
}

// eval evaluates a's expression, which must not be null.
func (d *decoder) eval(a *hcl.Attribute) (cty.Value, bool) {
	if v, ok := literal(a.Expr); ok {
		return v, true
	}
	v, diags := a.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		d.errorf(a.Expr.Range(), "Null value", "The attribute %q needs a value; remove it to use the default.", a.Name)
		return cty.NilVal, false
	}
	return v, true
}

// literal returns the value of a literal that is neither null nor
// unknown (a number, true, false, or a quoted string with no template
// sequence), as Expr.Value would, without evaluating it: most attributes
// of a large configuration are such literals.
func literal(e hcl.Expression) (cty.Value, bool) {
	if l, ok := e.(*fastLit); ok {
		return l.value(), true
	}
	if t, ok := e.(*hclsyntax.TemplateExpr); ok && len(t.Parts) == 1 {
		e = t.Parts[0]
		if l, ok := e.(*hclsyntax.LiteralValueExpr); !ok || l.Val.Type() != cty.String {
			return cty.NilVal, false
		}
	}
	l, ok := e.(*hclsyntax.LiteralValueExpr)
	if !ok || l.Val.IsNull() || !l.Val.IsKnown() || l.Val.IsMarked() {
		return cty.NilVal, false
	}
	return l.Val, true
}

func (d *decoder) convert(a *hcl.Attribute, v cty.Value, ty cty.Type, expected string) (cty.Value, bool) {
	c, err := convert.Convert(v, ty)
	if err != nil {
		d.errorf(a.Expr.Range(), "Incorrect attribute value type", "The attribute %q must be %s.", a.Name, expected)
		return cty.NilVal, false
	}
	return c, true
}

func (d *decoder) str(a *hcl.Attribute) (string, bool) {
	if l, ok := a.Expr.(*fastLit); ok && l.isStr {
		return l.text, true
	}
	v, ok := d.eval(a)
	if !ok {
		return "", false
	}
	if v, ok = d.convert(a, v, cty.String, "a string"); !ok {
		return "", false
	}
	return v.AsString(), true
}

func (d *decoder) boolean(a *hcl.Attribute) (bool, bool) {
	v, ok := d.eval(a)
	if !ok {
		return false, false
	}
	if v, ok = d.convert(a, v, cty.Bool, "true or false"); !ok {
		return false, false
	}
	return v.True(), true
}

func (d *decoder) integer(a *hcl.Attribute) (int64, bool) {
	v, ok := d.eval(a)
	if !ok {
		return 0, false
	}
	if v, ok = d.convert(a, v, cty.Number, "a whole number"); !ok {
		return 0, false
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	switch {
	case !bf.IsInt():
		d.errorf(a.Expr.Range(), "Incorrect attribute value type", "The attribute %q must be a whole number, got %s.", a.Name, bf.Text('g', 10))
		return 0, false
	case acc != big.Exact:
		d.errorf(a.Expr.Range(), "Value out of range", "The attribute %q is far out of range, got %s.", a.Name, bf.Text('g', 10))
		return 0, false
	}
	return n, true
}

func (d *decoder) intIn(a *hcl.Attribute, lo, hi int64) (int64, bool) {
	n, ok := d.integer(a)
	if !ok {
		return 0, false
	}
	if n < lo || n > hi {
		d.errorf(a.Expr.Range(), "Value out of range", "The attribute %q must be from %d to %d, got %d.", a.Name, lo, hi, n)
		return 0, false
	}
	return n, true
}

// strList decodes a list of strings and returns each element's range (the
// whole expression's range when the elements are not written literally).
func (d *decoder) strList(a *hcl.Attribute) ([]string, []hcl.Range, bool) {
	v, ok := d.eval(a)
	if !ok {
		return nil, nil, false
	}
	if !v.Type().IsListType() && !v.Type().IsTupleType() && !v.Type().IsSetType() {
		d.errorf(a.Expr.Range(), "Incorrect attribute value type", "The attribute %q must be a list of strings, such as [\"a\", \"b\"].", a.Name)
		return nil, nil, false
	}
	if v, ok = d.convert(a, v, cty.List(cty.String), "a list of strings, such as [\"a\", \"b\"]"); !ok {
		return nil, nil, false
	}
	var elems []hclsyntax.Expression
	if tc, isTuple := a.Expr.(*hclsyntax.TupleConsExpr); isTuple {
		elems = tc.Exprs
	}
	out := make([]string, 0, v.LengthInt())
	ranges := make([]hcl.Range, 0, v.LengthInt())
	for k, e := range v.AsValueSlice() {
		if e.IsNull() {
			d.errorf(a.Expr.Range(), "Null value", "The list %q must not contain null.", a.Name)
			return nil, nil, false
		}
		out = append(out, e.AsString())
		if len(elems) == v.LengthInt() {
			ranges = append(ranges, elems[k].Range())
		} else {
			ranges = append(ranges, a.Expr.Range())
		}
	}
	return out, ranges, true
}
