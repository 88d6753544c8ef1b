package gen

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"
)

// outer describes the outer headers around a UDP payload.
type outer struct {
	lt       layers.LinkType
	tags     int  // outer 802.1Q tags (Ethernet only): 0, 1 or 2 (QinQ)
	v6       bool // IPv6 instead of IPv4
	opts     bool // IPv4 options (ihl > 5) or an IPv6 extension header
	ext      byte // IPv6 extension header type: 0 hop-by-hop, 60 destination options
	src, dst uint16

	// Filled by udpPacket.
	l3   int // offset of the IP header
	hl   int // IPv4 header length, or the IPv6 unfragmentable part (40 + hop-by-hop)
	udp  int // offset of the UDP header
	data int // offset of the UDP payload
}

// randOuter draws outer headers. Seed114-style fixed outers are built by
// the caller instead.
func (g *Generator) randOuter(dst uint16) outer {
	o := outer{lt: g.opts.LinkType, dst: dst, src: uint16(49152 + g.rng.IntN(16384))}
	if o.lt == 0 {
		switch r := g.rng.IntN(100); {
		case r < 70:
			o.lt = layers.LinkTypeEthernet
		case r < 80:
			o.lt = layers.LinkTypeLinuxSLL
		case r < 90:
			o.lt = layers.LinkTypeLinuxSLL2
		default:
			o.lt = layers.LinkTypeRaw
		}
	}
	if o.lt == layers.LinkTypeEthernet {
		switch r := g.rng.IntN(100); {
		case r < 15:
			o.tags = 1
		case r < 20:
			o.tags = 2
		}
	}
	o.v6 = g.rng.IntN(5) == 0
	o.opts = g.rng.IntN(4) == 0
	if g.rng.IntN(2) == 0 {
		o.ext = 60
	}
	return o
}

// l2 appends the link-layer header for an IP packet of the given version.
func (g *Generator) l2(b []byte, o *outer, ethertype uint16) []byte {
	var mac [6]byte
	g.randMAC(mac[:])
	switch o.lt {
	case layers.LinkTypeEthernet:
		var dst [6]byte
		g.randMAC(dst[:])
		b = append(b, dst[:]...)
		b = append(b, mac[:]...)
		if o.tags == 2 {
			b = binary.BigEndian.AppendUint16(b, 0x88a8)
			b = binary.BigEndian.AppendUint16(b, g.randVLAN())
		}
		if o.tags >= 1 {
			b = binary.BigEndian.AppendUint16(b, 0x8100)
			b = binary.BigEndian.AppendUint16(b, g.randVLAN())
		}
		b = binary.BigEndian.AppendUint16(b, ethertype)
	case layers.LinkTypeLinuxSLL:
		b = append(b, 0, 0, 0, 1, 0, 6)
		b = append(b, mac[:]...)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint16(b, ethertype)
	case layers.LinkTypeLinuxSLL2:
		b = binary.BigEndian.AppendUint16(b, ethertype)
		b = append(b, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6)
		b = append(b, mac[:]...)
		b = append(b, 0, 0)
	}
	return b
}

// udpPacket builds the whole outer packet around payload into g.pkt.
func (g *Generator) udpPacket(o *outer, payload []byte) []byte {
	b := grow(g.pkt[:0], len(payload)+128)
	et := uint16(0x0800)
	if o.v6 {
		et = 0x86dd
	}
	b = g.l2(b, o, et)
	o.l3 = len(b)
	ulen := 8 + len(payload)
	if !o.v6 {
		ihl := 5
		if o.opts {
			ihl = 6 + g.rng.IntN(2)
		}
		o.hl = ihl * 4
		b = append(b, 0x40|byte(ihl), 0, 0, 0, byte(g.rng.Uint32()), byte(g.rng.Uint32()), 0, 0, 64, 17, 0, 0)
		b = append(b, g.hosts[g.rng.IntN(len(g.hosts))][:]...)
		b = append(b, 10, 255, byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250)))
		if ihl >= 6 {
			b = append(b, 0x94, 4, 0, 0) // router alert: copied into every fragment
		}
		if ihl == 7 {
			b = append(b, 1, 1, 1, 0)
		}
		binary.BigEndian.PutUint16(b[o.l3+2:], uint16(o.hl+ulen))
		binary.BigEndian.PutUint16(b[o.l3+10:], ipv4Checksum(b[o.l3:o.l3+o.hl]))
	} else {
		nh := byte(17)
		extLen := 0
		if o.opts {
			nh = o.ext
			extLen = 8
		}
		b = append(b, 0x60, 0, byte(g.rng.Uint32()), byte(g.rng.Uint32()), 0, 0, nh, 64)
		b = append(b, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250)))
		b = append(b, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250)))
		if o.opts {
			b = append(b, 17, 0, 1, 4, 0, 0, 0, 0) // PadN
		}
		binary.BigEndian.PutUint16(b[o.l3+4:], uint16(extLen+ulen))
		o.hl = 40
		if o.opts && o.ext == 0 {
			o.hl = 48
		}
	}
	o.udp = len(b)
	b = binary.BigEndian.AppendUint16(b, o.src)
	b = binary.BigEndian.AppendUint16(b, o.dst)
	b = binary.BigEndian.AppendUint16(b, uint16(ulen))
	b = append(b, 0, 0) // the vRouter leaves the checksum zero
	o.data = len(b)
	b = append(b, payload...)
	b = g.pad(o.lt, b, 0)
	g.pkt = b
	return b
}

// ipLen returns the IP packet length of pkt built by udpPacket.
func (o *outer) ipLen(pkt []byte) int {
	if o.v6 {
		return 40 + int(binary.BigEndian.Uint16(pkt[o.l3+4:]))
	}
	return int(binary.BigEndian.Uint16(pkt[o.l3+2:]))
}

// record is a byte range of g.frags or g.pkt.
type record struct {
	frag       bool
	start, end int
}

// send turns the outer packet into captured records: one, or IP fragments
// when it exceeds the MTU. cut, when > 0, is the captured length of a
// single record; drop loses one fragment. It reports how many fragments
// were made, whether any record was cut short by the snap length and
// whether a fragment was dropped.
func (g *Generator) send(o *outer, pkt []byte, cut int, drop bool) (frags int, cutShort, dropped bool) {
	var recs [16]record
	rs := recs[:0]
	if l := o.ipLen(pkt); l > g.opts.MTU {
		rs = g.fragment(o, pkt, l, rs)
	} else {
		rs = append(rs, record{start: 0, end: len(pkt)})
	}
	frags = len(rs)
	if frags > 1 {
		if g.rng.IntN(4) == 0 { // out of order
			g.rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		}
		if drop {
			i := g.rng.IntN(len(rs))
			rs = append(rs[:i], rs[i+1:]...)
			dropped = true
		}
	}
	for _, r := range rs {
		var d []byte
		if r.frag {
			d = g.frags[r.start:r.end]
		} else {
			d = pkt[r.start:r.end]
		}
		n := min(len(d), g.opts.Snaplen)
		if cut > 0 && frags == 1 {
			n = min(n, cut)
		}
		if n < len(d) {
			cutShort = true
		}
		g.wires = append(g.wires, Wire{Timestamp: g.tick(), LinkType: o.lt, Data: d[:n], WireLen: len(d)})
	}
	return frags, cutShort, dropped
}

// fragment splits the IP packet in pkt into fragments in g.frags.
func (g *Generator) fragment(o *outer, pkt []byte, ipLen int, rs []record) []record {
	f := grow(g.frags[:0], ipLen+ipLen/2+1024)
	data := pkt[o.l3+o.hl : o.l3+ipLen] // the fragmentable part
	chunk := (g.opts.MTU - o.hl) &^ 7
	if o.v6 {
		chunk = (g.opts.MTU - o.hl - 8) &^ 7
	}
	id := g.rng.Uint32()
	for off := 0; off < len(data); off += chunk {
		n := min(chunk, len(data)-off)
		more := off+n < len(data)
		start := len(f)
		f = append(f, pkt[:o.l3+o.hl]...)
		h := f[start+o.l3:]
		if !o.v6 {
			binary.BigEndian.PutUint16(h[2:], uint16(o.hl+n))
			fo := uint16(off / 8)
			if more {
				fo |= 0x2000
			}
			binary.BigEndian.PutUint16(h[6:], fo)
			binary.BigEndian.PutUint16(h[10:], ipv4Checksum(h[:o.hl]))
		} else {
			binary.BigEndian.PutUint16(h[4:], uint16(o.hl-40+8+n))
			next := h[6] // the header after the unfragmentable part
			if o.hl == 48 {
				next = h[40]
				h[40] = 44
			} else {
				h[6] = 44
			}
			fo := uint16(off)
			if more {
				fo |= 1
			}
			f = append(f, next, 0, byte(fo>>8), byte(fo), byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
		}
		f = append(f, data[off:off+n]...)
		f = g.pad(o.lt, f, start)
		rs = append(rs, record{frag: true, start: start, end: len(f)})
	}
	if !o.v6 {
		// Give every fragment of the datagram the same identification.
		for _, r := range rs {
			binary.BigEndian.PutUint16(f[r.start+o.l3+4:], uint16(id))
			h := f[r.start+o.l3:]
			binary.BigEndian.PutUint16(h[10:], ipv4Checksum(h[:o.hl]))
		}
	}
	g.frags = f
	return rs
}

// pad pads an Ethernet frame that starts at b[start:] to the 60-byte minimum.
func (g *Generator) pad(lt layers.LinkType, b []byte, start int) []byte {
	if lt != layers.LinkTypeEthernet {
		return b
	}
	for len(b)-start < 60 {
		b = append(b, 0)
	}
	return b
}
