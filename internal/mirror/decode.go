package mirror

import (
	"encoding/binary"
	"net/netip"
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
)

// Config says what the Decoder treats as mirror traffic.
type Config struct {
	Ports       []uint16 // Juniper-header UDP destination ports; nil = 8099
	VXLANPorts  []uint16 // VXLAN UDP destination ports; nil = 4789
	MirrorVLAN  uint16   // NIC-assisted mirror VLAN; 0 = none
	PassThrough bool     // keep non-mirror traffic as ModeOther rather than failing it
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
	frag         reassembler
}

type portSet [1024]uint64

func (s *portSet) add(p uint16)      { s[p>>6] |= 1 << (p & 63) }
func (s *portSet) has(p uint16) bool { return s[p>>6]&(1<<(p&63)) != 0 }
func newPortSet(ps []uint16, def uint16) (s portSet) {
	if ps == nil {
		ps = []uint16{def}
	}
	for _, p := range ps {
		s.add(p)
	}
	return s
}

// NewDecoder returns a Decoder for the configuration.
func NewDecoder(c Config) *Decoder {
	d := &Decoder{
		ports:       newPortSet(c.Ports, DefaultPort),
		vxlan:       newPortSet(c.VXLANPorts, DefaultVXLANPort),
		vlan:        c.MirrorVLAN,
		passThrough: c.PassThrough,
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
	st := d.decode(p)
	if st == Held {
		return Held
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
// payload starts at off, skipping up to two VLAN tags.
func (d *Decoder) ethernet(p *Packet, off int, et uint16) Status {
	for tags := 0; isVLAN(et); tags++ {
		if tags == 2 {
			return d.other(p)
		}
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
	if !d.passThrough {
		return p.fail(ErrNotMirror, 0)
	}
	p.Mode, p.Frame, p.FrameLen = ModeOther, p.Data, p.WireLen
	p.Truncated = len(p.Data) < p.WireLen
	return Decoded
}

// stripVLAN removes the NIC-assisted mirror tag by sliding the MAC
// addresses over it, so the frame stays a sub-slice with no copy.
func (d *Decoder) stripVLAN(p *Packet) Status {
	data := p.Data
	p.Meta.VLAN = be16(data[14:]) & 0x0fff
	copy(data[4:16], data[0:12])
	p.Mode = ModeVLAN
	p.Frame = data[4:]
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
	if fo := be16(h[6:]); fo&0x3fff != 0 { // MF or a fragment offset
		return d.frag.add(d, p, off, ihl, 0, total)
	}
	if h[9] != 17 {
		return d.other(p)
	}
	return d.udp(p, off+ihl, total-ihl)
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
	for {
		switch nh {
		case 17:
			return d.udp(p, cur, end-cur)
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
		return d.juniper(p, start, capEnd, end)
	case d.vxlan.has(dst):
		return d.vxlanPayload(p, start, capEnd, end)
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
		p.Meta = Meta{Legacy: p.Meta.Legacy, RecordTime: p.Meta.RecordTime}
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
	return p.inner(tlvEnd, capEnd, end)
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

// parseTLVs parses the metadata list starting at data[i] up to the
// datagram end; data holds what was captured. It returns the offset just
// after the end marker.
func parseTLVs(m *Meta, data []byte, i, end int) (int, Reason, int) {
	for {
		if i+2 > end {
			return 0, ErrTLV, i // no end marker before the datagram ends
		}
		if i+2 > len(data) {
			return 0, ErrTruncated, i
		}
		t, l := data[i], int(data[i+1])
		if t == 255 {
			if l != 0 {
				return 0, ErrTLV, i
			}
			return i + 2, OK, 0
		}
		v := i + 2
		if v+l > end {
			return 0, ErrTLV, i // the value runs past the datagram: a wrapped length
		}
		if v+l > len(data) {
			return 0, ErrTruncated, i
		}
		val := data[v : v+l : v+l]
		switch t {
		case 1:
			if l != 4 {
				return 0, ErrTLV, i
			}
			m.Host = netip.AddrFrom4([4]byte(val))
		case 2:
			if l != 4 {
				return 0, ErrTLV, i
			}
			m.Flags, m.FlagBits = binary.BigEndian.Uint32(val), 32
		case 3, 4:
			if !printable(val) {
				return 0, ErrTLV, i
			}
			if t == 3 {
				m.SrcVN = val
			} else {
				m.DstVN = val
			}
		}
		i = v + l
	}
}

// printable reports whether a VN name is plain ASCII, as Contrail names
// are; anything else means the list was misread. It looks at eight bytes
// at a time: names are long and this runs twice a packet.
func printable(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		// A byte below 0x21 borrows into its high bit when 0x21 is
		// subtracted; a byte above 0x7e has or gets its high bit when 1 is
		// added. Carries and borrows only start at a byte already caught.
		if ((x-0x21*ones)&^x|x|(x+ones))&highs != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
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
	return p.inner(start+8, capEnd, end)
}

// inner sets the frame at p.Data[off:end], captured up to capEnd.
func (p *Packet) inner(off, capEnd, end int) Status {
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
	// Old DPDK vRouters labelled inner IPv6 as IPv4: trust the version.
	if f := p.Frame; len(f) > 14 && f[12] == 0x08 && f[13] == 0x00 && f[14]>>4 == 6 {
		f[12], f[13] = 0x86, 0xdd
	}
	return Decoded
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
