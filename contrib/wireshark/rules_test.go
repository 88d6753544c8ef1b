package wireshark_test

import (
	"bytes"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// These tests check the metadata rules the dissector shares with vrsniff's
// decoder (docs/wireshark.md) on datagrams built for each rule.

// ruleCase is a datagram (the whole frame, of which snap bytes were
// captured; 0: all) and what the dissector must show for it.
type ruleCase struct {
	name  string
	frame []byte
	snap  int
	want  fieldWant
}

// writeCapture writes frames, cut to their snap length, as a pcap file.
func writeCapture(t *testing.T, path string, cs []ruleCase) {
	t.Helper()
	recs := make([]record, len(cs))
	for i, c := range cs {
		data := c.frame
		if c.snap > 0 {
			data = data[:c.snap]
		}
		recs[i] = record{data, len(c.frame)}
	}
	writeRecords(t, path, recs)
}

func runRuleCases(t *testing.T, cs []ruleCase, args ...string) {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "raw.pcap")
	writeCapture(t, raw, cs)
	rs := luaRecords(t, raw, args...)
	if len(rs) != len(cs) {
		t.Fatalf("%d frames, want %d", len(rs), len(cs))
	}
	checkOnce(t, "rules", rs)
	for i, c := range cs {
		t.Run(c.name, func(t *testing.T) {
			w := c.want
			w.frame = i + 1
			checkFieldWant(t, rs[i], w)
		})
	}
}

// wrappedName is a VN name over 255 bytes: its length byte wraps.
var wrappedName = "default-domain:admin:" + strings.Repeat("w", 279)

func TestLuaMetadataRules(t *testing.T) {
	runRuleCases(t, metadataRuleCases(t))
}

// metadataRuleCases are datagrams for each metadata rule.
func metadataRuleCases(t *testing.T) []ruleCase {
	tcp := innerTCP(t, 40000, 80, "GET / HTTP/1.1\r\n\r\n")
	big := innerTCP(t, 40001, 80, strings.Repeat("p", 1000))
	const inner = "10.1.1.3 > 10.2.2.4"
	in := be32(mirror.FlagIngress | mirror.FlagPass | mirror.FlagMirror)
	host := tlv(1, computeIP.To4())
	src, dst := tlv(3, []byte(srcVN)), tlv(4, []byte(dstVN))
	acl := func(frame int) fieldWant {
		return fieldWant{src: vn(srcVN), dst: vn(dstVN), host: "192.168.10.11",
			flags: mirror.FlagIngress | mirror.FlagPass | mirror.FlagMirror, flagBits: 32, dir: "ingress",
			frameLen: frame, inner: inner}
	}
	cur := cat(host, tlv(2, in), src, dst, tlvEnd)
	wrapped := append([]byte{3, byte(len(wrappedName))}, wrappedName...)

	// Two consistent readings of a wrapped name: as 10 bytes, followed by
	// an unknown TLV, the end marker and a 326-byte frame made of the rest
	// of the name; or as 266 bytes followed by the real end and frame.
	ambiguous := make([]byte, 266)
	copy(ambiguous, "default-domain:admin:ambiguous-")
	fake := ambiguous[10:]
	copy(fake, []byte{9, 0, 0xff, 0x00})
	copy(fake[4:], tcp[:12])
	copy(fake[4+12:], []byte{0x08, 0x00, 0x45, 0x00, 0x01, 0x38}) // IPv4, total length 312
	hostile := bytes.Repeat([]byte{3, 0}, 2000)

	return []ruleCase{
		{name: "ordinary", frame: outer(t, cat(cur, tcp), 8099, false), want: acl(len(tcp))},
		{name: "name with spaces, UTF-8 and a slash",
			frame: outer(t, cat(tlv(3, []byte("default-domain:admin:vn web/réseau")), tlvEnd, tcp), 8099, false),
			want:  fieldWant{src: vn("default-domain:admin:vn web/réseau"), dir: "ingress", frameLen: len(tcp), inner: inner}},
		{name: "empty names", frame: outer(t, cat(tlv(3, nil), tlv(4, nil), tlvEnd, tcp), 8099, false),
			want: fieldWant{src: vn(""), dst: vn(""), frameLen: len(tcp), inner: inner}},
		{name: "IPv6 router id", frame: outer(t, cat(tlv(1, netip.MustParseAddr("2001:db8::11").AsSlice()), tlv(2, in), src, dst, tlvEnd, tcp), 8099, false),
			want: func() fieldWant { w := acl(len(tcp)); w.host = "2001:db8::11"; return w }()},
		{name: "host of 7 bytes", frame: outer(t, cat(tlv(1, []byte{1, 2, 3, 4, 5, 6, 7}), tlv(2, in), src, dst, tlvEnd, tcp), 8099, false),
			want: func() fieldWant {
				w := acl(len(tcp))
				w.host, w.odd, w.present = "", 1, []string{"vrmirror.odd_tlv"}
				return w
			}()},
		{name: "flags of 3 bytes", frame: outer(t, cat(host, tlv(2, []byte{0, 0, 0xa0}), src, dst, tlvEnd, tcp), 8099, false),
			want: fieldWant{src: vn(srcVN), dst: vn(dstVN), host: "192.168.10.11", frameLen: len(tcp), inner: inner, odd: 1}},
		{name: "16-bit flags, both VNs: no direction", frame: outer(t, cat(host, tlv(2, []byte{0x00, 0xa0}), src, dst, tlvEnd, tcp), 8099, false),
			want: fieldWant{src: vn(srcVN), dst: vn(dstVN), host: "192.168.10.11", flags: mirror.FlagPass | mirror.FlagMirror,
				flagBits: 16, frameLen: len(tcp), inner: inner, absent: []string{"vrmirror.flags.ingress", "vrmirror.direction"}}},
		{name: "16-bit flags, port mirror", frame: outer(t, cat(tlv(2, []byte{0x00, 0x08}), src, tlvEnd, tcp), 8099, false),
			want: fieldWant{src: vn(srcVN), flags: mirror.FlagDeny, flagBits: 16, dir: "ingress", frameLen: len(tcp), inner: inner}},
		{name: "repeated VN: the last counts", frame: outer(t, cat(tlv(3, []byte("first")), src, tlvEnd, tcp), 8099, false),
			want: fieldWant{src: vn(srcVN), dir: "ingress", frameLen: len(tcp), inner: inner, present: []string{"vrmirror.repeated_tlv"}}},
		{name: "unknown type with no value", frame: outer(t, cat(host, tlv(200, nil), tlv(2, in), src, dst, tlvEnd, tcp), 8099, false),
			want: func() fieldWant { w := acl(len(tcp)); w.present = []string{"vrmirror.unknown_tlv"}; return w }()},
		{name: "wrapped name length recovered", frame: outer(t, cat(host, tlv(2, in), wrapped, dst, tlvEnd, tcp), 8099, false),
			want: func() fieldWant {
				w := acl(len(tcp))
				w.src, w.recovered, w.present = vn(wrappedName), true, []string{"vrmirror.wrapped_len"}
				return w
			}()},
		{name: "wrapped name recovered, frame cut by the snap length", frame: outer(t, cat(host, tlv(2, in), wrapped, dst, tlvEnd, big), 8099, false),
			snap: 42 + 12 + len(wrapped) + len(dst) + 2 + 40,
			want: func() fieldWant {
				w := acl(len(big))
				w.src, w.recovered, w.captured, w.inner = vn(wrappedName), true, 40, ""
				return w
			}()},
		{name: "wrapped name, two readings: malformed", frame: outer(t, cat([]byte{3, 10}, ambiguous, tlvEnd, tcp), 8099, false),
			want: fieldWant{err: "bad-tlv", errOff: 0, present: []string{"vrmirror.malformed"}, absent: noValues}},
		{name: "wrapped name cut by the snap length", frame: outer(t, cat(host, tlv(2, in), wrapped, dst, tlvEnd, tcp), 8099, false), snap: 42 + 100,
			want: fieldWant{err: "truncated", errOff: 12 + 2 + len(wrappedName) - 256, absent: noValues}},
		{name: "search budget", frame: outer(t, hostile, 8099, false),
			want: fieldWant{err: "bad-tlv", errOff: len(hostile), absent: noValues}},
		{name: "frame cut by the snap length", frame: outer(t, cat(cur, big), 8099, false), snap: 200,
			want: func() fieldWant { w := acl(len(big)); w.captured, w.inner = 200-42-len(cur), ""; return w }()},
		{name: "legacy, frame cut by the snap length", frame: outer(t, cat(legacyHeader(len(cur)+len(big), len(cur)+len(big)), cur, big), 8099, false), snap: 300,
			want: func() fieldWant {
				w := acl(len(big))
				w.captured, w.inner, w.legacy = 300-42-16-len(cur), "", true
				return w
			}()},
		{name: "cut inside the legacy header", frame: outer(t, cat(legacyHeader(len(cur)+len(tcp), len(cur)+len(tcp)), cur, tcp), 8099, false), snap: 42 + 10,
			want: fieldWant{err: "truncated", errOff: 0, absent: noValues}},
		{name: "cut before the Ethernet header", frame: outer(t, cat(cur, tcp), 8099, false), snap: 42 + len(cur) + 10,
			want: fieldWant{err: "truncated", errOff: len(cur)}},
		{name: "frame shorter than Ethernet", frame: outer(t, cat(cur, tcp[:10]), 8099, false),
			want: fieldWant{err: "bad-inner-frame", errOff: len(cur), present: []string{"vrmirror.malformed"}}},
	}
}

// TestLuaOverlays checks mirror datagrams a sniffer on the fabric sees
// inside the overlay tunnel: Wireshark's own dissectors hand the inner
// datagram to the dissector on their default ports; MPLS over UDP on the
// old port 51234, and an MPLS label that carries Ethernet, need Decode As.
func TestLuaOverlays(t *testing.T) {
	plain, decodeAs := overlayCases(t)
	runRuleCases(t, plain)
	for _, c := range decodeAs {
		runRuleCases(t, []ruleCase{c.ruleCase}, "-d", c.decodeAs)
		// Without it Wireshark does not hand the datagram over, as
		// docs/wireshark.md says.
		raw := filepath.Join(t.TempDir(), "raw.pcap")
		writeCapture(t, raw, []ruleCase{c.ruleCase})
		if rs := luaRecords(t, raw); rs[0].present {
			t.Errorf("%s: decoded without Decode As (%s): update docs/wireshark.md", c.name, rs[0].protocols)
		}
	}
}

type decodeAsCase struct {
	decodeAs string // tshark -d argument
	ruleCase
}

// overlayCases are mirror datagrams inside fabric tunnels: those Wireshark
// opens by itself, and those it needs Decode As for.
func overlayCases(t *testing.T) (plain []ruleCase, decodeAs []decodeAsCase) {
	tcp := innerTCP(t, 40000, 80, "GET / HTTP/1.1\r\n\r\n")
	in := be32(mirror.FlagIngress | mirror.FlagPass | mirror.FlagMirror)
	datagram := outer(t, cat(tlv(1, computeIP.To4()), tlv(2, in), tlv(3, []byte(srcVN)), tlv(4, []byte(dstVN)), tlvEnd, tcp), 8099, false)
	ipDatagram := datagram[14:]
	fabric := func(ls ...gopacket.SerializableLayer) []byte {
		eth := &layers.Ethernet{SrcMAC: outerSrc, DstMAC: outerDst, EthernetType: layers.EthernetTypeIPv4}
		proto := layers.IPProtocolUDP
		if _, ok := ls[0].(*layers.GRE); ok {
			proto = layers.IPProtocolGRE
		}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.IP{192, 0, 2, 11}, DstIP: net.IP{192, 0, 2, 12}}
		if udp, ok := ls[0].(*layers.UDP); ok {
			udp.SetNetworkLayerForChecksum(ip)
		}
		return testenv.Serialize(t, append([]gopacket.SerializableLayer{eth, ip}, ls...)...)
	}
	label := &layers.MPLS{Label: 38, StackBottom: true, TTL: 64}
	want := func(o mirror.Overlay) fieldWant {
		return fieldWant{src: vn(srcVN), dst: vn(dstVN), host: "192.168.10.11",
			flags: mirror.FlagIngress | mirror.FlagPass | mirror.FlagMirror, flagBits: 32, dir: "ingress",
			frameLen: len(tcp), inner: "10.1.1.3 > 10.2.2.4", overlay: o}
	}
	plain = []ruleCase{
		{name: "MPLS over UDP 6635", frame: fabric(&layers.UDP{SrcPort: 50000, DstPort: 6635}, label, gopacket.Payload(ipDatagram)),
			want: want(mirror.OverlayMPLSoUDP)},
		{name: "MPLS over GRE", frame: fabric(&layers.GRE{Protocol: layers.EthernetTypeMPLSUnicast}, label, gopacket.Payload(ipDatagram)),
			want: want(mirror.OverlayMPLSoGRE)},
		{name: "VXLAN", frame: fabric(&layers.UDP{SrcPort: 50000, DstPort: 4789}, &layers.VXLAN{ValidIDFlag: true, VNI: 5001}, gopacket.Payload(datagram)),
			want: want(mirror.OverlayVXLAN)},
	}
	decodeAs = []decodeAsCase{
		{"udp.port==51234,mpls", ruleCase{name: "MPLS over UDP 51234",
			frame: fabric(&layers.UDP{SrcPort: 50000, DstPort: 51234}, label, gopacket.Payload(ipDatagram)),
			want:  want(mirror.OverlayMPLSoUDP)}},
		// An Ethernet payload whose destination MAC starts with a 0 nibble
		// (Contrail's 02:… VM MACs) is taken for a pseudowire with a
		// control word.
		{"mpls.label==38,pwethnocw", ruleCase{name: "MPLS over UDP, Ethernet payload",
			frame: fabric(&layers.UDP{SrcPort: 50000, DstPort: 6635}, label, gopacket.Payload(cat(vmMAC, datagram[6:]))),
			want:  want(mirror.OverlayMPLSoUDP)}},
	}
	return plain, decodeAs
}

// TestLuaRulesMatchDecap compares the dissector with vrsniff decap on the
// datagrams of TestLuaMetadataRules and TestLuaOverlays, as
// TestLuaFieldCasesMatchDecap does on the field cases.
func TestLuaRulesMatchDecap(t *testing.T) {
	plain, decodeAs := overlayCases(t)
	sets := []decodeAsCase{}
	for _, c := range append(metadataRuleCases(t), plain...) {
		sets = append(sets, decodeAsCase{"", c})
	}
	sets = append(sets, decodeAs...)
	for _, c := range sets {
		t.Run(c.name, func(t *testing.T) {
			raw := filepath.Join(t.TempDir(), "raw.pcap")
			writeCapture(t, raw, []ruleCase{c.ruleCase})
			var args []string
			if c.decodeAs != "" {
				args = []string{"-d", c.decodeAs}
			}
			ps, err := pcapfile.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			decoded, rejected := runDecap(t, raw, mirror.DefaultPort)
			compareWithDecap(t, ps, luaRecords(t, raw, args...), decoded, rejected)
		})
	}
}
