package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/internal/hctl"
)

// Validate checks the rules that span objects: unique names, references,
// LUN maps, CHAP secrets and negotiation limits that depend on each other.
// Load runs it; it only reads c. It does not look at the file system (see
// CheckStorage).
func (c *Config) Validate() hcl.Diagnostics {
	v := &validator{}
	v.iscsi(c.ISCSI)
	v.metrics(c.Metrics, c.ISCSI.Portals)
	devices := make(map[string]*Device, len(c.Devices))
	paths := map[string]*Device{}
	for _, d := range c.Devices {
		if d.Path != "" {
			if prev, dup := paths[d.Path]; dup {
				v.errorf(d.Range("path"), "Disk passed through twice", "%s is also the disk of device %q at %s; one disk can back one dev_disk device.", d.Path, prev.Name, at(prev.Range("path")))
			} else {
				paths[d.Path] = d
			}
		}
		if prev, dup := devices[d.Name]; dup {
			v.errorf(d.NameRange, "Duplicate device", "A device named %q is also declared at %s (handler %s); device names are unique across handlers.", d.Name, at(prev.NameRange), prev.Handler)
			continue
		}
		devices[d.Name] = d
		v.device(d)
	}
	targets := make(map[string]*Target, len(c.Targets))
	relIDs := map[int]*Target{}
	for _, t := range c.Targets {
		if prev, dup := targets[t.Name]; dup {
			v.errorf(t.NameRange, "Duplicate target", "The target %q is also declared at %s.", t.Name, at(prev.NameRange))
			continue
		}
		targets[t.Name] = t
		if c.Cluster != nil && (t.RelTgtID == 0 || t.RelTgtID > MaxClusterRelTgtID) {
			v.errorf(t.Range("rel_tgt_id"), "rel_tgt_id needed in a cluster", "In a cluster every gateway reports the same relative target port identifiers for the target %q (gateway id·256 + rel_tgt_id): set rel_tgt_id = 1..%d, unique.", t.Name, MaxClusterRelTgtID)
		}
		if t.RelTgtID != 0 {
			if prev, dup := relIDs[t.RelTgtID]; dup {
				v.errorf(t.Range("rel_tgt_id"), "Duplicate rel_tgt_id", "rel_tgt_id %d is also used by target %q at %s.", t.RelTgtID, prev.Name, at(prev.Range("rel_tgt_id")))
			} else {
				relIDs[t.RelTgtID] = t
			}
		}
		v.target(t, devices)
	}
	v.identities(c.Devices, devices)
	v.deviceGroups(c, devices, targets)
	return v.diags
}

type validator struct {
	diags hcl.Diagnostics
}

func (v *validator) errorf(subject hcl.Range, summary, format string, args ...any) {
	v.diags = append(v.diags, diagf(hcl.DiagError, subject, summary, format, args...))
}

func (v *validator) warnf(subject hcl.Range, summary, format string, args ...any) {
	v.diags = append(v.diags, diagf(hcl.DiagWarning, subject, summary, format, args...))
}

func (v *validator) iscsi(i *ISCSI) {
	v.portals(i.Portals)
	isns := map[access.HostPort]hcl.Range{}
	for _, s := range i.ISNSServers {
		if prev, dup := isns[s.Addr]; dup {
			v.errorf(s.DeclRange, "Duplicate iSNS server", "The iSNS server %s is also declared at %s.", s.Addr, at(prev))
			continue
		}
		isns[s.Addr] = s.DeclRange
	}
	v.chap(i.IncomingUsers, i.OutgoingUser, "discovery")
	if i.MaxConnectionsPerAddress > i.MaxConnections {
		v.errorf(i.Range("max_connections_per_address"), "Per-address cap above the total",
			"max_connections_per_address (%d) exceeds max_connections (%d); expected at most max_connections.",
			i.MaxConnectionsPerAddress, i.MaxConnections)
	}
}

// chap checks one scope's CHAP users: unique incoming names, secrets of at
// least MinCHAPSecret bytes, and an outgoing secret that differs from every
// incoming one (RFC 7143 §12.1.3). Messages name the user, never the secret.
func (v *validator) chap(in []*User, out *User, scope string) {
	names := map[string]*User{}
	for _, u := range in {
		if prev, dup := names[u.Name]; dup {
			v.errorf(u.NameRange, "Duplicate incoming_user", "The %s CHAP user %q is also declared at %s.", scope, u.Name, at(prev.NameRange))
			continue
		}
		names[u.Name] = u
		v.secret(u, "incoming_user")
	}
	if out == nil {
		return
	}
	v.secret(out, "outgoing_user")
	for _, u := range in {
		if u.Secret.Equal(out.Secret) {
			v.errorf(out.NameRange, "Mutual CHAP secrets must differ",
				"The %s outgoing_user %q has the same secret as incoming_user %q (%s); RFC 7143 §12.1.3 forbids using one secret in both directions.",
				scope, out.Name, u.Name, at(u.NameRange))
		}
	}
	if len(in) == 0 {
		v.errorf(out.DeclRange, "outgoing_user without incoming_user", "Mutual CHAP authenticates the target after the initiator: declare an incoming_user in the %s scope too.", scope)
	}
}

func (v *validator) secret(u *User, kind string) {
	if n := u.Secret.Len(); n < MinCHAPSecret {
		v.errorf(u.NameRange, "CHAP secret too short", "The secret of %s %q is %d bytes long; expected at least %d bytes (RFC 7143 §12.1.3).", kind, u.Name, n, MinCHAPSecret)
	}
	if u.Name == "" {
		v.errorf(u.NameRange, "Empty CHAP name", "Expected a CHAP user name as the %s label.", kind)
	}
}

func (v *validator) device(d *Device) {
	if d.Handler == HandlerDevDisk && hctl.Valid(d.Name) {
		// SCST names pass-through devices by their SCSI address.
	} else if err := checkDeviceName(d.Name); err != nil {
		v.errorf(d.NameRange, "Invalid device name", "%v.", err)
	}
	switch d.Handler {
	case HandlerFileIO, HandlerBlockIO:
		if !d.Attrs.Has("filename") {
			v.errorf(d.DeclRange, "Missing filename", "A %s device needs filename = the path of its backing %s.", d.Handler, map[Handler]string{HandlerFileIO: "file", HandlerBlockIO: "block device"}[d.Handler])
		}
	case HandlerNullIO:
		if !d.Attrs.Has("size") {
			v.errorf(d.DeclRange, "Missing size", "A %s device needs size = its capacity, such as \"1TiB\".", d.Handler)
		}
	case HandlerDevDisk:
		if d.Path == "" {
			if !d.Attrs.Has("path") {
				v.errorf(d.DeclRange, "Missing path", "A %s device needs path = its SCSI disk (\"/dev/sg2\" or \"H:C:T:L\"), unless its label is the SCSI address H:C:T:L.", d.Handler)
			}
		}
	}
	if d.Size.IsSet() && d.Size.Bytes%int64(d.BlockSize) != 0 {
		v.errorf(d.Range("size"), "Size not a multiple of blocksize", "The size %s is not a multiple of the block size %d.", describeSize(d.Size), d.BlockSize)
	}
	if d.Attrs.Has("t10_dev_id") {
		if err := checkIdent(d.T10DevID, 64); err != nil {
			v.errorf(d.Range("t10_dev_id"), "Invalid t10_dev_id", "%v.", err)
		}
	}
	if d.Attrs.Has("usn") {
		if err := checkIdent(d.USN, 64); err != nil {
			v.errorf(d.Range("usn"), "Invalid usn", "%v.", err)
		}
	}
}

// describeSize spells s for messages: "10GB (10000000000 bytes)", or just
// "1000 bytes".
func describeSize(s Size) string {
	n := strconv.FormatInt(s.Bytes, 10)
	if strings.TrimSpace(s.Text) == n {
		return n + " bytes"
	}
	return fmt.Sprintf("%s (%d bytes)", s.Text, s.Bytes)
}

// checkDeviceName accepts 1 to 64 characters of letters, digits, '_', '-'
// and '.', so that names are safe in addresses, logs and file names.
func checkDeviceName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("device name %q must be 1 to 64 characters long", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("device name %q has %q; expected letters, digits, '_', '-' and '.'", s, rune(c))
		}
	}
	return nil
}

// checkIdent accepts 1 to max printable ASCII characters without spaces,
// as INQUIRY identification strings need.
func checkIdent(s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("expected 1 to %d characters, got %d", max, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("%q has %q; expected printable ASCII without spaces", s, rune(s[i]))
		}
	}
	return nil
}

func (v *validator) target(t *Target, devices map[string]*Device) {
	if err := CheckISCSIName(t.Name); err != nil {
		v.errorf(t.NameRange, "Invalid target name", "%v.", err)
	}
	if t.FirstBurstLength > t.MaxBurstLength {
		v.errorf(t.Range("first_burst_length"), "first_burst_length exceeds max_burst_length",
			"first_burst_length (%d) must not be larger than max_burst_length (%d, %s) (RFC 7143 §13.14).",
			t.FirstBurstLength, t.MaxBurstLength, describeRange(t, "max_burst_length"))
	}
	v.chap(t.IncomingUsers, t.OutgoingUser, "target")
	v.luns(t.LUNs, devices, fmt.Sprintf("target %q", t.Name), t.NameRange)
	groups := map[string]*Group{}
	for _, g := range t.Groups {
		if prev, dup := groups[g.Name]; dup {
			v.errorf(g.NameRange, "Duplicate group", "The group %q is also declared at %s.", g.Name, at(prev.NameRange))
			continue
		}
		groups[g.Name] = g
		if _, ok := g.Attrs["initiators"]; !ok {
			v.errorf(g.DeclRange, "Missing initiators", "The group %q needs initiators = [patterns of initiator names], such as [\"iqn.1991-05.com.microsoft:*\"].", g.Name)
		}
		v.luns(g.LUNs, devices, fmt.Sprintf("group %q", g.Name), g.NameRange)
	}
}

func describeRange(t *Target, attr string) string {
	if r, ok := t.Attrs[attr]; ok {
		return "set at " + at(r)
	}
	return "the default"
}

// luns checks one LUN map: unique numbers, known devices, and a LUN 0.
func (v *validator) luns(luns []*LUN, devices map[string]*Device, owner string, ownerRange hcl.Range) {
	seen := map[int]*LUN{}
	for _, l := range luns {
		if prev, dup := seen[l.Number]; dup {
			v.errorf(l.NumberRange, "Duplicate LUN", "LUN %d of %s is also declared at %s.", l.Number, owner, at(prev.NumberRange))
			continue
		}
		seen[l.Number] = l
		if _, ok := devices[l.Device]; !ok {
			v.errorf(l.Range("device"), "Unknown device", "LUN %d of %s names the device %q, which no handler block declares.%s", l.Number, owner, l.Device, suggest(l.Device, devices))
		}
	}
	if len(luns) > 0 && seen[0] == nil {
		v.warnf(ownerRange, "No LUN 0", "The %s has LUNs but no LUN 0; many initiators only scan a target that has LUN 0.", owner)
	}
}

// suggest returns " Did you mean "x"?" for the closest device name, if any
// is close.
func suggest(name string, devices map[string]*Device) string {
	best, bestDist := "", 3
	for n := range devices {
		if d := editDistance(name, n); d < bestDist || d == bestDist && best != "" && n < best {
			best, bestDist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return " Did you mean " + strconv.Quote(best) + "?"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
