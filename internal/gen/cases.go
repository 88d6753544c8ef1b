package gen

import (
	"encoding/binary"
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
	default:
		g.juniper(c, k)
	}
}

// fail clears the expected decode result of c and sets the failure reason.
func fail(c *Case, reason string) {
	*c = Case{Index: c.Index, Kind: c.Kind, Packet: c.Packet, Reason: reason}
}

// expectFrame sets the expected inner frame when capLen bytes of a record
// whose inner frame starts at frameStart were captured.
func expectFrame(c *Case, frame []byte, frameStart, capLen int) {
	c.FrameLen = len(frame)
	switch {
	case capLen >= frameStart+len(frame):
		c.Frame = frame
	case capLen < frameStart+14:
		fail(c, "truncated")
	default:
		c.Frame = frame[:capLen-frameStart]
		c.Truncated = true
	}
}

// finish captures the outer packet in g.pkt and sets the expected result.
func (g *Generator) finish(c *Case, o *outer, frame []byte, frameStart, cut int, drop bool) {
	frags, short, dropped := g.send(o, g.pkt, cut, drop)
	switch {
	case dropped || (frags > 1 && short):
		fail(c, "fragment-incomplete")
	case frags > 1:
		expectFrame(c, frame, frameStart, frameStart+len(frame))
	default:
		expectFrame(c, frame, frameStart, len(g.wires[len(g.wires)-1].Data))
	}
}

// vn draws a VN name, mostly a realistic one.
func (g *Generator) vn() *string {
	if g.realVNs > 0 && g.rng.IntN(4) > 0 {
		return &g.vns[g.rng.IntN(g.realVNs)]
	}
	return &g.vns[g.rng.IntN(len(g.vns))]
}

func appendVN(b []byte, typ byte, vn string) []byte {
	b = append(b, typ, byte(len(vn)))
	return append(b, vn...)
}

// tlvACL appends the policy-mirroring metadata: host, flags, source and
// destination VN, end.
func (g *Generator) tlvACL(b []byte, c *Case, src, dst *string) []byte {
	c.host = g.hosts[g.rng.IntN(len(g.hosts))]
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
	c.Direction = mirror.DirEgress
	if g.rng.IntN(2) == 0 {
		f |= mirror.FlagIngress
		c.Direction = mirror.DirIngress
	}
	c.flags = f
	c.Host, c.Flags, c.SrcVN, c.DstVN = &c.host, &c.flags, src, dst
	b = append(b, tlvHost, 4)
	b = append(b, c.host[:]...)
	b = append(b, tlvFlags, 4)
	b = binary.BigEndian.AppendUint32(b, f)
	b = appendVN(b, tlvSrcVN, *src)
	b = appendVN(b, tlvDstVN, *dst)
	return append(b, tlvEnd, 0)
}

// tlvPort appends the port-mirroring metadata: the port's VN as source
// (traffic from the VM) or destination (traffic to it), end.
func (g *Generator) tlvPort(b []byte, c *Case) []byte {
	vn := g.vn()
	if g.rng.IntN(2) == 0 {
		c.SrcVN, c.Direction = vn, mirror.DirIngress
		b = appendVN(b, tlvSrcVN, *vn)
	} else {
		c.DstVN, c.Direction = vn, mirror.DirEgress
		b = appendVN(b, tlvDstVN, *vn)
	}
	return append(b, tlvEnd, 0)
}

// tlvAny appends ACL, port or no metadata.
func (g *Generator) tlvAny(b []byte, c *Case) []byte {
	switch g.rng.IntN(3) {
	case 0:
		return g.tlvACL(b, c, g.vn(), g.vn())
	case 1:
		return g.tlvPort(b, c)
	}
	return append(b, tlvEnd, 0)
}

// tlvUnknown appends ACL or port metadata with a TLV of an unknown type
// inserted after the first TLV or just before the end.
func (g *Generator) tlvUnknown(b []byte, c *Case) []byte {
	start := len(b)
	if g.rng.IntN(2) == 0 {
		b = g.tlvACL(b, c, g.vn(), g.vn())
	} else {
		b = g.tlvPort(b, c)
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

// juniper builds a Juniper-header case (UDP to the mirror port), good or
// malformed.
func (g *Generator) juniper(c *Case, k Kind) {
	c.Mode = mirror.ModeJuniper
	o := g.randOuter(g.opts.Port)
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
		o = outer{lt: layers.LinkTypeEthernet, dst: g.opts.Port, src: o.src}
	case KindDPDKIPv6:
		t = [...]innerType{inIPv6TCP, inIPv6UDP, inIPv6ICMP}[g.rng.IntN(3)]
	}
	if legacy > 0 {
		b = append(b, make16[:]...)
	}
	tlvStart := len(b)
	switch k {
	case KindACL, KindFragMissing:
		b = g.tlvACL(b, c, g.vn(), g.vn())
	case KindSeed114:
		p := &g.seedNames[0]
		if g.opts.VarySeedNames {
			p = &g.seedNames[g.rng.IntN(len(g.seedNames))]
		}
		b = g.tlvACL(b, c, &p[0], &p[1])
	case KindPort:
		b = g.tlvPort(b, c)
	case KindEndOnly, KindPadding:
		b = append(b, tlvEnd, 0)
	case KindUnknownTLV:
		b = g.tlvUnknown(b, c)
	case KindBadTLV:
		g.badTLV(c, &o)
		return
	default:
		b = g.tlvAny(b, c)
	}

	size := g.pickSize()
	switch k {
	case KindSnapCut, KindTruncated, KindBadIP, KindBadUDP, KindBadInner, KindSeed114:
		// Keep the datagram within the MTU: these cases are single records.
		limit := g.opts.MTU - 72 - len(b)
		if limit < 64 {
			b = append(b[:tlvStart], tlvEnd, 0)
			clearMeta(c)
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
	if k == KindDPDKIPv6 {
		b[frameOff+12], b[frameOff+13] = 0x08, 0x00
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
		c.Legacy, c.RecordTime = legacy, ts
	}
	g.payload = b
	pkt := g.udpPacket(&o, b)
	frameStart := o.data + frameOff

	cut := 0
	switch k {
	case KindSnapCut:
		if len(frame) > 15 {
			cut = frameStart + 14 + g.rng.IntN(len(frame)-14)
		}
	case KindTruncated:
		cut = o.l3 + 1 + g.rng.IntN(frameStart-o.l3-1)
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
	case KindBadUDP:
		ul := uint16(g.rng.IntN(8))
		if g.rng.IntN(2) == 0 {
			ul = uint16(o.l3 + o.ipLen(pkt) - o.udp + 1 + g.rng.IntN(64))
		}
		binary.BigEndian.PutUint16(pkt[o.udp+4:], ul)
	}
	g.finish(c, &o, g.frame, frameStart, cut, k == KindFragMissing)
	switch k {
	case KindBadIP:
		fail(c, "bad-ip")
	case KindBadUDP:
		fail(c, "bad-udp")
	case KindBadInner:
		fail(c, "bad-inner-frame")
	case KindTruncated:
		fail(c, "truncated")
	}
}

var make16 [16]byte

// unknownVN is the name the agent reports for a VN it does not know.
var unknownVN = "__UNKNOWN__"

func clearMeta(c *Case) {
	c.SrcVN, c.DstVN, c.Host, c.Flags, c.Direction = nil, nil, nil, nil, mirror.DirUnknown
}

// badTLV builds a Juniper datagram whose TLV list is inconsistent.
func (g *Generator) badTLV(c *Case, o *outer) {
	b := g.payload[:0]
	frame := g.innerFrame(g.pickInner(), min(g.pickSize(), 1000))
	name := g.vn()
	if len(*name) < 2 {
		name = &unknownVN
	}
	v := g.rng.IntN(6)
	if v == 5 {
		if b = g.wrappedVN(b, frame); b == nil {
			v = 1
			b = g.payload[:0]
		}
	}
	switch v {
	case 0: // a value runs past the end of the datagram
		b = append(b, tlvHost, 4, 10, 0, 0, 1)
		b = append(b, tlvSrcVN, byte(len(*name)))
		b = append(b, (*name)[:g.rng.IntN(len(*name))]...)
	case 1: // no end marker
		b = appendVN(b, tlvSrcVN, *name)
		b = appendVN(b, tlvDstVN, *g.vn())
	case 2: // host or flags with a length other than 4
		n := [...]int{0, 1, 2, 3, 5, 6, 8}[g.rng.IntN(7)]
		b = append(b, byte(1+g.rng.IntN(2)), byte(n))
		b = append(b, g.noise[:n]...)
		b = append(b, tlvEnd, 0)
		b = append(b, frame...)
	case 3: // end marker with a value
		b = appendVN(b, tlvSrcVN, *name)
		n := 1 + g.rng.IntN(4)
		b = append(b, tlvEnd, byte(n))
		for range n {
			b = append(b, 0)
		}
		b = append(b, frame...)
	case 4: // VN name with a non-printable byte
		b = appendVN(b, byte(3+g.rng.IntN(2)), *name)
		b[2+g.rng.IntN(len(*name))] = [...]byte{0, 1, 9, 0x1f, 0x7f, 0x80, 0xc3, 0xff}[g.rng.IntN(8)]
		b = append(b, tlvEnd, 0)
		b = append(b, frame...)
	}
	g.payload = b
	g.udpPacket(o, b)
	if frags, short, _ := g.send(o, g.pkt, 0, false); frags > 1 && short {
		fail(c, "fragment-incomplete")
		return
	}
	fail(c, "bad-tlv")
}

// wrappedVN appends a VN TLV whose name is over 255 bytes, its length
// wrapped into one byte as the agent writes it, then the end and the frame.
// It returns nil unless a parser skipping TLVs by their length provably runs
// past the end of the payload without meeting an end marker.
func (g *Generator) wrappedVN(b []byte, frame []byte) []byte {
	for range 8 {
		n := 256 + g.rng.IntN(g.opts.MTU-400)
		p := append(b[:0], tlvSrcVN, byte(n))
		for range n {
			p = append(p, vnChars[g.rng.IntN(len(vnChars))])
		}
		p = append(p, tlvEnd, 0)
		p = append(p, frame...)
		if runsPastEnd(p) {
			return p
		}
		b = p
	}
	return nil
}

// runsPastEnd walks a TLV list skipping every TLV by its length, and reports
// whether it leaves the payload without meeting type 255.
func runsPastEnd(p []byte) bool {
	i := 0
	for {
		if i+2 > len(p) {
			return true // past the end, or at it without an end marker
		}
		if p[i] == tlvEnd {
			return false
		}
		i += 2 + int(p[i+1])
	}
}

// vxlan builds a static next-hop VXLAN case, or a malformed one.
func (g *Generator) vxlan(c *Case, bad bool) {
	o := g.randOuter(g.opts.VXLANPort)
	frame := g.innerFrame(g.pickInner(), g.pickSize())
	c.Mode = mirror.ModeVXLAN
	c.vni = uint32(1 + g.rng.IntN(1<<24-1))
	c.VNI = &c.vni
	b := append(g.payload[:0], 0x08, 0, 0, 0, byte(c.vni>>16), byte(c.vni>>8), byte(c.vni), 0)
	b = append(b, frame...)
	if bad {
		if g.rng.IntN(2) == 0 {
			b[0] = [...]byte{0, 0x80, 0x04, 0xf7}[g.rng.IntN(4)]
		} else {
			b = b[:g.rng.IntN(8)]
		}
	}
	g.payload = b
	g.udpPacket(&o, b)
	g.finish(c, &o, frame, o.data+8, 0, false)
	if bad {
		fail(c, "bad-vxlan")
	}
}

// vlan builds a NIC-assisted case: the frame with the mirror VLAN tag.
func (g *Generator) vlan(c *Case) {
	t := g.pickInner()
	frame := g.innerFrame(t, max(g.pickSize(), 60))
	b := grow(g.pkt[:0], len(frame)+4)
	b = append(b, frame[:12]...)
	b = append(b, 0x81, 0x00, byte(g.opts.MirrorVLAN>>8), byte(g.opts.MirrorVLAN))
	b = append(b, frame[12:]...)
	g.pkt = b
	c.Mode, c.VLAN = mirror.ModeVLAN, g.opts.MirrorVLAN
	g.single(layers.LinkTypeEthernet, b)
	expectFrame(c, frame, 4, len(g.wires[len(g.wires)-1].Data))
}

func (g *Generator) single(lt layers.LinkType, b []byte) {
	n := min(len(b), g.opts.Snaplen)
	g.wires = append(g.wires, Wire{Timestamp: g.tick(), LinkType: lt, Data: b[:n], WireLen: len(b)})
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
	fail(c, "link-type")
}
