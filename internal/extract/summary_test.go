package extract

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// summaryPacket is packet i of a mixed capture: a TCP conversation seen
// both ways, UDP over IPv6, VLAN-tagged UDP, and ARP, in turn; VN pair
// by kind.
func summaryPacket(t *testing.T, i int) *mirror.Packet {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var ls []gopacket.SerializableLayer
	switch i % 4 {
	case 0:
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		tcp := &layers.TCP{SrcPort: 1234, DstPort: 80, ACK: true, Window: 100}
		if i%8 == 4 {
			ip.SrcIP, ip.DstIP = ip.DstIP, ip.SrcIP
			tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
		}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, tcp, gopacket.Payload(make([]byte, i))}
	case 1:
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
		udp := &layers.UDP{SrcPort: 53, DstPort: layers.UDPPort(5353 + i%3)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, udp, gopacket.Payload(make([]byte, 10))}
	case 2:
		eth.EthernetType = layers.EthernetTypeDot1Q
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 3}, DstIP: net.IP{10, 0, 0, 4}}
		udp := &layers.UDP{SrcPort: 1, DstPort: 2}
		_ = udp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip, udp}
	case 3:
		eth.EthernetType = layers.EthernetTypeARP
		ls = []gopacket.SerializableLayer{eth, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: eth.SrcMAC, SourceProtAddress: []byte{10, 0, 0, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}}}
	}
	f := testenv.Serialize(t, ls...)
	return &mirror.Packet{
		Timestamp: t0.Add(time.Duration(i) * 250 * time.Millisecond), Mode: mirror.ModeJuniper, Frame: f, FrameLen: len(f),
		Meta: mirror.Meta{SrcVN: []byte(vns[i%4%3]), DstVN: []byte(vns[(i%4+1)%3]), Direction: mirror.DirIngress},
	}
}

// TestSummarize checks the totals and conversations against tshark's
// reading of the same file, and the VN pairs and drops against what was
// written.
func TestSummarize(t *testing.T) {
	ps := make([]*mirror.Packet, 41)
	for i := range ps {
		ps[i] = summaryPacket(t, i)
	}
	path := filepath.Join(t.TempDir(), "mixed.pcapng")
	capturetest.WritePcapng(t, path, ps)
	// A statistics block for the file's interface: 100 received, 3 and 5
	// dropped.
	isb := binary.LittleEndian.AppendUint32(nil, 5)
	isb = binary.LittleEndian.AppendUint32(isb, 12+12+3*12+4)
	isb = binary.LittleEndian.AppendUint32(isb, 0)
	isb = append(isb, make([]byte, 8)...)
	for _, o := range [][2]uint64{{4, 100}, {5, 3}, {7, 5}} {
		isb = binary.LittleEndian.AppendUint16(isb, uint16(o[0]))
		isb = binary.LittleEndian.AppendUint16(isb, 8)
		isb = binary.LittleEndian.AppendUint64(isb, o[1])
	}
	isb = binary.LittleEndian.AppendUint32(isb, 0)
	isb = binary.LittleEndian.AppendUint32(isb, 12+12+3*12+4)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(isb); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s, err := Summarize([]string{path, path}, 100)
	if err != nil {
		t.Fatal(err)
	}
	rows := testenv.TsharkRows(t, "-r", path, "-T", "fields", "-e", "frame.cap_len", "-e", "frame.time_epoch",
		"-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "ip.proto", "-e", "ipv6.nxt",
		"-e", "tcp.srcport", "-e", "udp.srcport", "-e", "tcp.dstport", "-e", "udp.dstport")
	var bytes uint64
	want := map[string]uint64{}
	for _, r := range rows {
		n, _ := strconv.ParseUint(r[0], 10, 64)
		bytes += n
		if r[2]+r[3] == "" {
			continue
		}
		a, b := netip.MustParseAddr(r[2]+r[3]), netip.MustParseAddr(r[4]+r[5])
		ap, bp := r[8]+r[9], r[10]+r[11]
		if a.Compare(b) > 0 {
			a, b, ap, bp = b, a, bp, ap
		}
		want[fmt.Sprintf("%s %s:%s %s:%s", r[6]+r[7], a, ap, b, bp)] += 2 // the file is read twice
	}
	if s.Packets != 2*uint64(len(rows)) || s.Bytes != 2*bytes {
		t.Errorf("packets %d bytes %d, want %d and %d", s.Packets, s.Bytes, 2*len(rows), 2*bytes)
	}
	if !s.First.Equal(ps[0].Timestamp) || !s.Last.Equal(ps[40].Timestamp) || s.Seconds != 10 || s.PacketRate != 8.2 {
		t.Errorf("first %v last %v duration %v rate %v", s.First, s.Last, s.Seconds, s.PacketRate)
	}
	got := map[string]uint64{}
	for _, c := range s.Conversations {
		proto := map[string]string{"tcp": "6", "udp": "17"}[c.Proto]
		got[fmt.Sprintf("%s %s:%d %s:%d", proto, c.A, c.APort, c.B, c.BPort)] = c.Packets
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) != 5 {
		t.Errorf("conversations\n%v\nwant\n%v", got, want)
	}
	if s.NotIP != 20 {
		t.Errorf("%d packets not IP, want the 20 ARP", s.NotIP)
	}
	if len(s.Pairs) != 3 || s.Pairs[0].Packets != 2*21 || s.Pairs[0].SrcVN != vns[0] || s.Pairs[0].DstVN != vns[1] {
		t.Errorf("pairs %+v", s.Pairs)
	}
	if len(s.Interfaces) != 1 {
		t.Fatalf("interfaces %+v", s.Interfaces)
	}
	ifc := s.Interfaces[0]
	if ifc.Packets != 82 || ifc.Received == nil || *ifc.Received != 200 || *ifc.IfDropped != 6 || *ifc.OSDropped != 10 {
		t.Errorf("interface %+v", ifc)
	}
	if len(s.Unreadable) != 0 {
		t.Errorf("unreadable %q", s.Unreadable)
	}

	// What people read: the same numbers, in their sections.
	var out strings.Builder
	s.Print(&out)
	for _, want := range []string{
		fmt.Sprintf("Packets:       %d\n", s.Packets),
		"Packet rate:   8.20 packets/s\n",
		"\nInterfaces:\n", " 82 ", " 200 ", " 6 ", " 10\n",
		"\nVN pairs:\n", "->  " + vns[1],
		"\nTop conversations (inner frames):\n",
		fmt.Sprintf("(%d packets without an IP header)", s.NotIP),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed summary lacks %q:\n%s", want, out.String())
		}
	}
}
