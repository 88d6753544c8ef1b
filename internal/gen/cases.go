package gen

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Metadata TLV types of the Juniper header.
const (
	tlvHost  = 1
	tlvFlags = 2
	tlvSrcVN = 3
	tlvDstVN = 4
	tlvEnd   = 255
)

func (g *Generator) build(c *Case, k Kind) {
	switch k {
	case KindVXLAN, KindBadVXLAN:
		g.vxlan(c, k == KindBadVXLAN)
	case KindVLAN:
		g.vlan(c)
	case KindOther:
		g.other(c)
	case KindBadLinkType:
		g.badLinkType(c)
	case KindWrapped, KindBadWrapped:
		g.wrapped(c, k == KindBadWrapped)
	case KindIDReuse:
		g.idReuse(c)
	case KindDupFragment:
		g.dupFragment(c)
	case KindFragSnap, KindFragSnapTLV:
		g.fragSnap(c, k == KindFragSnapTLV)
	case KindOverlay:
		g.overlay(c)
	default:
		g.juniper(c, k)
	}
}

// expectMalformed says the case must fail to decode, for reason (a mirror.Reason
// name): no frame and no metadata are expected.
func expectMalformed(e *Expect, reason string) {
	*e = Expect{Reason: reason}
}

// expectFrame sets the expected inner frame when capLen bytes of a record
// whose inner frame starts at frameStart were captured.
func expectFrame(e *Expect, frame []byte, frameStart, capLen int) {
	e.FrameLen = len(frame)
	switch {
	case capLen >= frameStart+len(frame):
		e.Frame = frame
	case capLen < frameStart+14:
		expectMalformed(e, "truncated")
	default:
		e.Frame = frame[:capLen-frameStart]
		e.Truncated = true
	}
}

// vn draws a VN name, mostly a realistic one.
func (g *Generator) vn() *string {
	if g.realVNs > 0 && g.rng.IntN(4) > 0 {
		return &g.vns[g.rng.IntN(g.realVNs)]
	}
	return &g.vns[g.rng.IntN(len(g.vns))]
}

// fieldVN draws a VN name as clouds in the field send them.
func (g *Generator) fieldVN() *string {
	return &g.fieldVNs[g.rng.IntN(len(g.fieldVNs))]
}

func appendVN(b []byte, typ byte, vn string) []byte {
	b = append(b, typ, byte(len(vn)))
	return append(b, vn...)
}

// flags draws the flags of an ACL-mirrored flow and sets the direction
// they give.
func (g *Generator) flags(e *Expect) uint32 {
	f := uint32(mirror.FlagPass | mirror.FlagMirror)
	if g.rng.IntN(7) == 0 {
		f = mirror.FlagDeny | mirror.FlagMirror
		if g.rng.IntN(2) == 0 {
			f |= mirror.FlagImplicitDeny
		}
	}
	if g.rng.IntN(5) == 0 {
		f |= mirror.FlagLog
	}
	if g.rng.IntN(20) == 0 {
		f |= mirror.FlagAlert
	}
	e.Direction = mirror.DirEgress
	if g.rng.IntN(2) == 0 {
		f |= mirror.FlagIngress
		e.Direction = mirror.DirIngress
	}
	return f
}

// tlvACL appends the policy-mirroring metadata: host, flags, source and
// destination VN, end.
func (g *Generator) tlvACL(b []byte, e *Expect, src, dst *string) []byte {
	h := g.hosts[g.rng.IntN(len(g.hosts))]
	f := g.flags(e)
	e.Host, e.Flags, e.FlagBits, e.SrcVN, e.DstVN = netip.AddrFrom4(h), f, 32, src, dst
	b = append(b, tlvHost, 4)
	b = append(b, h[:]...)
	b = append(b, tlvFlags, 4)
	b = binary.BigEndian.AppendUint32(b, f)
	b = appendVN(b, tlvSrcVN, *src)
	b = appendVN(b, tlvDstVN, *dst)
	return append(b, tlvEnd, 0)
}

// tlvPort appends the port-mirroring metadata: the port's VN as source
// (traffic from the VM) or destination (traffic to it), end.
func (g *Generator) tlvPort(b []byte, e *Expect, vn *string) []byte {
	if g.rng.IntN(2) == 0 {
		e.SrcVN, e.Direction = vn, mirror.DirIngress
		b = appendVN(b, tlvSrcVN, *vn)
	} else {
		e.DstVN, e.Direction = vn, mirror.DirEgress
		b = appendVN(b, tlvDstVN, *vn)
	}
	return append(b, tlvEnd, 0)
}

// tlvAny appends ACL, port or no metadata.
func (g *Generator) tlvAny(b []byte, e *Expect) []byte {
	switch g.rng.IntN(3) {
	case 0:
		return g.tlvACL(b, e, g.vn(), g.vn())
	case 1:
		return g.tlvPort(b, e, g.vn())
	}
	return append(b, tlvEnd, 0)
}

// tlvUnknown appends ACL or port metadata with a TLV of an unknown type
// inserted after the first TLV or just before the end.
func (g *Generator) tlvUnknown(b []byte, e *Expect) []byte {
	start := len(b)
	if g.rng.IntN(2) == 0 {
		b = g.tlvACL(b, e, g.vn(), g.vn())
	} else {
		b = g.tlvPort(b, e, g.vn())
	}
	b = b[:len(b)-2] // drop the end marker
	at := len(b)
	if g.rng.IntN(2) == 0 {
		at = start + 2 + int(b[start+1])
	}
	typ := [...]byte{0, 5, 6, 7, 9, 42, 128, 200, 254}[g.rng.IntN(9)]
	n := g.rng.IntN(21)
	var u [2 + 20]byte
	u[0], u[1] = typ, byte(n)
	g.fill(u[2 : 2+n])
	b = append(b, u[:2+n]...) // make room, then move the tail
	copy(b[at+2+n:], b[at:len(b)-2-n])
	copy(b[at:], u[:2+n])
	return append(b, tlvEnd, 0)
}

// tlvNames appends ACL or port metadata with VN names as clouds in the
// field send them.
func (g *Generator) tlvNames(b []byte, e *Expect) []byte {
	switch g.rng.IntN(3) {
	case 0:
		return g.tlvPort(b, e, g.fieldVN())
	case 1:
		return g.tlvACL(b, e, g.fieldVN(), g.vn())
	}
	return g.tlvACL(b, e, g.fieldVN(), g.fieldVN())
}

// Flags TLV values of two bytes seen in the field: action bits only.
var flags16 = [...]uint16{0x00a0, 0x0088, 0x00b0, 0x0080, 0x00a2, 0x0098}

// tlvOdd appends metadata whose host or flags TLV has another length than
// the documented 4 bytes: a 16-byte IPv6 router id, 2-byte flags, or a
// length no decoder can read (kept raw, counted in OddTLVs).
func (g *Generator) tlvOdd(b []byte, e *Expect) []byte {
	host, flags := g.rng.IntN(4), g.rng.IntN(4)
	if host == 1 && flags == 1 || host == 3 && flags == 3 || host == 1 && flags == 3 || host == 3 && flags == 1 {
		host = 0 // at least one odd TLV
	}
	switch host {
	case 0: // an IPv6 router id (2001:db8::/32, never IPv4-mapped)
		var h [16]byte
		h[0], h[1], h[2], h[3] = 0x20, 0x01, 0x0d, 0xb8
		g.fill(h[4:])
		if g.rng.IntN(2) == 0 {
			h = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(1 + g.rng.IntN(250))}
		}
		e.Host = netip.AddrFrom16(h)
		b = append(b, tlvHost, 16)
		b = append(b, h[:]...)
	case 1:
		h := g.hosts[g.rng.IntN(len(g.hosts))]
		e.Host = netip.AddrFrom4(h)
		b = append(b, tlvHost, 4)
		b = append(b, h[:]...)
	case 2:
		n := [...]int{0, 1, 2, 3, 5, 6, 7, 8, 12, 15, 17, 20}[g.rng.IntN(12)]
		b = append(b, tlvHost, byte(n))
		b = grow(b, n)[:len(b)+n]
		g.fill(b[len(b)-n:])
		e.OddTLVs++
	}
	switch flags {
	case 0:
		f := flags16[g.rng.IntN(len(flags16))]
		e.Flags, e.FlagBits = uint32(f), 16
		b = append(b, tlvFlags, 2, byte(f>>8), byte(f))
	case 1:
		f := g.flags(e)
		e.Flags, e.FlagBits = f, 32
		b = append(b, tlvFlags, 4)
		b = binary.BigEndian.AppendUint32(b, f)
	case 2:
		n := [...]int{0, 1, 3, 5, 6, 8}[g.rng.IntN(6)]
		b = append(b, tlvFlags, byte(n))
		b = grow(b, n)[:len(b)+n]
		g.fill(b[len(b)-n:])
		e.OddTLVs++
	}
	switch g.rng.IntN(3) {
	case 0:
		e.SrcVN = g.vn()
		b = appendVN(b, tlvSrcVN, *e.SrcVN)
	case 1:
		e.DstVN = g.vn()
		b = appendVN(b, tlvDstVN, *e.DstVN)
	default:
		e.SrcVN, e.DstVN = g.vn(), g.vn()
		b = appendVN(b, tlvSrcVN, *e.SrcVN)
		b = appendVN(b, tlvDstVN, *e.DstVN)
	}
	e.Direction = direction(e, e.SrcVN != nil, e.DstVN != nil)
	return append(b, tlvEnd, 0)
}

// juniper builds a Juniper-header case (UDP to the mirror port), good or
// malformed.
func (g *Generator) juniper(c *Case, k Kind) {
	e := &c.Expect
	e.Mode = mirror.ModeJuniper
	o := g.randOuter(g.port)
	t := g.pickInner()
	b := g.payload[:0]

	legacy := 0
	switch k {
	case KindLegacy1:
		legacy = 1
	case KindLegacy2:
		legacy = 2
	case KindBadIP:
		o.v6 = false
	case KindPadding, KindSeed114:
		o = outer{lt: layers.LinkTypeEthernet, dst: g.port, src: o.src}
	case KindDPDKIPv6:
		t = [...]innerType{inIPv6TCP, inIPv6UDP, inIPv6ICMP}[g.rng.IntN(3)]
	case KindDPDKTagged:
		t = inTaggedIPv6
	case KindOuterTags:
		o.lt, o.tags = layers.LinkTypeEthernet, 3+g.rng.IntN(2)
		o.tpid = [...]uint16{0x88a8, 0x9100, 0x8100}[g.rng.IntN(3)]
	case KindOtherPort:
		c.Port = g.otherPort()
		o.dst = c.Port
	}
	if legacy > 0 {
		b = append(b, make16[:]...)
	}
	tlvStart := len(b)
	switch k {
	case KindACL, KindFragMissing:
		b = g.tlvACL(b, e, g.vn(), g.vn())
	case KindSeed114:
		p := &g.seedNames[0]
		if g.opts.VarySeedNames {
			p = &g.seedNames[g.rng.IntN(len(g.seedNames))]
		}
		b = g.tlvACL(b, e, &p[0], &p[1])
	case KindPort:
		b = g.tlvPort(b, e, g.vn())
	case KindEndOnly, KindPadding:
		b = append(b, tlvEnd, 0)
	case KindUnknownTLV:
		b = g.tlvUnknown(b, e)
	case KindNames:
		b = g.tlvNames(b, e)
	case KindOddTLV:
		b = g.tlvOdd(b, e)
	case KindOtherPort:
		if g.rng.IntN(2) == 0 {
			b = g.tlvACL(b, e, g.vn(), g.vn())
		} else {
			b = g.tlvPort(b, e, g.vn())
		}
	case KindBadTLV:
		g.badTLV(c, &o)
		return
	default:
		b = g.tlvAny(b, e)
	}

	size := g.pickSize()
	switch k {
	case KindSnapCut, KindTruncated, KindBadIP, KindBadUDP, KindBadInner, KindSeed114, KindOtherPort,
		KindUnknownTLV:
		// Keep the datagram within the MTU: these cases are single
		// records (an unknown TLV: a short search for wrapped names).
		limit := g.opts.MTU - 72 - len(b)
		if limit < 64 {
			b = append(b[:tlvStart], tlvEnd, 0)
			clearMeta(e)
			limit = g.opts.MTU - 74
		}
		size = min(size, limit)
	case KindFragmented, KindFragMissing:
		size = max(size, g.opts.MTU)
		if t == inARP {
			t = inIPv4UDP // ARP frames are too small to fragment
		}
	}
	var frame []byte
	if k == KindPadding {
		frame = g.frame[:0]
		frame = append(frame, vrouterMAC[:]...)
		frame = append(frame, 2, 0, 0, 0, 0, 1, 0x88, 0xb5)
		if g.rng.IntN(2) == 0 {
			frame = append(frame, 0)
		}
		g.frame = frame
	} else {
		frame = g.innerFrame(t, size)
	}
	if len(frame) >= 14 && frame[12] == 0x08 && frame[13] == 0x06 {
		o.src = 8097 // the vRouter's source port for non-IP flows
	}
	frameOff := len(b)
	if k == KindBadInner {
		b = append(b, frame[:g.rng.IntN(14)]...)
	} else {
		b = append(b, frame...)
	}
	switch k {
	case KindDPDKIPv6:
		b[frameOff+12], b[frameOff+13] = 0x08, 0x00
	case KindDPDKTagged:
		b[frameOff+16], b[frameOff+17] = 0x08, 0x00
	case KindUnknownTLV:
		// The unknown type sends a decoder searching for wrapped names:
		// the list is what it reads only when no other reading counts.
		if v := readTLVs(b[tlvStart:]); !v.sure || v.ok && (v.end != frameOff-tlvStart || v.recovered) {
			b = append(b[:tlvStart], tlvEnd, 0)
			clearMeta(e)
			frameOff = len(b)
			b = append(b, frame...)
		} else if !v.ok {
			expectMalformed(e, "bad-tlv")
		}
	}
	if legacy > 0 {
		ts := time.Unix(int64(0x53000000+g.rng.IntN(0x06000000)), int64(g.rng.IntN(1_000_000))*1000).UTC()
		incl := len(b) - 16
		if legacy == 2 {
			incl = len(frame)
		}
		binary.BigEndian.PutUint32(b[0:], uint32(ts.Unix()))
		binary.BigEndian.PutUint32(b[4:], uint32(ts.Nanosecond()/1000))
		binary.BigEndian.PutUint32(b[8:], uint32(incl))
		binary.BigEndian.PutUint32(b[12:], uint32(incl))
		e.Legacy, e.RecordTime = legacy, ts
	}
	g.payload = b
	pkt := g.udpPacket(&o, b)
	frameStart := o.data + frameOff

	cp := capture{drop: k == KindFragMissing}
	switch k {
	case KindSnapCut:
		if len(frame) > 15 {
			cp.cut = frameStart + 14 + g.rng.IntN(len(frame)-14)
		}
	case KindTruncated:
		cp.cut = o.l3 + 1 + g.rng.IntN(frameStart-o.l3-1)
		expectMalformed(e, "truncated")
	case KindBadIP:
		h := pkt[o.l3:]
		switch v := g.rng.IntN(3); {
		case v == 0:
			h[0] = 0x40 | byte(g.rng.IntN(5))
		case v == 1 || o.lt == layers.LinkTypeRaw:
			binary.BigEndian.PutUint16(h[2:], uint16(g.rng.IntN(o.hl)))
		default:
			h[0] = [...]byte{0x00, 0x50, 0x60, 0x70, 0xf0}[g.rng.IntN(5)] | h[0]&0x0f
		}
		binary.BigEndian.PutUint16(h[10:], ipv4Checksum(h[:o.hl]))
		expectMalformed(e, "bad-ip")
	case KindBadUDP:
		ul := uint16(g.rng.IntN(8))
		if g.rng.IntN(2) == 0 {
			ul = uint16(o.l3 + o.ipLen(pkt) - o.udp + 1 + g.rng.IntN(64))
		}
		binary.BigEndian.PutUint16(pkt[o.udp+4:], ul)
		expectMalformed(e, "bad-udp")
	case KindBadInner:
		expectMalformed(e, "bad-inner-frame")
	}
	g.send(&o, pkt, cp)
	g.settle(e, 0, &o, g.frame, frameStart)
}

// otherPort draws a UDP port mirror datagrams are sent to when the
// analyzer was given another one: ports seen in the field, or any.
func (g *Generator) otherPort() uint16 {
	for {
		p := [...]uint16{8888, 8159, 9099, 8100, 0}[g.rng.IntN(5)]
		if p == 0 {
			p = uint16(1024 + g.rng.IntN(64512))
		}
		switch p {
		case g.port, g.vxlanPort, mirror.DefaultPort, mirror.DefaultVXLANPort, mplsUDPPort, mplsUDPPortOld:
			continue
		}
		return p
	}
}

var make16 [16]byte

// unknownVN is the name the agent reports for a VN it does not know.
var unknownVN = "__UNKNOWN__"

func clearMeta(e *Expect) {
	e.SrcVN, e.DstVN, e.Host, e.Flags, e.FlagBits, e.OddTLVs, e.Direction = nil, nil, netip.Addr{}, 0, 0, 0, mirror.DirUnknown
}

// badTLV builds a Juniper datagram whose TLV list no reading makes
// consistent.
func (g *Generator) badTLV(c *Case, o *outer) {
	e := &c.Expect
	for attempt := 0; ; attempt++ {
		b := g.payload[:0]
		frame := g.innerFrame(g.pickInner(), min(g.pickSize(), 1000))
		name := g.vn()
		if len(*name) < 2 {
			name = &unknownVN
		}
		switch v := g.rng.IntN(3); {
		case v == 0 || attempt > 8: // a value runs past the end of the datagram
			b = append(b, tlvHost, 4, 10, 0, 0, 1)
			b = append(b, tlvSrcVN, byte(len(*name)))
			b = append(b, (*name)[:g.rng.IntN(len(*name))]...)
		case v == 1: // no end marker
			b = appendVN(b, tlvSrcVN, *name)
			b = appendVN(b, tlvDstVN, *g.vn())
		default: // end marker with a value
			b = appendVN(b, tlvSrcVN, *name)
			n := 1 + g.rng.IntN(4)
			b = append(b, tlvEnd, byte(n))
			for range n {
				b = append(b, 0)
			}
			b = append(b, frame...)
		}
		g.payload = b
		// A name's length may have wrapped: the list must stay
		// inconsistent in every reading.
		if v := readTLVs(b); v.sure && !v.ok {
			break
		}
	}
	expectMalformed(e, "bad-tlv")
	g.udpPacket(o, g.payload)
	g.send(o, g.pkt, capture{})
	g.settle(e, 0, o, nil, 0)
}

// wrapped builds a datagram with a VN name over 255 bytes whose length
// the agent wrote into one byte. Good cases have exactly one consistent
// reading (the names are recovered); bad ones have none (the frame that
// follows is not plausible) or several (the bytes 256 or more after the
// name's end read as an end marker and a frame as well).
//
// Names, frames and plants are drawn until the rule has one answer of the
// kind wanted; when the MTU leaves no room for one, the case falls back to
// plain ACL metadata.
func (g *Generator) wrapped(c *Case, bad bool) {
	e := &c.Expect
	o := g.randOuter(g.port)
	for range 200 {
		*e = Expect{Mode: mirror.ModeJuniper}
		b := g.payload[:0]
		src, dst := g.vn(), g.vn()
		switch g.rng.IntN(4) {
		case 0:
			src = g.longVN()
		case 1:
			dst = g.longVN()
		case 2:
			src, dst = g.longVN(), g.longVN()
		}
		ks := [maxSearchNames]int{len(*src) / 256, len(*dst) / 256}
		if ks == ([maxSearchNames]int{}) {
			src = g.longVN()
			ks[0] = len(*src) / 256
		}
		switch {
		case g.rng.IntN(3) == 0 && (ks[0] == 0 || ks[1] == 0):
			// Port mirroring: the one name, long.
			vn := src
			if ks[0] == 0 {
				vn = dst
			}
			b = g.tlvPort(b, e, vn)
			ks = [maxSearchNames]int{len(*vn) / 256}
		default:
			b = g.tlvACL(b, e, src, dst)
		}
		frameOff := len(b)
		limit := g.opts.MTU - 72 - len(b)
		if limit < 64 {
			continue // too long for one record: another draw
		}
		t := g.pickInner()
		size := min(g.pickSize(), limit)
		plant := bad && g.rng.IntN(2) == 0
		if plant {
			size = limit // room for a second reading in the frame
		}
		frame := g.innerFrame(t, size)
		b = append(b, frame...)
		if bad {
			if plant {
				// The reading one more wrap longer than the first name is
				// read as ending in FF 00 and a frame of an EtherType
				// nobody checks.
				q := 2 + int(b[1]) + 256*(ks[0]+1)
				if b[0] != tlvSrcVN && b[0] != tlvDstVN {
					q = 12 + 2 + int(b[13]) + 256*(ks[0]+1) // after host and flags
				}
				if q < frameOff+54 || q+16 > len(b) {
					continue
				}
				b[q], b[q+1], b[q+14], b[q+15] = tlvEnd, 0, 0x88, 0xb5
			} else {
				// A frame with a trailer (an FCS, say) beyond its IP
				// packet: the one right reading does not count.
				if frame[12] != 0x08 || frame[13] != 0x00 || len(frame) < 64 {
					continue
				}
				for range 4 {
					b = append(b, byte(g.rng.Uint32()))
				}
			}
		}
		g.payload = b
		v := readTLVs(b)
		if !v.sure {
			continue
		}
		if bad != v.ok && (bad || v.end == frameOff && v.ks == ks) {
			e.NameRecovered = !bad
			if bad {
				expectMalformed(e, "bad-tlv")
			}
			g.udpPacket(&o, b)
			g.send(&o, g.pkt, capture{})
			g.settle(e, 0, &o, frame, o.data+frameOff)
			return
		}
	}
	g.juniper(c, KindACL)
}

// longVN draws a VN name over 255 bytes.
func (g *Generator) longVN() *string {
	return &g.longVNs[g.rng.IntN(len(g.longVNs))]
}

// vxlan builds a static next-hop VXLAN case, or a malformed one.
func (g *Generator) vxlan(c *Case, bad bool) {
	e := &c.Expect
	o := g.randOuter(g.vxlanPort)
	frame := g.innerFrame(g.pickInner(), g.pickSize())
	e.Mode = mirror.ModeVXLAN
	e.VNI, e.HasVNI = uint32(1+g.rng.IntN(1<<24-1)), true
	b := append(g.payload[:0], 0x08, 0, 0, 0, byte(e.VNI>>16), byte(e.VNI>>8), byte(e.VNI), 0)
	b = append(b, frame...)
	if bad {
		if g.rng.IntN(2) == 0 {
			b[0] = [...]byte{0, 0x80, 0x04, 0xf7}[g.rng.IntN(4)]
		} else {
			b = b[:g.rng.IntN(8)]
		}
		expectMalformed(e, "bad-vxlan")
	}
	g.payload = b
	g.udpPacket(&o, b)
	g.send(&o, g.pkt, capture{})
	g.settle(e, 0, &o, frame, o.data+8)
}

// vlan builds a NIC-assisted case: the frame with the mirror VLAN tag.
func (g *Generator) vlan(c *Case) {
	t := g.pickInner()
	frame := g.innerFrame(t, max(g.pickSize(), 60))
	b := grow(g.pkt[:0], len(frame)+4)
	b = append(b, frame[:12]...)
	b = append(b, 0x81, 0x00, byte(g.mirrorVLAN>>8), byte(g.mirrorVLAN))
	b = append(b, frame[12:]...)
	g.pkt = b
	c.Mode, c.VLAN = mirror.ModeVLAN, g.mirrorVLAN
	g.single(layers.LinkTypeEthernet, b)
	expectFrame(&c.Expect, frame, 4, len(g.wires[len(g.wires)-1].Data))
	g.steps[len(g.steps)-1] = Step{Status: status(&c.Expect)}
}

// single captures one record that is not an IP datagram of the generator.
func (g *Generator) single(lt layers.LinkType, b []byte) {
	n := min(len(b), g.opts.Snaplen)
	g.wires = append(g.wires, Wire{Timestamp: g.tick(), LinkType: lt, Data: b[:n], WireLen: len(b)})
	g.steps = append(g.steps, Step{Status: mirror.Decoded})
}

// other builds traffic that is not mirror traffic.
func (g *Generator) other(c *Case) {
	o := g.randOuter(0)
	t := [...]innerType{inIPv4TCP, inIPv4UDP, inIPv6UDP, inARP, inTaggedIPv4}[g.rng.IntN(5)]
	if o.lt != layers.LinkTypeEthernet && (t == inTaggedIPv4 || t == inARP && o.lt == layers.LinkTypeRaw) {
		t = inIPv4UDP
	}
	frame := g.innerFrame(t, min(g.pickSize(), g.opts.MTU+14))
	b := g.pkt[:0]
	if o.lt == layers.LinkTypeEthernet {
		b = append(b, frame...)
		b = g.pad(o.lt, b, 0)
	} else {
		b = g.l2(b, &o, binary.BigEndian.Uint16(frame[12:]))
		b = append(b, frame[14:]...)
	}
	g.pkt = b
	g.single(o.lt, b)
	w := g.wires[len(g.wires)-1]
	c.Mode, c.Frame, c.FrameLen, c.Truncated = mirror.ModeOther, w.Data, w.WireLen, len(w.Data) < w.WireLen
	c.Reason = "not-mirror"
}

// badLinkType builds an 802.11 record, a link type the decoder does not know.
func (g *Generator) badLinkType(c *Case) {
	n := 24 + g.rng.IntN(200)
	b := grow(g.pkt[:0], n)[:n]
	g.fill(b)
	b[0], b[1] = 0x08, 0x01 // data frame, to DS
	g.pkt = b
	g.single(layers.LinkTypeIEEE802_11, b)
	expectMalformed(&c.Expect, "link-type")
	g.steps[len(g.steps)-1] = Step{Status: mirror.Failed}
}
