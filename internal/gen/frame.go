package gen

import (
	"encoding/binary"
)

// Inner frames are built by hand rather than with gopacket serialization:
// the generator must produce millions of frames a second without allocating.

type innerType uint8

const (
	inIPv4TCP innerType = iota
	inIPv4UDP
	inIPv4ICMP
	inIPv6TCP
	inIPv6UDP
	inIPv6ICMP
	inARP
	inTaggedIPv4
	inTaggedIPv6
	numInner
)

var vrouterMAC = [6]byte{0x00, 0x00, 0x5e, 0x00, 0x01, 0x00}

// pickInner draws an inner frame type: mostly IPv4, some IPv6, ARP and
// 802.1Q-tagged frames.
func (g *Generator) pickInner() innerType {
	switch r := g.rng.IntN(100); {
	case r < 30:
		return inIPv4TCP
	case r < 55:
		return inIPv4UDP
	case r < 62:
		return inIPv4ICMP
	case r < 70:
		return inIPv6TCP
	case r < 77:
		return inIPv6UDP
	case r < 80:
		return inIPv6ICMP
	case r < 88:
		return inARP
	case r < 95:
		return inTaggedIPv4
	default:
		return inTaggedIPv6
	}
}

// pickSize draws an inner frame size: mostly 64..1514, rarely jumbo; or
// the case's size of Options.FrameSizes.
func (g *Generator) pickSize() int {
	if fs := g.opts.FrameSizes; len(fs) > 0 {
		return fs[g.index%len(fs)]
	}
	var n int
	switch r := g.rng.IntN(100); {
	case r < 40:
		n = 64 + g.rng.IntN(65)
	case r < 70:
		n = 129 + g.rng.IntN(872)
	case r < 96:
		n = 1001 + g.rng.IntN(514)
	default:
		n = 1515 + g.rng.IntN(9000-1515+1)
	}
	return max(g.opts.MinFrame, min(n, g.opts.MaxFrame))
}

func (g *Generator) randMAC(b []byte) {
	v := g.rng.Uint64()
	b[0] = 0x02 // locally administered, unicast
	b[1], b[2], b[3], b[4], b[5] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32)
}

// randVLAN returns a VLAN id other than the mirror VLAN.
func (g *Generator) randVLAN() uint16 {
	for {
		v := uint16(2 + g.rng.IntN(4093))
		if v != g.mirrorVLAN {
			return v
		}
	}
}

// randPort returns a service port that is neither mirror port.
func (g *Generator) randPort() uint16 {
	ports := [...]uint16{22, 53, 80, 123, 443, 3306, 5201, 8080}
	for {
		p := ports[g.rng.IntN(len(ports))]
		if p != g.port && p != g.vxlanPort {
			return p
		}
	}
}

func (g *Generator) fill(b []byte) {
	off := g.rng.IntN(len(g.noise))
	for len(b) > 0 {
		n := copy(b, g.noise[off:])
		b = b[n:]
		off = 0
	}
}

// innerFrame builds an inner Ethernet frame of type t and about size bytes
// (at least the headers of t) into g.frame and returns it.
func (g *Generator) innerFrame(t innerType, size int) []byte {
	b := grow(g.frame[:0], max(size, 128))
	b = b[:14]
	if g.rng.IntN(3) == 0 {
		copy(b[0:6], vrouterMAC[:])
	} else {
		g.randMAC(b[0:6])
	}
	g.randMAC(b[6:12])
	if g.opts.Numbered {
		b[6], b[7] = 0x02, 0x4e
		binary.BigEndian.PutUint32(b[8:12], uint32(g.index))
	}
	if t == inTaggedIPv4 || t == inTaggedIPv6 {
		binary.BigEndian.PutUint16(b[12:], 0x8100)
		b = append(b, 0, 0, 0, 0)
		binary.BigEndian.PutUint16(b[14:], uint16(g.rng.IntN(8))<<13|g.randVLAN())
		if t == inTaggedIPv4 {
			t = []innerType{inIPv4TCP, inIPv4UDP}[g.rng.IntN(2)]
		} else {
			t = []innerType{inIPv6TCP, inIPv6UDP}[g.rng.IntN(2)]
		}
	}
	et := len(b) - 2
	var l4 byte
	switch t {
	case inARP:
		binary.BigEndian.PutUint16(b[et:], 0x0806)
		b = append(b, 0, 1, 8, 0, 6, 4, 0, 1+byte(g.rng.IntN(2)))
		b = append(b, b[6:12]...)
		b = append(b, 10, byte(g.rng.IntN(4)), byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250)))
		b = append(b, 0, 0, 0, 0, 0, 0)
		b = append(b, 10, byte(g.rng.IntN(4)), byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250)))
		if size >= 60 {
			for len(b) < 60 {
				b = append(b, 0)
			}
		}
		g.frame = b
		return b
	case inIPv4TCP, inIPv4UDP, inIPv4ICMP:
		binary.BigEndian.PutUint16(b[et:], 0x0800)
		l4 = [...]byte{inIPv4TCP: 6, inIPv4UDP: 17, inIPv4ICMP: 1}[t]
		hdr := len(b)
		b = append(b, 0x45, 0, 0, 0, byte(g.rng.Uint32()), byte(g.rng.Uint32()), 0x40, 0, 64, l4, 0, 0,
			10, byte(g.rng.IntN(4)), byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250)),
			10, byte(g.rng.IntN(4)), byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250)))
		b = g.l4(b, l4, size)
		g.flow(b[hdr+12:hdr+20], 4, b[hdr+20:], l4)
		binary.BigEndian.PutUint16(b[hdr+2:], uint16(len(b)-hdr))
		binary.BigEndian.PutUint16(b[hdr+10:], ipv4Checksum(b[hdr:hdr+20]))
	default: // IPv6
		binary.BigEndian.PutUint16(b[et:], 0x86dd)
		l4 = [...]byte{inIPv6TCP: 6, inIPv6UDP: 17, inIPv6ICMP: 58}[t]
		hdr := len(b)
		b = append(b, 0x60, 0, byte(g.rng.Uint32()), byte(g.rng.Uint32()), 0, 0, l4, 64)
		b = append(b, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(g.rng.IntN(4)), byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250)))
		b = append(b, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(g.rng.IntN(4)), byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250)))
		b = g.l4(b, l4, size)
		g.flow(b[hdr+8:hdr+40], 16, b[hdr+40:], l4)
		binary.BigEndian.PutUint16(b[hdr+4:], uint16(len(b)-hdr-40))
	}
	g.frame = b
	return b
}

// flow, with Options.Flows, writes over a TCP or UDP frame's addresses
// (addrs: source then destination, n bytes each) and ports (l4: the
// transport header) those of a flow drawn from the pool; a flow's
// packets go both ways.
func (g *Generator) flow(addrs []byte, n int, l4 []byte, proto byte) {
	if g.flows == nil || (proto != 6 && proto != 17) || len(l4) < 4 {
		return
	}
	k := g.flows.Uint64()
	h := k*0x9e3779b97f4a7c15 + 1
	src, dst := addrs[n-4:n], addrs[2*n-4:2*n]
	// 10.0.0.0/14 (fd00::/110 for IPv6), as the random frames; a host is
	// in many flows.
	host := func(v uint64) []byte { return []byte{byte(v>>16) & 3, byte(v >> 8), byte(1 + v%250)} }
	copy(src[1:], host(h>>40%2000))
	copy(dst[1:], host(h>>20%500+7))
	sport, dport := uint16(32768+h%28000), [...]uint16{80, 443, 53, 22, 8080, 5432}[h>>8%6]
	for sport == g.port || sport == g.vxlanPort || sport == mplsUDPPort || sport == mplsUDPPortOld {
		sport++ // a port the decoder reads as a mirror or a tunnel
	}
	if g.rng.IntN(2) == 0 {
		copy(src[1:], host(h>>20%500+7))
		copy(dst[1:], host(h>>40%2000))
		sport, dport = dport, sport
	}
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
}

// l4 appends a transport header and payload so that the frame reaches size.
func (g *Generator) l4(b []byte, proto byte, size int) []byte {
	start := len(b)
	sport := uint16(1024 + g.rng.IntN(64512))
	dport := g.randPort()
	for sport == g.port || sport == g.vxlanPort || sport == mplsUDPPort || sport == mplsUDPPortOld {
		sport++ // a port the decoder reads as a mirror or a tunnel
	}
	if g.rng.IntN(2) == 0 {
		sport, dport = dport, sport
	}
	switch proto {
	case 6:
		b = append(b, byte(sport>>8), byte(sport), byte(dport>>8), byte(dport))
		s := g.rng.Uint64()
		b = append(b, byte(s), byte(s>>8), byte(s>>16), byte(s>>24), byte(s>>32), byte(s>>40), byte(s>>48), byte(s>>56))
		b = append(b, 0x50, 0x18, 0xfa, 0xf0, 0, 0, 0, 0)
	case 17:
		b = append(b, byte(sport>>8), byte(sport), byte(dport>>8), byte(dport), 0, 0, 0, 0)
	default: // ICMP echo request
		typ := byte(8)
		if proto == 58 {
			typ = 128
		}
		b = append(b, typ, 0, 0, 0, byte(g.rng.Uint32()), byte(g.rng.Uint32()), 0, byte(g.rng.IntN(256)))
	}
	if n := size - len(b); n > 0 {
		b = b[:len(b)+n]
		g.fill(b[len(b)-n:])
	}
	if proto == 17 {
		binary.BigEndian.PutUint16(b[start+4:], uint16(len(b)-start))
	}
	return b
}

func ipv4Checksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		if i == 10 {
			continue
		}
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// grow returns b with room for n more bytes, reusing its array when it can.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n+n/2)
	copy(nb, b)
	return nb
}
