package wireshark_test

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// luaRecord is what the dissector showed for one frame, read back from
// tshark's JSON output (which, unlike -T fields, tells an empty name from
// an absent one).
type luaRecord struct {
	frame     int
	protocols string
	present   bool   // the frame holds a vrmirror layer
	err       string // vrmirror.error: why the record is not decoded
	errOff    int    // vrmirror.error_offset, in the UDP payload
	// pkt holds the decoded record as vrsniff would: Mode, Meta, the
	// captured inner bytes (Frame, as sent, before any relabelling),
	// FrameLen and Truncated.
	pkt       mirror.Packet
	fragMixed bool // expert vrmirror.frag_mixed
	// innerSrc and innerDst are the addresses of the mirrored IP packet.
	innerSrc, innerDst string
	// innerProtocols is frame.protocols after the vrmirror layer.
	innerProtocols string
	fields         map[string][]string
}

// onceFields are the dissector's fields that describe the record: each
// may occur at most once per packet. Only the TLV items (vrmirror.tlv,
// .tlv.type, .tlv.len, .tlv.value) repeat, once per TLV.
var onceFields = func() []string {
	fs := []string{
		"vrmirror", "vrmirror.error", "vrmirror.error_offset", "vrmirror.src_vn", "vrmirror.dst_vn",
		"vrmirror.host", "vrmirror.host6", "vrmirror.flags", "vrmirror.flags_len", "vrmirror.direction",
		"vrmirror.legacy", "vrmirror.record.time", "vrmirror.record.incl_len", "vrmirror.record.orig_len",
		"vrmirror.frame_len", "vrmirror.truncated", "vrmirror.name_recovered", "vrmirror.odd_tlvs",
		"vrmirror.frame", "vrmirror.frag_mixed", "vrmirror.malformed", "vrmirror.snaplen",
	}
	for _, b := range []string{"alert", "drop", "deny", "log", "pass", "reject", "mirror",
		"vrf_translate", "apply_qos", "hbs", "trap", "implicit_deny", "ingress"} {
		fs = append(fs, "vrmirror.flags."+b)
	}
	return fs
}()

var recordFields = append([]string{"frame.number", "frame.protocols", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
	"vrmirror.odd_tlv", "vrmirror.repeated_tlv", "vrmirror.unknown_tlv", "vrmirror.wrapped_len",
	"_ws.lua.error", "_ws.expert.message"}, onceFields...)

// luaRecords runs tshark with the dissector on a capture and returns one
// record per frame, in frame order. args go before -r (preferences, -d, -2).
func luaRecords(t *testing.T, capture string, args ...string) []luaRecord {
	t.Helper()
	a := append([]string{"-X", luaScript(t)}, args...)
	a = append(a, "-r", capture, "-T", "json")
	for _, f := range recordFields {
		a = append(a, "-e", f)
	}
	out := testenv.TsharkLayers[map[string][]string](t, testenv.Tshark{}, a...)
	rs := make([]luaRecord, len(out))
	for i, l := range out {
		if l["_ws.lua.error"] != nil {
			// A Lua error shows in the tree, not on standard error.
			t.Errorf("%s frame %d: Lua error: %q", capture, i+1, l["_ws.expert.message"])
		}
		rs[i] = parseRecord(t, l)
		if rs[i].frame != i+1 {
			t.Fatalf("tshark JSON: record %d is frame %d", i, rs[i].frame)
		}
	}
	return rs
}

func parseRecord(t *testing.T, l map[string][]string) luaRecord {
	t.Helper()
	one := func(name string) (string, bool) {
		v, ok := l[name]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	num := func(name string) int {
		s, ok := one(name)
		if !ok {
			return 0
		}
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", name, s, err)
		}
		return int(n)
	}
	flag := func(name string) bool { s, _ := one(name); return s == "1" || s == "True" }

	r := luaRecord{fields: l, frame: num("frame.number")}
	r.protocols, _ = one("frame.protocols")
	k := strings.Index(r.protocols+":", ":vrmirror:")
	r.present = k >= 0
	if !r.present {
		return r
	}
	r.innerProtocols = strings.TrimPrefix(r.protocols[min(len(r.protocols), k+len(":vrmirror")):], ":")
	r.err, _ = one("vrmirror.error")
	r.errOff = num("vrmirror.error_offset")
	r.fragMixed = flag("vrmirror.frag_mixed")

	p := &r.pkt
	p.Mode = mirror.ModeJuniper
	m := &p.Meta
	if v, ok := one("vrmirror.src_vn"); ok {
		m.SrcVN = append([]byte{}, v...)
	}
	if v, ok := one("vrmirror.dst_vn"); ok {
		m.DstVN = append([]byte{}, v...)
	}
	for _, f := range []string{"vrmirror.host", "vrmirror.host6"} {
		if v, ok := one(f); ok {
			a, err := netip.ParseAddr(v)
			if err != nil {
				t.Fatalf("%s %q: %v", f, v, err)
			}
			m.Host = a
		}
	}
	if _, ok := one("vrmirror.flags"); ok {
		m.Flags = uint32(num("vrmirror.flags"))
		m.FlagBits = uint8(8 * num("vrmirror.flags_len"))
	}
	m.OddTLVs = uint8(num("vrmirror.odd_tlvs"))
	m.NameRecovered = flag("vrmirror.name_recovered")
	if v, ok := one("vrmirror.direction"); ok {
		d, ok := mirror.ParseDirection(v)
		if !ok {
			t.Fatalf("vrmirror.direction %q", v)
		}
		m.Direction = d
	}
	m.Legacy = flag("vrmirror.legacy")
	m.Overlay = overlayOf(r.protocols[:k])
	p.FrameLen = num("vrmirror.frame_len")
	p.Truncated = flag("vrmirror.truncated") && r.err == ""
	if v, ok := one("vrmirror.frame"); ok {
		b, err := hex.DecodeString(v)
		if err != nil {
			t.Fatalf("vrmirror.frame: %v", err)
		}
		p.Frame = b
	}
	// The mirrored packet's addresses are the last ones in the frame.
	src, dst := "ip.src", "ip.dst"
	if strings.Contains(":"+r.innerProtocols+":", ":ipv6:") {
		src, dst = "ipv6.src", "ipv6.dst"
	}
	if strings.Contains(":"+r.innerProtocols+":", ":ip:") || src == "ipv6.src" {
		if v := l[src]; len(v) > 0 {
			r.innerSrc = v[len(v)-1]
		}
		if v := l[dst]; len(v) > 0 {
			r.innerDst = v[len(v)-1]
		}
	}
	return r
}

// overlayOf names the fabric tunnel in the protocols in front of the
// mirror datagram, as Wireshark's own dissectors found it.
func overlayOf(outer string) mirror.Overlay {
	switch {
	case strings.Contains(outer, ":udp:mpls:"):
		return mirror.OverlayMPLSoUDP
	case strings.Contains(outer, ":gre:mpls:"):
		return mirror.OverlayMPLSoGRE
	case strings.Contains(outer, ":udp:vxlan:"):
		return mirror.OverlayVXLAN
	}
	return mirror.OverlayNone
}

// checkOnce fails the test for every record field a packet shows more
// than once.
func checkOnce(t *testing.T, what string, rs []luaRecord) {
	t.Helper()
	for _, r := range rs {
		for _, f := range onceFields {
			if n := len(r.fields[f]); n > 1 {
				t.Errorf("%s frame %d: %s occurs %d times: %q", what, r.frame, f, n, r.fields[f])
			}
		}
	}
}
