package gen

import (
	"encoding/binary"
	"slices"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Cases of more than one datagram: what a sniffer sees of IP fragments in
// the field (f10, f15), and the fabric tunnels a mirror datagram may still
// be in (f04).

// Fabric tunnel ports.
const (
	mplsUDPPort    = 6635  // MPLS over UDP (RFC 7510)
	mplsUDPPortOld = 51234 // MPLS over UDP on releases before 3.0
)

// mirrorDatagram builds a current-format mirror datagram with ACL
// metadata and an inner frame of about size bytes from o, sends it and
// settles result e (index r).
func (g *Generator) mirrorDatagram(e *Expect, r int, o *outer, size int, cp capture) {
	*e = Expect{Mode: mirror.ModeJuniper}
	b := g.tlvACL(g.payload[:0], e, g.vn(), g.vn())
	frameOff := len(b)
	t := g.pickInner()
	if t == inARP && size > 60 {
		t = inIPv4TCP
	}
	frame := g.innerFrame(t, size)
	b = append(b, frame...)
	g.payload = b
	g.udpPacket(o, b)
	g.send(o, g.pkt, cp)
	g.settle(e, r, o, frame, o.data+frameOff)
}

// other adds a further result to the case and returns it with its index.
func (g *Generator) another() (*Expect, int) {
	g.others = append(g.others, Expect{})
	return &g.others[len(g.others)-1], len(g.others)
}

// keep moves the records from g.wires[from:] and the frame of e (when not
// nil) into the case's own memory, so that the next datagram built does
// not overwrite them.
func (g *Generator) keep(from int, e *Expect) {
	for i := from; i < len(g.wires); i++ {
		g.wires[i].Data = g.stash(g.wires[i].Data)
	}
	if e != nil && e.Frame != nil {
		e.Frame = g.stash(e.Frame)
	}
}

// stash copies b into the case's arena. Slices taken before the arena
// grows keep the old array, which is never written again.
func (g *Generator) stash(b []byte) []byte {
	start := len(g.arena)
	g.arena = append(g.arena, b...)
	return g.arena[start:len(g.arena):len(g.arena)]
}

// fillers sends n small mirror datagrams from o's source, each a further
// result of the case.
func (g *Generator) fillers(o *outer, n int) {
	for range n {
		from := len(g.wires)
		e, r := g.another()
		g.mirrorDatagram(e, r, o, 64+g.rng.IntN(300), capture{})
		g.keep(from, e)
	}
}

// idReuse builds f15's scene: datagram A loses its first fragment; more
// than MaxDist other datagrams later, datagram B from the same source to
// the same analyzer reuses A's IP ID, whole or fragmented. B must decode
// exactly; A's fragments come back as incomplete, never joined with B's.
func (g *Generator) idReuse(c *Case) {
	o := g.randOuter(g.port)
	o.id, o.haveID = g.rng.Uint32(), true
	var a Expect
	g.mirrorDatagram(&a, 0, &o, max(g.pickSize(), g.opts.MTU), capture{dropFirst: true})
	g.keep(0, nil)
	o.haveID = false
	g.fillers(&o, g.opts.MaxDist+1+g.rng.IntN(3))
	o.haveID = true
	size := min(g.pickSize(), g.opts.MTU-200)
	if g.rng.IntN(2) == 0 {
		size = max(g.pickSize(), g.opts.MTU) // fragmented, with A's ID
	}
	g.mirrorDatagram(&c.Expect, 0, &o, size, capture{})
}

// dupFragment builds a fragmented datagram one of whose fragments is
// captured twice: while the datagram is held, or after it completed
// (fewer than MaxDist other datagrams from its source later). The repeat
// is counted as a duplicate, not an error, and changes nothing else.
func (g *Generator) dupFragment(c *Case) {
	o := g.randOuter(g.port)
	g.mirrorDatagram(&c.Expect, 0, &o, max(g.pickSize(), g.opts.MTU), capture{})
	n := len(g.wires)
	j := g.rng.IntN(n) // the fragment repeated, by arrival
	if j < n-1 && g.rng.IntN(2) == 0 {
		// Before the datagram completes: anywhere after the original and
		// before the last fragment.
		at := j + 1 + g.rng.IntN(n-1-j)
		w := g.wires[j]
		w.Timestamp = g.wires[at-1].Timestamp.Add(1)
		g.wires = slices.Insert(g.wires, at, w)
		g.steps = slices.Insert(g.steps, at, Step{Status: mirror.Duplicate})
		return
	}
	g.keep(0, &c.Expect)
	g.fillers(&o, g.rng.IntN(max(g.opts.MaxDist-1, 1)))
	w := g.wires[j]
	w.Timestamp = g.tick()
	g.wires = append(g.wires, w)
	g.steps = append(g.steps, Step{Status: mirror.Duplicate})
}

// fragSnap builds f10's kind: a datagram over the MTU captured with a snap
// length (tcpdump -s) that cuts its first fragment, inside the inner frame
// (decoded at once, truncated, the other fragments merged into it) or,
// with tlv, inside the metadata (truncated). Or, the fragments being of
// uneven size, the snap length cuts a later fragment only: the frame is
// what was captured contiguously from the start.
func (g *Generator) fragSnap(c *Case, tlv bool) {
	e := &c.Expect
	*e = Expect{Mode: mirror.ModeJuniper}
	o := g.randOuter(g.port)
	o.v6 = g.rng.IntN(2) == 0
	b := g.tlvACL(g.payload[:0], e, g.vn(), g.vn())
	frameOff := len(b)
	t := [...]innerType{inIPv4TCP, inIPv4UDP, inIPv6TCP, inTaggedIPv4}[g.rng.IntN(4)]
	head := tlv || g.rng.IntN(2) == 0
	size := max(g.pickSize(), g.opts.MTU) // f10: full-size segments, two fragments
	if !head {
		size = max(g.pickSize(), g.opts.MTU+g.opts.MTU/2+g.rng.IntN(g.opts.MTU)) // a second fragment to cut
	}
	frame := g.innerFrame(t, size)
	b = append(b, frame...)
	g.payload = b
	pkt := g.udpPacket(&o, b)
	fh := 0
	if o.v6 {
		fh = 8
	}
	hdr := o.l3 + o.hl + fh                          // bytes before a fragment's payload
	frameAt := hdr + o.data - o.l3 - o.hl + frameOff // the frame's start in the first fragment
	chunk := (g.opts.MTU - o.hl - fh) &^ 7
	total := o.ipLen(pkt) - o.hl
	var cp capture
	switch {
	case tlv:
		tlvAt := frameAt - frameOff
		cp.snap = tlvAt + 1 + g.rng.IntN(frameOff-1)
		expectMalformed(e, "truncated")
	case head && frameAt+14 < hdr+chunk:
		cp.snap = frameAt + 14 + g.rng.IntN(hdr+chunk-frameAt-14)
	default:
		// Uneven fragments: the first one whole, the second cut.
		first := (frameAt - hdr + 14 + g.rng.IntN(200) + 7) &^ 7
		if min(chunk, total-first) < first+2 {
			first = (frameAt - hdr + 14 + 7) &^ 7
		}
		second := min(chunk, total-first)
		cp.first = first
		cp.snap = hdr + first + g.rng.IntN(max(second-first-1, 1))
	}
	g.send(&o, pkt, cp)
	g.settle(e, 0, &o, frame, o.data+frameOff)
}

// overlay builds f04's kind: a mirror datagram as a sniffer on the fabric
// sees it, still inside the tunnel between compute nodes: MPLS over UDP
// (port 6635, or 51234 on old releases) or over GRE, a label stack with
// the IP datagram or an Ethernet frame after it; or VXLAN, an Ethernet
// frame after it.
func (g *Generator) overlay(c *Case) {
	e := &c.Expect
	*e = Expect{Mode: mirror.ModeJuniper}

	// The mirror datagram as the sending vRouter built it.
	in := outer{lt: layers.LinkTypeRaw, dst: g.port, src: uint16(49152 + g.rng.IntN(16384)), v6: g.rng.IntN(4) == 0}
	b := g.tlvAny(g.payload[:0], e)
	frameOff := len(b)
	limit := g.opts.MTU - 200 - len(b)
	frame := g.innerFrame(g.pickInner(), max(min(g.pickSize(), limit), g.opts.MinFrame))
	if frame[12] == 0x08 && frame[13] == 0x06 {
		in.src = 8097
	}
	b = append(b, frame...)
	g.payload = b
	dg := g.udpPacket(&in, b)
	frameOff += in.data

	// The tunnel.
	var o outer
	t := g.ovl[:0]
	switch g.rng.IntN(3) {
	case 0:
		e.Overlay = mirror.OverlayMPLSoUDP
		port := uint16(mplsUDPPort)
		if g.rng.IntN(4) == 0 {
			port = mplsUDPPortOld
		}
		o = g.randOuter(port)
		t = g.mpls(t, in.v6)
	case 1:
		e.Overlay = mirror.OverlayMPLSoGRE
		o = g.randOuter(0)
		t = append(t, 0, 0, 0x88, 0x47)
		t = g.mpls(t, in.v6)
	default:
		e.Overlay = mirror.OverlayVXLAN
		o = g.randOuter(g.vxlanPort)
		vni := uint32(1 + g.rng.IntN(1<<24-1))
		t = append(t, 0x08, 0, 0, 0, byte(vni>>16), byte(vni>>8), byte(vni), 0)
		t = g.ethernet(t, in.v6)
	}
	frameOff += len(t)
	t = append(t, dg...)
	g.ovl = t
	var pkt []byte
	if e.Overlay == mirror.OverlayMPLSoGRE {
		pkt = g.grePacket(&o, t)
	} else {
		pkt = g.udpPacket(&o, t)
	}
	g.send(&o, pkt, capture{})
	g.settle(e, 0, &o, frame, o.data+frameOff)
}

// mpls appends an MPLS label stack of one to three labels, then, for an
// L2 route, an Ethernet header.
func (g *Generator) mpls(b []byte, v6 bool) []byte {
	n := 1 + g.rng.IntN(3)
	for i := range n {
		l := uint32(16+g.rng.IntN(1<<20-16)) << 12
		if i == n-1 {
			l |= 1 << 8 // bottom of stack
		}
		l |= uint32([...]byte{64, 255}[g.rng.IntN(2)])
		b = binary.BigEndian.AppendUint32(b, l)
	}
	if g.rng.IntN(3) == 0 {
		b = g.ethernet(b, v6)
	}
	return b
}

// ethernet appends the Ethernet header a vRouter puts before a datagram it
// tunnels to an L2 route: a destination MAC whose first nibble cannot be
// read as an IP version.
func (g *Generator) ethernet(b []byte, v6 bool) []byte {
	var dst [6]byte
	g.randMAC(dst[:])
	b = append(b, dst[:]...)
	b = append(b, vrouterMAC[:]...)
	if v6 {
		return append(b, 0x86, 0xdd)
	}
	return append(b, 0x08, 0x00)
}
