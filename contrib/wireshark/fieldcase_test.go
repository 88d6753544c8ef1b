package wireshark_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/decap"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// The field cases (shared/field-cases/README.md) are captures of how
// vRouter mirroring behaves in real clouds, each with its correct result.
// TestLuaFieldCases checks the dissector against those results as the
// README states them; TestLuaFieldCasesMatchDecap checks it against what
// vrsniff decap writes for every file of the directory.
//
// Parts of some cases are about vrsniff's own output and do not apply to a
// dissector: the summary that names an unconfigured mirror port (f02:
// Wireshark decodes a port only when told, by the preference or Decode
// As), the timestamps and interfaces of the output file (f09: Wireshark
// reads the input file itself), and output file names (f13, f16).

// fieldPorts are the mirror ports of the field cases that do not use 8099.
var fieldPorts = map[string]uint16{
	"f02_port_8888.pcap":     8888,
	"f03_port_8159_acl.pcap": 8159,
}

func portArgs(file string) []string {
	if p, ok := fieldPorts[file]; ok {
		return []string{"-o", fmt.Sprintf("vrmirror.ports:%d", p)}
	}
	return nil
}

// fieldWant is the README's result for one frame of a field case.
type fieldWant struct {
	frame     int
	src, dst  *string // nil: no such TLV
	host      string
	flags     uint32
	flagBits  uint8
	dir       string
	frameLen  int
	captured  int // bytes of the mirrored frame in the capture; 0: all
	recovered bool
	overlay   mirror.Overlay
	inner     string // "src > dst" of the mirrored IP packet; "": not checked
	protocols string // frame.protocols after vrmirror; "": not checked
	err       string // not decoded: why
	errOff    int
	odd       uint8 // TLVs of a known type and an odd length
	legacy    bool
	// present and absent list fields (experts included) the record must
	// and must not have.
	present, absent []string
}

func vn(s string) *string { return &s }

// noValues are the value fields a record whose TLV list could not be read
// must not show: what it read before the failure is shown as raw TLVs.
var noValues = []string{"vrmirror.src_vn", "vrmirror.dst_vn", "vrmirror.host", "vrmirror.host6", "vrmirror.flags"}

const (
	web = "default-domain:admin:vn-web"
	db  = "default-domain:admin:vn-db"
	// f13: a Kubernetes namespace VN name of 158 and one of 160 bytes.
	k8sPay    = "default-domain:k8s-payments-settlement-reconciliation-batch-processing-prod-eu-1:k8s-payments-settlement-reconciliation-batch-processing-prod-eu-1-pod-network"
	k8sNotify = "default-domain:k8s-customer-notification-delivery-service-canary-staging-us-east2:k8s-customer-notification-delivery-service-canary-staging-us-east2-pod-network"
)

// aclWant is an ACL-mirrored ICMP echo of the usual shape: both VNs, the
// IPv4 host 192.0.2.11 and 32-bit flags.
func aclWant(frame int, src, dst string, flags uint32, inner string) fieldWant {
	dir := "egress"
	if flags&mirror.FlagIngress != 0 {
		dir = "ingress"
	}
	return fieldWant{frame: frame, src: vn(src), dst: vn(dst), host: "192.0.2.11", flags: flags,
		flagBits: 32, dir: dir, frameLen: 98, inner: inner}
}

const (
	passIn  = mirror.FlagIngress | mirror.FlagPass | mirror.FlagMirror
	passOut = mirror.FlagPass | mirror.FlagMirror
	ping    = "10.1.1.3 > 10.2.2.3"
)

var fieldCases = []struct {
	file string
	args []string // tshark arguments besides the dissector
	want []fieldWant
}{
	{"f01_tlv_lengths_16_and_2.pcap", nil, []fieldWant{
		func() fieldWant { w := aclWant(1, web, db, passIn, ping); w.host = "2001:db8::11"; return w }(),
		{frame: 2, src: vn(web), dst: vn(db), host: "192.0.2.11", flags: passOut, flagBits: 16, frameLen: 98, inner: ping},
		aclWant(3, web, db, passIn, ping),
	}},
	{"f02_port_8888.pcap", []string{"-o", "vrmirror.ports:8888"}, f02Want()},
	{"f02_port_8888.pcap", []string{"-d", "udp.port==8888,vrmirror"}, f02Want()},
	// Without the preference or Decode As, Wireshark leaves port 8888 alone.
	{"f02_port_8888.pcap", nil, nil},
	{"f03_port_8159_acl.pcap", []string{"-o", "vrmirror.ports:8159"}, func() []fieldWant {
		const a, b = "default-domain:demo:net1", "default-domain:default-project:default-virtual-network"
		var ws []fieldWant
		for i := 1; i <= 4; i += 2 {
			w := aclWant(i, a, b, passIn, "10.0.0.4 > 10.20.0.3")
			w.host = "192.0.2.21"
			r := aclWant(i+1, b, a, passOut, "10.20.0.3 > 10.0.0.4")
			r.host = "192.0.2.21"
			ws = append(ws, w, r)
		}
		return ws
	}()},
	// Wireshark's own MPLS (UDP 6635), GRE and VXLAN dissectors hand the
	// inner IP packet on: nothing to set.
	{"f04_fabric_overlay.pcap", nil, func() []fieldWant {
		var ws []fieldWant
		for i, o := range []mirror.Overlay{mirror.OverlayMPLSoUDP, mirror.OverlayMPLSoGRE, mirror.OverlayVXLAN} {
			w := aclWant(i+1, web, db, passIn, ping)
			w.overlay = o
			ws = append(ws, w)
		}
		return ws
	}()},
	{"f05_inner_vlan_ipv6.pcap", nil, func() []fieldWant {
		const pp = "default-domain:admin:parent-port-vn"
		const tagged = "eth:ethertype:vlan:ethertype:ipv6:icmpv6:data"
		return []fieldWant{
			{frame: 1, src: vn(pp), dir: "ingress", frameLen: 98, inner: "fd00:1::3 > fd00:1::4", protocols: tagged},
			{frame: 2, dst: vn(pp), dir: "egress", frameLen: 98, inner: "fd00:1::4 > fd00:1::3", protocols: tagged},
			{frame: 3, src: vn(pp), dir: "ingress", frameLen: 94, inner: "fd00:1::3 > fd00:1::4", protocols: "eth:ethertype:ipv6:icmpv6:data"},
			// Labelled 0x0800 behind its tag: relabelled to IPv6.
			{frame: 4, src: vn(pp), dir: "ingress", frameLen: 98, inner: "fd00:1::3 > fd00:1::4", protocols: tagged},
		}
	}()},
	{"f06_outer_two_and_three_tags.pcap", nil, func() []fieldWant {
		var ws []fieldWant
		for i := 1; i <= 2; i++ {
			w := aclWant(i, web, db, passIn, ping)
			w.frameLen = 102 // the mirrored frame has a tag of its own
			ws = append(ws, w)
		}
		return ws
	}()},
	{"f09_three_interfaces_ns.pcapng", nil, []fieldWant{
		aclWant(1, web, db, passIn, ping),
		func() fieldWant { w := aclWant(2, web, db, passIn, ""); w.frameLen, w.captured = 242, 15; return w }(),
		aclWant(3, web, db, passIn, ping),
		aclWant(4, web, db, passIn, ping),
	}},
	// Frames 2, 5 and 8 are the second fragments of the cut datagrams:
	// Wireshark shows them as fragments.
	{"f10_snaplen_200.pcap", nil, func() []fieldWant {
		var ws []fieldWant
		for i := 1; i <= 7; i += 3 {
			w := aclWant(i, web, db, passIn, ping)
			w.frameLen, w.captured = 1514, 87
			a := aclWant(i+2, db, web, passOut, "10.2.2.3 > 10.1.1.3")
			a.frameLen = 54
			ws = append(ws, w, a)
		}
		// Cut inside its source VN TLV, after host and flags.
		return append(ws, fieldWant{frame: 10, err: "truncated", errOff: 12, absent: noValues})
	}()},
	{"f11_wrapped_name_lengths.pcap", nil, func() []fieldWant {
		names := []string{
			"default-domain:admin:web-tier-" + strings.Repeat("x", 241),
			"default-domain:admin:svc-" + strings.Repeat("a", 275),
			"default-domain:admin:db-" + strings.Repeat("0123456789", 26) + "qqqqqq",
			"default-domain:admin:" + strings.Repeat("z", 235),
		}
		var ws []fieldWant
		for i, n := range names {
			w := aclWant(i+1, n, db, passIn, ping)
			w.recovered = true
			ws = append(ws, w)
		}
		return ws
	}()},
	{"f12_empty_vn_deny.pcap", nil, []fieldWant{
		aclWant(1, web, "", passIn, "10.1.1.3 > 203.0.113.7"),
		aclWant(2, "", web, passOut, "203.0.113.7 > 10.1.1.3"),
		aclWant(3, web, db, mirror.FlagIngress|mirror.FlagDeny|mirror.FlagMirror, ping),
		aclWant(4, web, "__UNKNOWN__", mirror.FlagIngress|mirror.FlagMirror|mirror.FlagImplicitDeny, "10.1.1.3 > 198.51.100.9"),
	}},
	{"f13_long_k8s_names.pcap", nil, []fieldWant{
		aclWant(1, k8sPay, k8sNotify, passIn, "10.47.255.250 > 10.47.255.249"),
		aclWant(2, k8sNotify, k8sPay, passOut, "10.47.255.249 > 10.47.255.250"),
		aclWant(3, k8sPay, k8sNotify, passIn, "10.47.255.250 > 10.47.255.249"),
		aclWant(4, k8sNotify, k8sPay, passOut, "10.47.255.249 > 10.47.255.250"),
	}},
	// Frame 1 is the lone tail of datagram A. Wireshark's reassembly joins
	// it to B's head (frame 7, same IP ID); the dissector sees that five
	// datagrams came between them and uses B's head alone, as a truncated
	// record (TestLuaFieldCases checks its bytes are B's). Frame 8, B's
	// tail, stays a fragment.
	{"f15_ip_id_reuse.pcap", nil, func() []fieldWant {
		var ws []fieldWant
		for i := 2; i <= 6; i++ {
			ws = append(ws, aclWant(i, web, db, passIn, ping))
		}
		w := aclWant(7, web, db, passIn, "")
		w.frameLen, w.captured = 1514, 1480-8-71
		return append(ws, w)
	}()},
	{"f16_utf8_space_names.pcap", nil, []fieldWant{
		{frame: 1, src: vn("default-domain:admin:web tier"), dir: "ingress", frameLen: 98, inner: ping},
		{frame: 2, src: vn("default-domain:admin:réseau-prod"), dir: "ingress", frameLen: 98, inner: ping},
		{frame: 3, src: vn("default-domain:admin:../../../../tmp/escape-test"), dir: "ingress", frameLen: 98, inner: ping},
		{frame: 4, src: vn("default-domain:admin:prod/web"), dir: "ingress", frameLen: 98, inner: ping},
		aclWant(5, "default-domain:admin:web tier", "default-domain:admin:réseau-prod", passIn, ping),
	}},
}

func f02Want() []fieldWant {
	const tv = "default-domain:admin:traffic-vn"
	var ws []fieldWant
	for i := 1; i <= 6; i += 2 {
		ws = append(ws,
			fieldWant{frame: i, src: vn(tv), dir: "ingress", frameLen: 98, inner: "10.4.4.3 > 10.4.4.4"},
			fieldWant{frame: i + 1, dst: vn(tv), dir: "egress", frameLen: 98, inner: "10.4.4.4 > 10.4.4.3"})
	}
	return ws
}

// TestLuaFieldCases checks the dissector's fields on every field case
// against the result its README gives; frames not listed must show no
// mirror record. It also checks that no field occurs twice in a packet
// and that a two-pass run (as Wireshark's GUI does: a first pass without a
// protocol tree) gives the same records.
func TestLuaFieldCases(t *testing.T) {
	for _, fc := range fieldCases {
		t.Run(fc.file+strings.Join(fc.args, " "), func(t *testing.T) {
			path := testenv.FieldCase(t, fc.file)
			rs := luaRecords(t, path, fc.args...)
			if n := len(fc.want); n > 0 && len(rs) < fc.want[n-1].frame {
				t.Fatalf("%d frames, want at least %d", len(rs), fc.want[n-1].frame)
			}
			checkOnce(t, fc.file, rs)
			want := map[int]fieldWant{}
			for _, w := range fc.want {
				want[w.frame] = w
			}
			for _, r := range rs {
				w, ok := want[r.frame]
				if !ok {
					if r.present {
						t.Errorf("frame %d: the dissector shows a mirror record (%s), want none", r.frame, r.protocols)
					}
					continue
				}
				checkFieldWant(t, r, w)
			}

			two := luaRecords(t, path, append([]string{"-2"}, fc.args...)...)
			if len(two) != len(rs) {
				t.Fatalf("two-pass run: %d frames, one pass %d", len(two), len(rs))
			}
			for i := range rs {
				a, b := rs[i], two[i]
				if a.present != b.present || a.err != b.err || a.fragMixed != b.fragMixed ||
					string(mirror.AppendComment(nil, &a.pkt)) != string(mirror.AppendComment(nil, &b.pkt)) ||
					a.pkt.FrameLen != b.pkt.FrameLen || !bytes.Equal(a.pkt.Frame, b.pkt.Frame) {
					t.Errorf("frame %d: two-pass run differs: %+v, one pass %+v", a.frame, b, a)
				}
			}

			if fc.file == "f15_ip_id_reuse.pcap" {
				// The head of datagram B: its TCP payload is all 0xBB, A's
				// was 0xAA.
				f := rs[6].pkt.Frame
				if len(f) < 54 || bytes.Count(f[54:], []byte{0xbb}) != len(f)-54 {
					t.Errorf("frame 7: mirrored frame is not B's head: %x", f)
				}
				if !rs[6].fragMixed {
					t.Errorf("frame 7: no vrmirror.frag_mixed expert")
				}
			}
		})
	}
}

func checkFieldWant(t *testing.T, r luaRecord, w fieldWant) {
	t.Helper()
	if !r.present {
		t.Errorf("frame %d: no mirror record (%s)", r.frame, r.protocols)
		return
	}
	for _, f := range w.present {
		if r.fields[f] == nil {
			t.Errorf("frame %d: no %s", r.frame, f)
		}
	}
	for _, f := range w.absent {
		if r.fields[f] != nil {
			t.Errorf("frame %d: %s %q, want none", r.frame, f, r.fields[f])
		}
	}
	if w.err != "" || r.err != "" {
		if r.err != w.err || r.errOff != w.errOff {
			t.Errorf("frame %d: error %q at %d, want %q at %d", r.frame, r.err, r.errOff, w.err, w.errOff)
		}
		if _, ok := r.fields["vrmirror.frame"]; ok {
			t.Errorf("frame %d: mirrored frame shown for a record not decoded", r.frame)
		}
		if w.err == "truncated" && (r.fields["vrmirror.snaplen"] == nil || r.fields["vrmirror.malformed"] != nil) {
			t.Errorf("frame %d: truncated record not marked as such: %v", r.frame, r.fields)
		}
		return
	}
	m := r.pkt.Meta
	name := func(what string, got []byte, want *string) {
		switch {
		case want == nil && got != nil:
			t.Errorf("frame %d: %s %q, want none", r.frame, what, got)
		case want != nil && (got == nil || string(got) != *want):
			t.Errorf("frame %d: %s %q (present %v), want %q", r.frame, what, got, got != nil, *want)
		}
	}
	name("src_vn", m.SrcVN, w.src)
	name("dst_vn", m.DstVN, w.dst)
	host := ""
	if m.Host.IsValid() {
		host = m.Host.String()
	}
	if host != w.host {
		t.Errorf("frame %d: host %q, want %q", r.frame, host, w.host)
	}
	if m.Flags != w.flags || m.FlagBits != w.flagBits {
		t.Errorf("frame %d: flags %#x (%d bits), want %#x (%d bits)", r.frame, m.Flags, m.FlagBits, w.flags, w.flagBits)
	}
	dir := ""
	if m.Direction != mirror.DirUnknown {
		dir = m.Direction.String()
	}
	if dir != w.dir {
		t.Errorf("frame %d: direction %q, want %q", r.frame, dir, w.dir)
	}
	if m.NameRecovered != w.recovered || m.OddTLVs != w.odd || m.Overlay != w.overlay || m.Legacy != w.legacy {
		t.Errorf("frame %d: name recovered %v, odd TLVs %d, overlay %d, legacy %v; want %v, %d, %d, %v",
			r.frame, m.NameRecovered, m.OddTLVs, m.Overlay, m.Legacy, w.recovered, w.odd, w.overlay, w.legacy)
	}
	captured := w.captured
	if captured == 0 {
		captured = w.frameLen
	}
	if r.pkt.FrameLen != w.frameLen || len(r.pkt.Frame) != captured || r.pkt.Truncated != (captured < w.frameLen) {
		t.Errorf("frame %d: frame length %d, %d bytes captured, truncated %v; want %d, %d",
			r.frame, r.pkt.FrameLen, len(r.pkt.Frame), r.pkt.Truncated, w.frameLen, captured)
	}
	if r.pkt.Truncated != (r.fields["vrmirror.snaplen"] != nil) {
		t.Errorf("frame %d: truncated %v, but expert vrmirror.snaplen %q", r.frame, r.pkt.Truncated, r.fields["vrmirror.snaplen"])
	}
	if w.inner != "" && r.innerSrc+" > "+r.innerDst != w.inner {
		t.Errorf("frame %d: mirrored packet %s > %s, want %s", r.frame, r.innerSrc, r.innerDst, w.inner)
	}
	if w.protocols != "" && r.innerProtocols != w.protocols {
		t.Errorf("frame %d: mirrored frame protocols %q, want %q", r.frame, r.innerProtocols, w.protocols)
	}
	if r.fields["vrmirror.malformed"] != nil {
		t.Errorf("frame %d: decoded record marked malformed", r.frame)
	}
}

// decapRecord is one packet vrsniff decap wrote: decoded, or rejected.
type decapRecord struct {
	pkt     mirror.Packet // Timestamp, Data, WireLen as written
	comment string
}

// runDecap runs vrsniff decap on a capture, as `vrsniff decap --port P
// --rejects REJ IN OUT` does, and returns what it wrote to OUT and REJ.
func runDecap(t *testing.T, capture string, port uint16) (decoded, rejected []*decapRecord) {
	t.Helper()
	in, err := os.ReadFile(capture)
	if err != nil {
		t.Fatal(err)
	}
	var out, rej bytes.Buffer
	if _, err := decap.Run(context.Background(), bytes.NewReader(in), decap.Options{
		Format:  pcapfile.FormatPcapNG,
		Decoder: mirror.Config{Traffic: mirror.Traffic{Ports: []uint16{port}}, PassThrough: true},
		Out:     &out, Rejects: &rej,
	}); err != nil {
		t.Fatalf("decap %s: %v", capture, err)
	}
	dir := t.TempDir()
	read := func(name string, b []byte) []*decapRecord {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		ps, err := pcapfile.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var js []map[string][]string
		if len(ps) > 0 {
			js = testenv.TsharkLayers[map[string][]string](t, testenv.Tshark{}, "-r", path, "-T", "json", "-e", "frame.comment")
		}
		if len(js) != len(ps) {
			t.Fatalf("%s: tshark read %d packets, pcapfile %d", name, len(js), len(ps))
		}
		rs := make([]*decapRecord, len(ps))
		for i, p := range ps {
			rs[i] = &decapRecord{pkt: p}
			if c := js[i]["frame.comment"]; len(c) > 0 {
				rs[i].comment = c[0]
			}
		}
		return rs
	}
	return read("decoded.pcapng", out.Bytes()), read("rejects.pcapng", rej.Bytes())
}

// payloadOffset is the offset of the mirror payload in a captured frame:
// after the UDP header that follows the last IP header.
func payloadOffset(p mirror.Packet) int {
	pkt := gopacket.NewPacket(p.Data, p.LinkType, gopacket.Lazy)
	start := -1
	for _, l := range pkt.Layers() {
		switch l.(type) {
		case *layers.IPv4, *layers.IPv6:
			start = len(p.Data) - len(l.LayerPayload()) + 8
		}
	}
	return start
}

// relabel is the inner frame with the IPv6-labelled-as-IPv4 fix that
// vrsniff applies to the frames it writes (the dissector shows the bytes
// as sent and applies it to what it hands on).
func relabel(f []byte) []byte {
	f = append([]byte(nil), f...)
	pos := 12
	for pos+4 <= len(f) && isVLAN(f[pos:]) {
		pos += 4
	}
	if pos+3 <= len(f) && f[pos] == 0x08 && f[pos+1] == 0x00 && f[pos+2]>>4 == 6 {
		f[pos], f[pos+1] = 0x86, 0xdd
	}
	return f
}

func isVLAN(b []byte) bool {
	et := uint16(b[0])<<8 | uint16(b[1])
	return et == 0x8100 || et == 0x88a8 || et == 0x9100
}

// TestLuaFieldCasesMatchDecap runs the dissector and vrsniff decap on
// every capture of the field-cases directory and compares them packet by
// packet, matched by timestamp: a record decap decoded must be decoded by
// the dissector with the same metadata (the decap comment built from the
// dissector's fields), frame length and bytes; a record decap rejected
// must carry the same reason and offset. Not compared: rejects for IP
// fragments that could not be reassembled and non-mirror traffic, which
// Wireshark's IP layer and other dissectors handle.
func TestLuaFieldCasesMatchDecap(t *testing.T) {
	dir := filepath.Join(testenv.SharedDir(t), "field-cases")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".pcap") && !strings.HasSuffix(name, ".pcapng") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			port := uint16(mirror.DefaultPort)
			if p, ok := fieldPorts[name]; ok {
				port = p
			}
			raw, err := pcapfile.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rs := luaRecords(t, path, portArgs(name)...)
			if len(rs) != len(raw) {
				t.Fatalf("tshark read %d frames, pcapfile %d", len(rs), len(raw))
			}
			decoded, rejected := runDecap(t, path, port)
			compareWithDecap(t, raw, rs, decoded, rejected)
		})
	}
	if n == 0 {
		t.Fatalf("no captures in %s", dir)
	}
}

func compareWithDecap(t *testing.T, raw []mirror.Packet, rs []luaRecord, decoded, rejected []*decapRecord) {
	t.Helper()
	seen := make([]bool, len(rs))
	// frameAt finds the raw frame a decap record came from.
	frameAt := func(d *decapRecord) int {
		for i, p := range raw {
			if p.Timestamp.Equal(d.pkt.Timestamp) && !seen[i] {
				return i
			}
		}
		for i, p := range raw {
			if p.Timestamp.Equal(d.pkt.Timestamp) {
				return i
			}
		}
		return -1
	}
	for _, d := range decoded {
		i := frameAt(d)
		if i < 0 {
			t.Errorf("decap wrote a packet at %v that is not in the input", d.pkt.Timestamp)
			continue
		}
		r := rs[i]
		if strings.Contains(d.comment, "mode=") {
			// Not a Juniper-header mirror datagram for decap.
			if r.present {
				t.Errorf("frame %d: decap wrote it as %q; the dissector decoded a mirror record (%s)", r.frame, d.comment, r.protocols)
				seen[i] = true
			}
			continue
		}
		if !r.present || r.err != "" {
			if k := headOnly(rs, seen, i, d); k >= 0 {
				seen[k] = true
				continue
			}
			t.Errorf("frame %d: decap decoded %q; the dissector: %s %s", r.frame, d.comment, r.protocols, r.err)
			continue
		}
		seen[i] = true
		if r.fragMixed {
			// Wireshark joined this head to an older tail; the dissector
			// used the head alone.
			if headOnly(rs, seen, i, d) != i {
				t.Errorf("frame %d: the dissector's head of the datagram %q differs from decap's %q", r.frame,
					mirror.AppendComment(nil, &r.pkt), d.comment)
			}
			continue
		}
		compareDecoded(t, r, d)
	}
	for _, d := range rejected {
		i := frameAt(d)
		if i < 0 {
			t.Errorf("decap rejected a packet at %v that is not in the input", d.pkt.Timestamp)
			continue
		}
		r := rs[i]
		var reason string
		var off int
		if _, err := fmt.Sscanf(d.comment, "malformed: %s at offset %d", &reason, &off); err != nil {
			t.Fatalf("frame %d: decap reject comment %q: %v", r.frame, d.comment, err)
		}
		if !r.present {
			if reason != mirror.ErrFragment.String() && reason != mirror.ErrNotMirror.String() {
				t.Errorf("frame %d: decap rejected it (%s); the dissector shows no mirror record (%s)", r.frame, d.comment, r.protocols)
			}
			continue
		}
		seen[i] = true
		if r.err == "" {
			t.Errorf("frame %d: decap rejected it (%s); the dissector decoded it: %s", r.frame, d.comment, mirror.AppendComment(nil, &r.pkt))
			continue
		}
		if got := fmt.Sprintf("malformed: %s at offset %d", r.err, payloadOffset(raw[i])+r.errOff); got != d.comment {
			t.Errorf("frame %d: dissector %q, decap %q", r.frame, got, d.comment)
		}
	}
	for i, r := range rs {
		if r.present && !seen[i] {
			t.Errorf("frame %d: the dissector shows a mirror record (%s %s); decap wrote nothing for it",
				r.frame, mirror.AppendComment(nil, &r.pkt), r.err)
		}
	}
}

// compareDecoded compares a record both decoded.
func compareDecoded(t *testing.T, r luaRecord, d *decapRecord) {
	t.Helper()
	if got := string(mirror.AppendComment(nil, &r.pkt)); got != d.comment {
		t.Errorf("frame %d: metadata from the dissector %q, decap comment %q", r.frame, got, d.comment)
	}
	if r.pkt.FrameLen != d.pkt.WireLen {
		t.Errorf("frame %d: frame length %d, decap %d", r.frame, r.pkt.FrameLen, d.pkt.WireLen)
	}
	if f := relabel(r.pkt.Frame); !bytes.Equal(f, d.pkt.Data) {
		t.Errorf("frame %d: mirrored frame differs\n dissector %x\n     decap %x", r.frame, f, d.pkt.Data)
	}
}

// headOnly finds the dissector's record that holds only the head of the
// datagram decap decoded as d (an IP ID reused: Wireshark joined the head
// to an older tail, the dissector used the head alone): at or before
// frame i, with the same metadata and length, its bytes a prefix of d's.
func headOnly(rs []luaRecord, seen []bool, i int, d *decapRecord) int {
	for k := i; k >= 0; k-- {
		r := rs[k]
		if (seen[k] && k != i) || !r.fragMixed || r.err != "" {
			continue
		}
		p := r.pkt
		p.Truncated = false
		if string(mirror.AppendComment(nil, &p)) == d.comment && p.FrameLen == d.pkt.WireLen &&
			bytes.HasPrefix(d.pkt.Data, relabel(p.Frame)) {
			return k
		}
	}
	return -1
}
