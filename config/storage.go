package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
)

// CheckStorage checks the backing files the devices name, as `scstd
// validate` does: a vdisk_fileio file must exist or have a size to be
// created with (in an existing directory), a vdisk_blockio filename must be
// a block device, a vcdrom image must be a readable regular file. It is not
// part of Load because at run time missing storage is not a configuration
// error: that device alone goes offline.
func (c *Config) CheckStorage() hcl.Diagnostics {
	var diags hcl.Diagnostics
	errorf := func(subject hcl.Range, summary, format string, args ...any) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  summary,
			Detail:   fmt.Sprintf(format, args...),
			Subject:  subject.Ptr(),
		})
	}
	for _, d := range c.Devices {
		if d.Filename == "" {
			continue
		}
		r := d.Range("filename")
		fi, err := os.Stat(d.Filename)
		if errors.Is(err, fs.ErrNotExist) {
			switch {
			case d.Handler != HandlerFileIO:
				errorf(r, "Backing file missing", "%s does not exist; a %s device needs an existing %s.", d.Filename, d.Handler, storageKind(d.Handler))
			case !d.Size.IsSet():
				errorf(r, "Backing file missing", "%s does not exist and the device has no size to create it with. Create the file or set size.", d.Filename)
			default:
				dir := filepath.Dir(d.Filename)
				if st, err := os.Stat(dir); err != nil || !st.IsDir() {
					errorf(r, "Directory missing", "%s does not exist and cannot be created: its directory %s does not exist.", d.Filename, dir)
				}
			}
			continue
		}
		if err != nil {
			errorf(r, "Backing file unusable", "%v.", err)
			continue
		}
		switch d.Handler {
		case HandlerBlockIO:
			if fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 {
				errorf(r, "Not a block device", "%s is %s, not a block device; use handler vdisk_fileio for image files.", d.Filename, modeName(fi.Mode()))
				continue
			}
		default:
			if !fi.Mode().IsRegular() {
				errorf(r, "Not a regular file", "%s is %s; a %s device needs a regular file (use vdisk_blockio for block devices).", d.Filename, modeName(fi.Mode()), d.Handler)
				continue
			}
			if d.Handler == HandlerFileIO && fi.Size() == 0 && !d.Size.IsSet() {
				errorf(r, "Empty backing file", "%s is empty; set size to give the device a capacity.", d.Filename)
				continue
			}
			if fi.Size()%int64(d.BlockSize) != 0 && (!d.Size.IsSet() || fi.Size() > d.Size.Bytes) {
				errorf(r, "File size not a multiple of blocksize", "%s holds %d bytes, not a multiple of the block size %d; the last partial block would be unreachable.", d.Filename, fi.Size(), d.BlockSize)
				continue
			}
		}
		if err := checkOpen(d); err != nil {
			errorf(r, "Backing file unusable", "%v.", err)
		}
	}
	return diags
}

// checkOpen opens the file the way the device will (read-only devices
// read-only), without writing.
func checkOpen(d *Device) error {
	flag := os.O_RDWR
	if d.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(d.Filename, flag, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

func storageKind(h Handler) string {
	if h == HandlerBlockIO {
		return "block device"
	}
	return "image file"
}

func modeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file"
}
