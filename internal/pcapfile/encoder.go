package pcapfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Format selects the container and the content of what an Encoder writes.
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
	// FormatCopy writes, in pcapng, packets read back from a file vrsniff
	// wrote, as they were: the data as read, the record's own comments
	// only (Packet.Comments, the metadata comment among them) and the
	// direction (Packet.Meta.Direction) in epb_flags. vrsniff extract
	// uses it; it is not a choice of the command line.
	FormatCopy
)

var formatNames = [...]string{"pcapng", "pcap", "juniper-vn", "raw", "copy"}

func (f Format) String() string {
	if f >= 0 && int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat is the inverse of Format.String, for command-line flags.
func ParseFormat(s string) (Format, error) {
	for i, n := range formatNames[:FormatCopy] {
		if s == n {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("unknown output format %q (want pcapng, pcap, juniper-vn or raw)", s)
}

// ErrLinkType is returned for a pass-through packet whose link type cannot
// go into a classic pcap file of link type Ethernet. Nothing is written;
// the Encoder (or Writer) remains usable.
var ErrLinkType = errors.New("link type does not match the pcap file")

// Options configures an Encoder, and the writers built on one.
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
	// Capture describes the interface of a live capture, when Interfaces
	// is nil: its Name, Description and Filter go into the IDBs as
	// if_name, if_description and if_filter.
	Capture Interface
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
	// pcapSnapLen is written as the snaplen of classic pcap files when
	// Options.SnapLen is zero, as tcpdump does.
	pcapSnapLen = 262144
	// commentRoom is what SizeHint counts for the metadata comment, whose
	// length is known only once it is written; it is longer only for very
	// long VN names.
	commentRoom = 512
	// blockRoom bounds a record's block without its data and comments:
	// the enhanced packet block's 32 bytes, padding, the comment and
	// epb_flags option headers and the end of options.
	blockRoom = 64
)

// pcapng option codes and epb_flags values.
const (
	optEnd      = 0
	optComment  = 1
	optFlags    = 2  // epb_flags
	optIfName   = 2  // if_name
	optIfDesc   = 3  // if_description
	optUserAppl = 4  // shb_userappl
	optTSResol  = 9  // if_tsresol
	optIfFilter = 11 // if_filter

	// isb_* option codes (pcapng draft, section 4.6).
	optISBStart  = 2
	optISBEnd    = 3
	optISBIfRecv = 4
	optISBIfDrop = 5
	optISBOSDrop = 7

	blockISB = 5

	flagInbound  = 1
	flagOutbound = 2
)

// Encoder encodes packets as the records of one capture file, appending
// the bytes to a buffer of the caller's: it is the one place that knows
// the container (classic pcap or pcapng), what a record holds (the decoded
// frame, the juniper-vn TLVs before it, or the packet as captured) and its
// comment. It holds no buffer of its own, only the interfaces described so
// far in the file, so a sink that keeps a buffer per file or stream pays
// for no other.
//
// Blocks are encoded by hand instead of going through pcapgo.NgWriter: that
// has no way to add options of our own and costs about 420 ns and several
// allocations per packet with a comment, against a budget of a few hundred
// nanoseconds for reading and writing together. Append allocates nothing
// but what growing dst takes.
//
// An Encoder is not safe for concurrent use.
type Encoder struct {
	o Options

	// Output interfaces: outs lists them by id; byIn caches, per input
	// interface, the ids of its interfaces for decoded frames and for
	// packets as captured. described is how many of outs complete Appends
	// have put into a file: one cut short by a fault reading a mapped
	// input (see Reader.Guard) may have described more.
	outs      []outIface
	byIn      []inIDs
	described int
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

// NewEncoder returns an Encoder for files of the given options. Start each
// file with AppendHeader.
func NewEncoder(o Options) (*Encoder, error) {
	e := &Encoder{}
	if err := e.init(o); err != nil {
		return nil, fmt.Errorf("new encoder: %w", err)
	}
	return e, nil
}

func (e *Encoder) init(o Options) error {
	if o.Format < FormatPcapNG || o.Format > FormatCopy {
		return fmt.Errorf("unknown format %d", o.Format)
	}
	if o.SnapLen < 0 {
		return fmt.Errorf("negative snaplen %d", o.SnapLen)
	}
	e.o = o
	return nil
}

// Interfaces is the number of pcapng interfaces described so far in the
// current file (by AppendHeader and Append); 0 in classic pcap.
func (e *Encoder) Interfaces() int { return len(e.outs) }

// AppendHeader starts a new file: it appends the file header to dst (for
// pcapng the section header and, without Options.Interfaces, the
// interface of a live capture) and forgets the interfaces described in any
// earlier file.
func (e *Encoder) AppendHeader(dst []byte) []byte {
	e.outs, e.byIn, e.described = e.outs[:0], e.byIn[:0], 0
	switch e.o.Format {
	case FormatPcap:
		dst = e.appendPcapHeader(dst)
	case FormatPcapNG, FormatJuniperVN:
		dst = e.appendSHB(dst)
		if e.o.Interfaces == nil {
			// The one interface of a live capture, described up front
			// so that a reader of the stream knows it before any packet.
			_, dst = e.decIface(dst, 0)
		}
	case FormatRaw, FormatCopy:
		// Interfaces are described as packets from them turn up.
		dst = e.appendSHB(dst)
	}
	e.described = len(e.outs)
	return dst
}

// content is what p's record holds under the Encoder's format: prefix (the
// juniper-vn TLVs) then data, data's original length wire, and link, the
// link type of data. raw says the packet goes as captured: it has no
// decoded frame (ModeOther, ModeNone), or the format is FormatRaw.
func (e *Encoder) content(p *mirror.Packet) (prefix, data []byte, wire int, link layers.LinkType, raw bool) {
	raw = p.Mode == mirror.ModeOther || p.Mode == mirror.ModeNone || p.Frame == nil || e.o.Format >= FormatRaw
	if raw {
		return nil, p.Data, max(p.WireLen, len(p.Data)), p.LinkType, true
	}
	if e.o.Format == FormatJuniperVN {
		prefix = p.Meta.TLVs
		if p.Mode != mirror.ModeJuniper || len(prefix) == 0 {
			// No metadata of its own: an empty TLV list so Wireshark still
			// finds the frame.
			prefix = endTLV
		}
	}
	return prefix, p.Frame, max(p.FrameLen, len(p.Frame)), layers.LinkTypeEthernet, false
}

var endTLV = []byte{0xff, 0x00}

// RecordLen is the length of the data of p's record before any cut
// (Options.SnapLen, MaxRecord): the decoded frame, after the metadata TLVs
// in FormatJuniperVN, or the packet as captured.
func (e *Encoder) RecordLen(p *mirror.Packet) int {
	prefix, data, _, _, _ := e.content(p)
	return len(prefix) + len(data)
}

// SizeHint is about how many bytes Append adds to dst for p, interface
// descriptions aside: exact or more, except for a metadata comment longer
// than a few hundred bytes (very long VN names), when it is less.
func (e *Encoder) SizeHint(p *mirror.Packet) int {
	n := min(e.RecordLen(p), MaxRecord)
	if e.o.Format == FormatPcap {
		return 16 + n
	}
	n += blockRoom + commentRoom
	for _, c := range p.Comments {
		n += 8 + min(len(c), 0xffff)
	}
	return n
}

// Append appends p's record to dst in the Encoder's format (see Format),
// preceded, in pcapng, by the description of its interface when it is the
// first packet of one. A packet without a decoded frame (ModeOther or
// ModeNone) is written as captured, p.Data with p.LinkType, except that a
// classic pcap file holds only Ethernet: other link types get ErrLinkType
// and dst back unchanged. In pcapng the packet's own comments (p.Comments)
// follow vrsniff's. A record is cut to MaxRecord bytes; a time before 1970
// is written as 1970, one past what the format holds (2554 in pcapng, 2106
// in classic pcap) as its last second.
//
// An Append cut short by a panic (a fault reading a mapped input, see
// Reader.Guard) leaves the Encoder as if it had not been called, provided
// its partial output is dropped, as the caller's own dst is when it only
// assigns what Append returns.
func (e *Encoder) Append(dst []byte, p *mirror.Packet) ([]byte, error) {
	return e.append(dst, p, nil)
}

// append is Append; with ref, frames ref can refer to are left out of dst
// and handed to ref instead (see RefWriter).
func (e *Encoder) append(dst []byte, p *mirror.Packet, ref *RefWriter) ([]byte, error) {
	if len(e.outs) != e.described {
		e.forgetUndescribed()
	}
	prefix, data, wire, link, raw := e.content(p)
	if e.o.Format == FormatPcap {
		if link != layers.LinkTypeEthernet {
			return dst, ErrLinkType
		}
		return e.appendPcapRecord(dst, p, data, wire, ref), nil
	}
	var id int
	if raw {
		id, dst = e.rawIface(dst, p.Interface, link)
	} else {
		id, dst = e.decIface(dst, p.Interface)
	}
	dst = e.appendEPB(dst, p, id, prefix, data, wire, ref)
	e.described = len(e.outs)
	return dst, nil
}

// forgetUndescribed forgets the interfaces an Append cut short described
// in output that was dropped.
func (e *Encoder) forgetUndescribed() {
	e.outs = e.outs[:e.described]
	for i := range e.byIn {
		b := &e.byIn[i]
		if int(b.dec) >= e.described {
			b.dec = -1
		}
		if int(b.raw) >= e.described {
			b.raw = -1
		}
	}
}

var le = binary.LittleEndian

func (e *Encoder) appendPcapHeader(b []byte) []byte {
	magic := uint32(magicMicros)
	if e.o.Nanosecond {
		magic = magicNanos
	}
	snap := uint32(pcapSnapLen)
	if e.o.SnapLen > 0 {
		snap = uint32(e.o.SnapLen)
	}
	b = le.AppendUint32(b, magic)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0) // thiszone
	b = le.AppendUint32(b, 0) // sigfigs
	b = le.AppendUint32(b, snap)
	return le.AppendUint32(b, uint32(layers.LinkTypeEthernet))
}

// beginBlock appends a block header with a length to be filled in by
// endBlock, and returns the block's start.
func beginBlock(b []byte, typ uint32) ([]byte, int) {
	start := len(b)
	b = le.AppendUint32(b, typ)
	return le.AppendUint32(b, 0), start
}

// endBlock ends the block begun at start; virt counts its bytes that are
// not in b (referred to, see RefWriter).
func endBlock(b []byte, start, virt int) []byte {
	n := uint32(len(b) - start + 4 + virt)
	le.PutUint32(b[start+4:], n)
	return le.AppendUint32(b, n)
}

// pad appends the zeros that align a field of n bytes to 32 bits.
func pad(b []byte, n int) []byte {
	for ; n%4 != 0; n++ {
		b = append(b, 0)
	}
	return b
}

func appendOption(b []byte, code uint16, v []byte) []byte {
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(v)))
	return pad(append(b, v...), len(v))
}

func (e *Encoder) appendSHB(b []byte) []byte {
	b, start := beginBlock(b, blockSHB)
	b = le.AppendUint32(b, byteOrderMagic)
	b = le.AppendUint16(b, 1)                  // major
	b = le.AppendUint16(b, 0)                  // minor
	b = le.AppendUint64(b, 0xffffffffffffffff) // section length unknown
	if app := e.o.Application; app != "" {
		if len(app) > 0xffff {
			app = app[:0xffff]
		}
		b = appendOption(b, optUserAppl, []byte(app))
		b = le.AppendUint32(b, optEnd)
	}
	return endBlock(b, start, 0)
}

// decLink is the link type of decoded frames in this format.
func (e *Encoder) decLink() layers.LinkType {
	if e.o.Format == FormatJuniperVN {
		return mirror.LinkTypeJuniperVN
	}
	return layers.LinkTypeEthernet
}

// decIface returns the output interface for frames decoded from packets of
// input interface in, describing it in b if needed.
func (e *Encoder) decIface(b []byte, in int) (int, []byte) {
	if uint(in) < uint(len(e.byIn)) {
		if x := &e.byIn[in]; x.dec >= 0 {
			return int(x.dec), b
		}
	}
	return e.iface(b, in, false, e.decLink())
}

// rawIface returns the output interface for packets of input interface in
// written as captured, with link type link, describing it in b if needed.
func (e *Encoder) rawIface(b []byte, in int, link layers.LinkType) (int, []byte) {
	if uint(in) < uint(len(e.byIn)) {
		if x := &e.byIn[in]; x.raw >= 0 && x.rawLink == link {
			return int(x.raw), b
		}
	}
	return e.iface(b, in, true, link)
}

// iface finds or describes the output interface for input interface in,
// packets as captured (raw) or decoded, of link type link. Decoded frames
// are not bound by the input's snap length (a reassembled datagram can be
// longer), packets as captured are.
func (e *Encoder) iface(b []byte, in int, raw bool, link layers.LinkType) (int, []byte) {
	d := e.o.Capture
	if e.o.Interfaces != nil {
		d = e.o.Interfaces.Interface(in)
	}
	snap := uint32(e.o.SnapLen)
	if raw && d.SnapLen > 0 {
		s := min(d.SnapLen, MaxRecord)
		if snap == 0 || s < snap {
			snap = s
		}
	}
	id := -1
	for i, o := range e.outs {
		if o.in == in && o.link == link && o.snap == snap {
			id = i
			break
		}
	}
	if id < 0 {
		id = len(e.outs)
		b = appendIDB(b, d, link, snap)
		e.outs = append(e.outs, outIface{in, link, snap})
	}
	if in >= 0 && in < maxCachedIn {
		for len(e.byIn) <= in {
			e.byIn = append(e.byIn, inIDs{dec: -1, raw: -1})
		}
		if x := &e.byIn[in]; raw {
			x.raw, x.rawLink = int32(id), link
		} else {
			x.dec = int32(id)
		}
	}
	return id, b
}

// appendIDB describes an output interface, named like d. Times are written
// in nanoseconds, at least as fine as any input resolution vrsniff keeps
// (Packet.Timestamp holds nanoseconds).
func appendIDB(b []byte, d Interface, link layers.LinkType, snap uint32) []byte {
	b, start := beginBlock(b, blockIDB)
	b = le.AppendUint16(b, uint16(link))
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, snap)
	if d.Name != "" {
		b = appendOption(b, optIfName, []byte(d.Name))
	}
	if d.Description != "" {
		b = appendOption(b, optIfDesc, []byte(d.Description))
	}
	if d.Filter != "" {
		// Type 0: a libpcap filter string, the only kind readers show.
		b = le.AppendUint16(b, optIfFilter)
		f := d.Filter[:min(len(d.Filter), 0xfffe)]
		b = le.AppendUint16(b, uint16(1+len(f)))
		b = append(b, 0)
		b = pad(append(b, f...), 1+len(f))
	}
	b = appendOption(b, optTSResol, []byte{9})
	b = le.AppendUint32(b, optEnd)
	return endBlock(b, start, 0)
}

// AppendISB appends an Interface Statistics Block for interface id of the
// current file (0 ≤ id < Interfaces()) to dst. Classic pcap holds no
// statistics, and an interface not described is not referred to: dst then
// comes back unchanged.
func (e *Encoder) AppendISB(dst []byte, id int, s InterfaceStats) []byte {
	if e.o.Format == FormatPcap || id < 0 || id >= e.described {
		return dst
	}
	b, start := beginBlock(dst, blockISB)
	b = le.AppendUint32(b, uint32(id))
	b = appendTS(b, s.Time)
	opts := len(b)
	if !s.Start.IsZero() {
		b = le.AppendUint16(b, optISBStart)
		b = le.AppendUint16(b, 8)
		b = appendTS(b, s.Start)
	}
	if !s.End.IsZero() {
		b = le.AppendUint16(b, optISBEnd)
		b = le.AppendUint16(b, 8)
		b = appendTS(b, s.End)
	}
	for _, o := range [...]struct {
		code uint16
		v    uint64
		ok   bool
	}{{optISBIfRecv, s.Received, s.HasReceived}, {optISBIfDrop, s.IfDropped, s.HasIfDropped}, {optISBOSDrop, s.OSDropped, s.HasOSDropped}} {
		if o.ok {
			b = le.AppendUint16(b, o.code)
			b = le.AppendUint16(b, 8)
			b = le.AppendUint64(b, o.v)
		}
	}
	if len(b) > opts {
		b = le.AppendUint32(b, optEnd)
	}
	return endBlock(b, start, 0)
}

// appendTS appends t as a pcapng timestamp in nanoseconds (the resolution
// of every interface an Encoder describes), high word first.
func appendTS(b []byte, t time.Time) []byte {
	ts := nanos(unixTime(&mirror.Packet{Timestamp: t}))
	b = le.AppendUint32(b, uint32(ts>>32))
	return le.AppendUint32(b, uint32(ts))
}

func (e *Encoder) appendPcapRecord(b []byte, p *mirror.Packet, data []byte, wire int, ref *RefWriter) []byte {
	if n := e.o.SnapLen; n > 0 && len(data) > n {
		data = data[:n]
	}
	if len(data) > MaxRecord {
		data = data[:MaxRecord]
	}
	sec, frac := unixTime(p)
	if sec > math.MaxUint32 {
		sec, frac = math.MaxUint32, 999999999
	}
	if !e.o.Nanosecond {
		frac /= 1000
	}
	b = le.AppendUint32(b, uint32(sec))
	b = le.AppendUint32(b, uint32(frac))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(wire))
	if ref != nil && ref.referable(data) {
		ref.refer(b, data)
		return b
	}
	return append(b, data...)
}

func (e *Encoder) appendEPB(b []byte, p *mirror.Packet, id int, prefix, data []byte, wire int, ref *RefWriter) []byte {
	caplen := len(prefix) + len(data)
	if n := e.o.SnapLen; n > 0 && caplen > n {
		caplen = n
	}
	caplen = min(caplen, MaxRecord)
	wire += len(prefix)
	ts := nanos(unixTime(p))

	b, start := beginBlock(b, blockEPB)
	b = le.AppendUint32(b, uint32(id))
	b = le.AppendUint32(b, uint32(ts>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = le.AppendUint32(b, uint32(caplen))
	b = le.AppendUint32(b, uint32(wire))
	virt := 0
	switch {
	case caplen <= len(prefix):
		b = append(b, prefix[:caplen]...)
	case ref != nil && ref.referable(data[:caplen-len(prefix)]):
		b = append(b, prefix...)
		virt = caplen - len(prefix)
		ref.refer(b, data[:virt])
	default:
		b = append(b, prefix...)
		b = append(b, data[:caplen-len(prefix)]...)
	}
	b = pad(b, caplen)

	// The comment is encoded in place and its length patched afterwards,
	// so that it is never built in a buffer of its own.
	opt := len(b)
	b = le.AppendUint32(b, optComment)
	if e.o.Format == FormatCopy {
		// Only the record's own comments, below.
	} else if e.o.Format == FormatRaw {
		if p.Err != mirror.OK {
			b = append(b, "malformed: "...)
			b = append(b, p.Err.String()...)
			b = append(b, " at offset "...)
			b = strconv.AppendInt(b, int64(p.ErrOffset), 10)
		}
	} else {
		b = mirror.AppendComment(b, p)
	}
	n := len(b) - opt - 4
	hasOpts := n > 0
	switch {
	case n == 0:
		b = b[:opt]
	case n > 0xffff:
		b = b[:opt+4+0xffff]
		n = 0xffff
		fallthrough
	default:
		le.PutUint16(b[opt+2:], uint16(n))
		b = pad(b, n)
	}
	if e.o.Format != FormatRaw {
		var flags uint32
		switch p.Meta.Direction {
		case mirror.DirIngress:
			flags = flagInbound
		case mirror.DirEgress:
			flags = flagOutbound
		}
		if flags != 0 {
			b = le.AppendUint16(b, optFlags)
			b = le.AppendUint16(b, 4)
			b = le.AppendUint32(b, flags)
			hasOpts = true
		}
	}
	for _, c := range p.Comments {
		if len(c) > 0xffff {
			c = c[:0xffff]
		}
		b = appendOption(b, optComment, c)
		hasOpts = true
	}
	if hasOpts {
		b = le.AppendUint32(b, optEnd)
	}
	return endBlock(b, start, virt)
}

// nanos is a time since 1970 in nanoseconds, as pcapng timestamps hold it;
// 2^64 ns after 1970 is in 2554, and later times are written as that.
func nanos(sec, frac int64) uint64 {
	hi, ts := bits.Mul64(uint64(sec), 1e9)
	ts, carry := bits.Add64(ts, uint64(frac), 0)
	if hi != 0 || carry != 0 {
		return math.MaxUint64
	}
	return ts
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
