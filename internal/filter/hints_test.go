package filter

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

func TestHintsCases(t *testing.T) {
	pf := netip.MustParsePrefix
	for _, c := range []struct {
		expr string
		want FlowHints
	}{
		{"", FlowHints{}},
		{"host 10.0.0.1 and port 53", FlowHints{Prefixes: []netip.Prefix{pf("10.0.0.1/32")}, Ports: []PortRange{{53, 53}}, IP: true}},
		{"host 10.0.0.1 or host 10.0.0.2", FlowHints{Prefixes: []netip.Prefix{pf("10.0.0.1/32"), pf("10.0.0.2/32")}}},
		{"host 10.0.0.1 or 10.0.0.2", FlowHints{Prefixes: []netip.Prefix{pf("10.0.0.1/32"), pf("10.0.0.2/32")}}},
		{"not host 10.0.0.1", FlowHints{}},
		{"port 53 or host 10.0.0.1", FlowHints{}},
		{"ip host 10.0.0.1", FlowHints{Prefixes: []netip.Prefix{pf("10.0.0.1/32")}, IP: true}},
		{"host 2001:db8::1", FlowHints{Prefixes: []netip.Prefix{pf("2001:db8::1/128")}, IP: true}},
		{"tcp and net 10.0.0.0/8", FlowHints{Prefixes: []netip.Prefix{pf("10.0.0.0/8")}, IP: true}},
		{"src net 10.0.0.0/24 and dst net 10.0.1.0/24", FlowHints{Prefixes: []netip.Prefix{pf("10.0.0.0/24")}}},
		{"(host 10.0.0.1 or host 10.0.0.2) and host 10.0.0.3", FlowHints{Prefixes: []netip.Prefix{pf("10.0.0.3/32")}}},
		{"portrange 1000-2000 or udp port 53", FlowHints{Ports: []PortRange{{1000, 2000}, {53, 53}}, IP: true}},
		{"port 80 or port 80", FlowHints{Ports: []PortRange{{80, 80}}, IP: true}},
		{"tcp or udp", FlowHints{IP: true}},
		{"arp or host 10.0.0.1", FlowHints{}},
		// After vlan, libpcap reads every later primitive 4 bytes further in,
		// whichever branch the vlan was in: no hint from them.
		{"vlan and host 10.0.0.1", FlowHints{}},
		{"host 10.0.0.2 and vlan and host 10.0.0.1", FlowHints{Prefixes: []netip.Prefix{pf("10.0.0.2/32")}}},
		{"((icmp and udp dst port 53) and not vlan) or ip", FlowHints{}},
		{"ether host 00:01:02:03:04:05", FlowHints{}},
		{"host 10.0.0.1 and not port 53", FlowHints{Prefixes: []netip.Prefix{pf("10.0.0.1/32")}}},
		// Not in the pure-Go compiler's language: no hints, no error.
		{"host example.com", FlowHints{}},
		{"tcp[13] & 2 != 0", FlowHints{}},
	} {
		got, err := Hints(c.expr)
		if err != nil {
			t.Errorf("Hints(%q): %v", c.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Hints(%q) = %+v, want %+v", c.expr, got, c.want)
		}
	}
}

func TestHintsErrors(t *testing.T) {
	for _, expr := range []string{"host", "port 80 and", "(tcp", strings.Repeat("tcp or ", MaxTerms) + "tcp"} {
		if _, err := Hints(expr); err == nil {
			t.Errorf("Hints(%q): no error", expr)
		}
	}
	if _, err := Hints(strings.Repeat("tcp or ", MaxTerms) + "tcp"); !errors.Is(err, ErrTooComplex) {
		t.Errorf("too many terms: %v, want ErrTooComplex", err)
	}
}

// hintFrame is a generated frame and what a flow index would know of it.
type hintFrame struct {
	data     []byte
	ip       bool // IPv4 or IPv6, behind any VLAN tag
	src, dst netip.Addr
	ports    bool // a transport header where the filter reads ports
	sp, dp   uint16
	desc     string
}

var (
	hintAddrs4 = []string{"10.0.0.1", "10.0.0.2", "10.0.1.5", "192.168.1.1"}
	hintAddrs6 = []string{"2001:db8::1", "2001:db8::2", "2001:db8:1::5"}
	hintPorts  = []uint16{53, 80, 443, 1000, 1500}
)

// randFrame builds an Ethernet frame: IPv4 (options, fragments), IPv6,
// ARP or something else, with TCP, UDP, SCTP or ICMP, sometimes behind a
// VLAN tag.
func randFrame(t testing.TB, r *rand.Rand) hintFrame {
	var f hintFrame
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 1, 2, 3, 4, 5}, DstMAC: net.HardwareAddr{0, 1, 2, 3, 4, 6}}
	ls = append(ls, eth)
	setType := func(et layers.EthernetType) { eth.EthernetType = et }
	if r.IntN(5) == 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		v := &layers.Dot1Q{VLANIdentifier: uint16(r.IntN(30))}
		ls = append(ls, v)
		setType = func(et layers.EthernetType) { v.Type = et }
	}
	pick := func(s []string) netip.Addr { return netip.MustParseAddr(s[r.IntN(len(s))]) }
	l4 := func() (gopacket.SerializableLayer, layers.IPProtocol) {
		f.sp, f.dp = hintPorts[r.IntN(len(hintPorts))], hintPorts[r.IntN(len(hintPorts))]
		switch r.IntN(4) {
		case 0:
			return &layers.TCP{SrcPort: layers.TCPPort(f.sp), DstPort: layers.TCPPort(f.dp), SYN: true, Window: 1}, layers.IPProtocolTCP
		case 1:
			return &layers.UDP{SrcPort: layers.UDPPort(f.sp), DstPort: layers.UDPPort(f.dp)}, layers.IPProtocolUDP
		case 2:
			return &layers.SCTP{SrcPort: layers.SCTPPort(f.sp), DstPort: layers.SCTPPort(f.dp)}, layers.IPProtocolSCTP
		}
		f.sp, f.dp = 0, 0
		return &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, layers.IPProtocolICMPv4
	}
	switch r.IntN(6) {
	case 0, 1, 2:
		setType(layers.EthernetTypeIPv4)
		f.ip, f.src, f.dst = true, pick(hintAddrs4), pick(hintAddrs4)
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: f.src.AsSlice(), DstIP: f.dst.AsSlice()}
		if r.IntN(4) == 0 {
			ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
		}
		l, proto := l4()
		ip.Protocol = proto
		f.ports = proto != layers.IPProtocolICMPv4
		switch r.IntN(5) {
		case 0: // a first fragment: its transport header is there
			ip.Flags = layers.IPv4MoreFragments
		case 1: // a later one: no transport header
			ip.FragOffset = 100
			f.ports = false
			l = gopacket.Payload(make([]byte, 24))
		}
		ls = append(ls, ip, l, gopacket.Payload(make([]byte, 16)))
		f.desc = fmt.Sprintf("IPv4 %s > %s proto %d frag %d", f.src, f.dst, ip.Protocol, ip.FragOffset)
	case 3, 4:
		setType(layers.EthernetTypeIPv6)
		f.ip, f.src, f.dst = true, pick(hintAddrs6), pick(hintAddrs6)
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: f.src.AsSlice(), DstIP: f.dst.AsSlice()}
		l, proto := l4()
		if proto == layers.IPProtocolICMPv4 {
			proto = layers.IPProtocolICMPv6
			l = &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
		}
		ip.NextHeader = proto
		f.ports = proto != layers.IPProtocolICMPv6
		ls = append(ls, ip, l, gopacket.Payload(make([]byte, 16)))
		f.desc = fmt.Sprintf("IPv6 %s > %s nh %d", f.src, f.dst, proto)
	default:
		setType(layers.EthernetTypeARP)
		a, b := pick(hintAddrs4), pick(hintAddrs4)
		ls = append(ls, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
			ProtAddressSize: 4, Operation: 1, SourceHwAddress: eth.SrcMAC, SourceProtAddress: a.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: b.AsSlice()})
		f.desc = fmt.Sprintf("ARP %s > %s", a, b)
	}
	if f.ports {
		f.desc += fmt.Sprintf(" ports %d > %d", f.sp, f.dp)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	f.data = buf.Bytes()
	return f
}

// randExpr is an expression of the subset Hints knows, with some it does
// not, nested depth deep at most.
func randExpr(r *rand.Rand, depth int) string {
	if depth > 0 && r.IntN(3) > 0 {
		switch r.IntN(5) {
		case 0:
			return "not " + randExpr(r, depth-1)
		case 1, 2:
			return "(" + randExpr(r, depth-1) + " and " + randExpr(r, depth-1) + ")"
		default:
			return "(" + randExpr(r, depth-1) + " or " + randExpr(r, depth-1) + ")"
		}
	}
	a4 := hintAddrs4[r.IntN(len(hintAddrs4))]
	a6 := hintAddrs6[r.IntN(len(hintAddrs6))]
	p := hintPorts[r.IntN(len(hintPorts))]
	prims := []string{
		"host " + a4, "src host " + a4, "dst " + a4, "ip host " + a4, "arp host " + a4, "host " + a6,
		"ip6 dst host " + a6, "net 10.0.0.0/24", "net 10.0.0.0/8", "src net 2001:db8::/48", "src and dst net 10.0.0.0/16",
		fmt.Sprint("port ", p), fmt.Sprint("tcp port ", p), fmt.Sprint("udp dst port ", p), fmt.Sprint("sctp src port ", p),
		fmt.Sprintf("portrange %d-%d", p, p+500), fmt.Sprint("src and dst port ", p),
		"tcp", "udp", "sctp", "icmp", "icmp6", "ip", "ip6", "arp", "vlan", "less 80", "greater 90",
		"ether proto 0x0800", "ip proto 17",
	}
	return prims[r.IntN(len(prims))]
}

// checkHints reports how f breaks h, "" when it does not.
func checkHints(h FlowHints, f hintFrame) string {
	if h.IP && !f.ip {
		return "not IP"
	}
	if len(h.Prefixes) > 0 {
		in := false
		for _, p := range h.Prefixes {
			in = in || (f.ip && (p.Contains(f.src) || p.Contains(f.dst)))
		}
		if !in && (f.ip || h.IP) {
			return "no address in the prefixes"
		}
	}
	if len(h.Ports) > 0 {
		in := false
		for _, r := range h.Ports {
			in = in || (f.ports && (r.Contains(f.sp) || r.Contains(f.dp)))
		}
		if !in {
			return "no port in the ranges"
		}
	}
	return ""
}

// hintsSound checks, for one expression, that every frame the compiled
// filter keeps meets its hints; it returns how many kept frames the hints
// constrained.
func hintsSound(t *testing.T, expr string, frames []hintFrame) int {
	t.Helper()
	h, err := Hints(expr)
	if err != nil {
		t.Fatalf("Hints(%q): %v", expr, err)
	}
	f, err := New(Options{BPF: expr})
	if err != nil && strings.Contains(err.Error(), "rejects all packets") {
		return 0 // libpcap refuses what can match nothing: no frame to break the hints
	}
	if err != nil {
		t.Fatalf("New(%q): %v", expr, err)
	}
	n := 0
	for _, fr := range frames {
		p := mirror.Packet{LinkType: layers.LinkTypeEthernet, Frame: fr.data}
		if !f.Match(&p) {
			continue
		}
		if why := checkHints(h, fr); why != "" {
			t.Errorf("%q keeps %s, but hints %+v: %s", expr, fr.desc, h, why)
		}
		if !h.Empty() {
			n++
		}
	}
	return n
}

// TestHintsSound: random expressions over random frames; whenever the
// compiled filter keeps a frame, the hints hold for it.
func TestHintsSound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	frames := make([]hintFrame, 600)
	for i := range frames {
		frames[i] = randFrame(t, r)
	}
	constrained := 0
	for range 1500 {
		constrained += hintsSound(t, randExpr(r, 3), frames)
	}
	// The property must be put to the test: frames kept under non-empty hints.
	if constrained < 10000 {
		t.Errorf("only %d kept frames had hints to check", constrained)
	}
}

// FuzzHints explores the same property from seeds of its own.
func FuzzHints(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(7), uint64(99))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		r := rand.New(rand.NewPCG(a, b))
		frames := make([]hintFrame, 100)
		for i := range frames {
			frames[i] = randFrame(t, r)
		}
		for range 20 {
			hintsSound(t, randExpr(r, 4), frames)
		}
	})
}
