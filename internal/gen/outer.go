package gen

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// outer describes the outer headers around a UDP payload.
type outer struct {
	lt       layers.LinkType
	tags     int    // outer VLAN tags (Ethernet only): 0, 1, 2 (QinQ) or more
	tpid     uint16 // EtherType of the outermost tag when tags > 2
	v6       bool   // IPv6 instead of IPv4
	opts     bool   // IPv4 options (ihl > 5) or an IPv6 extension header
	ext      byte   // IPv6 extension header type: 0 hop-by-hop, 60 destination options
	src, dst uint16

	// Addresses, drawn by the first packet built and kept for the next
	// ones: a scene of several datagrams comes from one source.
	haveAddr bool
	srcIP    [16]byte // IPv4 in the first 4 bytes
	dstIP    [16]byte
	// id, when haveID, is the IP identification of the next datagram
	// (IPv4 header or IPv6 fragment header) instead of a random one.
	id     uint32
	haveID bool

	// Filled by ipPacket.
	l3   int // offset of the IP header
	hl   int // IPv4 header length, or the IPv6 unfragmentable part (40 + hop-by-hop)
	udp  int // offset of the transport header
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
		switch {
		case o.tags > 2:
			// Provider tags, then customer tags (f06: 802.1ad, then 802.1Q).
			b = binary.BigEndian.AppendUint16(b, o.tpid)
			b = binary.BigEndian.AppendUint16(b, g.randVLAN())
			for range o.tags - 1 {
				b = binary.BigEndian.AppendUint16(b, 0x8100)
				b = binary.BigEndian.AppendUint16(b, g.randVLAN())
			}
		case o.tags == 2:
			b = binary.BigEndian.AppendUint16(b, 0x88a8)
			b = binary.BigEndian.AppendUint16(b, g.randVLAN())
			fallthrough
		case o.tags == 1:
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

// ipHeader appends the link and IP headers of a packet carrying l4len
// bytes of protocol proto, and sets o.l3, o.hl and o.udp.
func (g *Generator) ipHeader(b []byte, o *outer, proto byte, l4len int) []byte {
	et := uint16(0x0800)
	if o.v6 {
		et = 0x86dd
	}
	b = g.l2(b, o, et)
	o.l3 = len(b)
	if !o.v6 {
		ihl := 5
		if o.opts {
			ihl = 6 + g.rng.IntN(2)
		}
		o.hl = ihl * 4
		b = append(b, 0x40|byte(ihl), 0, 0, 0, byte(g.rng.Uint32()), byte(g.rng.Uint32()), 0, 0, 64, proto, 0, 0)
		if o.haveID {
			binary.BigEndian.PutUint16(b[o.l3+4:], uint16(o.id))
		}
		if !o.haveAddr {
			o.haveAddr = true
			copy(o.srcIP[:], g.hosts[g.rng.IntN(len(g.hosts))][:])
			o.dstIP = [16]byte{10, 255, byte(g.rng.IntN(256)), byte(1 + g.rng.IntN(250))}
		}
		b = append(b, o.srcIP[:4]...)
		b = append(b, o.dstIP[:4]...)
		if ihl >= 6 {
			b = append(b, 0x94, 4, 0, 0) // router alert: copied into every fragment
		}
		if ihl == 7 {
			b = append(b, 1, 1, 1, 0)
		}
		binary.BigEndian.PutUint16(b[o.l3+2:], uint16(o.hl+l4len))
		binary.BigEndian.PutUint16(b[o.l3+10:], ipv4Checksum(b[o.l3:o.l3+o.hl]))
	} else {
		nh := proto
		extLen := 0
		if o.opts {
			nh = o.ext
			extLen = 8
		}
		b = append(b, 0x60, 0, byte(g.rng.Uint32()), byte(g.rng.Uint32()), 0, 0, nh, 64)
		if !o.haveAddr {
			o.haveAddr = true
			o.srcIP = [16]byte{0xfd, 13: 1, 14: byte(g.rng.IntN(256)), 15: byte(1 + g.rng.IntN(250))}
			o.dstIP = [16]byte{0xfd, 13: 2, 14: byte(g.rng.IntN(256)), 15: byte(1 + g.rng.IntN(250))}
		}
		b = append(b, o.srcIP[:]...)
		b = append(b, o.dstIP[:]...)
		if o.opts {
			b = append(b, proto, 0, 1, 4, 0, 0, 0, 0) // PadN
		}
		binary.BigEndian.PutUint16(b[o.l3+4:], uint16(extLen+l4len))
		o.hl = 40
		if o.opts && o.ext == 0 {
			o.hl = 48
		}
	}
	o.udp = len(b)
	return b
}

// udpPacket builds the whole outer packet around a UDP payload into g.pkt.
func (g *Generator) udpPacket(o *outer, payload []byte) []byte {
	b := grow(g.pkt[:0], len(payload)+160)
	ulen := 8 + len(payload)
	b = g.ipHeader(b, o, 17, ulen)
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

// grePacket builds the whole outer packet around a GRE payload (GRE
// header included) into g.pkt.
func (g *Generator) grePacket(o *outer, payload []byte) []byte {
	b := grow(g.pkt[:0], len(payload)+160)
	b = g.ipHeader(b, o, 47, len(payload))
	o.data = len(b)
	b = append(b, payload...)
	b = g.pad(o.lt, b, 0)
	g.pkt = b
	return b
}

// ipLen returns the IP packet length of pkt built by ipPacket.
func (o *outer) ipLen(pkt []byte) int {
	if o.v6 {
		return 40 + int(binary.BigEndian.Uint16(pkt[o.l3+4:]))
	}
	return int(binary.BigEndian.Uint16(pkt[o.l3+2:]))
}

// capture says how a datagram is captured.
type capture struct {
	cut       int  // captured length of a single record (0: up to the snap length)
	snap      int  // snap length of every record (0: the generator's)
	drop      bool // one fragment is lost
	dropFirst bool // the first fragment (offset 0) is lost
	// first, when > 0, is the payload length of the first fragment, the
	// others being as long as the MTU allows: fragments of uneven size, as
	// a router re-fragmenting a datagram makes.
	first int
}

// sent is one record of the datagram last sent.
type sent struct {
	wire   int  // index in g.wires; -1 when the fragment was lost
	frag   bool // an IP fragment
	off, n int  // fragment offset and payload length
	hdr    int  // bytes in front of the fragment's payload
	start  int  // the record's bytes: g.frags[start:end], or g.pkt for a whole datagram
	end    int
}

// send turns the outer packet into captured records: one, or IP fragments
// when it exceeds the MTU. g.sent describes them after the call.
func (g *Generator) send(o *outer, pkt []byte, cp capture) {
	rs := g.sent[:0]
	if l := o.ipLen(pkt); l > g.opts.MTU {
		rs = g.fragment(o, pkt, l, cp.first, rs)
	} else {
		rs = append(rs, sent{n: l - o.hl, hdr: o.l3 + o.hl, end: len(pkt)})
	}
	if len(rs) > 1 {
		if g.rng.IntN(4) == 0 { // out of order
			g.rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		}
		switch {
		case cp.dropFirst:
			for i := range rs {
				if rs[i].off == 0 {
					rs[i].wire = -1
				}
			}
		case cp.drop:
			rs[g.rng.IntN(len(rs))].wire = -1
		}
	}
	snap := g.opts.Snaplen
	if cp.snap > 0 {
		snap = min(snap, cp.snap)
	}
	for i := range rs {
		r := &rs[i]
		if r.wire < 0 {
			continue
		}
		var d []byte
		if r.frag {
			d = g.frags[r.start:r.end]
		} else {
			d = pkt[r.start:r.end]
		}
		n := min(len(d), snap)
		if cp.cut > 0 && len(rs) == 1 {
			n = min(n, cp.cut)
		}
		r.wire = len(g.wires)
		g.wires = append(g.wires, Wire{Timestamp: g.tick(), LinkType: o.lt, Data: d[:n], WireLen: len(d)})
		g.steps = append(g.steps, Step{})
	}
	g.sent = rs
}

// fragment splits the IP packet in pkt into fragments in g.frags.
func (g *Generator) fragment(o *outer, pkt []byte, ipLen, first int, rs []sent) []sent {
	f := grow(g.frags[:0], ipLen+ipLen/2+1024)
	data := pkt[o.l3+o.hl : o.l3+ipLen] // the fragmentable part
	chunk := (g.opts.MTU - o.hl) &^ 7
	fh := 0
	if o.v6 {
		chunk = (g.opts.MTU - o.hl - 8) &^ 7
		fh = 8
	}
	id := g.rng.Uint32()
	if o.haveID {
		id = o.id
	}
	for off := 0; off < len(data); {
		n := min(chunk, len(data)-off)
		if off == 0 && first > 0 {
			n = min(first, n)
		}
		more := off+n < len(data)
		start := len(f)
		f = append(f, pkt[:o.l3+o.hl]...)
		h := f[start+o.l3:]
		if !o.v6 {
			binary.BigEndian.PutUint16(h[2:], uint16(o.hl+n))
			binary.BigEndian.PutUint16(h[4:], uint16(id))
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
		rs = append(rs, sent{frag: true, off: off, n: n, hdr: o.l3 + o.hl + fh, start: start, end: len(f)})
		off += n
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

// settle sets the steps of the datagram last sent and the result e (index
// r for the steps) it ends in, following the decoder's reassembly rules
// (docs/mirror.md, "Reassembly"): fragments are held until the datagram is
// whole; a first fragment cut by the snap length is decoded at once, with
// the fragments held before it, and the later ones are merged into it; a
// datagram with a cut fragment yields the bytes captured contiguously
// from its start; one that never completes hands every fragment back.
//
// The inner frame starts at frameStart in the outer packet; e.Reason, when
// already set, is the failure a whole datagram ends in.
func (g *Generator) settle(e *Expect, r int, o *outer, frame []byte, frameStart int) {
	rs := g.sent
	if len(rs) == 1 && !rs[0].frag {
		w := rs[0].wire
		if e.Reason == "" {
			expectFrame(e, frame, frameStart, len(g.wires[w].Data))
		}
		g.steps[w] = Step{Status: status(e), Result: r}
		return
	}
	frameOff := frameStart - o.l3 - o.hl // in the fragmentable part
	captured := func(s *sent) int { return min(max(len(g.wires[s.wire].Data)-s.hdr, 0), s.n) }
	lost, arrived := false, 0
	for i := range rs {
		if rs[i].wire < 0 {
			lost = true
		}
	}
	held := 0
	done := false
	for i := range rs {
		s := &rs[i]
		if s.wire < 0 {
			continue
		}
		arrived++
		st := &g.steps[s.wire]
		switch {
		case done:
			*st = Step{Status: mirror.Merged}
		case s.off == 0 && captured(s) < s.n:
			if e.Reason == "" {
				expectFrame(e, frame, frameOff, captured(s))
			}
			e.Fragments = 1 + held
			*st = Step{Status: status(e), Result: r}
			done = true
		case !lost && arrived == len(rs):
			// The last fragment completes the datagram: its frame is what
			// was captured contiguously from the start.
			contig := 0
			for off := 0; ; {
				j := g.sentAt(off)
				if j < 0 {
					break
				}
				c := captured(&rs[j])
				contig += c
				if c < rs[j].n {
					break
				}
				off += c
			}
			if e.Reason == "" {
				expectFrame(e, frame, frameOff, contig)
			}
			e.Fragments = len(rs)
			*st = Step{Status: status(e), Result: r}
			done = true
		default:
			*st = Step{Status: mirror.Held}
			held++
		}
	}
	if !done {
		for i := range rs {
			if rs[i].wire >= 0 {
				g.steps[rs[i].wire] = Step{Status: mirror.Held, Returned: true}
			}
		}
		*e = Expect{Reason: "fragment-incomplete"}
	}
}

// sentAt returns the index in g.sent of the fragment at offset off, or -1.
func (g *Generator) sentAt(off int) int {
	for i, s := range g.sent {
		if s.off == off && s.wire >= 0 {
			return i
		}
	}
	return -1
}

func status(e *Expect) mirror.Status {
	if e.Decodes() {
		return mirror.Decoded
	}
	return mirror.Failed
}
