package wireshark_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
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
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vrsniff/vrsniff/internal/decap"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// These tests run the dissector in the real tshark on raw captures of
// mirror datagrams and check it against vrsniff decap on the same files.

const (
	srcVN = "default-domain:admin:vn-left"
	dstVN = "default-domain:admin:vn-right"
)

var (
	vmMAC     = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	vrMAC     = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x00}
	outerSrc  = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x0a}
	outerDst  = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x0b}
	vmIP      = net.IP{10, 1, 1, 3}
	peerIP    = net.IP{10, 2, 2, 4}
	computeIP = net.IP{192, 168, 10, 11}
	sniffIP   = net.IP{192, 168, 10, 99}
)

// innerTCP is a frame a VM sent: Ethernet, IPv4, TCP with some payload.
func innerTCP(t *testing.T, sport, dport uint16, payload string) []byte {
	eth := &layers.Ethernet{SrcMAC: vmMAC, DstMAC: vrMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: sport, Protocol: layers.IPProtocolTCP, SrcIP: vmIP, DstIP: peerIP}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Window: 512, ACK: true, PSH: true}
	tcp.SetNetworkLayerForChecksum(ip)
	return testenv.Serialize(t, eth, ip, tcp, gopacket.Payload(payload))
}

func innerUDP6(t *testing.T, etherType layers.EthernetType) []byte {
	eth := &layers.Ethernet{SrcMAC: vrMAC, DstMAC: vmMAC, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: net.ParseIP("fd00::2"), DstIP: net.ParseIP("fd00::1")}
	udp := &layers.UDP{SrcPort: 5353, DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	f := testenv.Serialize(t, eth, ip, udp, gopacket.Payload("query"))
	binary.BigEndian.PutUint16(f[12:], uint16(etherType))
	return f
}

func innerVLAN(t *testing.T) []byte {
	eth := &layers.Ethernet{SrcMAC: vmMAC, DstMAC: vrMAC, EthernetType: layers.EthernetTypeDot1Q}
	vlan := &layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: vmIP, DstIP: peerIP}
	udp := &layers.UDP{SrcPort: 4000, DstPort: 4001}
	udp.SetNetworkLayerForChecksum(ip)
	return testenv.Serialize(t, eth, vlan, ip, udp, gopacket.Payload("vlan payload"))
}

func tlv(typ byte, v []byte) []byte { return append([]byte{typ, byte(len(v))}, v...) }

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

var tlvEnd = []byte{0xff, 0x00}

// acl is the metadata of policy (ACL) mirroring.
func acl(src, dst string, flags uint32) []byte {
	b := tlv(1, computeIP.To4())
	b = append(b, tlv(2, be32(flags))...)
	b = append(b, tlv(3, []byte(src))...)
	b = append(b, tlv(4, []byte(dst))...)
	return append(b, tlvEnd...)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// legacyHeader is the 16-byte record header of older vRouters.
func legacyHeader(incl, orig int) []byte {
	return cat(be32(1475000000), be32(123456), be32(uint32(incl)), be32(uint32(orig)))
}

// outer wraps a mirror payload in Ethernet / IPv4 (or IPv6) / UDP to port.
func outer(t *testing.T, payload []byte, port uint16, v6 bool) []byte {
	udp := &layers.UDP{SrcPort: 49152 + 77, DstPort: layers.UDPPort(port)}
	if v6 {
		eth := &layers.Ethernet{SrcMAC: outerSrc, DstMAC: outerDst, EthernetType: layers.EthernetTypeIPv6}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.ParseIP("fd10::11"), DstIP: net.ParseIP("fd10::99")}
		udp.SetNetworkLayerForChecksum(ip)
		return testenv.Serialize(t, eth, ip, udp, gopacket.Payload(payload))
	}
	eth := &layers.Ethernet{SrcMAC: outerSrc, DstMAC: outerDst, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: computeIP, DstIP: sniffIP}
	udp.SetNetworkLayerForChecksum(ip)
	return testenv.Serialize(t, eth, ip, udp, gopacket.Payload(payload))
}

type testCase struct {
	name  string
	frame []byte // the whole captured frame
}

func cases(t *testing.T) []testCase {
	ing := uint32(mirror.FlagIngress | mirror.FlagPass | mirror.FlagMirror)
	tcp := innerTCP(t, 40000, 80, "GET / HTTP/1.1\r\n\r\n")
	reply := innerTCP(t, 80, 40000, "HTTP/1.1 200 OK\r\n\r\n")
	cur := acl(srcVN, dstVN, ing)
	unknownMid := cat(tlv(1, computeIP.To4()), tlv(7, []byte{9, 9, 9}), tlv(3, []byte(srcVN)), tlv(200, nil), tlv(4, []byte(dstVN)), tlvEnd)
	unknownFirst := cat(tlv(9, []byte("future")), tlv(2, be32(mirror.FlagDeny|mirror.FlagImplicitDeny)), tlvEnd)
	return []testCase{
		{"acl ingress", outer(t, cat(cur, tcp), 8099, false)},
		{"acl egress reply", outer(t, cat(acl(dstVN, srcVN, mirror.FlagPass|mirror.FlagMirror), reply), 8099, false)},
		{"acl deny, unnamed bit", outer(t, cat(acl(srcVN, dstVN, mirror.FlagDeny|mirror.FlagIngress|1<<15), tcp), 8099, false)},
		{"port mirror rx", outer(t, cat(tlv(3, []byte(srcVN)), tlvEnd, tcp), 8099, false)},
		{"port mirror tx", outer(t, cat(tlv(4, []byte(dstVN)), tlvEnd, reply), 8099, false)},
		{"no metadata", outer(t, cat(tlvEnd, tcp), 8099, false)},
		{"legacy incl all", outer(t, cat(legacyHeader(len(cur)+len(tcp), len(cur)+len(tcp)), cur, tcp), 8099, false)},
		{"legacy incl frame", outer(t, cat(legacyHeader(len(tcp), len(tcp)), cur, tcp), 8099, false)},
		{"unknown tlv inside", outer(t, cat(unknownMid, tcp), 8099, false)},
		{"unknown tlv first", outer(t, cat(unknownFirst, tcp), 8099, false)},
		{"inner ipv6 labelled ipv4", outer(t, cat(cur, innerUDP6(t, layers.EthernetTypeIPv4)), 8099, false)},
		{"inner ipv6", outer(t, cat(cur, innerUDP6(t, layers.EthernetTypeIPv6)), 8099, false)},
		{"inner vlan", outer(t, cat(cur, innerVLAN(t)), 8099, false)},
		{"outer ipv6", outer(t, cat(cur, tcp), 8099, true)},
		{"bad: value past datagram", outer(t, cat(tlv(1, computeIP.To4()), []byte{3, 200}, []byte("short")), 8099, false)},
		{"bad: no end marker", outer(t, cat(tlv(1, computeIP.To4()), tlv(3, []byte(srcVN))), 8099, false)},
		{"bad: frame too short", outer(t, cat(cur, tcp[:10]), 8099, false)},
		{"bad: end marker with a length", outer(t, cat(tlv(3, []byte(srcVN)), []byte{0xff, 0x04}, tcp), 8099, false)},
	}
}

func writePcap(t *testing.T, path string, cs []testCase) {
	t.Helper()
	recs := make([]record, len(cs))
	for i, c := range cs {
		recs[i] = record{c.frame, len(c.frame)}
	}
	writeRecords(t, path, recs)
}

// record is a captured frame and its length on the wire.
type record struct {
	data []byte
	wire int
}

// writeRecords writes records as a pcap file of Ethernet frames, a
// millisecond apart.
func writeRecords(t *testing.T, path string, recs []record) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	for i, r := range recs {
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(r.data), Length: r.wire}
		if err := w.WritePacket(ci, r.data); err != nil {
			t.Fatal(err)
		}
	}
}

func luaScript(t *testing.T) string {
	p, err := filepath.Abs("vrouter_mirror.lua")
	if err != nil {
		t.Fatal(err)
	}
	return "lua_script:" + p
}

var luaFields = []string{
	"vrmirror.error", "vrmirror.src_vn", "vrmirror.dst_vn", "vrmirror.host", "vrmirror.flags",
	"vrmirror.direction", "vrmirror.legacy", "vrmirror.frame_len", "frame.protocols", "vrmirror.error_offset",
}

func fieldArgs(fields []string) []string {
	args := []string{"-T", "fields", "-E", "occurrence=l"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	return args
}

// TestLuaMatchesDecap decodes every case with the dissector and with
// vrsniff decap and compares the metadata, the inner frame's dissection and
// the rejects.
func TestLuaMatchesDecap(t *testing.T) {
	cs := cases(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	writePcap(t, raw, cs)

	// vrsniff decap: decoded frames with metadata comments, and rejects.
	in, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	var out, rej bytes.Buffer
	if _, err := decap.Run(context.Background(), bytes.NewReader(in),
		decap.Options{Format: pcapfile.FormatPcapNG, Out: &out, Rejects: &rej}); err != nil {
		t.Fatal(err)
	}
	decoded, rejects := filepath.Join(dir, "decoded.pcapng"), filepath.Join(dir, "rejects.pcapng")
	if err := os.WriteFile(decoded, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rejects, rej.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	innerFields := []string{"frame.protocols", "eth.src", "eth.dst", "eth.type", "vlan.id", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "frame.comment"}
	want := testenv.TsharkRows(t, append([]string{"-r", decoded}, fieldArgs(innerFields)...)...)
	wantRej := testenv.TsharkRows(t, append([]string{"-r", rejects}, fieldArgs([]string{"frame.comment"})...)...)

	lua := luaScript(t)
	got := testenv.TsharkRows(t, append([]string{"-X", lua, "-r", raw}, fieldArgs(luaFields)...)...)
	gotInner := testenv.TsharkRows(t, append([]string{"-X", lua, "-r", raw}, fieldArgs(innerFields)...)...)
	if len(got) != len(cs) || len(gotInner) != len(cs) {
		t.Fatalf("tshark with the dissector gave %d/%d rows for %d packets", len(got), len(gotInner), len(cs))
	}

	var d, r int // next row of the decoded and the rejects file
	for i, c := range cs {
		row := got[i]
		if row[0] != "" {
			if r >= len(wantRej) {
				t.Errorf("%s: dissector says %q, decap decoded it", c.name, row[0])
				continue
			}
			// The dissector counts offsets in the UDP payload, decap in the
			// captured frame.
			off, err := strconv.Atoi(row[9])
			if err != nil {
				t.Fatalf("%s: error offset %q", c.name, row[9])
			}
			if w := fmt.Sprintf("malformed: %s at offset %d", row[0], off+payloadStart(c.frame)); wantRej[r][0] != w {
				t.Errorf("%s: dissector error %q, decap reject reason %q", c.name, w, wantRej[r][0])
			}
			r++
			continue
		}
		if d >= len(want) {
			t.Errorf("%s: decap rejected it, the dissector decoded it", c.name)
			continue
		}
		w := want[d]
		d++
		// The decap comment from the dissector's fields.
		var p mirror.Packet
		p.Mode = mirror.ModeJuniper
		if row[1] != "" {
			p.Meta.SrcVN = []byte(row[1])
		}
		if row[2] != "" {
			p.Meta.DstVN = []byte(row[2])
		}
		if row[3] != "" {
			p.Meta.Host = netip.MustParseAddr(row[3])
		}
		if row[4] != "" {
			v, err := strconv.ParseUint(strings.TrimPrefix(row[4], "0x"), 16, 32)
			if err != nil {
				t.Fatalf("%s: flags %q: %v", c.name, row[4], err)
			}
			p.Meta.Flags, p.Meta.FlagBits = uint32(v), 32
		}
		p.Meta.Direction, _ = mirror.ParseDirection(row[5])
		p.Meta.Legacy = row[6] == "1" || row[6] == "True"
		if got, wantC := string(mirror.AppendComment(nil, &p)), w[len(w)-1]; got != wantC {
			t.Errorf("%s: metadata from the dissector %q, decap comment %q", c.name, got, wantC)
		}
		// The inner frame: same dissection as decap's output, field by field.
		gi := gotInner[i]
		proto := gi[0]
		k := strings.Index(proto, ":vrmirror:")
		if k < 0 {
			t.Errorf("%s: protocols %q: vrmirror missing", c.name, proto)
			continue
		}
		if innerProto := proto[k+len(":vrmirror:"):]; innerProto != w[0] {
			t.Errorf("%s: inner protocols %q, decap %q", c.name, innerProto, w[0])
		}
		if n := frameLen(t, decoded, d-1); row[7] != strconv.Itoa(n) {
			t.Errorf("%s: frame_len %s, decap frame %d bytes", c.name, row[7], n)
		}
		for j, name := range innerFields[1 : len(innerFields)-1] {
			j++
			if name == "vlan.id" || strings.HasPrefix(name, "tcp.") {
				// Present only in the inner frame, or absent from both.
				if gi[j] != w[j] {
					t.Errorf("%s: %s %q, decap %q", c.name, name, gi[j], w[j])
				}
				continue
			}
			// eth, ip and ipv6 may exist in the outer frame too: the last occurrence
			// is the inner one when the inner frame has the layer.
			if w[j] != "" && gi[j] != w[j] {
				t.Errorf("%s: %s %q, decap %q", c.name, name, gi[j], w[j])
			}
		}
	}
	if d != len(want) || r != len(wantRej) {
		t.Errorf("matched %d of %d decoded and %d of %d rejected packets", d, len(want), r, len(wantRej))
	}
}

// payloadStart is the offset of the UDP payload in a frame built by outer.
func payloadStart(frame []byte) int {
	if binary.BigEndian.Uint16(frame[12:]) == uint16(layers.EthernetTypeIPv6) {
		return 14 + 40 + 8
	}
	return 14 + 20 + 8
}

var frameLens = map[string][]string{}

// frameLen is the length of the i-th frame of decap's output.
func frameLen(t *testing.T, decoded string, i int) int {
	t.Helper()
	ls, ok := frameLens[decoded]
	if !ok {
		for _, r := range testenv.TsharkRows(t, "-r", decoded, "-T", "fields", "-e", "frame.len") {
			ls = append(ls, r[0])
		}
		frameLens[decoded] = ls
	}
	n, err := strconv.Atoi(ls[i])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLuaDisplayFilters checks that filters on the metadata and on the
// inner frame select the expected packets.
func TestLuaDisplayFilters(t *testing.T) {
	cs := cases(t)
	raw := filepath.Join(t.TempDir(), "raw.pcap")
	writePcap(t, raw, cs)
	lua := luaScript(t)
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`vrmirror.src_vn == "` + srcVN + `" && tcp.dstport == 80 && vrmirror.flags.pass == 1`, []string{"1", "7", "8", "14"}},
		{`vrmirror.direction == "egress"`, []string{"2", "5", "10"}},
		{`vrmirror.flags.deny == 1`, []string{"3", "10"}},
		{`vrmirror.legacy`, []string{"7", "8"}},
		{`vrmirror.host == 192.168.10.11 && ipv6.dst == fd00::1`, []string{"11", "12"}},
		{`vlan.id == 42 && vrmirror`, []string{"13"}},
		{`vrmirror.malformed`, []string{"15", "16", "17", "18"}},
		{`vrmirror.unknown_tlv`, []string{"9", "10"}},
	} {
		rows := testenv.TsharkRows(t, "-X", lua, "-r", raw, "-Y", tc.filter, "-T", "fields", "-e", "frame.number")
		var got []string
		for _, r := range rows {
			got = append(got, r[0])
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: frames %v, want %v", tc.filter, got, tc.want)
		}
	}
}

// TestLuaPortPreference moves the dissector to another port through its
// preference: the default port is then left alone.
func TestLuaPortPreference(t *testing.T) {
	tcp := innerTCP(t, 1234, 443, "x")
	cs := []testCase{
		{"default port", outer(t, cat(acl(srcVN, dstVN, mirror.FlagPass), tcp), 8099, false)},
		{"custom port", outer(t, cat(acl(srcVN, dstVN, mirror.FlagPass), tcp), 9555, false)},
	}
	raw := filepath.Join(t.TempDir(), "raw.pcap")
	writePcap(t, raw, cs)
	lua := luaScript(t)
	for _, tc := range []struct {
		pref string
		want string
	}{
		{"", "1"},
		{"vrmirror.ports:9555", "2"},
		{"vrmirror.ports:8099,9555", "1,2"},
	} {
		args := []string{"-X", lua, "-r", raw, "-Y", "vrmirror.src_vn", "-T", "fields", "-e", "frame.number"}
		if tc.pref != "" {
			args = append([]string{"-o", tc.pref}, args...)
		}
		var got []string
		for _, r := range testenv.TsharkRows(t, args...) {
			got = append(got, r[0])
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%q: frames %v, want %s", tc.pref, got, tc.want)
		}
	}
}

// TestLuaInnerBytes checks the inner frame the dissector hands on, byte for
// byte, against the mirrored frame, with the frame's own data field.
func TestLuaInnerBytes(t *testing.T) {
	tcp := innerTCP(t, 5555, 22, "ssh-2.0")
	cs := []testCase{{"acl", outer(t, cat(acl(srcVN, dstVN, mirror.FlagPass), tcp), 8099, false)}}
	raw := filepath.Join(t.TempDir(), "raw.pcap")
	writePcap(t, raw, cs)
	rows := testenv.TsharkRows(t, "-X", luaScript(t), "-r", raw, "-T", "fields", "-e", "vrmirror.frame")
	got, err := hex.DecodeString(strings.ReplaceAll(rows[0][0], ":", ""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, tcp) {
		t.Errorf("inner frame\n got %x\nwant %x", got, tcp)
	}
}
