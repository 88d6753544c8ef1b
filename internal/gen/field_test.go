package gen

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"slices"
	"sort"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// The field kinds, checked by the wire format alone: what the generator
// claims of a case must be what its packets hold.

// datagram is an outer IP datagram put together from the captured records
// of its fragments.
type datagram struct {
	src, dst []byte
	id       uint32
	whole    bool   // not fragmented
	payload  []byte // captured contiguously from its start (transport header on)
	complete bool   // every byte of it captured
}

func assemble(t *testing.T, ws []Wire) datagram {
	t.Helper()
	type piece struct {
		off, n int
		b      []byte
	}
	var d datagram
	var ps []piece
	total, proto := -1, byte(0)
	for _, w := range ws {
		in := parseIP(t, w.Data, l3(t, w.LinkType, w.Data))
		d.src, d.dst, d.id = in.src, in.dst, in.fragIdent
		n := in.end - in.hdr
		ps = append(ps, piece{in.fragOff, n, w.Data[in.hdr:max(min(in.end, len(w.Data)), in.hdr)]})
		switch {
		case !in.fragment:
			d.whole, total = true, n
		case !in.more:
			total = in.fragOff + n
		}
		if in.fragOff == 0 {
			proto = in.proto
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].off < ps[j].off })
	d.complete = true
	next := 0
	for _, p := range ps {
		if p.off != next {
			d.complete = false
			break
		}
		d.payload = append(d.payload, p.b...)
		next += p.n
		if len(p.b) < p.n {
			d.complete = false
			break
		}
	}
	d.complete = d.complete && next == total
	if proto == 60 && !d.whole && len(d.payload) >= 2 { // destination options before the UDP header
		d.payload = d.payload[8*(1+int(d.payload[1])):]
	}
	return d
}

// udp splits a datagram's payload into its UDP destination port, UDP
// length and the captured UDP payload.
func (d datagram) udp(t *testing.T) (uint16, int, []byte) {
	t.Helper()
	if len(d.payload) < 8 {
		t.Fatalf("UDP header not captured")
	}
	ulen := int(binary.BigEndian.Uint16(d.payload[4:]))
	return binary.BigEndian.Uint16(d.payload[2:]), ulen, d.payload[8:min(ulen, len(d.payload))]
}

// payloadOf returns the UDP payload of a case of one datagram.
func payloadOf(t *testing.T, c *Case) []byte {
	t.Helper()
	d := assemble(t, c.Packets)
	_, _, p := d.udp(t)
	if !d.complete {
		t.Fatalf("case %d: datagram not captured whole", c.Index)
	}
	return p
}

// listEnd returns the end of a TLV list read by its written lengths.
func listEnd(p []byte) int {
	i := 0
	for p[i] != 255 {
		i += 2 + int(p[i+1])
	}
	return i + 2
}

// names reads the VN names of a TLV list by its written lengths.
func names(p []byte) (src, dst *string) {
	for i := 0; i+2 <= len(p) && p[i] != 255; i += 2 + int(p[i+1]) {
		v := string(p[i+2 : i+2+int(p[i+1])])
		switch p[i] {
		case 3:
			src = &v
		case 4:
			dst = &v
		}
	}
	return src, dst
}

func sameVN(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func TestFieldNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range cases(t, Options{Seed: 31, Mix: Mix{KindNames: 1}}, 600) {
		p := payloadOf(t, c)
		n := listEnd(p)
		src, dst := names(p[:n])
		if !sameVN(src, c.SrcVN) || !sameVN(dst, c.DstVN) || !bytes.Equal(p[n:], c.Frame) {
			t.Fatalf("case %d: TLVs name %q %q, case %q %q", c.Index, str(src), str(dst), str(c.SrcVN), str(c.DstVN))
		}
		for _, vn := range []*string{src, dst} {
			if vn != nil {
				seen[*vn] = true
			}
		}
	}
	for _, n := range fieldVNs {
		if !seen[n] {
			t.Errorf("name %q never sent", n)
		}
	}
}

func TestFieldOddTLVs(t *testing.T) {
	seen := map[string]int{}
	for _, c := range cases(t, Options{Seed: 32, Mix: Mix{KindOddTLV: 1}}, 400) {
		p := payloadOf(t, c)
		var host netip.Addr
		var flags uint32
		var bits uint8
		odd := 0
		i := 0
		for ; p[i] != 255; i += 2 + int(p[i+1]) {
			v := p[i+2 : i+2+int(p[i+1])]
			switch {
			case p[i] == 1 && len(v) == 4:
				host = netip.AddrFrom4([4]byte(v))
			case p[i] == 1 && len(v) == 16:
				host = netip.AddrFrom16([16]byte(v))
				seen["host16"]++
			case p[i] == 2 && len(v) == 4:
				flags, bits = binary.BigEndian.Uint32(v), 32
			case p[i] == 2 && len(v) == 2:
				flags, bits = uint32(binary.BigEndian.Uint16(v)), 16
				seen["flags16"]++
			case p[i] == 1 || p[i] == 2:
				odd++
				seen["odd"]++
			}
		}
		src, dst := names(p[:i])
		dir := mirror.DirUnknown
		switch {
		case bits == 32 && flags&mirror.FlagIngress != 0:
			dir = mirror.DirIngress
		case bits == 32:
			dir = mirror.DirEgress
		case src != nil && dst == nil:
			dir = mirror.DirIngress
		case dst != nil && src == nil:
			dir = mirror.DirEgress
		}
		if host != c.Host || flags != c.Flags || bits != c.FlagBits || odd != c.OddTLVs || dir != c.Direction ||
			!sameVN(src, c.SrcVN) || !sameVN(dst, c.DstVN) || !bytes.Equal(p[i+2:], c.Frame) {
			t.Fatalf("case %d: TLVs %x, case %+v", c.Index, p[:i+2], c.Expect.Meta())
		}
	}
	for _, k := range []string{"host16", "flags16", "odd"} {
		if seen[k] == 0 {
			t.Errorf("no %s TLV sent", k)
		}
	}
}

// Wrapped names: the brute-force count of consistent readings must agree
// with the case: one, with the full names, or none or several.
func TestFieldWrappedNames(t *testing.T) {
	var none, several int
	for _, c := range cases(t, Options{Seed: 33, Mix: Mix{KindWrapped: 1, KindBadWrapped: 1}}, 600) {
		_, p := udpPayload(t, c.Packets[0])
		rs, ok := readings(p)
		if !ok {
			t.Fatalf("case %d: too many readings to count", c.Index)
		}
		if c.Kind == KindBadWrapped {
			if len(rs) == 1 || c.Reason != "bad-tlv" {
				t.Fatalf("case %d: %d readings, reason %q", c.Index, len(rs), c.Reason)
			}
			if len(rs) == 0 {
				none++
			} else {
				several++
			}
			continue
		}
		if len(rs) != 1 || !c.NameRecovered || !bytes.Equal(p[rs[0].end:], c.Frame) {
			t.Fatalf("case %d: readings %v, recovered %v", c.Index, rs, c.NameRecovered)
		}
		// The names of the one reading are the case's, and one is longer
		// than its length byte says.
		var got [2]*string
		long := false
		for i, n := 0, 0; p[i] != 255; n++ {
			l := int(p[i+1])
			if p[i] == 3 || p[i] == 4 {
				l += 256 * rs[0].ks[0]
				rs[0].ks = rs[0].ks[1:]
				v := string(p[i+2 : i+2+l])
				got[p[i]-3] = &v
				long = long || l > 255
			}
			i += 2 + l
		}
		if !long || !sameVN(got[0], c.SrcVN) || !sameVN(got[1], c.DstVN) {
			t.Fatalf("case %d: reading names %q %q, case %q %q", c.Index, str(got[0]), str(got[1]), str(c.SrcVN), str(c.DstVN))
		}
	}
	if none == 0 || several == 0 {
		t.Errorf("unrecoverable names: %d with no reading, %d with several", none, several)
	}
}

// The rule restated in the generator reads the real captures as their
// README says: f11's names whole, f01, f12 and f16 as written.
func TestRuleOnFieldCases(t *testing.T) {
	for _, tc := range []struct {
		file      string
		recovered bool
	}{
		{"f11_wrapped_name_lengths.pcap", true},
		{"f01_tlv_lengths_16_and_2.pcap", false},
		{"f12_empty_vn_deny.pcap", false},
		{"f16_utf8_space_names.pcap", false},
	} {
		r, err := pcapgoReader(t, testenv.FieldCase(t, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			data, _, err := r.ReadPacketData()
			if err != nil {
				break
			}
			n++
			_, p := udpPayload(t, Wire{LinkType: layers.LinkTypeEthernet, Data: data})
			v := readTLVs(p)
			if rs, _ := readings(p); !v.ok || !v.sure || v.recovered != tc.recovered || len(rs) != 1 || rs[0].end != v.end {
				t.Errorf("%s #%d: %+v, brute force %v", tc.file, n, v, rs)
			}
		}
		if n == 0 {
			t.Errorf("%s: no packets", tc.file)
		}
	}
}

func TestFieldIDReuse(t *testing.T) {
	fragmentedB := 0
	for _, c := range cases(t, Options{Seed: 34, Mix: Mix{KindIDReuse: 1}}, 200) {
		var a, fill, b []Wire
		for i, s := range c.Steps {
			switch {
			case s.Returned:
				a = append(a, c.Packets[i])
			case s.Result > 0:
				fill = append(fill, c.Packets[i])
			default:
				b = append(b, c.Packets[i])
			}
		}
		if len(a) == 0 || len(fill) <= 4 || len(fill) != len(c.Others) || len(b) == 0 || len(a)+len(fill)+len(b) != len(c.Packets) {
			t.Fatalf("case %d: %d of A, %d others, %d of B", c.Index, len(a), len(fill), len(b))
		}
		for i, s := range c.Steps {
			if s.Returned != (i < len(a)) || (s.Result > 0) != (i >= len(a) && i < len(a)+len(fill)) {
				t.Fatalf("case %d: A, the others and B out of order", c.Index)
			}
		}
		da, db := assemble(t, a), assemble(t, b)
		if da.whole || da.complete {
			t.Fatalf("case %d: A is not a datagram missing its first fragment", c.Index)
		}
		for _, w := range a {
			if in := parseIP(t, w.Data, l3(t, w.LinkType, w.Data)); in.fragOff == 0 {
				t.Fatalf("case %d: A's first fragment captured", c.Index)
			}
		}
		for _, w := range fill {
			d := assemble(t, []Wire{w})
			if !d.whole || !bytes.Equal(d.src, da.src) {
				t.Fatalf("case %d: a datagram between A and B is fragmented or from elsewhere", c.Index)
			}
		}
		if !bytes.Equal(db.src, da.src) || !bytes.Equal(db.dst, da.dst) || !db.complete ||
			(db.id != da.id && (!db.whole || len(da.src) == 4)) {
			t.Fatalf("case %d: B %x->%x id %#x, A %x->%x id %#x", c.Index, db.src, db.dst, db.id, da.src, da.dst, da.id)
		}
		frags := 0
		if len(b) > 1 {
			frags = len(b)
		}
		if _, _, p := db.udp(t); !bytes.HasSuffix(p, c.Frame) || !c.Decodes() || c.Fragments != frags {
			t.Fatalf("case %d: B's frame or result wrong: %+v", c.Index, c.Expect.Meta())
		}
		if len(b) > 1 {
			fragmentedB++
		}
	}
	if fragmentedB == 0 {
		t.Error("B never fragmented")
	}
}

func TestFieldDupFragment(t *testing.T) {
	var before, after int
	for _, c := range cases(t, Options{Seed: 35, Mix: Mix{KindDupFragment: 1}}, 200) {
		dup := -1
		for i, s := range c.Steps {
			if s.Status == mirror.Duplicate {
				if dup >= 0 {
					t.Fatalf("case %d: two duplicates", c.Index)
				}
				dup = i
			}
		}
		orig := -1
		for i := range dup {
			if bytes.Equal(c.Packets[i].Data, c.Packets[dup].Data) {
				orig = i
			}
		}
		if dup < 0 || orig < 0 {
			t.Fatalf("case %d: no repeated fragment", c.Index)
		}
		var main []Wire
		done := -1
		for i, s := range c.Steps {
			if i != dup && s.Result == 0 && s.Status != mirror.Duplicate {
				main = append(main, c.Packets[i])
			}
			if s.Status == mirror.Decoded && s.Result == 0 {
				done = i
			}
		}
		d := assemble(t, main)
		if _, _, p := d.udp(t); d.whole || !d.complete || !bytes.HasSuffix(p, c.Frame) || c.Fragments != len(main) {
			t.Fatalf("case %d: the datagram without its repeat is not whole", c.Index)
		}
		if dup < done {
			before++
		} else {
			after++
			if others := dup - done - 1; others >= 4 {
				t.Fatalf("case %d: %d datagrams between completion and repeat", c.Index, others)
			}
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("repeats: %d before completion, %d after", before, after)
	}
}

func TestFieldFragSnap(t *testing.T) {
	var head, tail, v6 int
	for _, c := range cases(t, Options{Seed: 36, Mix: Mix{KindFragSnap: 1}}, 300) {
		snap := 0
		for _, w := range c.Packets {
			if len(w.Data) < w.WireLen {
				if snap != 0 && snap != len(w.Data) {
					t.Fatalf("case %d: records cut at %d and %d", c.Index, snap, len(w.Data))
				}
				snap = len(w.Data)
			}
		}
		for _, w := range c.Packets {
			if snap == 0 || len(w.Data) != min(w.WireLen, snap) {
				t.Fatalf("case %d: record of %d cut to %d, snap length %d", c.Index, w.WireLen, len(w.Data), snap)
			}
		}
		h, in := headFragment(t, c)
		if in.v6 {
			v6++
		}
		d := assemble(t, c.Packets)
		_, ulen, p := d.udp(t)
		n, err := walkTLVs(p)
		if err != nil || !bytes.Equal(p[n:], c.Frame) || c.FrameLen != ulen-8-n || !c.Truncated || d.complete {
			t.Fatalf("case %d: captured frame %d bytes of %d, case %d of %d truncated %v",
				c.Index, len(p)-n, ulen-8-n, len(c.Frame), c.FrameLen, c.Truncated)
		}
		if w := c.Packets[h]; len(w.Data) < w.WireLen {
			head++
			if err := checkCutHead(t, c); err != nil {
				t.Fatalf("case %d: %v", c.Index, err)
			}
			continue
		}
		tail++
		for i, s := range c.Steps {
			if s.Status != mirror.Held && i < len(c.Steps)-1 || i == len(c.Steps)-1 && s.Status != mirror.Decoded {
				t.Fatalf("case %d: packet %d %s", c.Index, i, StatusName(s.Status))
			}
		}
	}
	if head == 0 || tail == 0 || v6 == 0 || v6 == head+tail {
		t.Errorf("cut %d first fragments, %d later ones; %d IPv6", head, tail, v6)
	}
}

// tunnel takes the mirror datagram out of a fabric tunnel, by the wire
// format: the overlay, the IP packet it holds, and whether an Ethernet
// header came between MPLS labels and the packet.
func tunnel(t *testing.T, w Wire) (o mirror.Overlay, ip []byte, l2 bool) {
	t.Helper()
	d := assemble(t, []Wire{w})
	in := parseIP(t, w.Data, l3(t, w.LinkType, w.Data))
	p := d.payload
	mplsLabels := func() {
		for p[2]&1 == 0 {
			p = p[4:]
		}
		p = p[4:]
		if p[0]>>4 != 4 && p[0]>>4 != 6 {
			p, l2 = p[14:], true // an Ethernet header
		}
	}
	switch in.proto {
	case 47:
		if !bytes.Equal(p[:4], []byte{0, 0, 0x88, 0x47}) {
			t.Fatalf("GRE header %x", p[:4])
		}
		o, p = mirror.OverlayMPLSoGRE, p[4:]
		mplsLabels()
	case 17:
		port, _, u := d.udp(t)
		p = u
		switch port {
		case 6635, 51234:
			o = mirror.OverlayMPLSoUDP
			mplsLabels()
		case 4789:
			if p[0] != 0x08 {
				t.Fatalf("VXLAN flags %#x", p[0])
			}
			o, p = mirror.OverlayVXLAN, p[8+14:]
		default:
			t.Fatalf("tunnel to UDP %d", port)
		}
	default:
		t.Fatalf("tunnel protocol %d", in.proto)
	}
	return o, p, l2
}

func TestFieldOverlay(t *testing.T) {
	seen := map[string]int{}
	for _, c := range cases(t, Options{Seed: 37, Mix: Mix{KindOverlay: 1}, MaxFrame: 1000}, 300) {
		o, ip, l2 := tunnel(t, c.Packets[0])
		if l2 {
			seen["l2"]++
		}
		port, p := udpPayload(t, Wire{LinkType: layers.LinkTypeRaw, Data: ip})
		n, err := walkTLVs(p)
		if o != c.Overlay || port != 8099 || err != nil || !bytes.Equal(p[n:], c.Frame) || c.Mode != mirror.ModeJuniper || c.HasVNI {
			t.Fatalf("case %d: %s to %d (%v), case %s", c.Index, o, port, err, c.Overlay)
		}
		seen[o.String()]++
		if d := assemble(t, c.Packets); !d.whole {
			continue
		}
		if in := parseIP(t, c.Packets[0].Data, l3(t, c.Packets[0].LinkType, c.Packets[0].Data)); in.proto == 17 {
			if port, _, _ := assemble(t, c.Packets).udp(t); port == 51234 {
				seen["51234"]++
			}
		}
	}
	for _, k := range []string{"mplsoudp", "mplsogre", "vxlan", "51234", "l2"} {
		if seen[k] == 0 {
			t.Errorf("no %s tunnel", k)
		}
	}
}

func TestFieldOuterTagsAndDPDK(t *testing.T) {
	for _, c := range cases(t, Options{Seed: 38, Mix: Mix{KindOuterTags: 1, KindDPDKTagged: 1}}, 300) {
		w := c.Packets[len(c.Packets)-1]
		if c.Kind == KindOuterTags {
			tags := (l3(t, w.LinkType, w.Data) - 14) / 4
			tpid := binary.BigEndian.Uint16(w.Data[12:])
			if w.LinkType != layers.LinkTypeEthernet || tags < 3 || tags > 4 || !isTag(tpid) {
				t.Fatalf("case %d: %d outer tags, the first %#x", c.Index, tags, tpid)
			}
			continue
		}
		if len(c.Packets) > 1 {
			continue
		}
		_, p := udpPayload(t, w)
		f := p[len(p)-len(c.Frame):]
		if !bytes.Equal(f[12:14], []byte{0x81, 0}) || !bytes.Equal(f[16:18], []byte{8, 0}) || f[18]>>4 != 6 ||
			!bytes.Equal(c.Frame[16:18], []byte{0x86, 0xdd}) || !bytes.Equal(f[18:], c.Frame[18:]) {
			t.Fatalf("case %d: tagged frame %x, expected %x", c.Index, f[:20], c.Frame[:20])
		}
	}
}

func TestFieldOtherPort(t *testing.T) {
	for _, c := range cases(t, Options{Seed: 39, Mix: Mix{KindOtherPort: 1}}, 200) {
		port, p := udpPayload(t, c.Packets[0])
		n, err := walkTLVs(p)
		switch {
		case port != c.Port || slices.Contains([]uint16{0, 8099, 4789, 6635, 51234}, port):
			t.Fatalf("case %d: sent to %d, case port %d", c.Index, port, c.Port)
		case err != nil || !bytes.Equal(p[n:], c.Frame) || !plausibleRef(p[n:]):
			t.Fatalf("case %d: not a mirror datagram with a plausible frame: %v", c.Index, err)
		}
	}
}

func pcapgoReader(t *testing.T, name string) (*pcapgo.Reader, error) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { f.Close() })
	return pcapgo.NewReader(f)
}
