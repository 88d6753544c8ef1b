package mirror

import (
	"encoding/binary"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// LinkTypeJuniperVN is pcap link type 184 as Wireshark reads it: the
// metadata TLVs, then the Ethernet frame. The UDP socket source hands
// datagram payloads over with this link type.
const LinkTypeJuniperVN layers.LinkType = 184

// Link types for raw IP as different writers label it.
const (
	linkTypeRaw      layers.LinkType = 101
	linkTypeRawBSD   layers.LinkType = 12
	linkTypeIPv4     layers.LinkType = 228
	linkTypeIPv6     layers.LinkType = 229
	linkTypeLinuxSLL layers.LinkType = 113
	linkTypeSLL2     layers.LinkType = 276
)

// Default ports.
const (
	DefaultPort      = 8099
	DefaultVXLANPort = 4789
	// MPLSoUDP ports of the fabric overlay (RFC 7510; older releases used
	// 51234): a sniffer on the fabric may see mirror datagrams inside.
	MPLSoUDPPort    = 6635
	MPLSoUDPPortOld = 51234
)

// Config configures a Decoder.
type Config struct {
	Traffic     Traffic // what is mirror traffic; valid (Traffic.Validate)
	PassThrough bool    // keep non-mirror traffic as ModeOther rather than failing it
	Reassembly  ReassemblyConfig
}

// Status is what Decode did with a packet.
type Status uint8

const (
	Decoded Status = iota // p.Frame holds the mirrored frame (or p is ModeOther)
	Failed                // p.Err says why; p.Data is untouched
	Held                  // p was an outer IP fragment, copied and held for reassembly
	// Merged: p was an outer fragment of a datagram already delivered
	// (its first fragment was cut by the snap length and decoded as a
	// truncated frame); nothing more to deliver.
	Merged
	// Duplicate: p repeated, byte for byte, a fragment already held or
	// part of a datagram just completed; counted, not an error.
	Duplicate
)

// Decoder decodes packets. It is not safe for concurrent use: give each
// goroutine its own.
type Decoder struct {
	ports, vxlan portSet
	vlan         uint16
	passThrough  bool
	autoPorts    bool
	frag         reassembler
	// juniperSeen is set when a datagram to a Juniper-header port was
	// found: it tells a tunnel that held a mirror datagram from one that
	// did not.
	juniperSeen bool
	candidates  portCounts
	shortSnap   uint64 // mirror datagrams cut by the snap length inside their metadata
	scratch     []byte // frames rewritten off the source's bytes
}

// portCounts counts datagrams to a few unconfigured UDP ports that carry
// mirror metadata; a port past the table's size is not counted.
type portCounts struct {
	n     int
	ports [8]uint16
	count [8]uint64
}

func (c *portCounts) add(port uint16) {
	for i := range c.n {
		if c.ports[i] == port {
			c.count[i]++
			return
		}
	}
	if c.n < len(c.ports) {
		c.ports[c.n], c.count[c.n] = port, 1
		c.n++
	}
}

// PortCount is a UDP port and a number of datagrams.
type PortCount struct {
	Port  uint16 `json:"port"`
	Count uint64 `json:"datagrams"`
}

// Hints says what the Decoder noticed about its input that the user may
// want to act on.
type Hints struct {
	// CandidatePorts are UDP destination ports not configured as mirror
	// ports whose datagrams parse as mirror metadata followed by a
	// plausible Ethernet frame: decode them with --port, or --port auto.
	CandidatePorts []PortCount
	// ShortSnap counts mirror datagrams cut by the snap length inside
	// their metadata: capture with a larger snap length.
	ShortSnap uint64
}

// Hints reports what the Decoder noticed so far.
func (d *Decoder) Hints() Hints {
	h := Hints{ShortSnap: d.shortSnap}
	for i := range d.candidates.n {
		h.CandidatePorts = append(h.CandidatePorts, PortCount{d.candidates.ports[i], d.candidates.count[i]})
	}
	return h
}

// looksLikeMirror reports whether a UDP payload at data[start:end],
// captured to capEnd, is mirror metadata as the agent writes it: TLVs of
// the known types ending in FF 00, then a plausible Ethernet frame.
func (d *Decoder) looksLikeMirror(start, capEnd, end int, data []byte) bool {
	if capEnd <= start {
		return false
	}
	switch data[start] {
	case 1, 2, 3, 4, 255:
	default:
		return false
	}
	var m Meta
	next, r, _, unknown := walkTLVs(&m, data[:capEnd], start, end, nil)
	return r == OK && !unknown && plausibleFrame(data[next:capEnd], end-next)
}

type portSet [1024]uint64

func (s *portSet) add(p uint16)      { s[p>>6] |= 1 << (p & 63) }
func (s *portSet) has(p uint16) bool { return s[p>>6]&(1<<(p&63)) != 0 }
func newPortSet(ps []uint16) (s portSet) {
	for _, p := range ps {
		s.add(p)
	}
	return s
}

// NewDecoder returns a Decoder for the configuration.
func NewDecoder(c Config) *Decoder {
	t := c.Traffic.WithDefaults()
	d := &Decoder{
		ports:       newPortSet(t.Ports),
		vxlan:       newPortSet(t.VXLANPorts),
		vlan:        t.MirrorVLAN,
		passThrough: c.PassThrough,
		autoPorts:   t.AutoPorts,
	}
	d.frag.init(c.Reassembly)
	return d
}

// Decode decodes p in place. On Decoded, p.Frame and p.Meta point into
// p.Data, which, for a reassembled datagram, is the Decoder's own buffer:
// valid until the next call. A NIC-assisted frame has its mirror VLAN tag
// removed by moving the MAC addresses within p.Data, and an inner IPv6
// frame mislabelled as IPv4 gets its EtherType corrected in place.
func (d *Decoder) Decode(p *Packet) Status {
	p.Reset()
	switch st := d.decode(p); st {
	case Held, Merged, Duplicate:
		return st
	}
	if p.Err != OK {
		return Failed
	}
	return Decoded
}

// Expire hands every held fragment of datagrams not completed within the
// reassembly timeout before now to fn, as a Failed packet with
// ErrFragment. It scans at most once a second of packet time.
func (d *Decoder) Expire(now time.Time, fn func(*Packet)) { d.frag.expire(now, false, fn) }

// Flush hands every held fragment to fn as a Failed packet: for the end of
// the input.
func (d *Decoder) Flush(fn func(*Packet)) { d.frag.expire(time.Time{}, true, fn) }

// ReassemblyStats reports the reassembler's counters.
func (d *Decoder) ReassemblyStats() ReassemblyStats {
	s := d.frag.stats
	s.Pending, s.PendingSize = len(d.frag.pending), d.frag.size
	return s
}

// fail records why decoding stopped. A header that starts beyond what was
// captured is reported at the end of the capture.
func (p *Packet) fail(r Reason, off int) Status {
	p.Err, p.ErrOffset = r, min(off, len(p.Data))
	return Failed
}

func (d *Decoder) decode(p *Packet) Status {
	data := p.Data
	switch p.LinkType {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return p.fail(ErrTruncated, 0)
		}
		et := be16(data[12:])
		if d.vlan != 0 && isVLAN(et) && len(data) >= 18 && be16(data[14:])&0x0fff == d.vlan {
			return d.stripVLAN(p)
		}
		return d.ethernet(p, 14, et)
	case linkTypeLinuxSLL:
		if len(data) < 16 {
			return p.fail(ErrTruncated, 0)
		}
		return d.ethernet(p, 16, be16(data[14:]))
	case linkTypeSLL2:
		if len(data) < 20 {
			return p.fail(ErrTruncated, 0)
		}
		return d.ethernet(p, 20, be16(data[0:]))
	case linkTypeRaw, linkTypeRawBSD, linkTypeIPv4, linkTypeIPv6:
		if len(data) < 1 {
			return p.fail(ErrTruncated, 0)
		}
		switch data[0] >> 4 {
		case 4:
			return d.ipv4(p, 0)
		case 6:
			return d.ipv6(p, 0)
		}
		return p.fail(ErrIP, 0)
	case LinkTypeJuniperVN:
		return d.juniper(p, 0, len(data), p.WireLen)
	}
	return p.fail(ErrLinkType, 0)
}

func isVLAN(et uint16) bool { return et == 0x8100 || et == 0x88a8 || et == 0x9100 }

// ethernet continues after a link header whose EtherType is et and whose
// payload starts at off, skipping VLAN tags (802.1Q, 802.1ad, any depth).
func (d *Decoder) ethernet(p *Packet, off int, et uint16) Status {
	for isVLAN(et) {
		if len(p.Data) < off+4 {
			return p.fail(ErrTruncated, off)
		}
		et = be16(p.Data[off+2:])
		off += 4
	}
	switch et {
	case 0x0800:
		return d.ipv4(p, off)
	case 0x86dd:
		return d.ipv6(p, off)
	}
	return d.other(p)
}

func (d *Decoder) other(p *Packet) Status {
	p.Meta.Overlay = OverlayNone
	if !d.passThrough {
		return p.fail(ErrNotMirror, 0)
	}
	p.Mode, p.Frame, p.FrameLen = ModeOther, p.Data, p.WireLen
	p.Truncated = len(p.Data) < p.WireLen
	return Decoded
}

// stripVLAN removes the NIC-assisted mirror tag. The frame is rebuilt in
// the Decoder's scratch buffer, not in p.Data: a source's bytes may be a
// private mapping of the input, where a write costs a page of memory.
func (d *Decoder) stripVLAN(p *Packet) Status {
	data := p.Data
	p.Meta.VLAN = be16(data[14:]) & 0x0fff
	d.scratch = append(append(d.scratch[:0], data[:12]...), data[16:]...)
	p.Mode = ModeVLAN
	p.Frame = d.scratch
	p.FrameLen = p.WireLen - 4
	p.Truncated = len(p.Frame) < p.FrameLen
	return Decoded
}

func (d *Decoder) ipv4(p *Packet, off int) Status {
	data := p.Data
	if len(data) < off+20 {
		return p.fail(ErrTruncated, off)
	}
	h := data[off:]
	ihl := int(h[0]&0x0f) * 4
	total := int(be16(h[2:]))
	if h[0]>>4 != 4 || ihl < 20 || total < ihl {
		return p.fail(ErrIP, off)
	}
	if len(h) < ihl {
		return p.fail(ErrTruncated, off)
	}
	if p.Fragments == 0 { // a rebuilt datagram was counted as its fragments
		d.frag.count(h[12:16])
	}
	if fo := be16(h[6:]); fo&0x3fff != 0 { // MF or a fragment offset
		if p.Meta.Overlay != OverlayNone {
			return d.other(p) // not reassembled inside a tunnel (docs/decoding.md)
		}
		return d.frag.add(d, p, off, ihl, 0, total)
	}
	switch h[9] {
	case 17:
		return d.udp(p, off+ihl, total-ihl)
	case 47:
		return d.gre(p, off+ihl, off+total)
	}
	return d.other(p)
}

func (d *Decoder) ipv6(p *Packet, off int) Status {
	data := p.Data
	if len(data) < off+40 {
		return p.fail(ErrTruncated, off)
	}
	h := data[off:]
	if h[0]>>4 != 6 {
		return p.fail(ErrIP, off)
	}
	plen := int(be16(h[4:]))
	if plen == 0 { // a jumbogram: not something a vRouter sends
		return d.other(p)
	}
	nh, nhOff, cur := h[6], off+6, off+40
	end := cur + plen
	if p.Fragments == 0 {
		d.frag.count(h[8:24])
	}
	for {
		switch nh {
		case 17:
			return d.udp(p, cur, end-cur)
		case 47:
			return d.gre(p, cur, end)
		case 0, 43, 60, 51: // hop-by-hop, routing, destination options, AH
			if len(data) < cur+2 {
				return p.fail(ErrTruncated, cur)
			}
			n := (int(data[cur+1]) + 1) * 8
			if nh == 51 {
				n = (int(data[cur+1]) + 2) * 4
			}
			if cur+n > end {
				return p.fail(ErrIP, cur)
			}
			nh, nhOff, cur = data[cur], cur, cur+n
		case 44:
			if cur+8 > end {
				return p.fail(ErrIP, cur)
			}
			if len(data) < cur+8 {
				return p.fail(ErrTruncated, cur)
			}
			if p.Meta.Overlay != OverlayNone {
				return d.other(p)
			}
			return d.frag.add(d, p, off, cur-off, nhOff, end-off)
		default:
			return d.other(p)
		}
	}
}

// udp decodes a UDP header at off; avail is what the IP header says the
// datagram holds from there.
func (d *Decoder) udp(p *Packet, off, avail int) Status {
	data := p.Data
	if len(data) < off+8 {
		return p.fail(ErrTruncated, off)
	}
	ulen := int(be16(data[off+4:]))
	if ulen < 8 || ulen > avail {
		return p.fail(ErrUDP, off)
	}
	dst := be16(data[off+2:])
	start, end := off+8, off+ulen
	capEnd := min(end, len(data))
	switch {
	case d.ports.has(dst):
		d.juniperSeen = true
		return d.juniper(p, start, capEnd, end)
	case d.vxlan.has(dst):
		if st, ok := d.overlay(p, OverlayVXLAN, func() Status { return d.vxlanInner(p, start, capEnd, end) }); ok {
			return st
		}
		return d.vxlanPayload(p, start, capEnd, end)
	case dst == MPLSoUDPPort || dst == MPLSoUDPPortOld:
		if st, ok := d.overlay(p, OverlayMPLSoUDP, func() Status { return d.mpls(p, start, capEnd) }); ok {
			return st
		}
	default:
		if d.looksLikeMirror(start, capEnd, end, p.Data) {
			if d.autoPorts {
				d.juniperSeen = true
				return d.juniper(p, start, capEnd, end)
			}
			d.candidates.add(dst)
		}
	}
	return d.other(p)
}

// overlay decodes what a fabric tunnel carries with decodeInner. It
// reports ok when the tunnel held a mirror datagram (decoded or failed as
// one); otherwise the packet is left as it was for the caller to treat as
// the tunnel itself. Tunnels are not nested.
func (d *Decoder) overlay(p *Packet, o Overlay, decodeInner func() Status) (Status, bool) {
	if p.Meta.Overlay != OverlayNone {
		return Failed, false
	}
	d.juniperSeen = false
	p.Meta.Overlay = o
	st := decodeInner()
	if d.juniperSeen {
		return st, true
	}
	frags := p.Fragments
	p.Reset()
	p.Fragments = frags
	return Failed, false
}

// vxlanInner decodes the Ethernet frame inside a VXLAN header at start.
func (d *Decoder) vxlanInner(p *Packet, start, capEnd, end int) Status {
	off := start + 8
	if capEnd < off+14 || end < off+14 || p.Data[start]&0x08 == 0 {
		return d.other(p)
	}
	return d.ethernet(p, off+14, be16(p.Data[off+12:]))
}

// mpls decodes an MPLS label stack at start, then the IPv4 or IPv6 packet
// (an L3 route) or the Ethernet frame (an L2 route) it carries.
func (d *Decoder) mpls(p *Packet, start, capEnd int) Status {
	off := start
	for labels := 0; ; labels++ {
		if capEnd < off+4 || labels == 8 {
			return d.other(p)
		}
		bos := p.Data[off+2]&1 != 0
		off += 4
		if bos {
			break
		}
	}
	if capEnd <= off {
		return d.other(p)
	}
	switch p.Data[off] >> 4 {
	case 4:
		return d.ipv4(p, off)
	case 6:
		return d.ipv6(p, off)
	}
	if capEnd < off+14 {
		return d.other(p)
	}
	return d.ethernet(p, off+14, be16(p.Data[off+12:]))
}

// gre decodes a GRE header at off (RFC 2784, 2890); end is where the IP
// packet ends. Contrail's MPLSoGRE carries an MPLS label stack.
func (d *Decoder) gre(p *Packet, off, end int) Status {
	capEnd := min(end, len(p.Data))
	if capEnd < off+4 {
		return d.other(p)
	}
	flags, proto := be16(p.Data[off:]), be16(p.Data[off+2:])
	if flags&0x4007 != 0 || proto != 0x8847 { // routing present, version != 0, not MPLS
		return d.other(p)
	}
	start := off + 4
	if flags&0x8000 != 0 { // checksum
		start += 4
	}
	if flags&0x2000 != 0 { // key
		start += 4
	}
	if flags&0x1000 != 0 { // sequence number
		start += 4
	}
	if st, ok := d.overlay(p, OverlayMPLSoGRE, func() Status { return d.mpls(p, start, capEnd) }); ok {
		return st
	}
	return d.other(p)
}

// juniper decodes a vRouter mirror payload in p.Data[start:end], of which
// p.Data[start:capEnd] was captured.
func (d *Decoder) juniper(p *Packet, start, capEnd, end int) Status {
	data := p.Data
	if end <= start {
		return p.fail(ErrTLV, start)
	}
	if capEnd <= start {
		return p.fail(ErrTruncated, start)
	}
	tlvStart := start
	switch data[start] {
	case 1, 2, 3, 4, 255:
	default:
		// A payload starting with anything else is either a legacy record
		// header (it starts with a timestamp) or TLVs of an unknown type.
		if legacy, reason, off := d.legacy(p, start, capEnd, end); legacy {
			tlvStart = start + 16
		} else if reason != OK {
			return p.fail(reason, off)
		}
	}
	tlvEnd, reason, off := parseTLVs(&p.Meta, data[:capEnd], tlvStart, end)
	if reason != OK {
		if reason == ErrTruncated {
			d.shortSnap++
		}
		p.Meta = Meta{Legacy: p.Meta.Legacy, RecordTime: p.Meta.RecordTime, Overlay: p.Meta.Overlay}
		return p.fail(reason, off)
	}
	p.Meta.TLVs = data[tlvStart:tlvEnd]
	m := &p.Meta
	switch {
	case m.FlagBits == 32:
		m.Direction = DirEgress
		if m.Flags&FlagIngress != 0 {
			m.Direction = DirIngress
		}
	case m.SrcVN != nil && m.DstVN == nil:
		m.Direction = DirIngress
	case m.DstVN != nil && m.SrcVN == nil:
		m.Direction = DirEgress
	}
	p.Mode = ModeJuniper
	return d.inner(p, tlvEnd, capEnd, end)
}

// legacy recognises the 16-byte record header of older vRouters by its
// incl_len, which counts either everything after it or only the frame.
func (d *Decoder) legacy(p *Packet, start, capEnd, end int) (ok bool, r Reason, off int) {
	if end-start < 16+2 {
		return false, OK, 0
	}
	if capEnd-start < 16 {
		return false, ErrTruncated, start
	}
	h := p.Data[start:]
	incl := int(binary.BigEndian.Uint32(h[8:]))
	match := incl == end-start-16
	if !match {
		var m Meta
		tlvEnd, reason, _ := parseTLVs(&m, p.Data[:capEnd], start+16, end)
		match = reason == OK && incl == end-tlvEnd
	}
	if !match {
		return false, OK, 0
	}
	p.Meta.Legacy = true
	sec, usec := binary.BigEndian.Uint32(h[0:]), binary.BigEndian.Uint32(h[4:])
	p.Meta.RecordTime = time.Unix(int64(sec), int64(usec)*1000)
	return true, OK, 0
}

func (d *Decoder) vxlanPayload(p *Packet, start, capEnd, end int) Status {
	if end-start < 8 {
		return p.fail(ErrVXLAN, start)
	}
	if capEnd-start < 8 {
		return p.fail(ErrTruncated, start)
	}
	h := p.Data[start:]
	if h[0]&0x08 == 0 {
		return p.fail(ErrVXLAN, start)
	}
	p.Mode = ModeVXLAN
	p.Meta.VNI = uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
	p.Meta.HasVNI = true
	return d.inner(p, start+8, capEnd, end)
}

// inner sets the frame at p.Data[off:end], captured up to capEnd.
func (d *Decoder) inner(p *Packet, off, capEnd, end int) Status {
	if end-off < 14 {
		p.Mode = ModeNone
		return p.fail(ErrInnerFrame, off)
	}
	if capEnd-off < 14 {
		p.Mode = ModeNone
		return p.fail(ErrTruncated, off) // not even the inner Ethernet header
	}
	p.Frame = p.Data[off:capEnd]
	p.FrameLen = end - off
	p.Truncated = len(p.Frame) < p.FrameLen
	// Old DPDK vRouters labelled inner IPv6 as IPv4, tagged or not: trust
	// the version. The fix goes into a copy (see stripVLAN).
	f := p.Frame
	et := 12
	for tags := 0; tags < 2 && len(f) >= et+6 && f[et] != 0x08 && isVLAN(be16(f[et:])); tags++ {
		et += 4
	}
	if len(f) > et+2 && f[et] == 0x08 && f[et+1] == 0x00 && f[et+2]>>4 == 6 {
		d.scratch = append(d.scratch[:0], f...)
		d.scratch[et], d.scratch[et+1] = 0x86, 0xdd
		p.Frame = d.scratch
	}
	return Decoded
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
