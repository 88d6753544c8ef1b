package gen

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// labCases returns runs runs of the lab scenario, cloned.
func labCases(t *testing.T, runs int) []*Case {
	t.Helper()
	g, err := New(Options{Scenario: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	n := g.SceneLen()
	if n == 0 {
		t.Fatal("empty scenario")
	}
	var cs []*Case
	for range runs * n {
		cs = append(cs, g.Next().Clone())
	}
	return cs
}

// reserialize decodes an inner frame with gopacket and serializes its
// layers again with lengths and checksums computed: a frame built right
// comes out byte for byte.
func reserialize(t *testing.T, frame []byte) (gopacket.Packet, []byte) {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("inner frame does not decode: %v", el.Error())
	}
	var ls []gopacket.SerializableLayer
	for _, l := range p.Layers() {
		switch l := l.(type) {
		case *layers.TCP:
			_ = l.SetNetworkLayerForChecksum(p.NetworkLayer())
			ls = append(ls, l)
		case *layers.UDP:
			_ = l.SetNetworkLayerForChecksum(p.NetworkLayer())
			ls = append(ls, l)
		case *layers.DNS:
			ls = append(ls, gopacket.Payload(l.LayerContents())) // as sent: checked field by field below
		case gopacket.SerializableLayer:
			ls = append(ls, l)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return p, buf.Bytes()
}

func TestScenarioLab(t *testing.T) {
	cs := labCases(t, 2)
	n := len(cs) / 2
	var last time.Time
	kinds := map[Kind]int{}
	dirs := map[mirror.Direction]int{}
	var icmp, dns, fragmented int
	type half struct{ next uint32 } // the next sequence number a side sends
	sides := map[layers.TCPPort]*half{}
	for i, c := range cs {
		if c.Index != i {
			t.Fatalf("case %d has index %d", i, c.Index)
		}
		for _, w := range c.Packets {
			if !w.Timestamp.After(last) {
				t.Fatalf("case %d: timestamp %v not after %v", i, w.Timestamp, last)
			}
			last = w.Timestamp
			if w.LinkType != layers.LinkTypeEthernet || len(w.Data) != w.WireLen || len(w.Data) > 1514 {
				t.Fatalf("case %d: record %s, %d of %d bytes", i, w.LinkType, len(w.Data), w.WireLen)
			}
		}
		if c.Reason != "" || c.Mode != mirror.ModeJuniper {
			t.Fatalf("case %d: %s %q", i, c.Mode, c.Reason)
		}
		kinds[c.Kind]++
		dirs[c.Direction]++
		p, again := reserialize(t, c.Frame)
		if !bytes.Equal(again, c.Frame) {
			t.Fatalf("case %d: inner frame is not what gopacket makes of its layers (lengths, checksums):\n% x\n% x", i, c.Frame, again)
		}
		if c.Fragments > 0 {
			fragmented++
			if c.Fragments != 2 || len(c.Frame) != 1514 || len(c.Packets) != 2 || c.Steps[0].Status != mirror.Held {
				t.Fatalf("case %d: %d fragments, %d-byte frame, steps %v", i, c.Fragments, len(c.Frame), c.Steps)
			}
		}
		// The port mirror gives the VN of vm-web's side, the policy both.
		switch c.Kind {
		case KindPort:
			if c.Host.IsValid() || (c.SrcVN == nil) == (c.DstVN == nil) {
				t.Fatalf("case %d: port mirror metadata %+v", i, c.Meta())
			}
		case KindACL:
			if c.Host.String() != "10.10.0.11" || c.SrcVN == nil || c.DstVN == nil || *c.SrcVN == *c.DstVN ||
				(c.Direction == mirror.DirIngress) != (c.Flags&mirror.FlagIngress != 0) {
				t.Fatalf("case %d: ACL metadata %+v", i, c.Meta())
			}
		}
		if ip, ok := p.NetworkLayer().(*layers.IPv4); ok {
			fromWeb := ip.SrcIP.String() == "10.0.1.3"
			if fromWeb != (c.Direction == mirror.DirIngress) {
				t.Fatalf("case %d: %v -> %v is %s", i, ip.SrcIP, ip.DstIP, c.Direction)
			}
		}
		if p.Layer(layers.LayerTypeICMPv4) != nil {
			icmp++
		}
		if d, ok := p.Layer(layers.LayerTypeDNS).(*layers.DNS); ok {
			dns++
			if len(d.Questions) != 1 || string(d.Questions[0].Name) != "vm-db.demo.lab" || d.QR && (len(d.Answers) != 1 || d.Answers[0].IP.String() != "10.0.2.3") {
				t.Fatalf("case %d: DNS %+v", i, d)
			}
		}
		// Each side's segments follow on from its last, and acknowledge
		// all the other side sent.
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
			me, peer := sides[tcp.SrcPort], sides[tcp.DstPort]
			if tcp.SYN && !tcp.ACK {
				sides = map[layers.TCPPort]*half{}
				me = nil
			}
			if me != nil && tcp.Seq != me.next {
				t.Fatalf("case %d: seq %d, want %d", i, tcp.Seq, me.next)
			}
			if tcp.ACK && (peer == nil || tcp.Ack != peer.next) {
				t.Fatalf("case %d: ack %d without or out of step with the peer's segments", i, tcp.Ack)
			}
			adv := uint32(len(tcp.Payload))
			if tcp.SYN || tcp.FIN {
				adv++
			}
			sides[tcp.SrcPort] = &half{next: tcp.Seq + adv}
			if tcp.SrcPort == 80 && len(tcp.Payload) > 0 && !strings.HasPrefix(string(tcp.Payload), "HTTP/1.1 200 OK\r\n") {
				t.Fatalf("case %d: response %q", i, tcp.Payload[:20])
			}
		}
	}
	if kinds[KindACL] == 0 || kinds[KindPort] == 0 || dirs[mirror.DirIngress] == 0 || dirs[mirror.DirEgress] == 0 ||
		icmp != 8 || dns != 4 || fragmented != 2 {
		t.Errorf("two runs: kinds %v, directions %v, %d ICMP, %d DNS, %d fragmented", kinds, dirs, icmp, dns, fragmented)
	}
	// The second run starts after the first, from another client port.
	if cs[n].Packets[0].Timestamp.Sub(cs[n-1].Packets[0].Timestamp) < time.Second {
		t.Errorf("second run at %v, first ended at %v", cs[n].Packets[0].Timestamp, cs[n-1].Packets[0].Timestamp)
	}
	if bytes.Equal(cs[n-1].Frame, cs[2*n-1].Frame) {
		t.Error("second run's last frame repeats the first run's")
	}
}

func TestScenarioOptions(t *testing.T) {
	for _, o := range []Options{
		{Scenario: "nope"},
		{Scenario: "lab", LinkType: layers.LinkTypeLinuxSLL},
		{Scenario: "lab", Snaplen: 1000},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	// A larger MTU carries the response whole.
	g, err := New(Options{Scenario: "lab", MTU: 9000})
	if err != nil {
		t.Fatal(err)
	}
	for range g.SceneLen() {
		if c := g.Next(); c.Fragments != 0 || len(c.Packets) != 1 {
			t.Fatalf("MTU 9000: case %d in %d packets", c.Index, len(c.Packets))
		}
	}
}

// TestTsharkScenario reads the lab scenario's raw capture with Wireshark's
// dissectors, told that port 8099 carries the Juniper header: every
// checksum tshark can check is good (the outer UDP one is absent, as the
// vRouter sends it), the fragmented datagram is reassembled, and each
// mirror datagram shows the VNs its case expects.
func TestTsharkScenario(t *testing.T) {
	file, cases := generate(t, Options{Scenario: "lab"}, 2*len(labCases(t, 1)))
	rows := tshark(t, file, []string{"-d", "udp.port==8099,juniper",
		"-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"},
		"ip.checksum.status", "tcp.checksum.status", "udp.checksum.status", "icmp.checksum.status",
		"juniper.vn.src", "juniper.vn.dst", "frame.len")
	for _, c := range cases {
		r := rows[lastRecord(c)]
		if r == nil {
			t.Fatalf("case %d: tshark shows no record %d", c.Index, lastRecord(c))
		}
		ipSt, tcpSt, udpSt, icmpSt, src, dst := r[0], r[1], r[2], r[3], r[4], r[5]
		inner := tcpSt + icmpSt
		if strings.HasPrefix(udpSt, "3,") {
			inner += strings.TrimPrefix(udpSt, "3,")
		}
		if ipSt != "1,1" || (udpSt != "3" && !strings.HasPrefix(udpSt, "3,")) || inner != "1" {
			t.Errorf("case %d: checksum status ip %q tcp %q udp %q icmp %q, want good (1), the outer UDP absent (3)",
				c.Index, ipSt, tcpSt, udpSt, icmpSt)
		}
		want := func(vn *string) string {
			if vn == nil {
				return ""
			}
			return *vn
		}
		if src != want(c.SrcVN) || dst != want(c.DstVN) {
			t.Errorf("case %d: tshark's VNs %q -> %q, want %q -> %q", c.Index, src, dst, want(c.SrcVN), want(c.DstVN))
		}
		if c.Fragments > 0 {
			first := rows[c.Packet+1]
			if first == nil || first[6] != "1514" {
				t.Errorf("case %d: first fragment %q, want a full 1514-byte record", c.Index, first)
			}
		}
	}
}
