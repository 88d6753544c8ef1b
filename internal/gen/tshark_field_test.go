package gen

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// Wireshark as the oracle for the field kinds: the VN names byte for byte
// (from the raw field values), host and flags where Wireshark reads them
// (it knows only the 4-byte forms), the inner frame, through deep outer
// tags and fabric tunnels; and every outer header valid.

// tsharkJSON returns, per record number, the layers tshark shows for it.
func tsharkJSON(t *testing.T, file string, extra ...string) map[int]map[string]json.RawMessage {
	t.Helper()
	args := append([]string{"-n", "-r", file, "-T", "json", "-x", "--no-duplicate-keys"}, extra...)
	recs := map[int]map[string]json.RawMessage{}
	for i, l := range testenv.TsharkLayers[map[string]json.RawMessage](t, testenv.Tshark{}, args...) {
		recs[i+1] = l
	}
	return recs
}

// juniperFields is what tshark read of the metadata of one record.
type juniperFields struct {
	src, dst *string // raw bytes; nil when tshark shows no such field
	host     string  // the 4 bytes it reads, as a dotted quad
	flags    string
}

func juniperOf(t *testing.T, layers map[string]json.RawMessage) (juniperFields, bool) {
	t.Helper()
	raw, ok := layers["Juniper Virtual Network Information"]
	if !ok {
		return juniperFields{}, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("juniper layer %s: %v", raw, err)
	}
	var f juniperFields
	name := func(key string) *string {
		if _, ok := m[key]; !ok {
			return nil
		}
		s := ""
		var r []any
		if json.Unmarshal(m[key+"_raw"], &r) == nil && len(r) > 0 {
			b, err := hex.DecodeString(r[0].(string))
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			s = string(b)
		}
		return &s
	}
	f.src, f.dst = name("juniper.vn.src"), name("juniper.vn.dst")
	json.Unmarshal(m["juniper.vn.host_ip"], &f.host)
	json.Unmarshal(m["juniper.vn.flags"], &f.flags)
	return f, true
}

// ethSources returns the source MACs of the Ethernet headers tshark shows.
func ethSources(t *testing.T, layers map[string]json.RawMessage) []string {
	t.Helper()
	var srcs []string
	var one map[string]any
	var many []map[string]any
	raw := layers["eth"]
	if json.Unmarshal(raw, &many) != nil {
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil
		}
		many = []map[string]any{one}
	}
	for _, e := range many {
		if s, ok := e["eth.src"].(string); ok {
			srcs = append(srcs, s)
		}
	}
	return srcs
}

func TestTsharkFieldKinds(t *testing.T) {
	mix := Mix{KindNames: 4, KindOddTLV: 3, KindOuterTags: 1, KindDPDKTagged: 1, KindOverlay: 3,
		KindOtherPort: 1, KindDupFragment: 1}
	file, cases := generate(t, Options{Seed: 41, Mix: mix}, 500)
	args := []string{"-d", "udp.port==8099,juniper", "-d", "udp.port==51234,mpls"}
	ports := map[uint16]bool{}
	for _, c := range cases {
		if c.Port != 0 && !ports[c.Port] {
			ports[c.Port] = true
			args = append(args, "-d", fmt.Sprintf("udp.port==%d,juniper", c.Port))
		}
	}
	recs := tsharkJSON(t, file, args...)
	checked := map[string]int{}
	for _, c := range cases {
		if c.Kind == KindOverlay && l2Tunnel(t, c.Packets[0]) {
			continue // Wireshark reads a PW control word after the labels
		}
		for i, s := range c.Steps {
			if s.Status != mirror.Decoded {
				continue
			}
			n := c.Packet + i + 1
			e := c.Result(s)
			f, ok := juniperOf(t, recs[n])
			if !ok {
				t.Fatalf("case %d (%s) record %d: tshark shows no metadata", c.Index, c.Kind, n)
			}
			if err := sameMeta(f, e); err != nil {
				t.Errorf("case %d (%s) record %d: %v", c.Index, c.Kind, n, err)
			}
			if e.OddTLVs == 0 {
				checked["host and flags"]++
			}
			if macs := ethSources(t, recs[n]); !slices.Contains(macs, macString(e.Frame[6:12])) {
				t.Errorf("case %d (%s): tshark shows no inner frame from %s: %v", c.Index, c.Kind, macString(e.Frame[6:12]), macs)
			}
		}
		checked[c.Kind.String()]++
		if c.Kind == KindOverlay {
			checked[c.Overlay.String()]++
		}
	}
	for _, k := range []string{"vn-bytes", "odd-tlv", "outer-tags", "dpdk-ipv6-tagged", "overlay", "other-port",
		"dup-fragment", "mplsoudp", "mplsogre", "vxlan", "host and flags"} {
		if checked[k] == 0 {
			t.Errorf("no %s case checked", k)
		}
	}
}

// sameMeta compares what tshark read with the expected metadata: the
// names byte for byte; the host and the flags when they have the 4-byte
// forms Wireshark knows (it reads a 16-byte host's first 4 bytes).
func sameMeta(f juniperFields, e *Expect) error {
	if !sameVN(f.src, e.SrcVN) || !sameVN(f.dst, e.DstVN) {
		return fmt.Errorf("tshark names %q %q, want %q %q", str(f.src), str(f.dst), str(e.SrcVN), str(e.DstVN))
	}
	if e.OddTLVs != 0 {
		return nil
	}
	want := ""
	switch {
	case e.Host.Is4():
		want = e.Host.String()
	case e.Host.Is6():
		h := e.Host.As16()
		want = net.IP(h[:4]).String()
	}
	if f.host != want {
		return fmt.Errorf("tshark host %q, want %q", f.host, want)
	}
	if v, err := strconv.ParseUint(f.flags, 0, 32); e.FlagBits == 32 && (err != nil || uint32(v) != e.Flags) {
		return fmt.Errorf("tshark flags %q, want %#x", f.flags, e.Flags)
	}
	return nil
}

// l2Tunnel reports whether a tunnel packet carries an Ethernet frame after
// its MPLS labels.
func l2Tunnel(t *testing.T, w Wire) bool {
	t.Helper()
	_, _, l2 := tunnel(t, w)
	return l2
}

// Every outer header the generator writes is valid: IPv4 header checksums
// right, IP and UDP lengths that match what follows. Malformed kinds are
// left out, and so are two things Wireshark itself gets wrong: the tail
// of a datagram that lost its first fragment, which it joins with a later
// datagram reusing the ID, and an Ethernet frame after MPLS labels, which
// it reads as a pseudowire control word.
func TestTsharkOuterHeaders(t *testing.T) {
	mix := Mix{}
	for _, k := range Kinds() {
		if !k.Malformed() && k != KindOther {
			mix[k] = 1
		}
	}
	file, cases := generate(t, Options{Seed: 42, Mix: mix}, 1500)
	rows := tshark(t, file, []string{"-o", "ip.check_checksum:TRUE", "-d", "udp.port==51234,mpls"},
		"ip.checksum.status", "_ws.expert.message")
	lengthErrors := []string{"Bad length value", "length exceeds", "Length field value goes past", "total length"}
	good := 0
	for _, c := range cases {
		for i := range c.Packets {
			n := c.Packet + i + 1
			row := rows[n]
			for _, s := range strings.Split(row[0], ",") {
				if s != "" && s != "1" {
					t.Errorf("case %d (%s) record %d: IPv4 checksum status %s", c.Index, c.Kind, n, row[0])
				}
			}
			if c.Kind == KindIDReuse || c.Kind == KindOverlay && l2Tunnel(t, c.Packets[0]) ||
				c.Kind == KindVXLAN || c.Kind == KindVLAN {
				continue // inner frames of random bytes can read as anything
			}
			for _, e := range lengthErrors {
				if strings.Contains(row[1], e) {
					t.Errorf("case %d (%s) record %d: %s", c.Index, c.Kind, n, row[1])
				}
			}
			good++
		}
	}
	if good == 0 {
		t.Error("no record checked")
	}
}
