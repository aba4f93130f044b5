package iscsi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/klauspost/crc32"
	"github.com/scstd/scstd/internal/bufpool"
)

// castagnoli is the CRC32C table used for header and data digests.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// DigestLen is the size of a CRC32C digest on the wire.
const DigestLen = 4

// MaxDataSegmentLength is the largest data segment the 24-bit
// DataSegmentLength field can describe.
const MaxDataSegmentLength = 1<<24 - 1

// DefaultMaxRecvDSL is the RFC 7143 default MaxRecvDataSegmentLength,
// which also bounds every login PDU's data segment.
const DefaultMaxRecvDSL = 8192

// ErrHeaderDigest reports a header digest mismatch. The header cannot be
// trusted, so the connection must be closed.
var ErrHeaderDigest = errors.New("iscsi: header digest mismatch")

// DataDigestError reports a data digest mismatch. The header is sound: Read
// returns the PDU together with this error so the caller can answer with
// a Reject (reason DATA_DIGEST_ERROR) and carry on; the data is discarded.
type DataDigestError struct {
	Got, Want uint32
}

// Error implements error.
func (e *DataDigestError) Error() string {
	return fmt.Sprintf("iscsi: data digest mismatch: got %#08x, computed %#08x", e.Got, e.Want)
}

// Digest returns the CRC32C digest of the concatenation of parts, as
// iSCSI computes header and data digests (RFC 7143 §13.1).
func Digest(parts ...[]byte) uint32 {
	var c uint32
	for _, p := range parts {
		c = crc32.Update(c, castagnoli, p)
	}
	return c
}

// putDigest stores d in wire order. iSCSI digests go out least significant
// byte first (RFC 7143 §B.4: 32 zero bytes digest to aa 36 91 8a).
func putDigest(b []byte, d uint32) { binary.LittleEndian.PutUint32(b, d) }

func getDigest(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

func pad4(n int) int { return (4 - n&3) & 3 }

var zeroPad [4]byte

// PDU is one protocol data unit as read from the wire: the BHS, the raw
// additional header segments and the data segment (without padding).
// PDUs returned by FrameReader.Read are pooled: call Release when done
// with Data, after which neither the PDU nor Data may be used.
type PDU struct {
	BHS  BHS
	AHS  []byte
	Data []byte

	buf  *[]byte // pooled backing of Data, nil if Data is not pooled
	ahsb [64]byte
}

var pduPool = sync.Pool{New: func() any { return new(PDU) }}

// Release returns the PDU and its data buffer to their pools. It is safe
// to call on a nil PDU.
func (p *PDU) Release() {
	if p == nil {
		return
	}
	if p.buf != nil {
		bufpool.Put(p.buf)
	}
	*p = PDU{}
	pduPool.Put(p)
}

// FindAHS returns the type-specific bytes of the first additional header
// segment of type t (starting at AHS byte 3, AHSLength bytes long).
func (p *PDU) FindAHS(t AHSType) ([]byte, bool) {
	b := p.AHS
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint16(b))
		if 3+n > len(b) {
			return nil, false
		}
		if AHSType(b[2]) == t {
			return b[3 : 3+n], true
		}
		step := 3 + n + pad4(3+n)
		if step > len(b) {
			return nil, false
		}
		b = b[step:]
	}
	return nil, false
}

// AppendAHS appends one additional header segment of type t whose
// type-specific bytes are specific (AHS byte 3 onwards), padded to 4.
func AppendAHS(dst []byte, t AHSType, specific []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(specific)))
	dst = append(dst, byte(t))
	dst = append(dst, specific...)
	return append(dst, zeroPad[:pad4(3+len(specific))]...)
}

// validateAHS checks that the AHS area is a sequence of well-formed
// segments that fill it exactly.
func validateAHS(op Opcode, b []byte) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return protoErr(op, "truncated AHS")
		}
		n := 3 + int(binary.BigEndian.Uint16(b))
		n += pad4(n)
		if n > len(b) {
			return protoErr(op, "AHS length %d exceeds TotalAHSLength", n)
		}
		b = b[n:]
	}
	return nil
}

// FrameReader reads PDUs from a connection: BHS, AHS, header digest,
// data segment, padding and data digest (RFC 7143 §11.2). It is not safe
// for concurrent use; one reader goroutine owns it.
type FrameReader struct {
	r          io.Reader
	src        io.Reader // r without buffering
	header     bool
	data       bool
	maxRecvDSL uint32
	dig        [DigestLen]byte
	// raw is the socket reader under r once buffer gave it one; Read
	// tells it when it is inside a PDU.
	raw *rawReader
}

// readBufSize is the read buffer of a full-feature connection.
const readBufSize = 64 << 10

// NewFrameReader reads PDUs from r with digests off and MaxRecvDSL at
// DefaultMaxRecvDSL, as at the start of a login.
func NewFrameReader(r io.Reader) *FrameReader {
	if _, ok := r.(*bufio.Reader); ok {
		return &FrameReader{r: r, src: r, maxRecvDSL: DefaultMaxRecvDSL}
	}
	return &FrameReader{r: bufio.NewReaderSize(r, readBufSize), src: r, maxRecvDSL: DefaultMaxRecvDSL}
}

// newUnbufferedFrameReader is NewFrameReader without a read buffer, for
// logins: a connection that has not logged in holds no buffer, and
// nothing is read ahead of the PDU asked for.
func newUnbufferedFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r, src: r, maxRecvDSL: DefaultMaxRecvDSL}
}

// buffer gives an unbuffered reader its read buffer, once the login has
// completed; nothing was read ahead, so no byte is lost. A socket is
// read through a rawReader.
func (fr *FrameReader) buffer() {
	if fr.r == fr.src {
		if rr := newRawReader(fr.src); rr != nil {
			fr.raw = rr
			fr.r = bufio.NewReaderSize(rr, readBufSize)
			return
		}
		fr.r = bufio.NewReaderSize(fr.src, readBufSize)
	}
}

// SetDigests turns CRC32C header and data digests on or off; takes effect
// with the next PDU read.
func (fr *FrameReader) SetDigests(header, data bool) { fr.header, fr.data = header, data }

// SetMaxRecvDSL sets the largest data segment accepted; a longer one is a
// *ProtocolError found before any buffer is allocated.
func (fr *FrameReader) SetMaxRecvDSL(n uint32) {
	fr.maxRecvDSL = min(n, MaxDataSegmentLength)
}

// Read reads the next PDU. At a clean PDU boundary end of stream it
// returns io.EOF; inside a PDU io.ErrUnexpectedEOF. Errors:
//   - ErrHeaderDigest: header digest mismatch, close the connection;
//   - *ProtocolError: malformed AHS or a data segment longer than
//     MaxRecvDSL; the returned PDU is nil and the stream position is lost,
//     so the connection must be closed after an optional Reject;
//   - *DataDigestError: returned together with the (header-valid) PDU.
func (fr *FrameReader) Read() (*PDU, error) {
	p := pduPool.Get().(*PDU)
	fr.inside(false)
	if _, err := io.ReadFull(fr.r, p.BHS[:]); err != nil {
		p.Release()
		return nil, err
	}
	fr.inside(true)
	op := p.BHS.Opcode()
	if n := p.BHS.TotalAHSLength() * 4; n > 0 {
		if n <= len(p.ahsb) {
			p.AHS = p.ahsb[:n]
		} else {
			p.AHS = make([]byte, n)
		}
		if err := fr.readFull(p.AHS); err != nil {
			p.Release()
			return nil, err
		}
	}
	if fr.header {
		if err := fr.readFull(fr.dig[:]); err != nil {
			p.Release()
			return nil, err
		}
		if getDigest(fr.dig[:]) != Digest(p.BHS[:], p.AHS) {
			p.Release()
			return nil, ErrHeaderDigest
		}
	}
	if err := validateAHS(op, p.AHS); err != nil {
		p.Release()
		return nil, err
	}
	dsl := p.BHS.DataSegmentLength()
	if dsl > fr.maxRecvDSL {
		p.Release()
		return nil, &ProtocolError{Op: op, Reason: RejectProtocolError,
			Msg: fmt.Sprintf("DataSegmentLength %d exceeds MaxRecvDataSegmentLength %d", dsl, fr.maxRecvDSL)}
	}
	if dsl == 0 {
		return p, nil
	}
	n := int(dsl)
	padded := n + pad4(n)
	p.buf = bufpool.Get(padded)
	if err := fr.readFull(*p.buf); err != nil {
		p.Release()
		return nil, err
	}
	p.Data = (*p.buf)[:n]
	if fr.data {
		if err := fr.readFull(fr.dig[:]); err != nil {
			p.Release()
			return nil, err
		}
		if got, want := getDigest(fr.dig[:]), Digest(*p.buf); got != want {
			p.Data = nil
			return p, &DataDigestError{Got: got, Want: want}
		}
	}
	return p, nil
}

// inside tells the socket reader whether a PDU is being read, its header
// in and more of it to come.
func (fr *FrameReader) inside(in bool) {
	if fr.raw != nil {
		fr.raw.partial = in
	}
}

// hasPDU reports whether a whole PDU is buffered, so that Read returns it
// without reading from the connection.
func (fr *FrameReader) hasPDU() bool {
	br, ok := fr.r.(*bufio.Reader)
	if !ok || br.Buffered() < BHSLen {
		return false
	}
	b, _ := br.Peek(BHSLen)
	h := (*BHS)(b)
	n := BHSLen + h.TotalAHSLength()*4
	if fr.header {
		n += DigestLen
	}
	if dsl := int(h.DataSegmentLength()); dsl > 0 {
		n += dsl + pad4(dsl)
		if fr.data {
			n += DigestLen
		}
	}
	return br.Buffered() >= n
}

func (fr *FrameReader) readFull(b []byte) error {
	_, err := io.ReadFull(fr.r, b)
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendFrame appends one PDU in wire form to dst: h, ahs (padded to 4),
// the header digest if hd, data padded to 4, and the data digest if dd.
// It first stores len(ahs) and len(data) in h's TotalAHSLength and
// DataSegmentLength fields, so Encode methods leave those to it.
// len(data) must not exceed MaxDataSegmentLength.
func AppendFrame(dst []byte, h *BHS, ahs, data []byte, hd, dd bool) []byte {
	ahsPad := pad4(len(ahs))
	h[4] = byte((len(ahs) + ahsPad) / 4)
	h.SetDataSegmentLength(uint32(len(data)))
	dst = append(dst, h[:]...)
	dst = append(dst, ahs...)
	dst = append(dst, zeroPad[:ahsPad]...)
	if hd {
		dst = binary.LittleEndian.AppendUint32(dst, Digest(h[:], ahs, zeroPad[:ahsPad]))
	}
	if len(data) == 0 {
		return dst
	}
	dp := zeroPad[:pad4(len(data))]
	dst = append(dst, data...)
	dst = append(dst, dp...)
	if dd {
		dst = binary.LittleEndian.AppendUint32(dst, Digest(data, dp))
	}
	return dst
}

// FrameWriter writes PDUs to w through a buffer, without copying large
// data segments. It is not safe for concurrent use: one goroutine at a
// time writes and calls Flush once per batch.
//
// Headers, padding, digests and small data segments collect in the
// buffer; a data segment of directDataMin bytes or more stays in the
// caller's slice, and Flush sends everything in one vectored write
// (writev on a TCP connection): the bytes are copied once, into the
// socket. WritePDU sends a large segment at once, with what is buffered
// before it; queuePDU (the connection's send path) keeps it for the next
// Flush, so that one writev carries a whole batch of Data-In PDUs.
type FrameWriter struct {
	w      io.Writer
	buf    []byte
	err    error
	header bool
	data   bool
	// vec is what the next Flush sends, in wire order: parts of buf
	// (up to sealed) and the large data segments between them; a write
	// that stopped half-way (tryFlush) has sent vec[:sent].
	vec    [][]byte
	sealed int
	sent   int
	// nb sends vec when w has no file descriptor (net.Buffers.WriteTo
	// consumes the slice it is called on).
	nb net.Buffers
	// raw, when w is a socket, writes vec with writev itself, so that
	// a write may also be tried without waiting (tryFlush).
	raw *rawWriter
}

// writeBufSize is the FrameWriter's buffer size.
const writeBufSize = 64 << 10

// directDataMin is the smallest data segment written without copying it
// into the buffer.
const directDataMin = 2 << 10

// NewFrameWriter writes PDUs to w with digests off.
func NewFrameWriter(w io.Writer) *FrameWriter {
	return newFrameWriterSize(w, writeBufSize)
}

// loginWriteBufSize is the FrameWriter buffer of logins and discovery
// sessions: a Login Response header fits, and a larger data segment
// grows it only while it is sent.
const loginWriteBufSize = 512

// newFrameWriterSize is NewFrameWriter with a buffer of size bytes.
func newFrameWriterSize(w io.Writer, size int) *FrameWriter {
	return &FrameWriter{w: w, buf: make([]byte, 0, size), raw: newRawWriter(w)}
}

// SetDigests turns CRC32C header and data digests on or off for the PDUs
// written from now on.
func (fw *FrameWriter) SetDigests(header, data bool) { fw.header, fw.data = header, data }

// WritePDU writes one PDU like AppendFrame (setting h's length fields).
// Flush sends what is still buffered; a large data segment is sent at
// once, so that data need not stay unchanged after WritePDU returns.
// After a write error every call returns that error.
func (fw *FrameWriter) WritePDU(h *BHS, ahs, data []byte) error {
	direct, err := fw.queuePDU(h, ahs, data, false)
	if err == nil && direct {
		err = fw.Flush()
	}
	return err
}

// room reports whether a PDU with ahs bytes of AHS and a data segment of
// n bytes fits the buffer without a Flush first.
func (fw *FrameWriter) room(ahs, n int) bool {
	need := BHSLen + ahs + 3 + 2*DigestLen
	if n < directDataMin {
		need += n
	}
	return len(fw.buf)+need <= cap(fw.buf)
}

// queuePDU adds one PDU to what the next Flush sends, setting h's length
// fields. A data segment of directDataMin bytes or more, or any with
// lent (reported by direct), is sent from data itself, which must then
// not change until that Flush returns; a lent segment is never read
// from Go (it may be a mapping of a file shrunk underneath: only the
// writev may fault on it), so lent and data digests exclude each other.
// When the PDU does not fit the buffer (see room), what is queued is
// flushed first.
func (fw *FrameWriter) queuePDU(h *BHS, ahs, data []byte, lent bool) (direct bool, err error) {
	if fw.err != nil {
		return false, fw.err
	}
	ahsPad := pad4(len(ahs))
	h[4] = byte((len(ahs) + ahsPad) / 4)
	h.SetDataSegmentLength(uint32(len(data)))
	direct = lent || len(data) >= directDataMin || len(data)+BHSLen+len(ahs)+3+2*DigestLen > cap(fw.buf)
	n := len(data)
	if direct {
		n = 0
	}
	if !fw.room(len(ahs), n) && fw.pending() {
		if err := fw.Flush(); err != nil {
			return false, err
		}
	}
	start := len(fw.buf)
	fw.buf = append(fw.buf, h[:]...)
	fw.buf = append(fw.buf, ahs...)
	fw.buf = append(fw.buf, zeroPad[:ahsPad]...)
	if fw.header {
		fw.buf = binary.LittleEndian.AppendUint32(fw.buf, Digest(fw.buf[start:]))
	}
	if len(data) == 0 {
		return false, nil
	}
	dp := zeroPad[:pad4(len(data))]
	if direct {
		fw.seal()
		fw.vec = append(fw.vec, data)
	} else {
		fw.buf = append(fw.buf, data...)
	}
	fw.buf = append(fw.buf, dp...)
	if fw.data {
		fw.buf = binary.LittleEndian.AppendUint32(fw.buf, Digest(data, dp))
	}
	return direct, nil
}

// seal ends the part of the buffer that goes before a direct segment.
func (fw *FrameWriter) seal() {
	if len(fw.buf) > fw.sealed {
		fw.vec = append(fw.vec, fw.buf[fw.sealed:])
		fw.sealed = len(fw.buf)
	}
}

// pending reports whether anything waits for Flush.
func (fw *FrameWriter) pending() bool { return len(fw.vec) > fw.sent || len(fw.buf) > fw.sealed }

// Flush sends the buffered PDUs.
func (fw *FrameWriter) Flush() error {
	_, err := fw.flush(true)
	return err
}

// tryFlush sends what it can of the buffered PDUs without waiting for
// the socket: false when bytes remain (the socket's buffer is full, or
// w is no socket), which a later Flush sends.
func (fw *FrameWriter) tryFlush() (bool, error) { return fw.flush(false) }

func (fw *FrameWriter) flush(wait bool) (bool, error) {
	if fw.err != nil {
		return true, fw.err
	}
	fw.seal()
	switch {
	case len(fw.vec) == fw.sent:
	case fw.raw != nil:
		rest, done, err := fw.raw.writev(fw.vec[fw.sent:], wait)
		fw.sent, fw.err = len(fw.vec)-len(rest), err
		if !done && err == nil {
			return false, nil
		}
	case !wait:
		return false, nil
	default:
		fw.nb = fw.vec[fw.sent:]
		_, fw.err = fw.nb.WriteTo(fw.w)
		fw.nb = nil
	}
	clear(fw.vec)
	fw.vec = fw.vec[:0]
	fw.buf = fw.buf[:0]
	fw.sealed, fw.sent = 0, 0
	return true, fw.err
}

// Buffered is the number of bytes waiting for Flush.
func (fw *FrameWriter) Buffered() int { return len(fw.buf) }
