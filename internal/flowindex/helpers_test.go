package flowindex

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// l4 is a transport header for frame: "tcp", "udp", "sctp", "icmp" (v4 or
// v6 by the addresses), or a bare IP protocol number with no header.
type l4 struct {
	kind         string
	sport, dport uint16 // ports, or ICMP type and code
	proto        uint8  // kind "ip"
	flags        uint8  // TCP: SYN=2, ACK=16...
}

// frame builds an Ethernet frame from src to dst carrying h and a payload.
func frame(t testing.TB, src, dst string, h l4) []byte {
	t.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	var ip gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	proto := layers.IPProtocol(h.proto)
	switch h.kind {
	case "tcp":
		proto = layers.IPProtocolTCP
	case "udp":
		proto = layers.IPProtocolUDP
	case "sctp":
		proto = layers.IPProtocolSCTP
	case "icmp":
		proto = layers.IPProtocolICMPv4
		if s.Is6() {
			proto = layers.IPProtocolICMPv6
		}
	}
	if s.Is4() {
		v4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: s.AsSlice(), DstIP: d.AsSlice()}
		ip, nl = v4, v4
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: s.AsSlice(), DstIP: d.AsSlice()}
		ip, nl = v6, v6
	}
	payload := gopacket.Payload("payload of the flow")
	switch h.kind {
	case "tcp":
		tcp := &layers.TCP{SrcPort: layers.TCPPort(h.sport), DstPort: layers.TCPPort(h.dport), Seq: 1, Window: 512,
			SYN: h.flags&2 != 0, ACK: h.flags&16 != 0, FIN: h.flags&1 != 0, RST: h.flags&4 != 0, PSH: h.flags&8 != 0}
		tcp.SetNetworkLayerForChecksum(nl)
		return testenv.Serialize(t, eth, ip, tcp, payload)
	case "udp":
		udp := &layers.UDP{SrcPort: layers.UDPPort(h.sport), DstPort: layers.UDPPort(h.dport)}
		udp.SetNetworkLayerForChecksum(nl)
		return testenv.Serialize(t, eth, ip, udp, payload)
	case "sctp":
		// A common header and one DATA chunk, written by hand: gopacket
		// does not serialize SCTP.
		b := make([]byte, 12, 64)
		binary.BigEndian.PutUint16(b, h.sport)
		binary.BigEndian.PutUint16(b[2:], h.dport)
		binary.BigEndian.PutUint32(b[4:], 0x1234)
		chunk := []byte{0, 3, 0, 20, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 'd', 'a', 't', 'a'}
		b = append(b, chunk...)
		return testenv.Serialize(t, eth, ip, gopacket.Payload(b))
	case "icmp":
		if s.Is4() {
			icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(uint8(h.sport), uint8(h.dport)), Id: 7, Seq: 1}
			return testenv.Serialize(t, eth, ip, icmp, payload)
		}
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(uint8(h.sport), uint8(h.dport))}
		icmp.SetNetworkLayerForChecksum(nl)
		// An echo's identifier and sequence, or a neighbor message's
		// flags and target: 20 bytes that make neither malformed.
		body := append([]byte{0, 7, 0, 1}, s.AsSlice()...)
		return testenv.Serialize(t, eth, ip, icmp, gopacket.Payload(body))
	}
	return testenv.Serialize(t, eth, ip, payload)
}

// arp is a frame without IP.
func arp(t testing.TB) []byte {
	return testenv.Serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: 1, SourceHwAddress: macA, SourceProtAddress: []byte{10, 0, 0, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// packet is a decoded Juniper-mode packet with frame f and metadata.
func packet(at time.Duration, f []byte, srcVN, dstVN string, dir mirror.Direction, host string) *mirror.Packet {
	p := &mirror.Packet{Timestamp: t0.Add(at), LinkType: layers.LinkTypeEthernet, Mode: mirror.ModeJuniper,
		Frame: f, FrameLen: len(f), Data: f, WireLen: len(f)}
	p.Meta.SrcVN, p.Meta.DstVN, p.Meta.Direction = []byte(srcVN), []byte(dstVN), dir
	if host != "" {
		p.Meta.Host = netip.MustParseAddr(host)
	}
	return p
}

// capture is a pcapng file as the capture files are encoded, and where
// each packet's record (its EPB) lies in it.
type capture struct {
	file []byte
	offs []int64
	lens []int
}

// encode writes ps into a pcapng file with pcapfile's encoder.
func encode(t testing.TB, ps []*mirror.Packet) capture {
	t.Helper()
	e, err := pcapfile.NewEncoder(pcapfile.Options{Application: "vrsniff"})
	if err != nil {
		t.Fatal(err)
	}
	c := capture{file: e.AppendHeader(nil)}
	for _, p := range ps {
		start := len(c.file)
		if c.file, err = e.Append(c.file, p); err != nil {
			t.Fatal(err)
		}
		// Append may describe an interface first: the record is the EPB.
		off, n := epbIn(t, c.file, start)
		c.offs, c.lens = append(c.offs, int64(off)), append(c.lens, n)
	}
	return c
}

// epbIn finds the enhanced packet block among the blocks from start on.
func epbIn(t testing.TB, b []byte, start int) (int, int) {
	t.Helper()
	for off := start; off+12 <= len(b); {
		typ, n := binary.LittleEndian.Uint32(b[off:]), int(binary.LittleEndian.Uint32(b[off+4:]))
		if n < 12 || off+n > len(b) {
			t.Fatalf("bad block at %d", off)
		}
		if typ == 6 {
			return off, n
		}
		off += n
	}
	t.Fatalf("no packet block after %d", start)
	return 0, 0
}

// epbFrame is the packet data of the EPB at b[off:off+n].
func epbFrame(t testing.TB, b []byte, off int64, n int32) []byte {
	t.Helper()
	blk := b[off : off+int64(n)]
	if binary.LittleEndian.Uint32(blk) != 6 || int(binary.LittleEndian.Uint32(blk[4:])) != int(n) ||
		int(binary.LittleEndian.Uint32(blk[n-4:])) != int(n) {
		t.Fatalf("no whole packet block at %d+%d", off, n)
	}
	capLen := binary.LittleEndian.Uint32(blk[20:])
	return blk[28 : 28+capLen]
}

// build indexes the packets of c and returns the Parquet index.
func build(t testing.TB, o Options, ps []*mirror.Packet, c capture) []byte {
	t.Helper()
	b := NewBuilder(o)
	for i, p := range ps {
		b.Add(p, c.offs[i], c.lens[i])
	}
	var buf bytes.Buffer
	n, err := b.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r     *bytes.Reader
	n     int64
	reads int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	c.reads++
	return n, err
}
