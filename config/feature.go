package config

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

// Feature names a part of the schema that an engine may not implement yet.
type Feature string

// The features Unsupported asks about.
const (
	FeatureCHAP           Feature = "chap"              // target incoming_user/outgoing_user
	FeatureDiscoveryCHAP  Feature = "discovery_chap"    // iscsi incoming_user/outgoing_user
	FeatureGroups         Feature = "groups"            // target group blocks
	FeatureAllowedPortals Feature = "allowed_portals"   // target allowed_portals
	FeaturePerPortalACL   Feature = "per_portal_acl"    // per_portal_acl = true
	FeatureRedirect       Feature = "redirect"          // target redirect
	FeatureISNS           Feature = "isns"              // iscsi isns_server blocks
	FeatureVCDROM         Feature = "vcdrom"            // handler "vcdrom"
	FeatureBlockIO        Feature = "vdisk_blockio"     // handler "vdisk_blockio"
	FeatureNullIO         Feature = "vdisk_nullio"      // handler "vdisk_nullio"
	FeatureFileIO         Feature = "vdisk_fileio"      // handler "vdisk_fileio"
	FeatureDigests        Feature = "crc32c_digest"     // "CRC32C" in header_digest or data_digest
	FeatureCHAPSHA        Feature = "chap_sha"          // SHA-1, SHA-256 or SHA3-256 set explicitly in chap_algorithms, with CHAP users
	FeatureDisabledISCSI  Feature = "iscsi_disabled"    // iscsi enabled = false
	FeatureDisabledTarget Feature = "target_disabled"   // target enabled = false
	FeatureRelTgtID       Feature = "rel_tgt_id"        // an explicit rel_tgt_id
	FeatureRefuse         Feature = "refuse_disruptive" // disruptive_changes = "refuse"
)

// Features lists every Feature.
var Features = []Feature{
	FeatureCHAP, FeatureDiscoveryCHAP, FeatureGroups, FeatureAllowedPortals,
	FeaturePerPortalACL, FeatureRedirect, FeatureISNS, FeatureVCDROM,
	FeatureBlockIO, FeatureNullIO, FeatureFileIO, FeatureDigests, FeatureCHAPSHA,
	FeatureDisabledISCSI, FeatureDisabledTarget, FeatureRelTgtID, FeatureRefuse,
}

// String returns the feature's name.
func (f Feature) String() string { return string(f) }

// Unsupported returns a "not supported yet" error for every use of a
// feature for which supported returns false, pointing at the use, so that
// no part of a configuration is silently ignored.
func (c *Config) Unsupported(supported func(Feature) bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	use := func(f Feature, subject hcl.Range, what string) {
		if supported(f) {
			return
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Not supported yet",
			Detail:   fmt.Sprintf("%s is not supported by this version of scstd yet (feature %q); remove it from the configuration.", what, f),
			Subject:  subject.Ptr(),
		})
	}
	if r, ok := c.Attrs["disruptive_changes"]; ok && c.DisruptiveChanges == DisruptiveRefuse {
		use(FeatureRefuse, r, `disruptive_changes = "refuse"`)
	}
	if i := c.ISCSI; i != nil {
		if !i.Enabled {
			use(FeatureDisabledISCSI, i.Range("enabled"), "Disabling iSCSI (enabled = false)")
		}
		for _, s := range i.ISNSServers {
			use(FeatureISNS, s.DeclRange, "Registration with an iSNS server")
		}
		for _, u := range i.IncomingUsers {
			use(FeatureDiscoveryCHAP, u.DeclRange, "Discovery CHAP (incoming_user)")
		}
		if u := i.OutgoingUser; u != nil {
			use(FeatureDiscoveryCHAP, u.DeclRange, "Discovery mutual CHAP (outgoing_user)")
		}
	}
	handlerFeature := map[Handler]Feature{
		HandlerFileIO: FeatureFileIO, HandlerBlockIO: FeatureBlockIO,
		HandlerNullIO: FeatureNullIO, HandlerCDROM: FeatureVCDROM,
	}
	for _, d := range c.Devices {
		use(handlerFeature[d.Handler], d.DeclRange, fmt.Sprintf("The %s handler", d.Handler))
	}
	for _, t := range c.Targets {
		if !t.Enabled {
			use(FeatureDisabledTarget, t.Range("enabled"), "Disabling a target (enabled = false)")
		}
		if slices.Contains(t.HeaderDigest, DigestCRC32C) {
			use(FeatureDigests, t.Range("header_digest"), "The CRC32C header digest")
		}
		if slices.Contains(t.DataDigest, DigestCRC32C) {
			use(FeatureDigests, t.Range("data_digest"), "The CRC32C data digest")
		}
		if len(t.AllowedPortals) > 0 {
			use(FeatureAllowedPortals, t.Range("allowed_portals"), "allowed_portals")
		}
		if t.PerPortalACL {
			use(FeaturePerPortalACL, t.Range("per_portal_acl"), "per_portal_acl")
		}
		if t.Redirect != nil {
			use(FeatureRedirect, t.Range("redirect"), "Login redirection (redirect)")
		}
		if _, ok := t.Attrs["rel_tgt_id"]; ok {
			use(FeatureRelTgtID, t.Range("rel_tgt_id"), "An explicit rel_tgt_id")
		}
		for _, u := range t.IncomingUsers {
			use(FeatureCHAP, u.DeclRange, "CHAP (incoming_user)")
		}
		if u := t.OutgoingUser; u != nil {
			use(FeatureCHAP, u.DeclRange, "Mutual CHAP (outgoing_user)")
		}
		if _, set := t.Attrs["chap_algorithms"]; set && len(t.IncomingUsers) > 0 {
			var sha []CHAPAlgorithm
			for _, a := range t.CHAPAlgorithms {
				if a != CHAPMD5 {
					sha = append(sha, a)
				}
			}
			if len(sha) > 0 {
				use(FeatureCHAPSHA, t.Range("chap_algorithms"), fmt.Sprintf("The CHAP algorithms %s", quotedList(sha)))
			}
		}
		for _, g := range t.Groups {
			use(FeatureGroups, g.DeclRange, "Initiator groups")
		}
	}
	return diags
}
