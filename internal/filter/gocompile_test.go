//go:build cgo

package filter

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/bpf"
)

// diffExprs are expressions the pure-Go compiler accepts; on every frame
// of diffFrames each must give libpcap's verdict.
var diffExprs = []string{
	"", "ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp", "icmp", "icmp6", "igmp",
	"ip proto 47", "ip6 proto 6", "proto 17", "ip proto 0x11", "proto 021",
	"host 10.0.0.1", "src host 10.0.0.1", "dst host 10.0.0.2", "ip host 10.0.0.1",
	"arp host 10.0.0.1", "rarp dst host 10.0.0.2", "src or dst host 10.0.0.2", "src and dst host 10.0.0.1",
	"host 10.0.0.1 or 10.0.0.2", "host 10.0.0.1 and not 10.0.0.2", "host 10.0.0.1 or (10.0.0.2)", "src 10.0.0.1",
	"host 2001:db8::1", "src host 2001:db8::1", "dst 2001:db8::2", "ip6 host 2001:db8::2",
	"net 10.0.0.0/8", "net 10.0.0.0/24", "net 10.0.0.0/030", "net 10.0.0.0/0x8", "src net 10.0.0.0/31", "dst net 10.0.0.0 mask 255.255.255.0", "net 0.0.0.0 mask 0.0.0.0",
	"net 10", "net 0x0a", "net 012", "net 2560", "net 10.0", "net 10.0.0", "net 0.0.0.0/0", "net 2001:db8::/32",
	"src net 2001:db8::/127", "net 2001:db8:0:0:8000::/65", "ip6 net ::/0",
	"port 80", "tcp port 80", "udp port 53", "sctp port 80", "src port 80", "dst port 80",
	"tcp dst port 443", "src and dst port 80", "port 80 or 443", "tcp port 80 or 53",
	"portrange 50-90", "portrange 0-0100", "tcp portrange 443-443", "udp src portrange 90-50", "dst portrange 0-65535",
	"less 64", "greater 100", "less 0", "greater 1514",
	"vlan", "vlan 10", "vlan 20", "vlan and ip", "vlan 10 and tcp port 80", "vlan and vlan 20",
	"vlan 10 or vlan 20", "ip or vlan and ip", "vlan and host 10.0.0.1", "vlan and ip6 and port 53",
	"not ip", "!tcp", "not not udp", "tcp or udp", "tcp or udp and port 53", "tcp and (port 80 or port 443)",
	"(tcp)", "((tcp or udp) and not (icmp))", "tcp&&port 80||udp", "!(host 10.0.0.1)",
	"ip and not icmp and less 100", "ip6 and (tcp or icmp6)", "port 80 and src 10.0.0.1",
	"tcp or port 80 and greater 60", "not port 80 and not port 443",
	"ether host 00:01:02:03:04:05", "ether src 00:01:02:03:04:05", "ether dst host 00:01:02:03:04:06",
	"ether src 00:01:02:03:04:06 or ether dst 00:01:02:03:04:05", "ether proto 0x0806", "ether proto 2054 or ether proto 0x86dd",
	"vlan and ether proto 0x86dd", "vlan 10 and ether src host 00:01:02:03:04:05",
}

// diffFrames returns Ethernet frames that tell the expressions apart:
// every protocol above, with and without VLAN tags, IPv4 options and
// fragments, an IPv6 fragment header, and, with cut, frames cut short.
//
// On a frame cut short before a field the expression reads the verdicts
// may differ: a load past the end rejects the frame, and libpcap's
// optimizer may have removed the load ("port 0 or udp" keeps a UDP frame
// cut after its IP header). The fixed expressions agree on them; the
// fuzzed ones are compared on whole frames.
func diffFrames(t testing.TB, cut bool) [][]byte {
	mac1 := net.HardwareAddr{0, 1, 2, 3, 4, 5}
	mac2 := net.HardwareAddr{0, 1, 2, 3, 4, 6}
	a1, a2, a3 := net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, net.IP{192, 168, 1, 1}
	b1, b2 := net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")
	b3 := net.ParseIP("2001:db8:0:0:8000::5")
	ser := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: false}, ls...); err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), buf.Bytes()...)
	}
	pay := gopacket.Payload(make([]byte, 20))
	// Every third frame goes the other way on the wire (the MACs swapped).
	ethN := 0
	eth := func(et layers.EthernetType) *layers.Ethernet {
		ethN++
		if ethN%3 == 0 {
			return &layers.Ethernet{SrcMAC: mac2, DstMAC: mac1, EthernetType: et}
		}
		return &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: et}
	}
	big := gopacket.Payload(make([]byte, 200))
	var l3 [][]gopacket.SerializableLayer // after the Ethernet header
	var l3types []layers.EthernetType
	add := func(et layers.EthernetType, ls ...gopacket.SerializableLayer) {
		l3 = append(l3, ls)
		l3types = append(l3types, et)
	}
	for _, src := range []net.IP{a1, a2, a3} {
		for _, dst := range []net.IP{a1, a2, a3} {
			for _, sp := range []uint16{80, 53, 443, 1000} {
				for _, dp := range []uint16{80, 53, 50, 90} {
					ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst, Protocol: layers.IPProtocolTCP}
					tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp)}
					tcp.SetNetworkLayerForChecksum(ip)
					add(layers.EthernetTypeIPv4, ip, tcp, pay)
					ipu := *ip
					ipu.Protocol = layers.IPProtocolUDP
					udp := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
					udp.SetNetworkLayerForChecksum(&ipu)
					add(layers.EthernetTypeIPv4, &ipu, udp, big)
				}
			}
			icmp := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst, Protocol: layers.IPProtocolICMPv4}
			add(layers.EthernetTypeIPv4, icmp, &layers.ICMPv4{}, pay)
			arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				SourceHwAddress: mac1, SourceProtAddress: src.To4(), DstHwAddress: mac2, DstProtAddress: dst.To4()}
			add(layers.EthernetTypeARP, arp)
			add(layers.EthernetType(0x8035), arp)
		}
	}
	// IPv4 with options (a 24-byte header), a later fragment, other protocols.
	opt := &layers.IPv4{Version: 4, TTL: 64, SrcIP: a1, DstIP: a2, Protocol: layers.IPProtocolTCP,
		Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}}
	add(layers.EthernetTypeIPv4, opt, &layers.TCP{SrcPort: 80, DstPort: 1000}, pay)
	frag := &layers.IPv4{Version: 4, TTL: 64, SrcIP: a1, DstIP: a2, Protocol: layers.IPProtocolUDP, FragOffset: 100}
	add(layers.EthernetTypeIPv4, frag, &layers.UDP{SrcPort: 80, DstPort: 53}, pay)
	for _, pr := range []layers.IPProtocol{2, 47, 132, 17, 0} {
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: a2, DstIP: a1, Protocol: pr}
		add(layers.EthernetTypeIPv4, ip, gopacket.Payload([]byte{0, 80, 1, 187, 0, 0, 0, 0}))
	}
	for _, src := range []net.IP{b1, b2, b3} {
		for _, dst := range []net.IP{b1, b2, b3} {
			for _, dp := range []uint16{80, 53, 443} {
				ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src, DstIP: dst, NextHeader: layers.IPProtocolTCP}
				tcp := &layers.TCP{SrcPort: 443, DstPort: layers.TCPPort(dp)}
				tcp.SetNetworkLayerForChecksum(ip)
				add(layers.EthernetTypeIPv6, ip, tcp, pay)
				ipu := *ip
				ipu.NextHeader = layers.IPProtocolUDP
				udp := &layers.UDP{SrcPort: 53, DstPort: layers.UDPPort(dp)}
				udp.SetNetworkLayerForChecksum(&ipu)
				add(layers.EthernetTypeIPv6, &ipu, udp, pay)
			}
			ic := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src, DstIP: dst, NextHeader: layers.IPProtocolICMPv6}
			add(layers.EthernetTypeIPv6, ic, gopacket.Payload([]byte{128, 0, 0, 0, 0, 0, 0, 0}))
		}
	}
	// IPv6 fragment header (44) before TCP (6) and before UDP.
	for _, nh := range []byte{6, 17} {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: b1, DstIP: b2, NextHeader: 44}
		add(layers.EthernetTypeIPv6, ip, gopacket.Payload(append([]byte{nh, 0, 0, 1, 0, 0, 0, 1}, 0, 80, 0, 80, 0, 0, 0, 0)))
	}
	var frames [][]byte
	for i, ls := range l3 {
		et := l3types[i]
		plain := ser(append([]gopacket.SerializableLayer{eth(et)}, ls...)...)
		frames = append(frames, plain)
		for _, ids := range [][]uint16{{10}, {20}, {10, 20}, {20, 10}} {
			tagged := []gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q)}
			for j, id := range ids {
				next := layers.EthernetTypeDot1Q
				if j == len(ids)-1 {
					next = et
				}
				tagged = append(tagged, &layers.Dot1Q{VLANIdentifier: id, Type: next})
			}
			frames = append(frames, ser(append(tagged, ls...)...))
		}
		if cut && i%7 == 0 {
			for _, n := range []int{13, 20, 34, 40, 55} {
				if n < len(plain) {
					frames = append(frames, plain[:n])
				}
			}
		}
	}
	// 802.1ad and 0x9100 outer tags.
	ad := ser(eth(layers.EthernetTypeIPv4), &layers.IPv4{Version: 4, TTL: 64, SrcIP: a1, DstIP: a2, Protocol: 6}, &layers.TCP{SrcPort: 80, DstPort: 80})
	for _, tpid := range []uint16{0x88a8, 0x9100} {
		f := append([]byte(nil), ad[:12]...)
		f = append(f, byte(tpid>>8), byte(tpid), 0, 10)
		frames = append(frames, append(f, ad[12:]...))
	}
	// The sample's frames (vRouter mirror traffic) too.
	if fh, err := os.Open("../../testdata/sample.pcap"); err == nil {
		defer fh.Close()
		r, err := pcapgo.NewReader(fh)
		if err != nil {
			t.Fatal(err)
		}
		for {
			d, _, err := r.ReadPacketData()
			if err != nil {
				break
			}
			frames = append(frames, d)
		}
	} else {
		t.Fatal(err)
	}
	return frames
}

func vm(t testing.TB, raw []bpf.RawInstruction) *bpf.VM {
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble: %v", raw)
	}
	v, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("%v: %v", prog, err)
	}
	return v
}

// sameVerdicts compares the pure-Go and libpcap programs for expr on
// every frame. libpcap refuses a program that rejects every frame; the
// pure-Go one must then reject every frame too.
func sameVerdicts(t testing.TB, expr string, frames [][]byte) {
	goRaw, err := goCompile(expr)
	if err != nil {
		t.Fatalf("%q: pure-Go compiler: %v", expr, err)
	}
	pcRaw, pcErr := pcapCompile(expr)
	gv := vm(t, goRaw)
	var pv *bpf.VM
	if pcErr != nil {
		if !strings.Contains(pcErr.Error(), "rejects all packets") {
			t.Fatalf("%q: libpcap refuses what the pure-Go compiler accepts: %v", expr, pcErr)
		}
	} else {
		pv = vm(t, pcRaw)
	}
	for i, f := range frames {
		g, err := gv.Run(f)
		if err != nil {
			t.Fatalf("%q frame %d: %v", expr, i, err)
		}
		p := 0
		if pv != nil {
			if p, err = pv.Run(f); err != nil {
				t.Fatalf("%q frame %d: libpcap program: %v", expr, i, err)
			}
		}
		if g != p {
			t.Fatalf("%q frame %d (% x): pure-Go program returns %d, libpcap's %d\npure-Go: %v", expr, i, f, g, p, goRaw)
		}
	}
}

func TestGoCompileMatchesLibpcap(t *testing.T) {
	frames := diffFrames(t, true)
	for _, e := range diffExprs {
		sameVerdicts(t, e, frames)
	}
}

// Every expression keeps some frame and drops another, so that the
// comparison above tells something.
func TestDiffCorpusDiscriminates(t *testing.T) {
	frames := diffFrames(t, true)
	for _, e := range diffExprs {
		if e == "" || e == "less 0" || e == "dst portrange 0-65535" || e == "net 0.0.0.0/0" || e == "ip6 net ::/0" {
			continue
		}
		v := vm(t, mustGo(t, e))
		kept := 0
		for _, f := range frames {
			if n, _ := v.Run(f); n != 0 {
				kept++
			}
		}
		if kept == 0 || kept == len(frames) {
			t.Errorf("%q keeps %d of %d frames", e, kept, len(frames))
		}
	}
}

func mustGo(t testing.TB, e string) []bpf.RawInstruction {
	raw, err := goCompile(e)
	if err != nil {
		t.Fatalf("%q: %v", e, err)
	}
	return raw
}

// What the pure-Go compiler does not know it refuses, naming the word.
func TestGoCompileRefuses(t *testing.T) {
	for expr, want := range map[string]string{
		"tcp[13] & 2 != 0":       "byte-offset",
		"ip[0] = 69":             "byte-offset",
		"host example.com":       `host name "example.com"`,
		"port http":              `service name "http"`,
		"ether broadcast":        `"broadcast"`,
		"ether host 0:1:2:3:4:5": "two hex digits",
		"ether proto 100":        "a length or LLC type",
		"broadcast":              `"broadcast"`,
		"tcp and mpls":           `"mpls"`,
		"net 10.0.0.1/8":         "non-network bits",
		"port 70000":             "over 65535",
		"vlan 5000":              "VLAN IDs",
		"tcp and":                "ends early",
		"(tcp":                   "missing )",
		"tcp udp":                "syntax error",
		"ip6 host 10.0.0.1":      "address family",
		"tcp host 10.0.0.1":      "do not fit",
	} {
		_, err := goCompile(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %s", expr, err, want)
		}
		if strings.Contains(want, `"`) && !errors.Is(err, ErrUnsupported) && !strings.Contains(want, "non-network") {
			t.Errorf("%q: %v does not wrap ErrUnsupported", expr, err)
		}
	}
}

// A program longer than a conditional jump reaches (255) still gives
// libpcap's verdicts: the far jumps go through unconditional ones.
func TestGoCompileFarJumps(t *testing.T) {
	expr := join(MaxTerms, " or ", func(i int) string { return "port " + string(rune('1'+i%9)) + "0" + string(rune('0'+i/9)) })
	raw := mustGo(t, expr)
	if len(raw) < 300 {
		t.Fatalf("program of %d instructions: want one past the 8-bit jump range", len(raw))
	}
	sameVerdicts(t, expr, diffFrames(t, true))
}

// FuzzGoCompile: the pure-Go compiler never panics, and what it accepts
// libpcap accepts too (or finds rejects every frame) with the same
// verdict on every frame of the corpus.
func FuzzGoCompile(f *testing.F) {
	for _, e := range diffExprs {
		f.Add(e)
	}
	f.Add("tcp[13] & 2 != 0")
	f.Add("host 10.0.0.1 or 10.0.0.2 and vlan 7")
	frames := diffFrames(f, false)
	f.Fuzz(func(t *testing.T, expr string) {
		if checkExpr(expr) != nil {
			return
		}
		if _, err := goCompile(expr); err != nil {
			return
		}
		sameVerdicts(t, expr, frames)
	})
}
