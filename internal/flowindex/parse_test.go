package flowindex

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// TestParseFrame reads the tuple of frames the flow key must see through:
// VLAN tags, IPv4 options, IPv6 extension headers, fragments and
// transport headers cut short.
func TestParseFrame(t *testing.T) {
	s6, d6 := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	tcp := func(nl gopacket.NetworkLayer) *layers.TCP {
		l := &layers.TCP{SrcPort: 1234, DstPort: 80, SYN: true, ACK: true}
		l.SetNetworkLayerForChecksum(nl)
		return l
	}
	v4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}}
	v4opt := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2},
		Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}}
	v4later := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2},
		FragOffset: 100}
	v6hop := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6HopByHop, SrcIP: s6.AsSlice(), DstIP: d6.AsSlice()}
	hop := &layers.IPv6HopByHop{}
	hop.NextHeader = layers.IPProtocolIPv6Fragment
	hop.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
	frag := func(off uint16) gopacket.Payload {
		// A fragment header, written by hand: next header TCP.
		return gopacket.Payload([]byte{6, 0, byte(off >> 5), byte(off << 3), 0, 0, 0, 1})
	}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
	}
	tcpBytes := testenv.Serialize(t, tcp(v4))
	for _, tc := range []struct {
		name  string
		f     []byte
		want  tuple
		flags uint8
	}{
		{"vlan", testenv.Serialize(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv4}, v4, tcp(v4)),
			tuple{src: [16]byte{10, 0, 0, 1}, dst: [16]byte{10, 0, 0, 2}, family: 4, proto: 6, hasL4: true, sport: 1234, dport: 80}, 0x12},
		{"qinq", testenv.Serialize(t, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 6, Type: layers.EthernetTypeIPv4}, v4, tcp(v4)),
			tuple{src: [16]byte{10, 0, 0, 1}, dst: [16]byte{10, 0, 0, 2}, family: 4, proto: 6, hasL4: true, sport: 1234, dport: 80}, 0x12},
		{"ipv4 options", testenv.Serialize(t, eth(layers.EthernetTypeIPv4), v4opt, tcp(v4opt)),
			tuple{src: [16]byte{10, 0, 0, 1}, dst: [16]byte{10, 0, 0, 2}, family: 4, proto: 6, hasL4: true, sport: 1234, dport: 80}, 0x12},
		{"ipv4 later fragment", testenv.Serialize(t, eth(layers.EthernetTypeIPv4), v4later, gopacket.Payload(tcpBytes)),
			tuple{src: [16]byte{10, 0, 0, 1}, dst: [16]byte{10, 0, 0, 2}, family: 4, proto: 6}, 0},
		{"tcp cut short", testenv.Serialize(t, eth(layers.EthernetTypeIPv4), v4, gopacket.Payload(tcpBytes[:3])),
			tuple{src: [16]byte{10, 0, 0, 1}, dst: [16]byte{10, 0, 0, 2}, family: 4, proto: 6}, 0},
		{"ipv6 hop-by-hop, first fragment", testenv.Serialize(t, eth(layers.EthernetTypeIPv6), v6hop, hop, frag(0), gopacket.Payload(tcpBytes)),
			tuple{src: s6.As16(), dst: d6.As16(), family: 6, proto: 6, hasL4: true, sport: 1234, dport: 80}, 0x12},
		{"ipv6 later fragment", testenv.Serialize(t, eth(layers.EthernetTypeIPv6), v6hop, hop, frag(8), gopacket.Payload(tcpBytes)),
			tuple{src: s6.As16(), dst: d6.As16(), family: 6, proto: 6}, 0},
		{"arp", arp(t), tuple{src: [16]byte{10, 0, 0, 1}, dst: [16]byte{10, 0, 0, 2}, family: 4, arp: true}, 0},
		{"runt", []byte{1, 2, 3}, tuple{}, 0},
	} {
		var got tuple
		if flags := parseFrame(tc.f, &got); got != tc.want || flags != tc.flags {
			t.Errorf("%s: %+v flags %#x, want %+v flags %#x", tc.name, got, flags, tc.want, tc.flags)
		}
	}
}

// TestReset: after Reset a builder indexes the next file alone.
func TestReset(t *testing.T) {
	ps, c := knownCapture(t)
	b := NewBuilder(Options{})
	for i, p := range ps {
		b.Add(p, c.offs[i], c.lens[i])
	}
	b.Reset()
	f := frame(t, "192.0.2.1", "192.0.2.2", l4{kind: "udp", sport: 1, dport: 2})
	b.Add(packet(0, f, vnWeb, vnDB, mirror.DirEgress, ""), 100, 60)
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ix.Lookup(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].SrcAddr != "192.0.2.1" || len(rows[0].Offsets) != 1 || rows[0].Offsets[0] != 100 || rows[0].Lengths[0] != 60 {
		t.Fatalf("rows after Reset: %+v", rows)
	}
}

// TestLongNames: VN names over 255 bytes (recovered wrapped lengths) that
// differ only at their end are told apart, and found by VN: statistics
// of long strings must not rule a row group out.
func TestLongNames(t *testing.T) {
	long := func(end string) string { return string(bytes.Repeat([]byte("n"), 300)) + end }
	var ps []*mirror.Packet
	for i, end := range []string{"a", "z", "m"} {
		f := frame(t, "10.0.0."+itoa(byte(i+1)), "10.0.1.1", l4{kind: "udp", sport: 1, dport: 2})
		ps = append(ps, packet(0, f, long(end), vnDB, mirror.DirIngress, ""))
	}
	c := encode(t, ps)
	data := build(t, Options{RowGroupRows: 1}, ps, c)
	ix, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for i, end := range []string{"a", "z", "m"} {
		rows, err := ix.Lookup(Query{VNs: []string{long(end)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].SrcVN != long(end) || rows[0].Offsets[0] != c.offs[i] {
			t.Errorf("VN ...%s: %d rows", end, len(rows))
		}
	}
}
