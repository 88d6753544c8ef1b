package pcapfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strconv"
	"unsafe"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Format selects what a Writer writes.
type Format int

const (
	// FormatPcapNG writes the decoded frames as Ethernet in pcapng, with the
	// mirror metadata as a comment and the direction in epb_flags.
	FormatPcapNG Format = iota
	// FormatPcap writes the decoded frames as Ethernet in classic pcap.
	FormatPcap
	// FormatJuniperVN writes, in pcapng, records of link type 184 holding the
	// metadata TLVs followed by the frame, which Wireshark dissects natively
	// (juniper.vn.src, juniper.vn.dst, …).
	FormatJuniperVN
	// FormatRaw writes packets as captured, in pcapng, with the reason they
	// could not be decoded as a comment: the rejects file.
	FormatRaw
)

var formatNames = [...]string{"pcapng", "pcap", "juniper-vn", "raw"}

func (f Format) String() string {
	if f >= 0 && int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat is the inverse of Format.String, for command-line flags.
func ParseFormat(s string) (Format, error) {
	for i, n := range formatNames {
		if s == n {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("unknown output format %q (want pcapng, pcap, juniper-vn or raw)", s)
}

// ErrLinkType is returned by WritePacket for a pass-through packet whose link
// type cannot go into a classic pcap file of link type Ethernet. Nothing is
// written; the Writer remains usable.
var ErrLinkType = errors.New("link type does not match the pcap file")

// Options configures a Writer.
type Options struct {
	Format Format
	// Nanosecond selects nanosecond timestamps in classic pcap (pcapng is
	// always written with nanosecond resolution).
	Nanosecond bool
	// Interfaces, if set, describes the input interfaces that
	// Packet.Interface refers to (a Reader does), and a pcapng file then
	// gets one interface per input interface and output link type, named
	// like the input's, described when its first packet is written. Without
	// it the interfaces are unnamed and told apart by Packet.Interface and
	// link type only. Classic pcap has no interfaces.
	Interfaces Describer
	// SnapLen, if positive, cuts every record to at most that many bytes
	// and is recorded in the file header; zero means no limit.
	SnapLen int
	// Application names the writing program in the pcapng section header.
	Application string
}

// Describer describes capture interfaces by the index a Packet carries in
// Packet.Interface.
type Describer interface {
	Interface(i int) Interface
}

const (
	writeBufSize = 1 << 20
	// pcapSnapLen is written as the snaplen of classic pcap files when
	// Options.SnapLen is zero, as tcpdump does.
	pcapSnapLen = 262144
	// commentRoom is what WritePacket reserves for a comment before it
	// knows its length; a longer one just grows the buffer.
	commentRoom = 512
)

// pcapng option codes and epb_flags values.
const (
	optEnd      = 0
	optComment  = 1
	optFlags    = 2 // epb_flags
	optIfName   = 2 // if_name
	optIfDesc   = 3 // if_description
	optUserAppl = 4 // shb_userappl
	optTSResol  = 9 // if_tsresol

	flagInbound  = 1
	flagOutbound = 2
)

// Writer writes packets to a capture file or stream.
//
// Blocks are encoded by hand into one large buffer instead of going through
// pcapgo.NgWriter: that has no way to add options of our own and costs about
// 420 ns and several allocations per packet with a comment, against a budget
// of a few hundred nanoseconds for reading and writing together. The buffer
// only ever holds whole blocks, so whatever reaches the underlying writer,
// on Flush or when the buffer fills, ends on a block boundary.
type Writer struct {
	w   io.Writer
	o   Options
	buf []byte
	err error // sticky write error

	// Output interfaces: outs lists them by id; byIn caches, per input
	// interface, the ids of its interfaces for decoded frames and for
	// packets as captured.
	outs []outIface
	byIn []inIDs

	// The block being written, so that one left unfinished by a fault on
	// the mapped input (see Reader.Guard) is dropped rather than written.
	open                        bool
	markBuf, markVec, markVirt4 int
	markCut                     int

	// Frames referred to rather than copied (see Refer): vec holds, in
	// file order, pieces of buf and frames inside region; buf[cut:] is not
	// in vec yet. virt counts the referred bytes of the block being
	// written, virt4 those since the last flush modulo 4, for alignment.
	vw     VectorWriter
	region []byte
	vec    [][]byte
	cut    int
	virt   int
	virt4  int
}

// VectorWriter is a destination that takes the Writer's filled buffer over
// instead of having it copied, e.g. to write it on another goroutine. vec
// lists, in file order, what to write: pieces of buf and the frames the
// Writer referred to instead of copying them (see Refer); write it with
// writev(2). It owns buf and vec until it hands back empty ones.
type VectorWriter interface {
	io.Writer
	WriteVector(buf []byte, vec [][]byte) (nextBuf []byte, nextVec [][]byte, err error)
}

// minRefer is the smallest frame worth referring to: below it the copy is
// cheaper than one more I/O vector.
const minRefer = 128

// maxVec bounds the I/O vectors gathered before a flush.
const maxVec = 8192

// Refer declares that region's bytes stay valid and unchanged until the
// Writer's last Flush, as a mapped input file's do. When the destination is
// a VectorWriter, frames inside region are then written by reference: for
// decap that saves copying every frame once more in user space.
func (w *Writer) Refer(region []byte) {
	w.region = region
}

func (w *Writer) referable(data []byte) bool {
	if w.vw == nil || len(data) < minRefer || len(w.region) == 0 {
		return false
	}
	d, r := uintptr(unsafe.Pointer(unsafe.SliceData(data))), uintptr(unsafe.Pointer(unsafe.SliceData(w.region)))
	return d >= r && d+uintptr(len(data)) <= r+uintptr(len(w.region))
}

// outIface is an interface of the output file.
type outIface struct {
	in   int // input interface
	link layers.LinkType
	snap uint32
}

// inIDs are the output interfaces of one input interface: for decoded
// frames and for packets as captured; -1 until described.
type inIDs struct {
	dec, raw int32
	rawLink  layers.LinkType
}

// maxCachedIn bounds the input interface indexes cached in byIn; a larger
// index (not from a Reader, whose indexes are bounded by MaxInterfaces)
// takes the slow path.
const maxCachedIn = 1 << 16

// refer appends data to the file by reference.
func (w *Writer) refer(data []byte) {
	if w.cut < len(w.buf) {
		w.vec = append(w.vec, w.buf[w.cut:len(w.buf):len(w.buf)])
	}
	w.vec = append(w.vec, data)
	w.cut = len(w.buf)
	w.virt += len(data)
	w.virt4 = (w.virt4 + len(data)) % 4
}

// NewWriter returns a Writer that writes the file header (and, for pcapng
// with decoded frames, the Ethernet interface) to its buffer; nothing reaches
// w before the first Flush or a full buffer.
func NewWriter(w io.Writer, o Options) (*Writer, error) {
	if o.Format < FormatPcapNG || o.Format > FormatRaw {
		return nil, fmt.Errorf("new writer: unknown format %d", o.Format)
	}
	if o.SnapLen < 0 {
		return nil, fmt.Errorf("new writer: negative snaplen %d", o.SnapLen)
	}
	wr := &Writer{w: w, o: o, buf: make([]byte, 0, writeBufSize)}
	wr.vw, _ = w.(VectorWriter)
	wr.writeHeader()
	return wr, nil
}

// Reset discards anything buffered, clears a write error and starts a new
// file on w with the same options, reusing the buffer: for rotating files.
func (w *Writer) Reset(dst io.Writer) {
	w.w, w.buf, w.outs, w.byIn, w.err, w.open = dst, w.buf[:0], w.outs[:0], w.byIn[:0], nil, false
	w.vw, _ = dst.(VectorWriter)
	w.region, w.vec, w.cut, w.virt, w.virt4 = nil, w.vec[:0], 0, 0, 0
	w.writeHeader()
}

func (w *Writer) writeHeader() {
	switch w.o.Format {
	case FormatPcap:
		w.writePcapHeader()
	case FormatPcapNG, FormatJuniperVN:
		w.writeSHB()
		if w.o.Interfaces == nil {
			// The one interface of a live capture, described up front
			// so that a reader of the stream knows it before any packet.
			w.decIface(0)
		}
	case FormatRaw:
		// Interfaces are described as packets from them turn up.
		w.writeSHB()
	}
}

var le = binary.LittleEndian

func (w *Writer) writePcapHeader() {
	magic := uint32(magicMicros)
	if w.o.Nanosecond {
		magic = magicNanos
	}
	snap := uint32(pcapSnapLen)
	if w.o.SnapLen > 0 {
		snap = uint32(w.o.SnapLen)
	}
	b := le.AppendUint32(w.buf, magic)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0) // thiszone
	b = le.AppendUint32(b, 0) // sigfigs
	b = le.AppendUint32(b, snap)
	b = le.AppendUint32(b, uint32(layers.LinkTypeEthernet))
	w.buf = b
}

// beginBlock appends a block header with a length to be filled in by
// endBlock, and returns the block's start.
func (w *Writer) beginBlock(typ uint32) int {
	start := len(w.buf)
	w.virt = 0
	w.buf = le.AppendUint32(w.buf, typ)
	w.buf = le.AppendUint32(w.buf, 0)
	return start
}

func (w *Writer) endBlock(start int) {
	n := uint32(len(w.buf) - start + 4 + w.virt)
	le.PutUint32(w.buf[start+4:], n)
	w.buf = le.AppendUint32(w.buf, n)
}

func (w *Writer) pad() {
	for (len(w.buf)+w.virt4)%4 != 0 {
		w.buf = append(w.buf, 0)
	}
}

func (w *Writer) appendOption(code uint16, v []byte) {
	w.buf = le.AppendUint16(w.buf, code)
	w.buf = le.AppendUint16(w.buf, uint16(len(v)))
	w.buf = append(w.buf, v...)
	w.pad()
}

func (w *Writer) writeSHB() {
	start := w.beginBlock(blockSHB)
	w.buf = le.AppendUint32(w.buf, byteOrderMagic)
	w.buf = le.AppendUint16(w.buf, 1)                  // major
	w.buf = le.AppendUint16(w.buf, 0)                  // minor
	w.buf = le.AppendUint64(w.buf, 0xffffffffffffffff) // section length unknown
	if app := w.o.Application; app != "" {
		if len(app) > 0xffff {
			app = app[:0xffff]
		}
		w.appendOption(optUserAppl, []byte(app))
		w.buf = le.AppendUint32(w.buf, optEnd)
	}
	w.endBlock(start)
}

// decLink is the link type of decoded frames in this format.
func (w *Writer) decLink() layers.LinkType {
	if w.o.Format == FormatJuniperVN {
		return mirror.LinkTypeJuniperVN
	}
	return layers.LinkTypeEthernet
}

// decIface returns the output interface for frames decoded from packets of
// input interface in.
func (w *Writer) decIface(in int) int {
	if uint(in) < uint(len(w.byIn)) {
		if e := &w.byIn[in]; e.dec >= 0 {
			return int(e.dec)
		}
	}
	return w.iface(in, false, w.decLink())
}

// rawIface returns the output interface for packets of input interface in
// written as captured, with link type link.
func (w *Writer) rawIface(in int, link layers.LinkType) int {
	if uint(in) < uint(len(w.byIn)) {
		if e := &w.byIn[in]; e.raw >= 0 && e.rawLink == link {
			return int(e.raw)
		}
	}
	return w.iface(in, true, link)
}

// iface finds or describes the output interface for input interface in,
// packets as captured (raw) or decoded, of link type link. Decoded frames
// are not bound by the input's snap length (a reassembled datagram can be
// longer), packets as captured are.
func (w *Writer) iface(in int, raw bool, link layers.LinkType) int {
	var d Interface
	if w.o.Interfaces != nil {
		d = w.o.Interfaces.Interface(in)
	}
	snap := uint32(w.o.SnapLen)
	if raw && d.SnapLen > 0 {
		s := min(d.SnapLen, MaxRecord)
		if snap == 0 || s < snap {
			snap = s
		}
	}
	id := -1
	for i, o := range w.outs {
		if o.in == in && o.link == link && o.snap == snap {
			id = i
			break
		}
	}
	if id < 0 {
		id = w.writeIDB(d, link, snap)
		w.outs = append(w.outs, outIface{in, link, snap})
	}
	if in >= 0 && in < maxCachedIn {
		for len(w.byIn) <= in {
			w.byIn = append(w.byIn, inIDs{dec: -1, raw: -1})
		}
		if e := &w.byIn[in]; raw {
			e.raw, e.rawLink = int32(id), link
		} else {
			e.dec = int32(id)
		}
	}
	return id
}

// writeIDB describes the next output interface, named like d, and returns
// its id. Times are written in nanoseconds, at least as fine as any input
// resolution vrsniff keeps (Packet.Timestamp holds nanoseconds).
func (w *Writer) writeIDB(d Interface, link layers.LinkType, snap uint32) int {
	start := w.beginBlock(blockIDB)
	w.buf = le.AppendUint16(w.buf, uint16(link))
	w.buf = le.AppendUint16(w.buf, 0)
	w.buf = le.AppendUint32(w.buf, snap)
	if d.Name != "" {
		w.appendOption(optIfName, []byte(d.Name))
	}
	if d.Description != "" {
		w.appendOption(optIfDesc, []byte(d.Description))
	}
	w.appendOption(optTSResol, []byte{9})
	w.buf = le.AppendUint32(w.buf, optEnd)
	w.endBlock(start)
	return len(w.outs)
}

// reserve makes room for a block of about n bytes, handing the buffered
// blocks to the underlying writer if they would not fit together.
func (w *Writer) reserve(n int) error {
	if (len(w.buf)+n > cap(w.buf) && len(w.buf) > 0) || len(w.vec) >= maxVec {
		return w.Flush()
	}
	return nil
}

// WritePacket writes one packet in the Writer's format (see Format). A
// packet without a decoded frame (ModeOther or ModeNone) is written as
// captured, p.Data with p.LinkType, except that a classic pcap file holds
// only Ethernet: other link types get ErrLinkType. In pcapng the packet's
// own comments (p.Comments) follow vrsniff's. A record is cut to MaxRecord
// bytes; a time before 1970 is written as 1970, one past what the format
// holds (2554 in pcapng, 2106 in classic pcap) as its last second.
func (w *Writer) WritePacket(p *mirror.Packet) error {
	if w.err != nil {
		return w.err
	}
	w.dropOpen()
	raw := p.Mode == mirror.ModeOther || p.Mode == mirror.ModeNone || p.Frame == nil
	data, wire, link := p.Frame, max(p.FrameLen, len(p.Frame)), layers.LinkTypeEthernet
	if raw || w.o.Format == FormatRaw {
		data, wire, link = p.Data, max(p.WireLen, len(p.Data)), p.LinkType
	}
	if w.o.Format == FormatPcap {
		if link != layers.LinkTypeEthernet {
			return ErrLinkType
		}
		return w.writePcapRecord(p, data, wire)
	}
	room := len(data) + 64 + commentRoom
	for _, c := range p.Comments {
		room += 8 + len(c)
	}
	if err := w.reserve(room); err != nil {
		return err
	}
	var id int
	var prefix []byte
	switch {
	case raw || w.o.Format == FormatRaw:
		id = w.rawIface(p.Interface, link)
	case w.o.Format == FormatJuniperVN:
		id = w.decIface(p.Interface)
		prefix = p.Meta.TLVs
		if p.Mode != mirror.ModeJuniper || len(prefix) == 0 {
			// No metadata of its own: an empty TLV list so Wireshark still
			// finds the frame.
			prefix = endTLV
		}
	default:
		id = w.decIface(p.Interface)
	}
	w.writeEPB(p, id, prefix, data, wire)
	return nil
}

// mark notes where the block about to be written starts.
func (w *Writer) mark() {
	w.open, w.markBuf, w.markVec, w.markCut, w.markVirt4 = true, len(w.buf), len(w.vec), w.cut, w.virt4
}

// dropOpen drops a block whose writing was cut short by a fault (see
// Reader.Guard), so that the buffer again ends on a block boundary.
func (w *Writer) dropOpen() {
	if !w.open {
		return
	}
	w.buf = w.buf[:w.markBuf]
	clear(w.vec[w.markVec:])
	w.vec, w.cut, w.virt4, w.open = w.vec[:w.markVec], w.markCut, w.markVirt4, false
}

var endTLV = []byte{0xff, 0x00}

func (w *Writer) writePcapRecord(p *mirror.Packet, data []byte, wire int) error {
	if n := w.o.SnapLen; n > 0 && len(data) > n {
		data = data[:n]
	}
	if len(data) > MaxRecord {
		data = data[:MaxRecord]
	}
	if err := w.reserve(16 + len(data)); err != nil {
		return err
	}
	w.mark()
	sec, frac := unixTime(p)
	if sec > math.MaxUint32 {
		sec, frac = math.MaxUint32, 999999999
	}
	if !w.o.Nanosecond {
		frac /= 1000
	}
	b := le.AppendUint32(w.buf, uint32(sec))
	b = le.AppendUint32(b, uint32(frac))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(wire))
	if w.referable(data) {
		w.buf = b
		w.refer(data)
	} else {
		w.buf = append(b, data...)
	}
	w.open = false
	return nil
}

func (w *Writer) writeEPB(p *mirror.Packet, id int, prefix, data []byte, wire int) {
	caplen := len(prefix) + len(data)
	if n := w.o.SnapLen; n > 0 && caplen > n {
		caplen = n
	}
	caplen = min(caplen, MaxRecord)
	wire += len(prefix)
	sec, frac := unixTime(p)
	hi, ts := bits.Mul64(uint64(sec), 1e9)
	ts, carry := bits.Add64(ts, uint64(frac), 0)
	if hi != 0 || carry != 0 {
		ts = math.MaxUint64 // 2^64 ns after 1970 is in 2554
	}

	w.mark()
	start := w.beginBlock(blockEPB)
	b := le.AppendUint32(w.buf, uint32(id))
	b = le.AppendUint32(b, uint32(ts>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = le.AppendUint32(b, uint32(caplen))
	b = le.AppendUint32(b, uint32(wire))
	switch {
	case caplen <= len(prefix):
		b = append(b, prefix[:caplen]...)
		w.buf = b
	case w.referable(data[:caplen-len(prefix)]):
		w.buf = append(b, prefix...)
		w.refer(data[:caplen-len(prefix)])
	default:
		b = append(b, prefix...)
		w.buf = append(b, data[:caplen-len(prefix)]...)
	}
	w.pad()

	// The comment is encoded in place and its length patched afterwards,
	// so that it is never built in a buffer of its own.
	opt := len(w.buf)
	w.buf = le.AppendUint32(w.buf, optComment)
	if w.o.Format == FormatRaw {
		if p.Err != mirror.OK {
			w.buf = append(w.buf, "malformed: "...)
			w.buf = append(w.buf, p.Err.String()...)
			w.buf = append(w.buf, " at offset "...)
			w.buf = strconv.AppendInt(w.buf, int64(p.ErrOffset), 10)
		}
	} else {
		w.buf = mirror.AppendComment(w.buf, p)
	}
	n := len(w.buf) - opt - 4
	hasOpts := n > 0
	switch {
	case n == 0:
		w.buf = w.buf[:opt]
	case n > 0xffff:
		w.buf = w.buf[:opt+4+0xffff]
		n = 0xffff
		fallthrough
	default:
		le.PutUint16(w.buf[opt+2:], uint16(n))
		w.pad()
	}
	if w.o.Format != FormatRaw {
		var flags uint32
		switch p.Meta.Direction {
		case mirror.DirIngress:
			flags = flagInbound
		case mirror.DirEgress:
			flags = flagOutbound
		}
		if flags != 0 {
			w.buf = le.AppendUint16(w.buf, optFlags)
			w.buf = le.AppendUint16(w.buf, 4)
			w.buf = le.AppendUint32(w.buf, flags)
			hasOpts = true
		}
	}
	for _, c := range p.Comments {
		if len(c) > 0xffff {
			c = c[:0xffff]
		}
		w.appendOption(optComment, c)
		hasOpts = true
	}
	if hasOpts {
		w.buf = le.AppendUint32(w.buf, optEnd)
	}
	w.endBlock(start)
	w.open = false
}

// Flush writes the buffered blocks to the underlying writer. A write error
// is sticky: later calls return it.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.dropOpen()
	if len(w.buf) == 0 {
		return nil
	}
	if w.vw != nil {
		if w.cut < len(w.buf) {
			w.vec = append(w.vec, w.buf[w.cut:len(w.buf):len(w.buf)])
		}
		buf, vec, err := w.vw.WriteVector(w.buf, w.vec)
		w.buf, w.vec, w.cut, w.virt4 = buf[:0], vec[:0], 0, 0
		if err != nil {
			w.err = fmt.Errorf("write capture: %w", err)
		}
		return w.err
	}
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("write capture: %w", err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// unixTime returns the packet's time in seconds and nanoseconds since 1970,
// or zero for a packet without a timestamp (a pcapng simple packet block)
// or one before 1970, which neither format holds.
func unixTime(p *mirror.Packet) (sec, nsec int64) {
	sec = p.Timestamp.Unix()
	if p.Timestamp.IsZero() || sec < 0 {
		return 0, 0
	}
	return sec, int64(p.Timestamp.Nanosecond())
}
