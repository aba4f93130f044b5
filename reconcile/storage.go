package reconcile

import (
	"time"

	"github.com/scstd/scstd/internal/sgio"
	"github.com/scstd/scstd/scsi"
	"github.com/scstd/scstd/vdisk"
)

// devDisk is the pass-through handler: its devices serve from a real SCSI
// disk through package sgio, not from a vdisk backend.
const devDisk = vdisk.Handler(sgio.Handler)

// storage is what a device serves from: a vdisk.Backend, or for a
// dev_disk device a scsi.Passthrough. The engine only opens, hands over
// and closes it.
type storage interface {
	Close() error
}

// spec is how a device's storage is opened: the vdisk spec, or for a
// dev_disk device its disk and command timeout.
type spec struct {
	vdisk.Spec
	Path    string
	Timeout time.Duration
}

// specOf is how a device's storage is opened.
func specOf(d Device) spec {
	return spec{
		Spec: vdisk.Spec{
			Handler:      d.Handler,
			Filename:     d.Filename,
			Size:         d.Size,
			ReadOnly:     d.ReadOnly,
			ODirect:      d.ODirect,
			WriteThrough: d.WriteThrough,
		},
		Path:    d.Path,
		Timeout: time.Duration(d.Timeout) * time.Second,
	}
}

// openStorage opens what s describes.
func openStorage(s spec) (storage, error) {
	if s.Handler == devDisk {
		p, err := sgio.Open(s.Path, sgio.Options{Timeout: s.Timeout})
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	b, err := vdisk.Open(s.Spec)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// setStorage makes dev serve from s.
func setStorage(dev *scsi.Device, s storage) {
	switch s := s.(type) {
	case scsi.Passthrough:
		dev.SetPassthrough(s)
	case vdisk.Backend:
		dev.SetBackend(s)
	}
}

// online reports whether d serves from its storage: it has one, and the
// scsi.Device has not lost it since (a pass-through disk that
// disappeared takes its device offline by itself).
func (d *device) online() bool {
	return d.backend != nil && d.dev.Offline() == nil
}
