package gen

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// A scenario is a scripted capture: the mirror traffic a sniffer receives
// while VMs talk, as an operator would record it, rather than a random
// draw of case kinds. Its inner frames are whole conversations (DNS,
// ping, a TCP connection with its handshake and teardown) built with
// gopacket's layers, checksums included; every mirror datagram is a Case
// with its expected result, so truth files and the round trip apply.

// Scenario describes a named scenario.
type Scenario struct {
	Doc string // who talks, what mirrors it: a sentence for help texts
	// build returns the scenario's mirror datagrams, the first at start.
	build func(s *scene, start time.Time)
}

// Scenarios are the named scenarios (Options.Scenario); "lab" made
// testdata/lab.pcap, the README's sample.
var Scenarios = map[string]Scenario{
	"lab": {
		Doc: "vm-web (10.0.1.3, vn-web) resolves vm-db and pings it (10.0.2.3, vn-db) twice under a port mirror of its interface, " +
			"then fetches / over HTTP under a policy rule that mirrors vn-web <-> vn-db; the 1514-byte response comes in two outer fragments",
		build: buildLab,
	},
}

// ScenarioNames lists the scenario names, sorted.
func ScenarioNames() []string {
	var ns []string
	for n := range Scenarios {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// The lab's network: two VNs of project demo, vm-web on compute 10.10.0.11
// (the mirroring host), vm-db on compute 10.10.0.12, the analyzer at
// 10.10.0.50. A vRouter answers ARP for every gateway with 00:00:5e:00:01:00
// and serves DNS at the subnet's .2 address.
var (
	labWebVN  = "default-domain:demo:vn-web"
	labDBVN   = "default-domain:demo:vn-db"
	labWeb    = labVM{ip: netip.MustParseAddr("10.0.1.3"), mac: net.HardwareAddr{0x02, 0x7c, 0x1e, 0xa4, 0x30, 0x01}}
	labDB     = labVM{ip: netip.MustParseAddr("10.0.2.3"), mac: net.HardwareAddr{0x02, 0x5b, 0x90, 0x3e, 0xc2, 0x02}}
	labDNS    = labVM{ip: netip.MustParseAddr("10.0.1.2"), mac: net.HardwareAddr(vrouterMAC[:])}
	labHost   = netip.MustParseAddr("10.10.0.11")
	labSniff  = netip.MustParseAddr("10.10.0.50")
	labHostL2 = net.HardwareAddr{0x52, 0x54, 0x00, 0x1a, 0x2b, 0x3c} // compute node's fabric NIC
	labSniL2  = net.HardwareAddr{0x52, 0x54, 0x00, 0x4d, 0x5e, 0x6f} // analyzer's NIC
)

type labVM struct {
	ip  netip.Addr
	mac net.HardwareAddr
}

// The lab's mirrors: the port mirror of vm-web's interface (one VN TLV)
// and the policy rule between vn-web and vn-db (ACL metadata).
const (
	mirrorPort = 1 << iota
	mirrorACL
)

// scene builds a scenario's cases. Its mirrors (scene.mirror) are the lab's:
// another scenario brings its own.
type scene struct {
	g      *Generator
	cases  []Case
	now    time.Time
	ipID   map[netip.Addr]uint16 // next IP ID of each sender, inner and outer
	outSrc uint16                // the vRouter's UDP source port
	err    error
	build  func(*scene, time.Time)
	rep    int // runs built before this one
	next   int // the case Next returns next
}

func (s *scene) id(a netip.Addr) uint16 {
	n := s.ipID[a]
	s.ipID[a] = n + 1
	return n
}

// at moves the scene's clock to start + d.
func (s *scene) at(start time.Time, d time.Duration) { s.now = start.Add(d) }

// frame serializes an inner frame from src to dst (gateway MACs stand for
// the vRouter) with lengths and checksums computed.
func (s *scene) frame(src, dst labVM, ttl uint8, l4 ...gopacket.SerializableLayer) []byte {
	eth := &layers.Ethernet{SrcMAC: src.mac, DstMAC: dst.mac, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: ttl, Id: s.id(src.ip), Flags: layers.IPv4DontFragment,
		SrcIP: src.ip.AsSlice(), DstIP: dst.ip.AsSlice()}
	for _, l := range l4 {
		switch t := l.(type) {
		case *layers.TCP:
			ip.Protocol = layers.IPProtocolTCP
			_ = t.SetNetworkLayerForChecksum(ip)
		case *layers.UDP:
			ip.Protocol = layers.IPProtocolUDP
			_ = t.SetNetworkLayerForChecksum(ip)
		case *layers.ICMPv4:
			ip.Protocol = layers.IPProtocolICMPv4
		}
	}
	return s.serialize(append([]gopacket.SerializableLayer{eth, ip}, l4...)...)
}

func (s *scene) serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil && s.err == nil {
		s.err = err
	}
	return slices.Clone(buf.Bytes())
}

// mirror sends the copies of frame that the mirrors in which (mirrorPort,
// mirrorACL) make, at the scene's clock: the port mirror's first (it
// copies at the interface), the policy's 15 µs later. fromWeb says the
// frame left vm-web (ingress), else it is on its way to it (egress).
func (s *scene) mirror(frame []byte, fromWeb bool, which int) {
	t := s.now
	if which&mirrorPort != 0 {
		e := Expect{Mode: mirror.ModeJuniper}
		var md []byte
		if fromWeb {
			e.SrcVN, e.Direction = &labWebVN, mirror.DirIngress
			md = appendVN(md, tlvSrcVN, labWebVN)
		} else {
			e.DstVN, e.Direction = &labWebVN, mirror.DirEgress
			md = appendVN(md, tlvDstVN, labWebVN)
		}
		s.send(KindPort, e, append(md, tlvEnd, 0), frame, t)
		t = t.Add(15 * time.Microsecond)
	}
	if which&mirrorACL != 0 {
		e := Expect{Mode: mirror.ModeJuniper, Host: labHost, FlagBits: 32, Flags: mirror.FlagPass | mirror.FlagMirror}
		e.SrcVN, e.DstVN, e.Direction = &labDBVN, &labWebVN, mirror.DirEgress
		if fromWeb {
			e.SrcVN, e.DstVN, e.Direction = &labWebVN, &labDBVN, mirror.DirIngress
			e.Flags |= mirror.FlagIngress
		}
		h := labHost.As4()
		md := append([]byte{tlvHost, 4}, h[:]...)
		md = append(md, tlvFlags, 4, byte(e.Flags>>24), byte(e.Flags>>16), byte(e.Flags>>8), byte(e.Flags))
		md = appendVN(md, tlvSrcVN, *e.SrcVN)
		md = appendVN(md, tlvDstVN, *e.DstVN)
		s.send(KindACL, e, append(md, tlvEnd, 0), frame, t)
	}
}

// send adds the case of one mirror datagram from the mirroring host to
// the analyzer, IP fragmented (in order, 5 µs apart) when over the MTU.
func (s *scene) send(k Kind, e Expect, md, frame []byte, t time.Time) {
	g := s.g
	udp := &layers.UDP{SrcPort: layers.UDPPort(s.outSrc), DstPort: layers.UDPPort(g.port)}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Id: s.id(labHost),
		SrcIP: labHost.AsSlice(), DstIP: labSniff.AsSlice()}
	_ = udp.SetNetworkLayerForChecksum(ip)
	dg := s.serialize(ip, udp, gopacket.Payload(append(md, frame...)))
	dg[20+6], dg[20+7] = 0, 0 // the vRouter leaves the UDP checksum zero
	eth := &layers.Ethernet{SrcMAC: labHostL2, DstMAC: labSniL2, EthernetType: layers.EthernetTypeIPv4}

	var recs [][]byte
	if len(dg) <= g.opts.MTU {
		recs = append(recs, s.serialize(eth, gopacket.Payload(dg)))
	} else {
		data := dg[20:]
		chunk := (g.opts.MTU - 20) &^ 7
		for off := 0; off < len(data); off += chunk {
			n := min(chunk, len(data)-off)
			fh := *ip
			fh.FragOffset = uint16(off / 8)
			if off+n < len(data) {
				fh.Flags = layers.IPv4MoreFragments
			}
			recs = append(recs, s.serialize(eth, &fh, gopacket.Payload(data[off:off+n])))
		}
	}
	e.Frame, e.FrameLen = frame, len(frame)
	c := Case{Kind: k, Expect: e}
	for i, r := range recs {
		c.Packets = append(c.Packets, Wire{Timestamp: t.Add(time.Duration(i) * 5 * time.Microsecond),
			LinkType: layers.LinkTypeEthernet, Data: r, WireLen: len(r)})
		c.Steps = append(c.Steps, Step{Status: mirror.Held})
	}
	c.Steps[len(recs)-1] = Step{Status: mirror.Decoded}
	if len(recs) > 1 {
		c.Fragments = len(recs)
	}
	s.cases = append(s.cases, c)
}

// buildLab writes the lab scenario (Scenarios["lab"]) from start: vm-web
// resolves vm-db.demo.lab and pings it twice, a second apart, while its
// interface is port mirrored both ways; ten seconds later, that mirror
// replaced by a policy rule mirroring the traffic between vn-web and
// vn-db, it fetches / over HTTP in a connection the server closes.
// Each packet is mirrored once: the capture reads like the conversation.
func buildLab(s *scene, start time.Time) {
	const ms = time.Millisecond
	gw := labVM{mac: net.HardwareAddr(vrouterMAC[:])}
	toDB, fromDB := gw, gw
	toDB.ip, fromDB.ip = labDB.ip, labDB.ip
	fromDNS := labDNS

	// DNS, answered by the vRouter: port mirror only.
	q := &layers.DNS{ID: 0x4f2a, RD: true, OpCode: layers.DNSOpCodeQuery,
		Questions: []layers.DNSQuestion{{Name: []byte("vm-db.demo.lab"), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
	s.at(start, 0)
	s.mirror(s.frame(labWeb, labDNS, 64, &layers.UDP{SrcPort: 41203, DstPort: 53}, q), true, mirrorPort)
	a := *q
	a.QR, a.AA, a.RA = true, true, true
	a.Answers = []layers.DNSResourceRecord{{Name: []byte("vm-db.demo.lab"), Type: layers.DNSTypeA, Class: layers.DNSClassIN,
		TTL: 600, IP: labDB.ip.AsSlice()}}
	s.at(start, 412*time.Microsecond)
	s.mirror(s.frame(fromDNS, labWeb, 64, &layers.UDP{SrcPort: 53, DstPort: 41203}, &a), false, mirrorPort)

	// Two pings, a second apart; the policy does not mirror ICMP.
	ping := make([]byte, 56) // Linux ping: a timestamp, then 0x10, 0x11, ...
	for i := 16; i < len(ping); i++ {
		ping[i] = byte(i)
	}
	for seq := uint16(1); seq <= 2; seq++ {
		base := 12*ms + time.Duration(seq-1)*time.Second
		s.at(start, base)
		binary.LittleEndian.PutUint64(ping, uint64(s.now.Unix()))
		binary.LittleEndian.PutUint64(ping[8:], uint64(s.now.Nanosecond()/1000))
		s.mirror(s.frame(labWeb, toDB, 64, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0),
			Id: 0x2f1c, Seq: seq}, gopacket.Payload(ping)), true, mirrorPort)
		s.at(start, base+641*time.Microsecond)
		s.mirror(s.frame(fromDB, labWeb, 63, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0),
			Id: 0x2f1c, Seq: seq}, gopacket.Payload(ping)), false, mirrorPort)
	}

	// HTTP under the policy's mirror. The response fills one full-size
	// segment; with the metadata, its mirror datagram exceeds the MTU.
	cport, sport := layers.TCPPort(52814+s.rep), layers.TCPPort(80)
	cseq, sseq := uint32(0x6b1e4a20), uint32(0x1d03c7f1)
	syn := []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}
	tcp := func(fromWeb bool, flags string, payload []byte, opts []layers.TCPOption) {
		t := &layers.TCP{Window: 502, Options: opts}
		if fromWeb {
			t.SrcPort, t.DstPort, t.Seq, t.Ack = cport, sport, cseq, sseq
		} else {
			t.SrcPort, t.DstPort, t.Seq, t.Ack = sport, cport, sseq, cseq
			t.Window = 509
		}
		t.SYN, t.ACK, t.PSH, t.FIN = strings.Contains(flags, "S"), strings.Contains(flags, "A"),
			strings.Contains(flags, "P"), strings.Contains(flags, "F")
		if t.SYN {
			t.Window = 64240
		}
		if t.SYN && !t.ACK {
			t.Ack = 0
		}
		n := uint32(len(payload))
		if t.SYN || t.FIN {
			n++
		}
		var f []byte
		if fromWeb {
			f = s.frame(labWeb, toDB, 64, t, gopacket.Payload(payload))
			cseq += n
		} else {
			f = s.frame(fromDB, labWeb, 63, t, gopacket.Payload(payload))
			sseq += n
		}
		s.mirror(f, fromWeb, mirrorACL)
	}
	get := []byte("GET / HTTP/1.1\r\nHost: 10.0.2.3\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n")
	steps := []struct {
		d       time.Duration
		fromWeb bool
		flags   string
		payload []byte
		opts    []layers.TCPOption
	}{
		{12030 * ms, true, "S", nil, syn},
		{12030*ms + 598*time.Microsecond, false, "SA", nil, syn},
		{12030*ms + 655*time.Microsecond, true, "A", nil, nil},
		{12030*ms + 702*time.Microsecond, true, "PA", get, nil},
		{12031*ms + 904*time.Microsecond, false, "PA", labResponse(1460), nil},
		{12031*ms + 951*time.Microsecond, true, "A", nil, nil},
		{12032*ms + 310*time.Microsecond, false, "FA", nil, nil},
		{12032*ms + 402*time.Microsecond, true, "FA", nil, nil},
		{12032*ms + 988*time.Microsecond, false, "A", nil, nil},
	}
	for _, st := range steps {
		s.at(start, st.d)
		tcp(st.fromWeb, st.flags, st.payload, st.opts)
	}
}

// labResponse returns an HTTP response of n bytes, headers included.
func labResponse(n int) []byte {
	const head = "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nDate: Fri, 01 Mar 2024 00:00:12 GMT\r\n" +
		"Content-Type: text/html\r\nContent-Length: %04d\r\nConnection: close\r\n\r\n"
	h := fmt.Sprintf(head, 0)
	body := "<!DOCTYPE html>\n<html><head><title>vm-db</title></head><body>\n<h1>vm-db</h1>\n<pre>\n"
	for len(h)+len(body) < n-len("</pre></body></html>\n") {
		body += "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"
	}
	body = body[:n-len(h)-len("</pre></body></html>\n")] + "</pre></body></html>\n"
	return []byte(fmt.Sprintf(head, len(body)) + body)
}

// newScene returns the scene of Options.Scenario and builds its first run.
func (g *Generator) newScene() (*scene, error) {
	sc, ok := Scenarios[g.opts.Scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (known: %s)", g.opts.Scenario, strings.Join(ScenarioNames(), ", "))
	}
	s := &scene{g: g, build: sc.build, outSrc: 49563,
		ipID: map[netip.Addr]uint16{labWeb.ip: 0x8a41, labDB.ip: 0x1f07, labDNS.ip: 0x0c5e, labHost: 0x3a10}}
	s.build(s, g.opts.Start)
	return s, s.err
}

// nextScene returns the scene's next case; after the last, the scenario
// runs again from a second after it ended, its IP IDs and TCP ports moved on.
func (g *Generator) nextScene() *Case {
	s := g.sc
	if s.next == len(s.cases) {
		last := s.cases[len(s.cases)-1].Packets
		start := last[len(last)-1].Timestamp.Add(time.Second)
		s.cases, s.next = s.cases[:0], 0
		s.rep++
		s.build(s, start) // it built once without error: the same layers again
	}
	c := &g.c
	*c = s.cases[s.next]
	s.next++
	c.Index, c.Packet = g.index, g.packets
	g.index++
	g.packets += len(c.Packets)
	return c
}

// SceneLen returns the number of cases of one run of the generator's
// scenario, 0 when it has none.
func (g *Generator) SceneLen() int {
	if g.sc == nil {
		return 0
	}
	return len(g.sc.cases)
}
