package mirror

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

// The outer headers in these tests are built with gopacket's serializers,
// not with the code under test.

func innerFrame(t testing.TB, size int) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 168, 0, 1}, DstIP: net.IP{192, 168, 0, 2}}
	udp := &layers.UDP{SrcPort: 1234, DstPort: 53}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	pl := bytes.Repeat([]byte{0xab}, max(0, size-42))
	return testenv.Serialize(t, eth, ip, udp, gopacket.Payload(pl))
}

func tlv(t byte, v []byte) []byte { return append([]byte{t, byte(len(v))}, v...) }

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func aclTLVs(src, dst string, flags uint32) []byte {
	var b []byte
	b = append(b, tlv(1, []byte{10, 0, 0, 7})...)
	b = append(b, tlv(2, u32(flags))...)
	b = append(b, tlv(3, []byte(src))...)
	b = append(b, tlv(4, []byte(dst))...)
	return append(b, 0xff, 0)
}

func outerUDP4(t testing.TB, dport uint16, payload []byte, vlans ...uint16) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0x5e, 0, 1, 0}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, EthernetType: layers.EthernetTypeIPv4}
	ls = append(ls, eth)
	if len(vlans) > 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		for i, v := range vlans {
			next := layers.EthernetTypeIPv4
			if i < len(vlans)-1 {
				next = layers.EthernetTypeDot1Q
			}
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: v, Type: next})
		}
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 7}, DstIP: net.IP{10, 0, 0, 9}, Id: 77}
	udp := &layers.UDP{SrcPort: 49152 + 17, DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	ls = append(ls, ip, udp, gopacket.Payload(payload))
	return testenv.Serialize(t, ls...)
}

func outerUDP6(t testing.TB, dport uint16, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0x5e, 0, 1, 0}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("fd00::7"), DstIP: net.ParseIP("fd00::9")}
	udp := &layers.UDP{SrcPort: 50000, DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	return testenv.Serialize(t, eth, ip, udp, gopacket.Payload(payload))
}

func decodeOne(t *testing.T, d *Decoder, lt layers.LinkType, data []byte) (*Packet, Status) {
	t.Helper()
	p := &Packet{Timestamp: time.Unix(1700000000, 0), LinkType: lt, Data: data, WireLen: len(data)}
	return p, d.Decode(p)
}

func TestDecodeACL(t *testing.T) {
	inner := innerFrame(t, 100)
	src, dst := "default-domain:admin:vn-left", "default-domain:admin:vn-right"
	payload := append(aclTLVs(src, dst, FlagPass|FlagMirror|FlagIngress), inner...)
	for name, pkt := range map[string][]byte{
		"plain":  outerUDP4(t, 8099, payload),
		"vlan":   outerUDP4(t, 8099, payload, 100),
		"qinq":   outerUDP4(t, 8099, payload, 100, 200),
		"ipv6":   outerUDP6(t, 8099, payload),
		"padded": outerUDP4(t, 8099, payload),
	} {
		t.Run(name, func(t *testing.T) {
			p, st := decodeOne(t, NewDecoder(Config{}), layers.LinkTypeEthernet, pkt)
			if st != Decoded {
				t.Fatalf("status %v, err %v at %d", st, p.Err, p.ErrOffset)
			}
			if p.Mode != ModeJuniper || !bytes.Equal(p.Frame, inner) || p.FrameLen != len(inner) || p.Truncated {
				t.Fatalf("mode %v frame %d bytes (want %d), truncated %v", p.Mode, len(p.Frame), len(inner), p.Truncated)
			}
			m := p.Meta
			if string(m.SrcVN) != src || string(m.DstVN) != dst || m.Host != netip.AddrFrom4([4]byte{10, 0, 0, 7}) || m.Flags != FlagPass|FlagMirror|FlagIngress || m.Direction != DirIngress {
				t.Fatalf("meta %+v", m)
			}
			got := string(AppendComment(nil, p))
			want := "src_vn=" + src + " dst_vn=" + dst + " dir=ingress host=10.0.0.7 action=pass,mirror"
			if got != want {
				t.Fatalf("comment %q, want %q", got, want)
			}
		})
	}
}

// The seed's case: names whose lengths sum to 54 put the frame at 114.
func TestDecodeFrameOffsetFollowsNames(t *testing.T) {
	inner := innerFrame(t, 80)
	for _, n := range [][2]int{{27, 27}, {10, 44}, {5, 70}, {0, 1}, {255, 255}} {
		src, dst := string(bytes.Repeat([]byte("s"), n[0])), string(bytes.Repeat([]byte("d"), n[1]))
		pkt := outerUDP4(t, 8099, append(aclTLVs(src, dst, FlagPass|FlagMirror), inner...))
		p, st := decodeOne(t, NewDecoder(Config{}), layers.LinkTypeEthernet, pkt)
		if st != Decoded || !bytes.Equal(p.Frame, inner) {
			t.Fatalf("names %v: status %v err %v", n, st, p.Err)
		}
		off := len(pkt) - len(p.Frame)
		if want := 42 + 18 + n[0] + n[1]; off != want {
			t.Fatalf("names %v: frame at %d, want %d", n, off, want)
		}
		if p.Meta.Direction != DirEgress {
			t.Fatalf("direction %v", p.Meta.Direction)
		}
	}
}

func TestDecodePortMirrorAndUnknownTLV(t *testing.T) {
	inner := innerFrame(t, 64)
	cases := []struct {
		name string
		tlvs []byte
		dir  Direction
		src  string
		dst  string
	}{
		{"rx", append(tlv(3, []byte("d:p:vn")), 0xff, 0), DirIngress, "d:p:vn", ""},
		{"tx", append(tlv(4, []byte("d:p:vn")), 0xff, 0), DirEgress, "", "d:p:vn"},
		{"none", []byte{0xff, 0}, DirUnknown, "", ""},
		{"unknown-first", append(append(tlv(7, []byte{1, 2, 3}), tlv(3, []byte("a:b:c"))...), 0xff, 0), DirIngress, "a:b:c", ""},
		{"unknown-mid", append(append(tlv(3, []byte("a:b:c")), tlv(200, nil)...), 0xff, 0), DirIngress, "a:b:c", ""},
	}
	for _, c := range cases {
		pkt := outerUDP4(t, 8099, append(append([]byte(nil), c.tlvs...), inner...))
		p, st := decodeOne(t, NewDecoder(Config{}), layers.LinkTypeEthernet, pkt)
		if st != Decoded || !bytes.Equal(p.Frame, inner) || p.Meta.Direction != c.dir ||
			string(p.Meta.SrcVN) != c.src || string(p.Meta.DstVN) != c.dst || (c.src == "") != (p.Meta.SrcVN == nil) {
			t.Errorf("%s: status %v err %v meta %+v", c.name, st, p.Err, p.Meta)
		}
		if !bytes.Equal(p.Meta.TLVs, c.tlvs) {
			t.Errorf("%s: TLVs % x, want % x", c.name, p.Meta.TLVs, c.tlvs)
		}
	}
}

func legacyHeader(sec, usec, incl, orig uint32) []byte {
	var h []byte
	for _, v := range []uint32{sec, usec, incl, orig} {
		h = binary.BigEndian.AppendUint32(h, v)
	}
	return h
}

func TestDecodeLegacy(t *testing.T) {
	inner := innerFrame(t, 90)
	tl := aclTLVs("d:p:a", "d:p:b", FlagPass|FlagMirror)
	for variant, incl := range map[string]int{"pcap-flag": len(tl) + len(inner), "master-2016": len(inner)} {
		payload := append(append(legacyHeader(1475000000, 123456, uint32(incl), uint32(incl)), tl...), inner...)
		p, st := decodeOne(t, NewDecoder(Config{}), layers.LinkTypeEthernet, outerUDP4(t, 8099, payload))
		if st != Decoded || !p.Meta.Legacy || !bytes.Equal(p.Frame, inner) || string(p.Meta.SrcVN) != "d:p:a" {
			t.Fatalf("%s: status %v err %v meta %+v", variant, st, p.Err, p.Meta)
		}
		if want := time.Unix(1475000000, 123456000); !p.Meta.RecordTime.Equal(want) {
			t.Fatalf("%s: record time %v", variant, p.Meta.RecordTime)
		}
	}
}

func TestDecodeVXLANAndVLAN(t *testing.T) {
	inner := innerFrame(t, 70)
	vx := append([]byte{0x08, 0, 0, 0, 0, 0x13, 0x88, 0}, inner...)
	p, st := decodeOne(t, NewDecoder(Config{}), layers.LinkTypeEthernet, outerUDP4(t, 4789, vx))
	if st != Decoded || p.Mode != ModeVXLAN || p.Meta.VNI != 5000 || !bytes.Equal(p.Frame, inner) {
		t.Fatalf("vxlan: %v %v %+v", st, p.Err, p.Meta)
	}
	tagged := append(append(append([]byte(nil), inner[:12]...), 0x81, 0, 0x03, 0xe7), inner[12:]...)
	p, st = decodeOne(t, NewDecoder(Config{Traffic: Traffic{MirrorVLAN: 999}}), layers.LinkTypeEthernet, tagged)
	if st != Decoded || p.Mode != ModeVLAN || p.Meta.VLAN != 999 || !bytes.Equal(p.Frame, inner) {
		t.Fatalf("vlan: %v %v %+v % x", st, p.Err, p.Meta, p.Frame[:16])
	}
}

func TestDecodeLinkTypes(t *testing.T) {
	inner := innerFrame(t, 60)
	pkt := outerUDP4(t, 8099, append(aclTLVs("a:b:c", "a:b:d", FlagPass), inner...))
	ipPart := pkt[14:]
	sll := append(append(make([]byte, 14), 0x08, 0x00), ipPart...)
	sll2 := append(append([]byte{0x08, 0x00}, make([]byte, 18)...), ipPart...)
	for lt, data := range map[layers.LinkType][]byte{linkTypeLinuxSLL: sll, linkTypeSLL2: sll2, linkTypeRaw: ipPart, LinkTypeJuniperVN: pkt[42:]} {
		p, st := decodeOne(t, NewDecoder(Config{}), lt, data)
		if st != Decoded || !bytes.Equal(p.Frame, inner) {
			t.Errorf("link type %d: %v %v", lt, st, p.Err)
		}
	}
	if p, st := decodeOne(t, NewDecoder(Config{}), 105, pkt); st != Failed || p.Err != ErrLinkType {
		t.Errorf("link type 105: %v %v", st, p.Err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	inner := innerFrame(t, 60)
	good := outerUDP4(t, 8099, append(aclTLVs("a:b:c", "a:b:d", FlagPass), inner...))
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string]struct {
		data []byte
		want Reason
	}{
		"short eth":      {good[:10], ErrTruncated},
		"short ip":       {good[:30], ErrTruncated},
		"ihl":            {mut(func(b []byte) []byte { b[14] = 0x44; return b }), ErrIP},
		"udp len":        {mut(func(b []byte) []byte { b[38], b[39] = 0, 4; return b }), ErrUDP},
		"udp len big":    {mut(func(b []byte) []byte { b[38], b[39] = 0xff, 0xff; return b }), ErrUDP},
		"tlv cut":        {good[:44], ErrTruncated},
		"tlv overrun":    {outerUDP4(t, 8099, append(tlv(3, []byte("abc")), 5, 200, 1)), ErrTLV},
		"no end":         {outerUDP4(t, 8099, tlv(3, []byte("abc"))), ErrTLV},
		"end len":        {outerUDP4(t, 8099, append([]byte{0xff, 1, 0}, inner...)), ErrTLV},
		"no frame":       {outerUDP4(t, 8099, []byte{0xff, 0, 1, 2, 3}), ErrInnerFrame},
		"empty payload":  {outerUDP4(t, 8099, nil), ErrTLV},
		"vxlan no I":     {outerUDP4(t, 4789, append(make([]byte, 8), inner...)), ErrVXLAN},
		"vxlan short":    {outerUDP4(t, 4789, []byte{8, 0, 0}), ErrVXLAN},
		"not mirror":     {outerUDP4(t, 53, inner), ErrNotMirror},
		"not mirror arp": {mut(func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b }), ErrNotMirror},
	}
	for name, c := range cases {
		p, st := decodeOne(t, NewDecoder(Config{}), layers.LinkTypeEthernet, c.data)
		if st != Failed || p.Err != c.want {
			t.Errorf("%s: status %v err %v, want %v", name, st, p.Err, c.want)
		}
	}
	// Pass-through keeps non-mirror traffic whole.
	p, st := decodeOne(t, NewDecoder(Config{PassThrough: true}), layers.LinkTypeEthernet, cases["not mirror"].data)
	if st != Decoded || p.Mode != ModeOther || !bytes.Equal(p.Frame, cases["not mirror"].data) {
		t.Errorf("pass-through: %v %v", st, p.Mode)
	}
}

func TestDecodeSnapLen(t *testing.T) {
	inner := innerFrame(t, 400)
	pkt := outerUDP4(t, 8099, append(aclTLVs("a:b:c", "a:b:d", FlagPass), inner...))
	cut := pkt[:200]
	p := &Packet{LinkType: layers.LinkTypeEthernet, Data: cut, WireLen: len(pkt)}
	if st := NewDecoder(Config{}).Decode(p); st != Decoded || !p.Truncated || p.FrameLen != len(inner) || !bytes.Equal(p.Frame, inner[:len(p.Frame)]) {
		t.Fatalf("%v %v truncated %v framelen %d", st, p.Err, p.Truncated, p.FrameLen)
	}
	if !bytes.Contains(AppendComment(nil, p), []byte("truncated=400")) {
		t.Fatalf("comment %q", AppendComment(nil, p))
	}
}

func TestDecodeIPv6Mislabelled(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolNoNextHeader, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
	right := testenv.Serialize(t, eth, ip)
	wrong := append([]byte(nil), right...)
	wrong[12], wrong[13] = 0x08, 0x00
	p, st := decodeOne(t, NewDecoder(Config{}), layers.LinkTypeEthernet, outerUDP4(t, 8099, append([]byte{0xff, 0}, wrong...)))
	if st != Decoded || !bytes.Equal(p.Frame, right) {
		t.Fatalf("%v %v % x", st, p.Err, p.Frame[:16])
	}
}

// fragment4 splits an outer IPv4 frame into fragments of at most mtu bytes
// of IP payload, by hand.
func fragment4(pkt []byte, mtu int) [][]byte {
	hdr, ip := pkt[:14+20], pkt[14+20:]
	var out [][]byte
	for off := 0; off < len(ip); off += mtu {
		end := min(off+mtu, len(ip))
		f := append(append([]byte(nil), hdr...), ip[off:end]...)
		binary.BigEndian.PutUint16(f[16:], uint16(20+end-off))
		fo := uint16(off / 8)
		if end < len(ip) {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(f[20:], fo)
		out = append(out, f)
	}
	return out
}

// fragment6 splits an Ethernet/IPv6/UDP packet into fragments of mtu
// payload bytes with identification id.
func fragment6(pkt []byte, mtu int, id uint32) [][]byte {
	payload := pkt[54:] // UDP header onward
	var frags [][]byte
	for off := 0; off < len(payload); off += mtu {
		end := min(off+mtu, len(payload))
		f := append([]byte(nil), pkt[:54]...)
		f[20] = 44
		fo := uint16(off)
		if end < len(payload) {
			fo |= 1
		}
		fh := append([]byte{17, 0, byte(fo >> 8), byte(fo)}, u32(id)...)
		f = append(append(f, fh...), payload[off:end]...)
		binary.BigEndian.PutUint16(f[18:], uint16(8+end-off))
		frags = append(frags, f)
	}
	return frags
}

func TestReassembleIPv4(t *testing.T) {
	inner := innerFrame(t, 1514)
	pkt := outerUDP4(t, 8099, append(aclTLVs("d:p:big", "d:p:other", FlagPass|FlagMirror), inner...))
	frags := fragment4(pkt, 1480)
	if len(frags) != 2 {
		t.Fatalf("%d fragments", len(frags))
	}
	for _, order := range [][]int{{0, 1}, {1, 0}} {
		d := NewDecoder(Config{})
		var p *Packet
		var st Status
		for i, j := range order {
			p, st = decodeOne(t, d, layers.LinkTypeEthernet, frags[j])
			if i < len(order)-1 && st != Held {
				t.Fatalf("order %v: fragment %d: %v %v", order, j, st, p.Err)
			}
		}
		if st != Decoded || !bytes.Equal(p.Frame, inner) || p.Fragments != 2 || string(p.Meta.SrcVN) != "d:p:big" {
			t.Fatalf("order %v: %v %v fragments %d", order, st, p.Err, p.Fragments)
		}
		if !bytes.Equal(p.Data[14:], pkt[14:]) {
			t.Fatalf("order %v: reassembled datagram differs", order)
		}
	}
}

func TestReassembleIPv6(t *testing.T) {
	inner := innerFrame(t, 1400)
	pkt := outerUDP6(t, 8099, append(aclTLVs("d:p:v6", "d:p:x", FlagPass), inner...))
	frags := fragment6(pkt, 1232, 0x1234)
	d := NewDecoder(Config{})
	var p *Packet
	var st Status
	for _, j := range []int{1, 0} {
		p, st = decodeOne(t, d, layers.LinkTypeEthernet, frags[j])
	}
	if st != Decoded || !bytes.Equal(p.Frame, inner) || !bytes.Equal(p.Data, pkt) {
		t.Fatalf("%v %v", st, p.Err)
	}
}

func TestReassemblyGivesUpAndReturnsEverything(t *testing.T) {
	inner := innerFrame(t, 1514)
	pkt := outerUDP4(t, 8099, append(aclTLVs("d:p:a", "d:p:b", FlagPass), inner...))
	frags := fragment4(pkt, 1000)
	d := NewDecoder(Config{Reassembly: ReassemblyConfig{Timeout: time.Second}})
	p := &Packet{Timestamp: time.Unix(100, 0), LinkType: layers.LinkTypeEthernet, Data: frags[0], WireLen: len(frags[0])}
	if st := d.Decode(p); st != Held {
		t.Fatalf("first fragment: %v", st)
	}
	var got [][]byte
	collect := func(p *Packet) {
		if p.Err != ErrFragment {
			t.Errorf("expired with %v", p.Err)
		}
		got = append(got, append([]byte(nil), p.Data...))
	}
	d.Expire(time.Unix(100, 500e6), collect)
	if len(got) != 0 {
		t.Fatalf("expired too early")
	}
	d.Expire(time.Unix(102, 0), collect)
	if len(got) != 1 || !bytes.Equal(got[0], frags[0]) {
		t.Fatalf("got %d fragments back", len(got))
	}
	if s := d.ReassemblyStats(); s.Incomplete != 1 || s.Pending != 0 || s.PendingSize != 0 {
		t.Fatalf("stats %+v", s)
	}

	// Overlap with different bounds gives the datagram up at once.
	bad := append([]byte(nil), frags[0]...)
	binary.BigEndian.PutUint16(bad[20:], 0x2000|1) // offset 8: overlaps the first
	d.Decode(&Packet{LinkType: layers.LinkTypeEthernet, Data: frags[0], WireLen: len(frags[0])})
	d.Decode(&Packet{LinkType: layers.LinkTypeEthernet, Data: bad, WireLen: len(bad)})
	got = nil
	d.Expire(time.Unix(0, 0), collect)
	if len(got) != 2 {
		t.Fatalf("overlap: %d fragments back", len(got))
	}

	// Limits evict the oldest.
	d = NewDecoder(Config{Reassembly: ReassemblyConfig{MaxDatagrams: 2}})
	for id := range 5 {
		f := append([]byte(nil), frags[0]...)
		binary.BigEndian.PutUint16(f[18:], uint16(id))
		d.Decode(&Packet{LinkType: layers.LinkTypeEthernet, Data: f, WireLen: len(f)})
	}
	got = nil
	d.Expire(time.Time{}, collect)
	if len(got) != 3 || d.ReassemblyStats().Pending != 2 {
		t.Fatalf("evicted %d, pending %d", len(got), d.ReassemblyStats().Pending)
	}
	d.Flush(collect)
	if len(got) != 5 || d.ReassemblyStats().Pending != 0 {
		t.Fatalf("flushed %d", len(got))
	}
}
