package reconcile

import (
	"reflect"
	"slices"
	"time"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// Names used by the fixtures.
const (
	iqnA = "iqn.2026-11.org.example:a"
	iqnB = "iqn.2026-11.org.example:b"
	iqnC = "iqn.2026-11.org.example:c"
)

// hostPorts parses addresses known to be valid.
func hostPorts(list ...string) []access.HostPort {
	out := make([]access.HostPort, len(list))
	for i, s := range list {
		out[i] = access.MustHostPort(s, access.ISCSIPort)
	}
	return out
}

// mustRedirect parses a redirect known to be valid.
func mustRedirect(s string) access.Redirect {
	r, err := access.ParseRedirect(s)
	if err != nil {
		panic(err)
	}
	return r
}

// defaultTarget is a target with the configuration defaults.
func defaultTarget() *Target {
	return &Target{
		Enabled:                  true,
		HeaderDigest:             []access.Digest{access.DigestNone},
		DataDigest:               []access.Digest{access.DigestNone},
		ImmediateData:            true,
		MaxRecvDataSegmentLength: 262144,
		MaxXmitDataSegmentLength: 262144,
		MaxBurstLength:           1048576,
		FirstBurstLength:         65536,
		MaxOutstandingR2T:        32,
		QueuedCommands:           32,
		NopInInterval:            Duration(30 * time.Second),
		NopInTimeout:             Duration(30 * time.Second),
		RspTimeout:               Duration(90 * time.Second),
		CHAPAlgorithms:           slices.Clone(access.DefaultCHAPAlgorithms),
	}
}

// baseModel is the running model most golden cases start from.
func baseModel() Model {
	a := defaultTarget()
	a.LUNs = map[scsi.LUN]LUN{0: {Device: "disk1"}, 1: {Device: "null1"}}
	b := defaultTarget()
	b.LUNs = map[scsi.LUN]LUN{0: {Device: "null1"}}
	return Model{
		ISCSI: Global{Enabled: true, Portals: hostPorts("0.0.0.0:3260")},
		Devices: map[string]Device{
			"disk1": {Handler: vdisk.FileIO, Filename: "/var/lib/scst/disk1.img", Size: 1 << 30, BlockSize: 512, T10DevID: "disk1", USN: "6d2f1c0e"},
			"null1": {Handler: vdisk.NullIO, Size: 1 << 40, BlockSize: 512, T10DevID: "null1", USN: "1a2b3c4d"},
			"spare": {Handler: vdisk.FileIO, Filename: "/var/lib/scst/spare.img", BlockSize: 4096, T10DevID: "spare", USN: "99aa88bb"},
		},
		Targets: map[string]*Target{iqnA: a, iqnB: b},
	}
}

// normalize turns empty maps into nil maps, so that reflect.DeepEqual
// compares meaning.
func normalize(m Model) Model {
	m = cloneModel(m)
	for _, t := range m.Targets {
		if len(t.LUNs) == 0 {
			t.LUNs = nil
		}
		if len(t.Groups) == 0 {
			t.Groups = nil
		}
		for _, g := range t.Groups {
			if len(g.LUNs) == 0 {
				g.LUNs = nil
			}
		}
	}
	if len(m.DeviceGroups) == 0 {
		m.DeviceGroups = nil
	}
	return m
}

func modelsEqual(a, b Model) bool { return reflect.DeepEqual(normalize(a), normalize(b)) }

// secret is a CHAP secret for fixtures.
func secret(s string) config.Secret { return config.NewSecret(s) }
