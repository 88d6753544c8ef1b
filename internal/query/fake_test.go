package query_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/flowindex"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/query"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// memBucket is a bucket in memory. It lists every manifest stored in it
// whatever the window and sniffers asked, as a store whose listing is
// coarse would: the query must narrow them down itself. It counts the
// bytes each GetRange serves, per key.
type memBucket struct {
	mu   sync.Mutex
	objs map[string][]byte
	read map[string]int64
}

func newMemBucket() *memBucket {
	return &memBucket{objs: map[string][]byte{}, read: map[string]int64{}}
}

func (b *memBucket) put(key string, v []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objs[key] = v
}

func (b *memBucket) Manifests(ctx context.Context, since, until time.Time, sniffers []string) ([]objstore.Manifest, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ms []objstore.Manifest
	for k, v := range b.objs {
		if !strings.HasSuffix(k, objstore.SuffixManifest) {
			continue
		}
		var m objstore.Manifest
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func (b *memBucket) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.objs[key]
	if !ok {
		return nil, fmt.Errorf("%s: no such key", key)
	}
	if off < 0 || n <= 0 || off+n > int64(len(v)) {
		return nil, fmt.Errorf("%s: range [%d, %d) outside %d bytes", key, off, off+n, len(v))
	}
	b.read[key] += n
	return io.NopCloser(bytes.NewReader(v[off : off+n])), nil
}

// bytesRead returns the bytes served of the keys with the suffix.
func (b *memBucket) bytesRead(suffix string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for k, v := range b.read {
		if strings.HasSuffix(k, suffix) {
			n += v
		}
	}
	return n
}

// fakeIndex is a flow index stored as JSON: its rows, and an overflow
// row, returned by every lookup, for the records of flows it did not keep.
type fakeIndex struct {
	Rows     []flowindex.Row
	Overflow flowindex.Row
}

func openFakeIndex(r io.ReaderAt, size int64) (query.Index, error) {
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, err
	}
	var x fakeIndex
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, err
	}
	return &x, nil
}

// Lookup keeps the rows IndexQuery asks for, as its documentation says.
func (x *fakeIndex) Lookup(q query.IndexQuery) ([]flowindex.Row, error) {
	out := []flowindex.Row{x.Overflow}
	for _, r := range x.Rows {
		if r.Last.Before(q.Since) || !r.First.Before(q.Until) {
			continue
		}
		if q.CommunityID != "" && r.CommunityID != q.CommunityID {
			continue
		}
		if len(q.Prefixes) > 0 {
			ok := r.SrcAddr == "" && r.DstAddr == "" && q.NoAddr
			for _, p := range q.Prefixes {
				for _, a := range []string{r.SrcAddr, r.DstAddr} {
					if ad, err := netip.ParseAddr(a); err == nil && p.Contains(ad) {
						ok = true
					}
				}
			}
			if !ok {
				continue
			}
		}
		if len(q.Ports) > 0 {
			l4 := r.Proto == 6 || r.Proto == 17 || r.Proto == 132
			ok := l4 && r.SrcPort == 0 && r.DstPort == 0
			for _, pr := range q.Ports {
				ok = ok || (l4 && (pr.Contains(uint16(r.SrcPort)) || pr.Contains(uint16(r.DstPort))))
			}
			if !ok {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// flowKey is what a fake index row is per: the 5-tuple and the metadata.
type flowKey struct {
	proto        int32
	src, dst     string
	sport, dport int32
	srcVN, dstVN string
	dir          mirror.Direction
}

// tuple reads the 5-tuple of an Ethernet frame; ok is false without IP.
func tuple(frame []byte) (k flowKey, ok bool) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		k.src, k.dst, k.proto = ip.SrcIP.String(), ip.DstIP.String(), int32(ip.Protocol)
	case *layers.IPv6:
		k.src, k.dst, k.proto = ip.SrcIP.String(), ip.DstIP.String(), int32(ip.NextHeader)
	default:
		return k, false
	}
	switch l := pkt.TransportLayer().(type) {
	case *layers.TCP:
		k.sport, k.dport = int32(l.SrcPort), int32(l.DstPort)
	case *layers.UDP:
		k.sport, k.dport = int32(l.SrcPort), int32(l.DstPort)
	}
	return k, true
}

// communityID stands in for the Community ID of a frame: the same for
// both directions of a flow, "" without IP. (The real one is flowindex's;
// the query only compares them.)
func communityID(p *mirror.Packet) string {
	k, ok := tuple(p.Frame)
	if !ok {
		return ""
	}
	a, b := fmt.Sprintf("%s:%d", k.src, k.sport), fmt.Sprintf("%s:%d", k.dst, k.dport)
	if b < a {
		a, b = b, a
	}
	// The shape of a Community ID v1 ("1:" and the base64 of a SHA-1)
	// over a text of the flow: not the real hash, which the fake index
	// needs not know.
	sum := sha1.Sum([]byte(fmt.Sprintf("%d:%s-%s", k.proto, a, b)))
	return "1:" + base64.StdEncoding.EncodeToString(sum[:])
}

// flow is a conversation between two endpoints, in two VNs.
type flow struct {
	proto        layers.IPProtocol
	a, b         netip.Addr
	aPort, bPort uint16
	aVN, bVN     string
	arp, raw     bool
}

var (
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	vns = []string{"default-domain:admin:vn-a", "default-domain:admin:vn-b", "default-domain:proj:vn-c"}
)

// frame builds the flow's frame from a to b, or b to a when back.
func (f flow) frame(t testing.TB, back bool, size int) []byte {
	src, dst, sp, dp := f.a, f.b, f.aPort, f.bPort
	if back {
		src, dst, sp, dp = dst, src, dp, sp
	}
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}}
	pay := gopacket.Payload(bytes.Repeat([]byte{byte(size)}, size))
	if f.arp {
		eth.EthernetType = layers.EthernetTypeARP
		return testenv.Serialize(t, eth, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: eth.SrcMAC, SourceProtAddress: src.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: dst.AsSlice()})
	}
	var l3 gopacket.NetworkLayer
	var ls []gopacket.SerializableLayer
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: f.proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		l3, ls = ip, []gopacket.SerializableLayer{eth, ip}
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: f.proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		l3, ls = ip, []gopacket.SerializableLayer{eth, ip}
	}
	switch f.proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), ACK: true, Window: 100}
		tcp.SetNetworkLayerForChecksum(l3)
		ls = append(ls, tcp)
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
		udp.SetNetworkLayerForChecksum(l3)
		ls = append(ls, udp)
	default:
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})
	}
	return testenv.Serialize(t, append(ls, pay)...)
}

// packet is one packet of the flow at time ts as a sniffer stored it.
func (f flow) packet(t testing.TB, back bool, ts time.Time, size int, dir mirror.Direction) *mirror.Packet {
	if f.raw {
		// Not decoded: stored as captured, with a link type of its own
		// (so the file describes its interface after its header).
		d := bytes.Repeat([]byte{0x45}, 40+size)
		return &mirror.Packet{Timestamp: ts, LinkType: layers.LinkTypeRaw, Data: d, WireLen: len(d), Mode: mirror.ModeOther}
	}
	svn, dvn := f.aVN, f.bVN
	if back {
		svn, dvn = dvn, svn
	}
	fr := f.frame(t, back, size)
	return &mirror.Packet{Timestamp: ts, LinkType: layers.LinkTypeEthernet, Data: fr, WireLen: len(fr),
		Mode: mirror.ModeJuniper, Frame: fr, FrameLen: len(fr),
		Meta: mirror.Meta{SrcVN: []byte(svn), DstVN: []byte(dvn), Direction: dir, FlagBits: 32,
			Host: netip.MustParseAddr("192.0.2.1")}}
}

var flows = func() []flow {
	a := netip.MustParseAddr
	return []flow{
		{proto: layers.IPProtocolTCP, a: a("10.0.0.1"), b: a("10.0.0.2"), aPort: 40000, bPort: 80, aVN: vns[0], bVN: vns[1]},
		{proto: layers.IPProtocolTCP, a: a("10.0.0.1"), b: a("10.0.0.3"), aPort: 40001, bPort: 443, aVN: vns[0], bVN: vns[2]},
		{proto: layers.IPProtocolUDP, a: a("10.0.0.4"), b: a("10.0.0.2"), aPort: 5353, bPort: 53, aVN: vns[2], bVN: vns[1]},
		{proto: layers.IPProtocolUDP, a: a("10.0.0.1"), b: a("10.0.0.5"), aPort: 5354, bPort: 53, aVN: vns[0], bVN: vns[0]},
		{proto: layers.IPProtocolTCP, a: a("10.0.0.6"), b: a("10.0.0.1"), aPort: 80, bPort: 40002, aVN: vns[2], bVN: vns[0]},
		{proto: layers.IPProtocolTCP, a: a("2001:db8::1"), b: a("2001:db8::2"), aPort: 40003, bPort: 80, aVN: vns[1], bVN: vns[1]},
		{proto: layers.IPProtocolICMPv4, a: a("10.0.0.1"), b: a("10.0.0.2"), aVN: vns[0], bVN: vns[1]},
		{arp: true, a: a("10.0.0.1"), b: a("10.0.0.2"), aVN: vns[0], bVN: vns[1]},
		{raw: true},
	}
}()

// fleet is a generated fleet's bucket and what it holds.
type fleet struct {
	b *memBucket
	// all is every packet of a visible file, in time order, with the
	// sniffer that stored it.
	all      []*mirror.Packet
	sniffer  []string
	pcapSize int64 // bytes of the visible capture files
	files    int
}

var sniffers = []string{"sniffer-0", "sniffer-1", "sniffer-2"}

// newFleet writes three sniffers' files, three each, overlapping in time
// across sniffers: flow f is seen by sniffer f%3 one way and, for every
// other flow, by sniffer (f+1)%3 the other way. No packet of sniffer-0
// comes from vn-c; its second file counts the pairs from vn-b as other.
// One more capture file, with an index but no manifest, holds packets of
// every flow and must stay invisible.
func newFleet(t testing.TB) *fleet {
	r := rand.New(rand.NewPCG(7, 9))
	fl := &fleet{b: newMemBucket()}
	type stamped struct {
		p       *mirror.Packet
		sniffer string
	}
	var all []stamped
	for s, sn := range sniffers {
		for k := range 3 {
			start := t0.Add(time.Duration(k)*time.Minute + time.Duration(s)*20*time.Second)
			var ps []*mirror.Packet
			for range 120 {
				ts := start.Add(time.Duration(r.Int64N(int64(time.Minute))))
				fi := r.IntN(len(flows))
				f := flows[fi]
				back := false
				switch {
				case fi%3 == s:
				case fi%2 == 0 && (fi+1)%3 == s:
					back = true
				default:
					continue
				}
				dir := mirror.DirEgress
				if back {
					dir = mirror.DirIngress
				}
				ps = append(ps, f.packet(t, back, ts, 10+r.IntN(300), dir))
			}
			slices.SortStableFunc(ps, func(a, b *mirror.Packet) int { return a.Timestamp.Compare(b.Timestamp) })
			m := fl.store(t, sn, uint64(k), ps, s == 0 && k == 1)
			fl.pcapSize += m.PcapSize
			fl.files++
			for _, p := range ps {
				all = append(all, stamped{p, sn})
			}
		}
	}
	slices.SortStableFunc(all, func(a, b stamped) int { return a.p.Timestamp.Compare(b.p.Timestamp) })
	for _, s := range all {
		fl.all = append(fl.all, s.p)
		fl.sniffer = append(fl.sniffer, s.sniffer)
	}
	// The invisible file: uploaded, its manifest never written.
	var ps []*mirror.Packet
	for i, f := range flows {
		ps = append(ps, f.packet(t, false, t0.Add(time.Duration(i)*time.Second+time.Millisecond), 50, mirror.DirEgress))
	}
	pcap, rows, _ := encode(t, ps)
	base := objstore.FileBase("sniffer-9", ps[0].Timestamp, 0)
	fl.b.put(base+objstore.SuffixPcap, pcap)
	fl.b.put(base+objstore.SuffixIndex, rows)
	return fl
}

// encode writes packets as a capture file does and builds its fake index:
// the offsets of each packet's block (its enhanced packet block, without
// the interface description that may come first).
func encode(t testing.TB, ps []*mirror.Packet) (pcap, index []byte, headerLen int64) {
	enc, err := pcapfile.NewEncoder(pcapfile.Options{Application: "vrsniff"})
	if err != nil {
		t.Fatal(err)
	}
	buf := enc.AppendHeader(nil)
	headerLen = int64(len(buf))
	byKey := map[flowKey]*flowindex.Row{}
	var keys []flowKey
	var idx fakeIndex
	for i, p := range ps {
		start := len(buf)
		if buf, err = enc.Append(buf, p); err != nil {
			t.Fatal(err)
		}
		off := lastBlock(t, buf[start:]) + start
		k, ok := flowKey{}, false
		if p.Frame != nil {
			k, ok = tuple(p.Frame)
			if !ok {
				k.proto = -1 // ARP: a row without addresses
			}
			k.srcVN, k.dstVN, k.dir = string(p.Meta.SrcVN), string(p.Meta.DstVN), p.Meta.Direction
		}
		row := &idx.Overflow
		// Raw packets, and one record in seven, go to the overflow row.
		if p.Frame != nil && i%7 != 3 {
			if row = byKey[k]; row == nil {
				row = &flowindex.Row{First: p.Timestamp, Proto: max(k.proto, 0), SrcAddr: k.src, DstAddr: k.dst,
					SrcPort: k.sport, DstPort: k.dport, CommunityID: communityID(p), SrcVN: k.srcVN, DstVN: k.dstVN,
					Direction: k.dir.String(), VNI: -1}
				byKey[k] = row
				keys = append(keys, k)
			}
		}
		row.Last = p.Timestamp
		row.Packets++
		row.Offsets = append(row.Offsets, int64(off))
		row.Lengths = append(row.Lengths, int32(len(buf)-off))
	}
	for _, k := range keys {
		idx.Rows = append(idx.Rows, *byKey[k])
	}
	index, err = json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return buf, index, headerLen
}

// lastBlock returns the offset in b of its last pcapng block.
func lastBlock(t testing.TB, b []byte) int {
	off := 0
	for {
		n := int(binary.LittleEndian.Uint32(b[off+4:]))
		if off+n == len(b) {
			return off
		}
		if n < 12 || off+n > len(b) {
			t.Fatalf("bad block length %d", n)
		}
		off += n
	}
}

// store uploads one sniffer's file: capture, index and manifest. With
// other, the pairs from vn-b are counted as other.
func (fl *fleet) store(t testing.TB, sn string, seq uint64, ps []*mirror.Packet, other bool) objstore.Manifest {
	pcap, index, hl := encode(t, ps)
	base := objstore.FileBase(sn, ps[0].Timestamp, seq)
	m := objstore.Manifest{Version: 1, Sniffer: sn, Seq: seq, Pcap: base + objstore.SuffixPcap, PcapSize: int64(len(pcap)),
		HeaderLen: hl, Index: base + objstore.SuffixIndex, IndexSize: int64(len(index)),
		First: ps[0].Timestamp, Last: ps[len(ps)-1].Timestamp, Packets: uint64(len(ps))}
	pairs := map[[2]string]uint64{}
	for _, p := range ps {
		pairs[[2]string{string(p.Meta.SrcVN), string(p.Meta.DstVN)}]++
	}
	for k, n := range pairs {
		if other && strings.HasSuffix(k[0], "vn-b") {
			m.PairsOther += n
			continue
		}
		m.Pairs = append(m.Pairs, vnpair.Pair{SrcVN: k[0], DstVN: k[1], Packets: n})
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	fl.b.put(m.Pcap, pcap)
	fl.b.put(m.Index, index)
	fl.b.put(base+objstore.SuffixManifest, js)
	return m
}

// filterOf compiles filter options for a test.
func filterOf(t testing.TB, o filter.Options) *filter.Filter {
	f, err := filter.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
