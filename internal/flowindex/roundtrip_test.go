package flowindex

import (
	"bytes"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

const (
	vnWeb = "default-domain:demo:vn-web"
	vnDB  = "default-domain:demo:vn-db"
	vnV6  = "default-domain:demo:vn-v6"
)

// known is a packet of the round trip with what the test knows of it: the
// flow it belongs to (named by hand) and the fields queries look at.
type known struct {
	flow         string
	at           time.Duration
	src, dst     string
	h            l4
	srcVN, dstVN string
	dir          mirror.Direction
	host         string
}

var knownPackets = []known{
	{"tcp-web-db", 0, "10.0.1.3", "10.0.2.3", l4{kind: "tcp", sport: 40000, dport: 80, flags: 2}, vnWeb, vnDB, mirror.DirIngress, "10.10.0.11"},
	{"tcp-db-web", 1 * time.Millisecond, "10.0.2.3", "10.0.1.3", l4{kind: "tcp", sport: 80, dport: 40000, flags: 18}, vnDB, vnWeb, mirror.DirEgress, "10.10.0.11"},
	{"tcp-web-db", 2 * time.Millisecond, "10.0.1.3", "10.0.2.3", l4{kind: "tcp", sport: 40000, dport: 80, flags: 16}, vnWeb, vnDB, mirror.DirIngress, "10.10.0.11"},
	{"dns", 3 * time.Millisecond, "10.0.1.3", "10.0.1.2", l4{kind: "udp", sport: 5353, dport: 53}, vnWeb, vnWeb, mirror.DirIngress, "10.10.0.11"},
	{"ping", 4 * time.Millisecond, "10.0.1.3", "10.0.2.3", l4{kind: "icmp", sport: 8}, vnWeb, vnDB, mirror.DirIngress, "10.10.0.11"},
	{"pong", 5 * time.Millisecond, "10.0.2.3", "10.0.1.3", l4{kind: "icmp", sport: 0}, vnDB, vnWeb, mirror.DirEgress, "10.10.0.11"},
	{"tcp6", 6 * time.Millisecond, "fd00::3", "fd00::4", l4{kind: "tcp", sport: 40001, dport: 443, flags: 2}, vnV6, vnV6, mirror.DirIngress, "fd00:10::11"},
	{"ping6", 7 * time.Millisecond, "fd00::3", "fd00::4", l4{kind: "icmp", sport: 128}, vnV6, vnV6, mirror.DirIngress, "fd00:10::11"},
	{"sctp", 8 * time.Millisecond, "10.0.3.1", "10.0.3.2", l4{kind: "sctp", sport: 3868, dport: 3868}, vnDB, vnDB, mirror.DirUnknown, ""},
	{"arp", 9 * time.Millisecond, "", "", l4{}, vnWeb, vnWeb, mirror.DirIngress, "10.10.0.11"},
	{"gre", 10 * time.Millisecond, "10.0.1.3", "10.0.9.9", l4{kind: "ip", proto: 47}, vnWeb, vnWeb, mirror.DirIngress, "10.10.0.11"},
	{"tcp-web-db-other-pair", 11 * time.Millisecond, "10.0.1.3", "10.0.2.3", l4{kind: "tcp", sport: 40000, dport: 80, flags: 16}, vnWeb, vnV6, mirror.DirIngress, "10.10.0.11"},
	{"tcp-web-db", time.Second, "10.0.1.3", "10.0.2.3", l4{kind: "tcp", sport: 40000, dport: 80, flags: 1}, vnWeb, vnDB, mirror.DirIngress, "10.10.0.11"},
	{"ping", 1001 * time.Millisecond, "10.0.1.3", "10.0.2.3", l4{kind: "icmp", sport: 8}, vnWeb, vnDB, mirror.DirIngress, "10.10.0.11"},
}

func knownCapture(t testing.TB) ([]*mirror.Packet, capture) {
	var ps []*mirror.Packet
	for _, k := range knownPackets {
		var f []byte
		if k.src == "" {
			f = arp(t)
		} else {
			f = frame(t, k.src, k.dst, k.h)
		}
		ps = append(ps, packet(k.at, f, k.srcVN, k.dstVN, k.dir, k.host))
	}
	return ps, encode(t, ps)
}

// TestRoundTrip builds the index of known packets, opens it and checks
// that each query returns exactly the records of the flows it selects, and
// that each offset is that packet's block in the pcapng.
func TestRoundTrip(t *testing.T) {
	ps, c := knownCapture(t)
	data := build(t, Options{}, ps, c)
	ix, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	flows := map[string]bool{}
	for _, k := range knownPackets {
		flows[k.flow] = true
	}
	if ix.Flows() != int64(len(flows)) {
		t.Errorf("%d rows, want %d flows", ix.Flows(), len(flows))
	}
	all, err := ix.Lookup(Query{})
	if err != nil {
		t.Fatal(err)
	}
	// Every row's records are its packets' blocks, and rows are flows.
	for _, r := range all {
		if r.Overflow {
			t.Fatalf("overflow row without overflow: %+v", r)
		}
		if int(r.Packets) != len(r.Offsets) || len(r.Offsets) != len(r.Lengths) {
			t.Fatalf("row %s>%s: %d packets, %d offsets, %d lengths", r.SrcAddr, r.DstAddr, r.Packets, len(r.Offsets), len(r.Lengths))
		}
		var label string
		var bytes int64
		for j, off := range r.Offsets {
			i := slices.Index(c.offs, off)
			if i < 0 {
				t.Fatalf("offset %d is no packet's record", off)
			}
			if int(r.Lengths[j]) != c.lens[i] {
				t.Errorf("packet %d: length %d, want %d", i, r.Lengths[j], c.lens[i])
			}
			if got := epbFrame(t, c.file, off, r.Lengths[j]); !slices.Equal(got, ps[i].Frame) {
				t.Errorf("packet %d: the block at %d holds another frame", i, off)
			}
			if label == "" {
				label = knownPackets[i].flow
			} else if knownPackets[i].flow != label {
				t.Errorf("row holds packets of %s and %s", label, knownPackets[i].flow)
			}
			bytes += int64(len(ps[i].Frame))
		}
		if r.Bytes != bytes {
			t.Errorf("%s: %d bytes, want %d", label, r.Bytes, bytes)
		}
	}
	checkRow := func(flow string, want Row) {
		t.Helper()
		for _, r := range all {
			if knownPackets[slices.Index(c.offs, r.Offsets[0])].flow != flow {
				continue
			}
			if want.CommunityID == "*" && r.CommunityID != "" {
				want.CommunityID = r.CommunityID
			}
			if !r.First.Equal(want.First) || !r.Last.Equal(want.Last) {
				t.Errorf("%s: times %v..%v, want %v..%v", flow, r.First, r.Last, want.First, want.Last)
			}
			r.Offsets, r.Lengths, r.Bytes = nil, nil, 0
			r.First, r.Last, want.First, want.Last = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("%s:\n got %+v\nwant %+v", flow, r, want)
			}
			return
		}
		t.Errorf("no row for %s", flow)
	}
	checkRow("tcp-web-db", Row{First: t0, Last: t0.Add(time.Second), Proto: 6, SrcAddr: "10.0.1.3", DstAddr: "10.0.2.3",
		SrcPort: 40000, DstPort: 80, CommunityID: "*", SrcVN: vnWeb, DstVN: vnDB, Direction: "ingress", Host: "10.10.0.11",
		VNI: -1, Packets: 3, TCPFlags: 2 | 16 | 1})
	checkRow("ping6", Row{First: t0.Add(7 * time.Millisecond), Last: t0.Add(7 * time.Millisecond), Proto: 58,
		SrcAddr: "fd00::3", DstAddr: "fd00::4", CommunityID: "*", SrcVN: vnV6, DstVN: vnV6, Direction: "ingress",
		Host: "fd00:10::11", VNI: -1, Packets: 1})
	// ARP rows carry the sender and target addresses, which host and net
	// match in tcpdump, and no Community ID.
	checkRow("arp", Row{First: t0.Add(9 * time.Millisecond), Last: t0.Add(9 * time.Millisecond), SrcAddr: "10.0.0.1", DstAddr: "10.0.0.2", SrcVN: vnWeb, DstVN: vnWeb,
		Direction: "ingress", Host: "10.10.0.11", VNI: -1, Packets: 1})
	checkRow("sctp", Row{First: t0.Add(8 * time.Millisecond), Last: t0.Add(8 * time.Millisecond), Proto: 132,
		SrcAddr: "10.0.3.1", DstAddr: "10.0.3.2", SrcPort: 3868, DstPort: 3868, CommunityID: "*", SrcVN: vnDB, DstVN: vnDB,
		VNI: -1, Packets: 1})

	cid := func(flow string) string {
		for _, r := range all {
			if knownPackets[slices.Index(c.offs, r.Offsets[0])].flow == flow {
				return r.CommunityID
			}
		}
		t.Fatalf("no flow %s", flow)
		return ""
	}
	if cid("tcp-web-db") != cid("tcp-db-web") || cid("ping") != cid("pong") || cid("tcp-web-db") == cid("ping") {
		t.Errorf("community ids: both directions must share one, flows must differ: %q %q %q %q",
			cid("tcp-web-db"), cid("tcp-db-web"), cid("ping"), cid("pong"))
	}

	// inFlowWith is the packets of the flows that have a packet for which
	// sel holds: the index answers by flow.
	inFlowWith := func(sel func(k known) bool) []int64 {
		fl := map[string]bool{}
		for _, k := range knownPackets {
			if sel(k) {
				fl[k.flow] = true
			}
		}
		var offs []int64
		for i, k := range knownPackets {
			if fl[k.flow] {
				offs = append(offs, c.offs[i])
			}
		}
		return offs
	}
	in := func(pf string, a string) bool {
		if a == "" {
			return false
		}
		return netip.MustParsePrefix(pf).Contains(netip.MustParseAddr(a))
	}
	// A flow has a packet in a window when its first and last packets
	// bracket part of it: the index keeps no more than that of time.
	span := map[string][2]time.Duration{}
	for _, k := range knownPackets {
		s, ok := span[k.flow]
		if !ok {
			s = [2]time.Duration{k.at, k.at}
		}
		span[k.flow] = [2]time.Duration{min(s[0], k.at), max(s[1], k.at)}
	}
	overlaps := func(k known, since, until time.Duration) bool {
		return span[k.flow][1] >= since && span[k.flow][0] <= until
	}
	tcpish := func(k known) bool { return k.h.kind == "tcp" || k.h.kind == "udp" || k.h.kind == "sctp" }
	for _, tc := range []struct {
		name string
		q    Query
		sel  func(k known) bool
	}{
		{"host", Query{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.2.3/32")}},
			func(k known) bool { return k.src == "10.0.2.3" || k.dst == "10.0.2.3" }},
		{"two hosts", Query{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.1.2/32"), netip.MustParsePrefix("fd00::4/128")}},
			func(k known) bool { return k.dst == "10.0.1.2" || k.dst == "fd00::4" }},
		{"prefix", Query{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.3.0/24")}},
			func(k known) bool { return in("10.0.3.0/24", k.src) || in("10.0.3.0/24", k.dst) }},
		{"absent host", Query{Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}, func(known) bool { return false }},
		{"port", Query{Ports: []uint16{80}}, func(k known) bool { return tcpish(k) && (k.h.sport == 80 || k.h.dport == 80) }},
		{"ports", Query{Ports: []uint16{53, 3868}}, func(k known) bool { return tcpish(k) && (k.h.dport == 53 || k.h.dport == 3868) }},
		{"icmp type is no port", Query{Ports: []uint16{8}}, func(known) bool { return false }},
		{"proto", Query{Proto: 1}, func(k known) bool { return k.h.kind == "icmp" && k.src[0] != 'f' }},
		{"community id", Query{CommunityID: cid("tcp-web-db")}, func(k known) bool { return k.h.kind == "tcp" && k.src[0] == '1' }},
		{"direction", Query{Direction: "egress"}, func(k known) bool { return k.dir == mirror.DirEgress }},
		{"vn", Query{VNs: []string{vnV6}}, func(k known) bool { return k.srcVN == vnV6 || k.dstVN == vnV6 }},
		{"window", Query{Since: t0.Add(3 * time.Millisecond), Until: t0.Add(5 * time.Millisecond)},
			func(k known) bool { return overlaps(k, 3*time.Millisecond, 5*time.Millisecond) }},
		{"since", Query{Since: t0.Add(500 * time.Millisecond)}, func(k known) bool { return overlaps(k, 500*time.Millisecond, time.Hour) }},
		{"between", Query{Since: t0.Add(500 * time.Millisecond), Until: t0.Add(600 * time.Millisecond)},
			func(k known) bool { return overlaps(k, 500*time.Millisecond, 600*time.Millisecond) }},
		{"until", Query{Until: t0.Add(-time.Nanosecond)}, func(known) bool { return false }},
		{"host and port", Query{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.1.3/32")}, Ports: []uint16{53}},
			func(k known) bool { return k.flow == "dns" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := ix.Lookup(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range rows {
				got = append(got, r.Offsets...)
			}
			slices.Sort(got)
			if want := inFlowWith(tc.sel); !slices.Equal(got, want) {
				t.Errorf("offsets %v, want %v", got, want)
			}
		})
	}
}

// TestUndecodedPacket indexes a packet kept as captured (not mirror
// traffic) by its own Ethernet frame, and a non-Ethernet one in the row
// of frames without IP.
func TestUndecodedPacket(t *testing.T) {
	f := frame(t, "192.0.2.1", "192.0.2.2", l4{kind: "udp", sport: 1000, dport: 2000})
	ps := []*mirror.Packet{
		{Timestamp: t0, LinkType: layers.LinkTypeEthernet, Mode: mirror.ModeOther, Data: f, WireLen: len(f)},
		{Timestamp: t0, LinkType: layers.LinkTypeRaw, Mode: mirror.ModeOther, Data: f[14:], WireLen: len(f) - 14},
	}
	c := encode(t, ps)
	data := build(t, Options{}, ps, c)
	ix, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ix.Lookup(Query{Ports: []uint16{2000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].SrcAddr != "192.0.2.1" || !slices.Equal(rows[0].Offsets, c.offs[:1]) || rows[0].VNI != -1 {
		t.Fatalf("rows %+v, want the UDP packet at %d", rows, c.offs[0])
	}
	rows, err = ix.Lookup(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].SrcAddr != "" || !slices.Equal(rows[0].Offsets, c.offs[1:]) {
		t.Fatalf("rows %+v, want the raw IP packet in a row without addresses", rows)
	}
}
