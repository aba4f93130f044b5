package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/scstd/scstd/config"
	"github.com/scstd/scstd/reconcile"
)

// After the start, the daemon settles: the start's plan, kept for the
// admin API, is packed, the start's garbage is given back to the
// system, and a reserve of pages the size of a reload is kept.
//
// The start's plan of a 10,000-LUN configuration is 21,000 changes,
// 6 MB as reconcile.Plan; rendered as text and JSON and compressed it is
// 0.3 MB, for ~0.2 s of CPU after "scstd running". A reload of the same
// configuration allocates ~15 MB (decoding the file, then Apply); in
// pages the system took back at the start, the first reload faulted them
// in again and took 40-50 ms longer than the next ones.

// reloadBytesPerBlock is the reserve the start keeps per device and LUN
// block of the configuration: most of what a reload allocates
// (BenchmarkReloadParseAndApply: 15.4 MB for 10,000 devices and 10,000
// LUNs, 770 bytes a block), as much as the RSS goal of 4 KiB per LUN
// leaves room for; maxReserve bounds it.
const (
	reloadBytesPerBlock = 700
	maxReserve          = 64 << 20
)

// reserveFor is the reserve kept after starting with cfg: what a reload
// of it allocates, so that the first reload takes pages already
// resident, as the later ones do.
func reserveFor(cfg *config.Config) int {
	n := len(cfg.Devices)
	for _, t := range cfg.Targets {
		n += len(t.LUNs)
		for _, g := range t.Groups {
			n += len(g.LUNs)
		}
	}
	return min(n*reloadBytesPerBlock, maxReserve)
}

// settle returns the start's garbage to the system, packs the start's
// plan and returns the garbage of that, then keeps reserve bytes of free
// pages resident. Packing after the first return keeps the peak RSS that
// of the start: rendering allocates ~25 MB for 10,000 LUNs.
func (d *daemonState) settle(reserve int) {
	debug.FreeOSMemory()
	if d.packStart() {
		// Rendering keeps buffers in sync.Pools (encoding/json's), which
		// the second collection empties.
		runtime.GC()
		debug.FreeOSMemory()
	}
	keepResident(reserve)
}

// keepResident makes n bytes of the heap's lowest free pages resident
// and leaves them free for the next allocations: the runtime takes free
// pages lowest first, and does not return them to the system while the
// heap is below its goal. Small pieces, so that they fill the holes the
// start left before anything above them.
func keepResident(n int) {
	const piece = 8 << 10
	pieces := make([][]byte, 0, n/piece)
	for range n / piece {
		p := make([]byte, piece)
		for i := 0; i < len(p); i += 4096 {
			p[i] = 1
		}
		pieces = append(pieces, p)
	}
	runtime.KeepAlive(pieces)
	if len(pieces) > 0 {
		pieces = nil
		runtime.GC()
	}
}

// packedPlan is a plan rendered as text and JSON, compressed.
type packedPlan struct {
	gz      []byte
	textLen int
}

// packPlan renders p as `scstd reload` shows it (Plan.String and
// marshalDetail) and compresses both.
func packPlan(p reconcile.Plan) *packedPlan {
	text := p.String()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed) // a valid level: no error
	// Writes to a bytes.Buffer do not fail.
	io.WriteString(w, text)
	w.Write(marshalDetail(p))
	w.Close()
	return &packedPlan{gz: bytes.Clone(b.Bytes()), textLen: len(text)}
}

// unpack returns the text and the JSON that packPlan rendered.
func (pp *packedPlan) unpack() (string, json.RawMessage, error) {
	r, err := gzip.NewReader(bytes.NewReader(pp.gz))
	if err != nil {
		return "", nil, err
	}
	all, err := io.ReadAll(r)
	if err != nil {
		return "", nil, err
	}
	if len(all) < pp.textLen {
		return "", nil, fmt.Errorf("%d bytes unpacked, the text alone was %d", len(all), pp.textLen)
	}
	var detail json.RawMessage
	if len(all) > pp.textLen {
		detail = all[pp.textLen:]
	}
	return string(all[:pp.textLen]), detail, nil
}

// packStart packs the start's plan if it is still kept unrendered, and
// reports whether it rendered it. The rendering runs outside d.mu: an
// admin request meanwhile renders the plan itself, and the packed one is
// then dropped.
func (d *daemonState) packStart() bool {
	d.mu.Lock()
	p := d.unrendered
	d.mu.Unlock()
	if p == nil {
		return false
	}
	pp := packPlan(*p)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.unrendered == p {
		d.unrendered, d.packed = nil, pp
	}
	return true
}
