// Package pcapfile reads and writes capture files: classic pcap (all four
// magics) and pcapng, plus the vrsniff output flavours built on them.
//
// Both directions work without allocating per packet: the Reader hands out
// slices of its read buffer and the Writer encodes whole blocks into one
// large buffer that it passes to the underlying writer only in complete
// blocks.
package pcapfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Magic numbers as they appear when read little-endian.
const (
	magicMicros     = 0xa1b2c3d4
	magicNanos      = 0xa1b23c4d
	magicMicrosSwap = 0xd4c3b2a1
	magicNanosSwap  = 0x4d3cb2a1
	magicNG         = 0x0a0d0d0a // pcapng section header block type: a palindrome
	byteOrderMagic  = 0x1a2b3c4d
)

// pcapng block types.
const (
	blockSHB = 0x0a0d0d0a
	blockIDB = 0x00000001
	blockPB  = 0x00000002 // obsolete packet block
	blockSPB = 0x00000003
	blockEPB = 0x00000006
)

const (
	// readBufSize holds several maximum-size packets, so almost every record
	// is handed out straight from the buffer.
	readBufSize = 1 << 20
	// maxPcapRecord is the largest record accepted whatever the file's
	// snaplen claims: Wireshark's own limit for non-USB link types.
	maxPcapRecord = 262144
	// maxBlock bounds a pcapng block so that a corrupt length cannot make the
	// Reader allocate without limit (Wireshark uses the same 16 MiB).
	maxBlock = 16 << 20
)

// ErrUnknownFormat is returned (inside a *FormatError) when the input is
// neither pcap nor pcapng.
var ErrUnknownFormat = errors.New("not a pcap or pcapng file")

// FormatError reports corrupt or truncated input. Offset is the file offset
// of the record or block that could not be read; every packet before it has
// been returned normally.
type FormatError struct {
	Offset int64
	What   string // "pcap record", "pcapng block", "pcap file header", …
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s at offset %d: %v", e.What, e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// errTruncated is the cause of a FormatError for input that ends inside a
// record or block.
var errTruncated = errors.New("truncated")

// iface is what the Reader keeps of a pcapng interface description block.
type iface struct {
	link    layers.LinkType
	snaplen uint32
	units   uint64 // timestamp units per second (if_tsresol)
	offset  int64  // if_tsoffset, seconds
}

// Reader reads packets from a pcap or pcapng stream.
//
// It is hand-written over a large bufio.Reader rather than built on pcapgo:
// that gives the exact file offset of a bad record for the error, handles
// several pcapng sections of either byte order, and in BenchmarkReader* it
// is faster than pcapgo's zero-copy readers while allocating nothing.
type Reader struct {
	br      buffer
	off     int64
	ng      bool
	be      bool // current byte order is big-endian
	scratch []byte

	// classic pcap
	nanos   bool
	link    layers.LinkType
	snaplen uint32
	limit   uint32

	// pcapng
	ifaces []iface
}

// NewReader reads the file header (or first pcapng section header) from r
// and returns a Reader positioned at the first packet.
func NewReader(r io.Reader) (*Reader, error) {
	return newReader(bufio.NewReaderSize(r, readBufSize))
}

// NewReaderBytes reads a capture held in memory, typically a mapped file.
// Packets point into data: nothing is copied. The decoder may rewrite a
// packet's bytes in place, so data must be writable (a private mapping).
func NewReaderBytes(data []byte) (*Reader, error) {
	return newReader(&byteBuffer{b: data})
}

// Mapped returns the memory a NewReaderBytes Reader reads, which packets
// point into; nil for a stream.
func (r *Reader) Mapped() []byte {
	if b, ok := r.br.(*byteBuffer); ok {
		return b.b
	}
	return nil
}

func newReader(br buffer) (*Reader, error) {
	rd := &Reader{br: br}
	b, err := rd.br.Peek(4)
	if err != nil {
		if len(b) == 0 && err == io.EOF {
			return nil, &FormatError{What: "file header", Err: errors.New("empty input")}
		}
		return nil, rd.ioErr("file header", 0, err)
	}
	switch binary.LittleEndian.Uint32(b) {
	case magicNG:
		rd.ng = true
		if err := rd.readSHB(); err != nil {
			return nil, err
		}
		return rd, nil
	case magicMicros, magicNanos, magicMicrosSwap, magicNanosSwap:
		if err := rd.readPcapHeader(); err != nil {
			return nil, err
		}
		return rd, nil
	}
	return nil, &FormatError{What: "file header", Err: fmt.Errorf("%w (magic %#08x)", ErrUnknownFormat, binary.BigEndian.Uint32(b))}
}

// buffer is what the Reader needs of its input: a bufio.Reader over a
// stream, or a byteBuffer over memory.
type buffer interface {
	io.Reader
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	Size() int
}

// byteBuffer serves a byte slice as a buffer whose size is the whole input,
// so every record is a sub-slice of it.
type byteBuffer struct {
	b   []byte
	pos int
}

func (b *byteBuffer) Size() int { return len(b.b) }

func (b *byteBuffer) Peek(n int) ([]byte, error) {
	if rest := b.b[b.pos:]; n > len(rest) {
		return rest, io.EOF
	}
	return b.b[b.pos : b.pos+n : b.pos+n], nil
}

func (b *byteBuffer) Discard(n int) (int, error) {
	if rest := len(b.b) - b.pos; n > rest {
		b.pos = len(b.b)
		return rest, io.EOF
	}
	b.pos += n
	return n, nil
}

func (b *byteBuffer) Read(p []byte) (int, error) {
	if b.pos == len(b.b) {
		return 0, io.EOF
	}
	n := copy(p, b.b[b.pos:])
	b.pos += n
	return n, nil
}

// ioErr turns a short read at offset off into a FormatError, and passes
// other I/O errors through with context.
func (r *Reader) ioErr(what string, off int64, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &FormatError{Offset: off, What: what, Err: errTruncated}
	}
	return fmt.Errorf("read %s at offset %d: %w", what, off, err)
}

func (r *Reader) u16(b []byte) uint16 {
	if r.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) u32(b []byte) uint32 {
	if r.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// take returns the next n bytes and consumes them. The slice is valid until
// the next call. Bytes that fit the buffer are not copied.
func (r *Reader) take(n int) ([]byte, error) {
	if n <= r.br.Size() {
		b, err := r.br.Peek(n)
		if err != nil {
			return nil, err
		}
		r.br.Discard(n) // cannot fail after a successful Peek
		r.off += int64(n)
		return b, nil
	}
	// Grow with the data actually read, so that a corrupt length on a short
	// input does not allocate the whole claimed size up front.
	r.scratch = r.scratch[:0]
	for len(r.scratch) < n {
		chunk := min(n-len(r.scratch), readBufSize)
		r.scratch = slices.Grow(r.scratch, chunk)
		m, err := io.ReadFull(r.br, r.scratch[len(r.scratch):len(r.scratch)+chunk])
		r.scratch = r.scratch[:len(r.scratch)+m]
		if err != nil {
			return nil, err
		}
	}
	r.off += int64(n)
	return r.scratch, nil
}

// Offset returns the number of bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

func (r *Reader) readPcapHeader() error {
	h, err := r.take(24)
	if err != nil {
		return r.ioErr("pcap file header", 0, err)
	}
	switch binary.LittleEndian.Uint32(h) {
	case magicMicros:
	case magicNanos:
		r.nanos = true
	case magicMicrosSwap:
		r.be = true
	case magicNanosSwap:
		r.be, r.nanos = true, true
	}
	if major := r.u16(h[4:]); major != 2 {
		return &FormatError{What: "pcap file header", Err: fmt.Errorf("unsupported version %d.%d", major, r.u16(h[6:]))}
	}
	r.snaplen = r.u32(h[16:])
	// The upper bits of the link type field carry FCS information.
	r.link = layers.LinkType(r.u32(h[20:]) & 0xffff)
	// Writers do not always keep records within their own snaplen
	// (Wireshark accepts up to 256 KiB regardless), so the limit is the
	// larger of the two, bounded so a corrupt header cannot ask for
	// gigabytes.
	r.limit = max(r.snaplen, maxPcapRecord)
	r.limit = min(r.limit, maxBlock)
	return nil
}

// Next reads the next packet into p, filling Timestamp, LinkType, Data,
// WireLen and Interface; the decoder's fields are left alone. p.Data refers
// to the Reader's buffer and is valid until the next call. At the end of the
// input Next returns io.EOF; corrupt input gives a *FormatError.
func (r *Reader) Next(p *mirror.Packet) error {
	if r.ng {
		return r.nextNG(p)
	}
	start := r.off
	h, err := r.br.Peek(16)
	if err != nil {
		if len(h) == 0 && err == io.EOF {
			return io.EOF
		}
		return r.ioErr("pcap record", start, err)
	}
	incl, orig := r.u32(h[8:]), r.u32(h[12:])
	if incl > r.limit {
		return &FormatError{Offset: start, What: "pcap record",
			Err: fmt.Errorf("incl_len %d exceeds limit %d (snaplen %d)", incl, r.limit, r.snaplen)}
	}
	sec, frac := r.u32(h), r.u32(h[4:])
	b, err := r.take(16 + int(incl))
	if err != nil {
		return r.ioErr("pcap record", start, err)
	}
	if !r.nanos {
		frac *= 1000
	}
	p.Timestamp = time.Unix(int64(sec), int64(frac))
	p.LinkType = r.link
	p.Data = b[16:]
	p.WireLen = max(int(orig), int(incl))
	p.Interface = 0
	return nil
}

func (r *Reader) nextNG(p *mirror.Packet) error {
	for {
		start := r.off
		h, err := r.br.Peek(12)
		if err != nil {
			if len(h) == 0 && err == io.EOF {
				return io.EOF
			}
			return r.ioErr("pcapng block", start, err)
		}
		typ := r.u32(h)
		if typ == blockSHB {
			if err := r.readSHB(); err != nil {
				return err
			}
			continue
		}
		n := r.u32(h[4:])
		if err := checkBlockLen(n); err != nil {
			return &FormatError{Offset: start, What: "pcapng block", Err: err}
		}
		switch typ {
		case blockEPB, blockSPB, blockPB, blockIDB:
		default:
			// Statistics, name resolution, secrets, custom blocks: not needed
			// to read packets, skipped without looking at them.
			if d, err := r.br.Discard(int(n)); err != nil {
				r.off += int64(d)
				return r.ioErr("pcapng block", start, err)
			}
			r.off += int64(n)
			continue
		}
		b, err := r.take(int(n))
		if err != nil {
			return r.ioErr("pcapng block", start, err)
		}
		if t := r.u32(b[n-4:]); t != n {
			return &FormatError{Offset: start, What: "pcapng block",
				Err: fmt.Errorf("trailing length %d differs from block length %d", t, n)}
		}
		body := b[8 : n-4]
		if typ == blockIDB {
			if err := r.parseIDB(body); err != nil {
				return &FormatError{Offset: start, What: "pcapng interface description block", Err: err}
			}
			continue
		}
		if err := r.parsePacket(typ, body, p); err != nil {
			return &FormatError{Offset: start, What: "pcapng packet block", Err: err}
		}
		return nil
	}
}

func checkBlockLen(n uint32) error {
	switch {
	case n < 12:
		return fmt.Errorf("block length %d too short", n)
	case n%4 != 0:
		return fmt.Errorf("block length %d not a multiple of 4", n)
	case n > maxBlock:
		return fmt.Errorf("block length %d exceeds %d", n, maxBlock)
	}
	return nil
}

// readSHB reads a section header block, which sets the byte order for the
// section and forgets the previous section's interfaces.
func (r *Reader) readSHB() error {
	start := r.off
	h, err := r.br.Peek(12)
	if err != nil {
		return r.ioErr("pcapng section header", start, err)
	}
	switch binary.LittleEndian.Uint32(h[8:]) {
	case byteOrderMagic:
		r.be = false
	case bits.ReverseBytes32(byteOrderMagic):
		r.be = true
	default:
		return &FormatError{Offset: start, What: "pcapng section header",
			Err: fmt.Errorf("bad byte-order magic %#08x", binary.BigEndian.Uint32(h[8:]))}
	}
	n := r.u32(h[4:])
	if err := checkBlockLen(n); err != nil {
		return &FormatError{Offset: start, What: "pcapng section header", Err: err}
	}
	if n < 28 {
		return &FormatError{Offset: start, What: "pcapng section header", Err: fmt.Errorf("block length %d too short", n)}
	}
	b, err := r.take(int(n))
	if err != nil {
		return r.ioErr("pcapng section header", start, err)
	}
	if t := r.u32(b[n-4:]); t != n {
		return &FormatError{Offset: start, What: "pcapng section header",
			Err: fmt.Errorf("trailing length %d differs from block length %d", t, n)}
	}
	if major := r.u16(b[12:]); major != 1 {
		return &FormatError{Offset: start, What: "pcapng section header",
			Err: fmt.Errorf("unsupported version %d.%d", major, r.u16(b[14:]))}
	}
	r.ifaces = r.ifaces[:0]
	return nil
}

func (r *Reader) parseIDB(body []byte) error {
	if len(body) < 8 {
		return fmt.Errorf("body of %d bytes too short", len(body))
	}
	ifc := iface{link: layers.LinkType(r.u16(body)), snaplen: r.u32(body[4:]), units: 1e6}
	opts := body[8:]
	for len(opts) >= 4 {
		code, l := r.u16(opts), int(r.u16(opts[2:]))
		if code == 0 { // opt_endofopt
			break
		}
		padded := (l + 3) &^ 3
		if 4+padded > len(opts) {
			return fmt.Errorf("option %d of length %d overruns the block", code, l)
		}
		v := opts[4 : 4+l]
		switch {
		case code == 9 && l == 1: // if_tsresol
			res := v[0]
			var units uint64
			if res&0x80 != 0 {
				if res&0x7f > 63 {
					return fmt.Errorf("if_tsresol 2^-%d out of range", res&0x7f)
				}
				units = 1 << (res & 0x7f)
			} else {
				if res > 19 {
					return fmt.Errorf("if_tsresol 10^-%d out of range", res)
				}
				units = 1
				for range res {
					units *= 10
				}
			}
			ifc.units = units
		case code == 14 && l == 8: // if_tsoffset
			hi, lo := r.u32(v), r.u32(v[4:])
			if r.be {
				ifc.offset = int64(uint64(hi)<<32 | uint64(lo))
			} else {
				ifc.offset = int64(uint64(lo)<<32 | uint64(hi))
			}
		}
		opts = opts[4+padded:]
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

func (r *Reader) parsePacket(typ uint32, body []byte, p *mirror.Packet) error {
	var id int
	var ts uint64
	var data []byte
	var orig uint32
	switch typ {
	case blockEPB, blockPB:
		if len(body) < 20 {
			return fmt.Errorf("body of %d bytes too short", len(body))
		}
		if typ == blockEPB {
			id = int(r.u32(body))
		} else {
			id = int(r.u16(body))
		}
		ts = uint64(r.u32(body[4:]))<<32 | uint64(r.u32(body[8:]))
		caplen := r.u32(body[12:])
		orig = r.u32(body[16:])
		if uint64(caplen) > uint64(len(body)-20) {
			return fmt.Errorf("captured length %d exceeds the block", caplen)
		}
		data = body[20 : 20+caplen]
	case blockSPB:
		if len(body) < 4 {
			return fmt.Errorf("body of %d bytes too short", len(body))
		}
		orig = r.u32(body)
		caplen := min(uint64(orig), uint64(len(body)-4))
		if len(r.ifaces) > 0 && r.ifaces[0].snaplen > 0 {
			caplen = min(caplen, uint64(r.ifaces[0].snaplen))
		}
		data = body[4 : 4+caplen]
	}
	if id >= len(r.ifaces) {
		return fmt.Errorf("interface %d not described (section has %d)", id, len(r.ifaces))
	}
	ifc := &r.ifaces[id]
	if typ == blockSPB {
		// A simple packet block has no timestamp.
		p.Timestamp = time.Time{}
	} else {
		p.Timestamp = ifc.time(ts)
	}
	p.LinkType = ifc.link
	p.Data = data
	p.WireLen = max(int(orig), len(data))
	p.Interface = id
	return nil
}

func (ifc *iface) time(ts uint64) time.Time {
	sec, rem := ts/ifc.units, ts%ifc.units
	var ns uint64
	switch {
	case ifc.units == 1e9:
		ns = rem
	case ifc.units <= 1e9 && 1e9%ifc.units == 0:
		ns = rem * (1e9 / ifc.units)
	default:
		// rem < units, so the quotient fits in 64 bits.
		hi, lo := bits.Mul64(rem, 1e9)
		ns, _ = bits.Div64(hi, lo, ifc.units)
	}
	return time.Unix(int64(sec)+ifc.offset, int64(ns))
}
