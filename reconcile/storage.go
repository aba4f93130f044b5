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
// dev_disk device a scsi.Passthrough; none for a vcdrom without a disc
// (spec.noMedium). The engine only opens it, hands it to the device
// (setStorage) and closes it once drained.
type storage interface {
	Close() error
}

// spec is how a device's storage is opened: the vdisk spec, or for a
// dev_disk device its disk and command timeout. It is comparable: a
// device whose spec changes is reopened.
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
		Timeout: time.Duration(d.Timeout),
	}
}

// noMedium reports whether s is an empty drive: a vcdrom whose filename
// is "". It has no storage to open; its device serves without a medium.
func (s spec) noMedium() bool { return s.Handler == vdisk.CDROM && s.Filename == "" }

// where names the storage s opens, in messages and for the opener's
// record of storage that hangs: the backing file, or the disk.
func (s spec) where() string {
	if s.Handler == devDisk {
		return s.Path
	}
	return s.Filename
}

// openSGIO opens a dev_disk device's disk through package sgio.
func openSGIO(path string, timeout time.Duration) (scsi.Passthrough, error) {
	d, err := sgio.Open(path, sgio.Options{Timeout: timeout})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// openStorage returns how the engine opens what a spec describes: through
// o.Open, or o.OpenDisk for a dev_disk device; an empty drive opens
// nothing (nil storage, no error).
func (o Options) openStorage() func(spec) (storage, error) {
	return func(s spec) (storage, error) {
		if s.noMedium() {
			return nil, nil
		}
		if s.Handler == devDisk {
			p, err := o.OpenDisk(s.Path, s.Timeout)
			if err != nil {
				return nil, err
			}
			return p, nil
		}
		b, err := o.Open(s.Spec)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
}

// setStorage makes dev serve from s and returns what it served from
// before, to be closed once drained. No storage is an empty drive: the
// device serves without a medium.
func setStorage(dev *scsi.Device, s storage) scsi.Drain {
	switch s := s.(type) {
	case nil:
		return dev.RemoveMedium()
	case scsi.Passthrough:
		return dev.SetPassthrough(s)
	case vdisk.Backend:
		return dev.SetBackend(s)
	}
	return dev.SetOffline(nil)
}

// online reports whether d serves from its storage: it has some (or is
// an empty drive, which needs none), and the scsi.Device has not lost it
// since (a pass-through disk that disappeared takes its device offline by
// itself, until it is reopened).
func (d *device) online() bool {
	return (d.backend != nil || d.empty) && d.dev.Offline() == nil
}

// offlineReason is why d does not serve: the engine's reason, else the
// scsi.Device's own (a lost disk).
func (d *device) offlineReason() error {
	if d.reason != nil {
		return d.reason
	}
	return d.dev.Offline()
}
