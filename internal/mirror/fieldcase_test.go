package mirror_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// The field cases (shared/field-cases/README.md): captures built from
// real-world reports, each with the result a correct decoder gives. Each
// test asserts that result on the file; the generator produces the same
// kinds for the round trip.

// decoded is what came out of one field case.
type decoded struct {
	frames   []frame
	failures []mirror.Reason
	merged   int // fragments merged into a frame they did not end
	dups     int
	hints    mirror.Hints
}

type frame struct {
	data      []byte
	meta      mirror.Meta
	frameLen  int
	truncated bool
	comment   string
}

func decodeField(t *testing.T, name string, c mirror.Config) decoded {
	t.Helper()
	pkts, err := pcapfile.ReadFile(testenv.FieldCase(t, name))
	if err != nil {
		t.Fatal(err)
	}
	d := mirror.NewDecoder(c)
	var out decoded
	recordFailure := func(p *mirror.Packet) { out.failures = append(out.failures, p.Err) }
	for i := range pkts {
		p := &pkts[i]
		switch d.Decode(p) {
		case mirror.Decoded:
			m := p.Meta
			m.SrcVN, m.DstVN = bytes.Clone(m.SrcVN), bytes.Clone(m.DstVN)
			out.frames = append(out.frames, frame{bytes.Clone(p.Frame), m, p.FrameLen, p.Truncated, string(mirror.AppendComment(nil, p))})
			out.merged += max(0, p.Fragments-1)
		case mirror.Failed:
			recordFailure(p)
			out.merged += max(0, p.Fragments-1)
		case mirror.Merged:
			out.merged++
		case mirror.Duplicate:
			out.dups++
		}
		d.Expire(p.Timestamp, recordFailure)
	}
	d.Flush(recordFailure)
	out.hints = d.Hints()
	if got := len(out.frames) + len(out.failures) + out.merged + out.dups; got != len(pkts) {
		t.Errorf("%s: %d packets read, %d accounted for", name, len(pkts), got)
	}
	return out
}

func (o decoded) wantFrames(t *testing.T, n int) {
	t.Helper()
	if len(o.frames) != n {
		t.Fatalf("%d frames, want %d; failures %v", len(o.frames), n, o.failures)
	}
}

func (o decoded) wantNoFailures(t *testing.T) {
	t.Helper()
	if len(o.failures) != 0 {
		t.Fatalf("failures %v", o.failures)
	}
}

const (
	vnWeb = "default-domain:admin:vn-web"
	vnDB  = "default-domain:admin:vn-db"
)

var host11 = netip.MustParseAddr("192.0.2.11")

// icmpEcho checks that f is an ICMP echo request src → dst with sequence seq.
func icmpEcho(t *testing.T, f []byte, src, dst string, seq uint16) {
	t.Helper()
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	icmp, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ip == nil || icmp == nil {
		t.Fatalf("not ICMP over IPv4: %v", pkt)
	}
	if ip.SrcIP.String() != src || ip.DstIP.String() != dst || icmp.TypeCode.Type() != layers.ICMPv4TypeEchoRequest || icmp.Seq != seq {
		t.Fatalf("ICMP %s -> %s type %v seq %d, want echo request %s -> %s seq %d", ip.SrcIP, ip.DstIP, icmp.TypeCode, icmp.Seq, src, dst, seq)
	}
}

func TestFieldTLVLengths(t *testing.T) {
	o := decodeField(t, "f01_tlv_lengths_16_and_2.pcap", mirror.Config{})
	o.wantNoFailures(t)
	o.wantFrames(t, 3)
	for i, f := range o.frames {
		if string(f.meta.SrcVN) != vnWeb || string(f.meta.DstVN) != vnDB {
			t.Errorf("#%d: VNs %q -> %q", i+1, f.meta.SrcVN, f.meta.DstVN)
		}
		icmpEcho(t, f.data, "10.1.1.3", "10.2.2.3", uint16(i+1))
	}
	if h := o.frames[0].meta.Host; !h.Is6() {
		t.Errorf("#1: host %v, want the IPv6 router id", h)
	}
	if m := o.frames[1].meta; m.FlagBits != 16 || m.Flags != mirror.FlagPass|mirror.FlagMirror {
		t.Errorf("#2: flags %#x of %d bits, want 0x00a0 of 16", m.Flags, m.FlagBits)
	}
	if c := o.frames[1].comment; !strings.Contains(c, "action=pass,mirror flags_len=2") {
		t.Errorf("#2: comment %q", c)
	}
}

func TestFieldNonDefaultPort(t *testing.T) {
	const file = "f02_port_8888.pcap"
	o := decodeField(t, file, mirror.Config{PassThrough: true})
	if want := []mirror.PortCount{{Port: 8888, Count: 6}}; len(o.hints.CandidatePorts) != 1 || o.hints.CandidatePorts[0] != want[0] {
		t.Errorf("without --port: candidate ports %v, want %v", o.hints.CandidatePorts, want)
	}
	for _, c := range []mirror.Config{{Traffic: mirror.Traffic{Ports: []uint16{8888}}}, {Traffic: mirror.Traffic{AutoPorts: true}}} {
		o = decodeField(t, file, c)
		o.wantNoFailures(t)
		o.wantFrames(t, 6)
		var in, eg int
		for i, f := range o.frames {
			switch {
			case f.meta.Direction == mirror.DirIngress && string(f.meta.SrcVN) != "" && f.meta.DstVN == nil:
				in++
			case f.meta.Direction == mirror.DirEgress && string(f.meta.DstVN) != "" && f.meta.SrcVN == nil:
				eg++
			default:
				t.Errorf("%+v: #%d: %s", c, i+1, f.comment)
			}
		}
		if in != 3 || eg != 3 {
			t.Errorf("%+v: %d ingress, %d egress", c, in, eg)
		}
		if len(o.hints.CandidatePorts) != 0 {
			t.Errorf("%+v: candidate ports %v", c, o.hints.CandidatePorts)
		}
	}
}

func TestFieldACLOnPort8159(t *testing.T) {
	o := decodeField(t, "f03_port_8159_acl.pcap", mirror.Config{Traffic: mirror.Traffic{Ports: []uint16{8159}}})
	o.wantNoFailures(t)
	o.wantFrames(t, 4)
	for i, f := range o.frames {
		pkt := gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.Default)
		icmp, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if icmp == nil {
			t.Fatalf("#%d: not ICMP", i+1)
		}
		src, dst, dir := f.meta.SrcVN, f.meta.DstVN, mirror.DirIngress
		if icmp.TypeCode.Type() == layers.ICMPv4TypeEchoReply {
			src, dst, dir = dst, src, mirror.DirEgress
		}
		if string(src) != string(o.frames[0].meta.SrcVN) || string(dst) != string(o.frames[0].meta.DstVN) || f.meta.Direction != dir || len(src) == 0 || string(src) == string(dst) {
			t.Errorf("#%d: %s", i+1, f.comment)
		}
	}
}

func TestFieldFabricOverlay(t *testing.T) {
	o := decodeField(t, "f04_fabric_overlay.pcap", mirror.Config{})
	o.wantNoFailures(t)
	o.wantFrames(t, 3)
	for i, want := range []mirror.Overlay{mirror.OverlayMPLSoUDP, mirror.OverlayMPLSoGRE, mirror.OverlayVXLAN} {
		f := o.frames[i]
		m := f.meta
		if m.Overlay != want || string(m.SrcVN) != vnWeb || string(m.DstVN) != vnDB || m.Direction != mirror.DirIngress || m.Host != host11 {
			t.Errorf("#%d: %s, want overlay=%s", i+1, f.comment, want)
		}
		icmpEcho(t, f.data, "10.1.1.3", "10.2.2.3", uint16(i+1))
	}
}

func TestFieldInnerVLANIPv6(t *testing.T) {
	o := decodeField(t, "f05_inner_vlan_ipv6.pcap", mirror.Config{})
	o.wantNoFailures(t)
	o.wantFrames(t, 4)
	for i, f := range o.frames {
		pkt := gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.Default)
		if pkt.Layer(layers.LayerTypeIPv6) == nil || pkt.Layer(layers.LayerTypeICMPv6) == nil {
			t.Errorf("#%d: no ICMPv6 over IPv6 in %v", i+1, pkt)
		}
	}
	if f := o.frames[3].data; binary.BigEndian.Uint16(f[12:]) != 0x8100 || binary.BigEndian.Uint16(f[16:]) != 0x86dd {
		t.Errorf("#4: EtherTypes %x %x, want the tag then 86dd", f[12:14], f[16:18])
	}
}

func TestFieldOuterTags(t *testing.T) {
	o := decodeField(t, "f06_outer_two_and_three_tags.pcap", mirror.Config{})
	o.wantNoFailures(t)
	o.wantFrames(t, 2)
	if !bytes.Equal(o.frames[0].data, o.frames[1].data) || o.frames[0].comment != o.frames[1].comment {
		t.Errorf("behind 2 and 3 tags: different results %q, %q", o.frames[0].comment, o.frames[1].comment)
	}
}

func TestFieldThreeInterfaces(t *testing.T) {
	o := decodeField(t, "f09_three_interfaces_ns.pcapng", mirror.Config{})
	o.wantNoFailures(t)
	o.wantFrames(t, 4)
	for i, f := range o.frames {
		if f.truncated != (i == 1) {
			t.Errorf("#%d: truncated %v", i+1, f.truncated)
		}
	}
	if f := o.frames[1]; f.frameLen != 242 || !strings.Contains(f.comment, "truncated=242") {
		t.Errorf("#2: frame length %d, comment %q; want 242", f.frameLen, f.comment)
	}
}

func TestFieldSnapLen200(t *testing.T) {
	o := decodeField(t, "f10_snaplen_200.pcap", mirror.Config{})
	o.wantFrames(t, 6)
	var data, acks int
	for i, f := range o.frames {
		switch {
		case f.truncated:
			data++
			if f.frameLen != 1514 || len(f.data) != 87 || string(f.meta.SrcVN) != vnWeb || string(f.meta.DstVN) != vnDB {
				t.Errorf("#%d: %d of %d bytes, %s", i+1, len(f.data), f.frameLen, f.comment)
			}
		default:
			acks++
			if string(f.meta.SrcVN) != vnDB || string(f.meta.DstVN) != vnWeb {
				t.Errorf("#%d: %s", i+1, f.comment)
			}
		}
	}
	if data != 3 || acks != 3 {
		t.Errorf("%d truncated data segments, %d ACKs", data, acks)
	}
	if len(o.failures) != 1 || o.failures[0] != mirror.ErrTruncated || o.merged != 3 {
		t.Errorf("failures %v, merged %d; want one truncated, 3 merged", o.failures, o.merged)
	}
	if o.hints.ShortSnap != 1 {
		t.Errorf("cut in the metadata: %d", o.hints.ShortSnap)
	}
}

func TestFieldWrappedNameLengths(t *testing.T) {
	o := decodeField(t, "f11_wrapped_name_lengths.pcap", mirror.Config{})
	// Each datagram is either reported malformed or written with its full
	// name: never a name read with the wrapped length.
	for _, r := range o.failures {
		if r != mirror.ErrTLV {
			t.Errorf("failure %v, want bad-tlv", r)
		}
	}
	if len(o.frames)+len(o.failures) != 4 {
		t.Fatalf("%d frames, %d failures", len(o.frames), len(o.failures))
	}
	for i, f := range o.frames {
		if len(f.meta.SrcVN) <= 255 || !f.meta.NameRecovered || string(f.meta.DstVN) != vnDB || !strings.HasPrefix(string(f.meta.SrcVN), "default-domain:admin:") {
			t.Errorf("#%d: %d-byte source VN, %s", i+1, len(f.meta.SrcVN), f.comment)
		}
		for _, c := range f.meta.SrcVN {
			if c < 0x21 || c > 0x7e {
				t.Fatalf("#%d: source VN holds %#x: read past the name", i+1, c)
			}
		}
		icmpEcho(t, f.data, "10.1.1.3", "10.2.2.3", binary.BigEndian.Uint16(f.data[14+20+6:]))
	}
	if len(o.frames) != 4 {
		t.Errorf("%d of 4 names recovered", len(o.frames))
	}
}

func TestFieldEmptyVNDeny(t *testing.T) {
	o := decodeField(t, "f12_empty_vn_deny.pcap", mirror.Config{})
	o.wantNoFailures(t)
	o.wantFrames(t, 4)
	if m := o.frames[0].meta; m.DstVN == nil || len(m.DstVN) != 0 {
		t.Errorf("#1: destination VN %q, want present and empty", m.DstVN)
	}
	if m := o.frames[1].meta; m.SrcVN == nil || len(m.SrcVN) != 0 {
		t.Errorf("#2: source VN %q, want present and empty", m.SrcVN)
	}
	for i, want := range map[int]string{2: "action=deny,mirror", 3: "action=mirror,implicit-deny"} {
		if c := o.frames[i].comment; !strings.Contains(c, want) {
			t.Errorf("#%d: %q, want %s", i+1, c, want)
		}
	}
}

func TestFieldLongK8sNames(t *testing.T) {
	o := decodeField(t, "f13_long_k8s_names.pcap", mirror.Config{})
	o.wantNoFailures(t)
	o.wantFrames(t, 4)
	for i, f := range o.frames {
		if n, m := len(f.meta.SrcVN), len(f.meta.DstVN); min(n, m) < 150 || max(n, m) > 255 {
			t.Errorf("#%d: names of %d and %d bytes", i+1, n, m)
		}
	}
}

func TestFieldIPIDReuse(t *testing.T) {
	o := decodeField(t, "f15_ip_id_reuse.pcap", mirror.Config{})
	if len(o.failures) != 1 || o.failures[0] != mirror.ErrFragment {
		t.Errorf("failures %v, want A's lone tail as fragment-incomplete", o.failures)
	}
	var big int
	for _, f := range o.frames {
		if f.frameLen < 1000 {
			continue
		}
		big++
		pkt := gopacket.NewPacket(f.data, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			t.Fatalf("B: not TCP over IPv4")
		}
		if len(tcp.Payload) == 0 || bytes.Count(tcp.Payload, []byte{0xbb}) != len(tcp.Payload) {
			t.Errorf("B's payload is not all 0xBB: built from two datagrams")
		}
		tcp.SetNetworkLayerForChecksum(ip)
		// Summed with the checksum field in place, a valid segment folds to 0.
		if sum, err := tcp.ComputeChecksum(); err != nil || sum != 0 {
			t.Errorf("B's TCP checksum %#x does not verify (%#x, %v)", tcp.Checksum, sum, err)
		}
	}
	if big != 1 {
		t.Errorf("%d full-size frames, want B alone", big)
	}
}

func TestFieldUTF8SpaceNames(t *testing.T) {
	o := decodeField(t, "f16_utf8_space_names.pcap", mirror.Config{})
	o.wantNoFailures(t)
	o.wantFrames(t, 5)
	names := map[string]bool{}
	for _, f := range o.frames {
		for _, n := range [][]byte{f.meta.SrcVN, f.meta.DstVN} {
			if n != nil {
				names[string(n)] = true
			}
		}
		// The comment stays key=value fields: a quoted name unquotes to
		// the bytes sent.
		for _, kv := range []struct {
			key  string
			name []byte
		}{{"src_vn=", f.meta.SrcVN}, {"dst_vn=", f.meta.DstVN}} {
			if kv.name == nil {
				continue
			}
			i := strings.Index(f.comment, kv.key)
			v := f.comment[i+len(kv.key):]
			if strings.HasPrefix(v, `"`) {
				q, err := strconv.QuotedPrefix(v)
				if err != nil {
					t.Fatalf("%q: %v", f.comment, err)
				}
				v = q
				if v, _ = strconv.Unquote(v); v != string(kv.name) {
					t.Errorf("%q unquotes to %q", f.comment, v)
				}
			} else if s, _, _ := strings.Cut(v, " "); s != string(kv.name) {
				t.Errorf("%q shows %q for %q", f.comment, s, kv.name)
			}
		}
	}
	for _, want := range []string{"default-domain:admin:web tier", "default-domain:admin:réseau-prod", "default-domain:admin:prod/web", "default-domain:admin:../../../../tmp/escape-test"} {
		if !names[want] {
			t.Errorf("name %q not decoded; got %v", want, names)
		}
	}
}
