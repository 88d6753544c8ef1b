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
	"math"
	"math/bits"
	"os"
	"runtime/debug"
	"slices"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

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
	// maxIfaceText bounds the interface name and description kept per
	// interface, so that the descriptions of MaxInterfaces interfaces stay
	// small; real names are a few dozen bytes.
	maxIfaceText = 256
)

var pageSize = os.Getpagesize()

// MaxRecord is the most bytes of one packet the Reader hands out and the
// Writer writes: Wireshark and libpcap refuse longer records for most link
// types (262144, their WTAP_MAX_PACKET_SIZE_STANDARD), so a longer one is
// cut to it and keeps its original length, like a packet cut by a snap
// length. Records up to 16 MiB are read; longer ones are corrupt input.
const MaxRecord = maxPcapRecord

// DefaultMaxInterfaces is the Reader's limit on the interfaces of a pcapng
// input when MaxInterfaces is zero.
const DefaultMaxInterfaces = 1024

// ErrInterfaceLimit is the cause of the FormatError for a pcapng input that
// describes more interfaces than Reader.MaxInterfaces allows.
var ErrInterfaceLimit = errors.New("too many interfaces")

// ErrShrunk is the cause of the FormatError for a mapped input file (see
// Open) that became shorter while it was read: truncated or replaced in
// place by another program.
var ErrShrunk = errors.New("the input file shrank while being read")

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

// Interface describes one capture interface of the input: a pcapng
// interface description block, or the header of a classic pcap file.
// Packet.Interface indexes Reader.Interfaces.
type Interface struct {
	Name        string // if_name; "" when not given (always in classic pcap)
	Description string // if_description
	// Filter is if_filter, a filter expression in effect (type 0, a
	// libpcap filter string). An Encoder writes it; a Reader does not read
	// it, so that decapsulating a file does not claim its filter.
	Filter   string
	LinkType layers.LinkType
	SnapLen  uint32 // 0: not given
	// TSResol is if_tsresol as written: n for units of 10^-n s, 0x80|n for
	// 2^-n s; 6 (microseconds) when absent, 9 for a nanosecond pcap file.
	TSResol uint8
	// Units is the number of timestamp units per second TSResol gives.
	Units uint64
	// TSOffset is if_tsoffset: seconds added to every timestamp (already
	// added to Packet.Timestamp).
	TSOffset int64
}

// known is an interface as the Reader keeps it.
type known struct {
	Interface
	section uint64 // the last section that gave it an interface id
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

	// MaxInterfaces bounds the distinct interfaces a pcapng input may
	// describe (0: DefaultMaxInterfaces), and so the memory their
	// descriptions take: a later section that describes an interface again
	// with the same description gets the same Interface index and does not
	// count twice; one section can describe at most MaxInterfaces. Past the
	// limit Next returns a FormatError with ErrInterfaceLimit. Set it before
	// the first Next.
	MaxInterfaces int

	// Interfaces in order of first description; the pcapng interface ids of
	// the current section map to indexes into it.
	ifaces   []known
	ids      []int32
	section  uint64
	comments [][]byte
	stats    []InterfaceStats // by interface index, from the last ISB of each
}

// NewReader reads the file header (or first pcapng section header) from r
// and returns a Reader positioned at the first packet.
func NewReader(r io.Reader) (*Reader, error) {
	return newReader(bufio.NewReaderSize(r, readBufSize))
}

// NewReaderSize is NewReader with a read buffer of size bytes (4 KiB at
// least) instead of 1 MiB, for a program that reads many files at once (a
// merge of capture files): a record longer than the buffer is copied into
// a scratch buffer of the Reader's own.
func NewReaderSize(r io.Reader, size int) (*Reader, error) {
	return newReader(bufio.NewReaderSize(r, max(size, 4096)))
}

// NewReaderBytes reads a capture held in memory, typically a mapped file.
// Packets point into data: nothing is copied. The decoder may rewrite a
// packet's bytes in place, so data must be writable (a private mapping).
func NewReaderBytes(data []byte) (*Reader, error) {
	return newReader(&byteBuffer{b: data, end: len(data), probed: len(data)})
}

// Mapped returns the memory a NewReaderBytes Reader reads, which packets
// point into; nil for a stream.
func (r *Reader) Mapped() []byte {
	if b, ok := r.br.(*byteBuffer); ok {
		return b.b
	}
	return nil
}

// Interfaces returns the input's interfaces described so far, which
// Packet.Interface indexes. The slice is the caller's.
func (r *Reader) Interfaces() []Interface {
	out := make([]Interface, len(r.ifaces))
	for i := range r.ifaces {
		out[i] = r.ifaces[i].Interface
	}
	return out
}

// Interface returns the description of interface i (a Packet.Interface
// value from this Reader); the zero Interface for an index not described.
func (r *Reader) Interface(i int) Interface {
	if i < 0 || i >= len(r.ifaces) {
		return Interface{}
	}
	return r.ifaces[i].Interface
}

// Guard runs f, which reads packets from r and uses their bytes, with a
// fault on r's mapped input turned into an error: the pages of a mapped
// file truncated after Next handed out their packets fault when touched,
// which would otherwise kill the process with SIGBUS. The error is a
// FormatError with ErrShrunk whose Offset is where in the file the fault
// was. Whatever f was doing when the fault hit is left unfinished (a
// Writer drops a block it had not completed). Other panics pass through.
// Guard must run on the goroutine that runs f; for a stream it just calls f.
func (r *Reader) Guard(f func() error) (err error) {
	m := r.Mapped()
	if m == nil {
		return f()
	}
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		v := recover()
		if v == nil {
			return
		}
		a, ok := v.(interface{ Addr() uintptr })
		base := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
		if !ok || a.Addr() < base || a.Addr()-base >= uintptr(len(m)) {
			panic(v)
		}
		err = &FormatError{Offset: int64(a.Addr() - base), What: "mapped input", Err: ErrShrunk}
	}()
	return f()
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
//
// For a mapped file it also makes sure that what it hands out is still in
// the file: after the file shrinks, the pages of the mapping past its end
// fault when touched, and the rest of the page holding the new end reads
// as zeros. Before handing out bytes up to e it touches the page after the
// one holding e (once per page, with faults caught): when that page is
// there, so is every byte before it; when it is not, or e lies in the
// mapping's last page, it looks at the file's size.
type byteBuffer struct {
	b      []byte
	pos    int
	end    int      // len(b), or the file's size once it shrank below it
	probed int      // bytes known to be in the file
	f      *os.File // the mapped file; nil for memory
	shrunk error    // non-nil once the file shrank
	touch  byte
	// released is where the pages behind pos were last let go of.
	released int
}

// The pages of a mapped input stay resident once read, so a large input
// would cost its whole size in memory. Every releaseStep bytes read, the
// pages more than releaseKeep bytes behind are let go of (MADV_DONTNEED):
// far enough behind that a writer still holding frames by reference (see
// RefWriter.Refer) is done with them, and harmless if not: nothing writes to
// the private mapping, so a page touched again is read back from the file.
const (
	releaseStep = 16 << 20
	releaseKeep = 32 << 20
)

func (b *byteBuffer) Size() int { return len(b.b) }

// probe finds out whether the file still holds the bytes up to e.
func (b *byteBuffer) probe(e int) {
	if b.f == nil {
		b.probed = b.end
		return
	}
	if to := (b.pos - releaseKeep) &^ (pageSize - 1); to-b.released >= releaseStep {
		_ = unix.Madvise(b.b[b.released:to], unix.MADV_DONTNEED)
		b.released = to
	}
	next := (e + pageSize - 1) &^ (pageSize - 1)
	if next < len(b.b) && b.readable(next) {
		b.probed = next
		return
	}
	st, err := b.f.Stat()
	if err == nil && st.Size() < int64(b.end) {
		b.end = max(int(st.Size()), b.pos)
		b.shrunk = fmt.Errorf("%w (to %d bytes)", ErrShrunk, st.Size())
	}
	b.probed = b.end
}

// readable reports whether the byte at off can be read without a fault.
func (b *byteBuffer) readable(off int) (ok bool) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if recover() != nil {
			ok = false
		}
	}()
	b.touch ^= b.b[off]
	return true
}

func (b *byteBuffer) eof() error {
	if b.shrunk != nil {
		return b.shrunk
	}
	return io.EOF
}

func (b *byteBuffer) Peek(n int) ([]byte, error) {
	if b.pos+n > b.probed {
		b.probe(b.pos + n)
	}
	if rest := b.b[b.pos:b.end]; n > len(rest) {
		return rest, b.eof()
	}
	return b.b[b.pos : b.pos+n : b.pos+n], nil
}

func (b *byteBuffer) Discard(n int) (int, error) {
	if b.pos+n > b.probed {
		b.probe(b.pos + n)
	}
	if rest := b.end - b.pos; n > rest {
		b.pos = b.end
		return rest, b.eof()
	}
	b.pos += n
	return n, nil
}

func (b *byteBuffer) Read(p []byte) (int, error) {
	if b.pos+len(p) > b.probed {
		b.probe(b.pos + len(p))
	}
	if b.pos == b.end {
		return 0, b.eof()
	}
	n := copy(p, b.b[b.pos:b.end])
	b.pos += n
	return n, nil
}

// ioErr turns a short read at offset off into a FormatError, and passes
// other I/O errors through with context.
func (r *Reader) ioErr(what string, off int64, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &FormatError{Offset: off, What: what, Err: errTruncated}
	}
	if errors.Is(err, ErrShrunk) {
		return &FormatError{Offset: off, What: what, Err: err}
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
	ifc := Interface{LinkType: r.link, SnapLen: r.snaplen, TSResol: 6, Units: 1e6}
	if r.nanos {
		ifc.TSResol, ifc.Units = 9, 1e9
	}
	r.ifaces = append(r.ifaces, known{Interface: ifc})
	return nil
}

// Next reads the next packet into p, filling Timestamp, TimeClamped,
// LinkType, Data, WireLen, Interface and Comments; the decoder's fields are
// left alone. p.Data and p.Comments refer to the Reader's buffer and are
// valid until the next call. A record longer than MaxRecord is cut to it.
// A time outside what 64-bit nanoseconds since 1970 hold (before 1970, or
// after 2262-04-11) is clamped to that range and p.TimeClamped set. At the
// end of the input Next returns io.EOF; corrupt input gives a *FormatError.
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
	p.TimeClamped = false
	p.LinkType = r.link
	p.Data = b[16:min(16+incl, 16+MaxRecord)]
	p.WireLen = max(int(orig), int(incl))
	p.Interface = 0
	p.Comments = nil
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
		case blockEPB, blockSPB, blockPB, blockIDB, blockISB:
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
		if typ == blockISB {
			r.parseISB(body)
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
	r.ids = r.ids[:0]
	r.section++
	return nil
}

func (r *Reader) parseIDB(body []byte) error {
	if len(body) < 8 {
		return fmt.Errorf("body of %d bytes too short", len(body))
	}
	ifc := Interface{LinkType: layers.LinkType(r.u16(body)), SnapLen: r.u32(body[4:]), TSResol: 6, Units: 1e6}
	var name, desc []byte
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
		case code == 2: // if_name
			name = cutText(v)
		case code == 3: // if_description
			desc = cutText(v)
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
			ifc.TSResol, ifc.Units = res, units
		case code == 14 && l == 8: // if_tsoffset
			hi, lo := r.u32(v), r.u32(v[4:])
			if r.be {
				ifc.TSOffset = int64(uint64(hi)<<32 | uint64(lo))
			} else {
				ifc.TSOffset = int64(uint64(lo)<<32 | uint64(hi))
			}
		}
		opts = opts[4+padded:]
	}
	// The same interface described again in a later section (files joined
	// with cat, rotated files of one capture) keeps its index, so that its
	// packets stay together and the list stays bounded.
	for i := range r.ifaces {
		k := &r.ifaces[i]
		if k.section != r.section && k.LinkType == ifc.LinkType && k.SnapLen == ifc.SnapLen &&
			k.TSResol == ifc.TSResol && k.TSOffset == ifc.TSOffset &&
			k.Name == string(name) && k.Description == string(desc) {
			k.section = r.section
			r.ids = append(r.ids, int32(i))
			return nil
		}
	}
	limit := r.MaxInterfaces
	if limit <= 0 {
		limit = DefaultMaxInterfaces
	}
	if len(r.ifaces) >= limit {
		return fmt.Errorf("%w: more than %d distinct interfaces", ErrInterfaceLimit, limit)
	}
	ifc.Name, ifc.Description = string(name), string(desc)
	r.ifaces = append(r.ifaces, known{Interface: ifc, section: r.section})
	r.ids = append(r.ids, int32(len(r.ifaces)-1))
	return nil
}

// cutText bounds an interface name or description to maxIfaceText bytes,
// cutting at a character boundary.
func cutText(v []byte) []byte {
	if len(v) <= maxIfaceText {
		return v
	}
	v = v[:maxIfaceText]
	i := len(v) - 1
	for i > 0 && !utf8.RuneStart(v[i]) {
		i--
	}
	if !utf8.FullRune(v[i:]) {
		v = v[:i]
	}
	return v
}

func (r *Reader) parsePacket(typ uint32, body []byte, p *mirror.Packet) error {
	var id int
	var ts uint64
	var data, opts []byte
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
		opts = body[min(20+(int(caplen)+3)&^3, len(body)):]
	case blockSPB:
		if len(body) < 4 {
			return fmt.Errorf("body of %d bytes too short", len(body))
		}
		orig = r.u32(body)
		caplen := min(uint64(orig), uint64(len(body)-4))
		if len(r.ids) > 0 {
			if s := r.ifaces[r.ids[0]].SnapLen; s > 0 {
				caplen = min(caplen, uint64(s))
			}
		}
		data = body[4 : 4+caplen]
	}
	if id >= len(r.ids) {
		return fmt.Errorf("interface %d not described (section has %d)", id, len(r.ids))
	}
	g := int(r.ids[id])
	ifc := &r.ifaces[g].Interface
	if typ == blockSPB {
		// A simple packet block has no timestamp.
		p.Timestamp, p.TimeClamped = time.Time{}, false
	} else {
		p.Timestamp, p.TimeClamped = ifc.time(ts)
	}
	p.LinkType = ifc.LinkType
	p.WireLen = max(int(orig), len(data))
	p.Data = data[:min(len(data), MaxRecord)]
	p.Interface = g
	p.Comments = r.readComments(opts)
	return nil
}

// readComments returns the opt_comment values among a packet block's
// options, as slices of the block valid until the next Next. Options are
// read up to the first malformed one: they are not needed to read the
// packet.
func (r *Reader) readComments(opts []byte) [][]byte {
	r.comments = r.comments[:0]
	for len(opts) >= 4 {
		code, l := r.u16(opts), int(r.u16(opts[2:]))
		if code == optEnd || 4+l > len(opts) {
			break
		}
		if code == optComment {
			r.comments = append(r.comments, opts[4:4+l:4+l])
		}
		opts = opts[min(4+(l+3)&^3, len(opts)):]
	}
	if len(r.comments) == 0 {
		return nil
	}
	return r.comments
}

// Packet times are kept within what int64 nanoseconds since 1970 hold,
// which is also what a pcapng file written with nanosecond resolution and
// no offset holds: from 1970 to 2262-04-11T23:47:16.854775807Z.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Unix(0, math.MaxInt64)
)

const maxSec = math.MaxInt64 / 1_000_000_000

// time converts a timestamp in the interface's units to a time, adding
// if_tsoffset; a result outside [minTime, maxTime] is clamped to it, and
// clamped is true.
func (ifc *Interface) time(ts uint64) (t time.Time, clamped bool) {
	sec, rem := ts/ifc.Units, ts%ifc.Units
	var ns uint64
	switch {
	case ifc.Units == 1e9:
		ns = rem
	case ifc.Units <= 1e9 && 1e9%ifc.Units == 0:
		ns = rem * (1e9 / ifc.Units)
	default:
		// rem < units, so the quotient fits in 64 bits.
		hi, lo := bits.Mul64(rem, 1e9)
		ns, _ = bits.Div64(hi, lo, ifc.Units)
	}
	// sec + offset, without overflow: sec is up to 2^64-1, the offset
	// either sign.
	if off := ifc.TSOffset; off >= 0 {
		s, carry := bits.Add64(sec, uint64(off), 0)
		if carry != 0 {
			return maxTime, true
		}
		sec = s
	} else {
		neg := uint64(-off) // -MinInt64 wraps to itself, which as uint64 is right
		if sec < neg {
			return minTime, true
		}
		sec -= neg
	}
	if sec > maxSec || (sec == maxSec && ns > math.MaxInt64%1_000_000_000) {
		return maxTime, true
	}
	return time.Unix(int64(sec), int64(ns)), false
}
