package extract

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// MaxTracked bounds the VN pairs and the conversations a Summary counts
// one by one; packets of those that find no room are counted in
// PairsOther and ConversationsOther. It bounds the memory of summarizing
// hostile input (spoofed addresses, one conversation per packet).
const MaxTracked = 1 << 20

// Summary describes capture files as capinfos does, with the VN pairs of
// their metadata comments and the busiest conversations of the inner
// frames. Bytes are captured bytes (what the files hold).
type Summary struct {
	Files      []string  `json:"files"`
	Packets    uint64    `json:"packets"`
	Bytes      uint64    `json:"bytes"`
	WireBytes  uint64    `json:"wire_bytes"` // lengths on the wire
	First      time.Time `json:"first_packet,omitzero"`
	Last       time.Time `json:"last_packet,omitzero"`
	Seconds    float64   `json:"duration_seconds"`
	PacketRate float64   `json:"packets_per_second"` // 0 with under two distinct times
	ByteRate   float64   `json:"bytes_per_second"`
	// Interfaces are the distinct interface descriptions of the files,
	// with their packets and the drops their statistics blocks report.
	Interfaces []IfaceSummary `json:"interfaces"`
	// Pairs are the VN pairs (source, destination) of the metadata
	// comments, most packets first; packets without a comment vrsniff
	// wrote count under empty names.
	Pairs      []PairSummary `json:"vn_pairs"`
	PairsOther uint64        `json:"vn_pairs_other_packets,omitempty"`
	// Conversations are the busiest 5-tuples of the inner frames, both
	// directions together (as Wireshark's conversations), most packets
	// first; TopN of them at most.
	Conversations      []Conversation `json:"conversations"`
	ConversationsOther uint64         `json:"conversations_other_packets,omitempty"`
	NotIP              uint64         `json:"non_ip_packets"` // frames without an IP header
	// Unreadable lists the files, or their ends, that could not be read.
	Unreadable []string `json:"unreadable,omitempty"`
}

// IfaceSummary is one interface of a Summary.
type IfaceSummary struct {
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	LinkType    string `json:"link_type"`
	Packets     uint64 `json:"packets"`
	// Received, IfDropped and OSDropped sum the last statistics block of
	// the interface in each file; nil when no file gave one.
	Received  *uint64 `json:"received,omitempty"`
	IfDropped *uint64 `json:"if_dropped,omitempty"`
	OSDropped *uint64 `json:"os_dropped,omitempty"`
}

// PairSummary counts the packets of one VN pair.
type PairSummary struct {
	SrcVN   string `json:"src_vn"`
	DstVN   string `json:"dst_vn"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Conversation counts the packets of one 5-tuple, both directions.
type Conversation struct {
	Proto   string     `json:"proto"` // tcp, udp, sctp, icmp, icmpv6 or the IP protocol number
	A       netip.Addr `json:"a"`
	APort   uint16     `json:"a_port,omitempty"`
	B       netip.Addr `json:"b"`
	BPort   uint16     `json:"b_port,omitempty"`
	Packets uint64     `json:"packets"`
	Bytes   uint64     `json:"bytes"`
}

type convKey struct {
	proto        layers.IPProtocol
	a, b         netip.Addr
	aPort, bPort uint16
}

type pairKey struct{ src, dst string }

type counts struct{ packets, bytes uint64 }

// summarizer holds the state of one Summarize.
type summarizer struct {
	s      Summary
	ifaces ifaceTable
	ifs    []IfaceSummary
	pairs  map[pairKey]*counts
	convs  map[convKey]*counts
	names  []byte // the packet's quoted VN names, unquoted

	parser  *gopacket.DecodingLayerParser
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	udp     layers.UDP
	sctp    layers.SCTP
	decoded []gopacket.LayerType
}

// Summarize reads the capture files (pcap or pcapng) and describes them;
// topN bounds the conversations listed. A file that cannot be opened is an
// error; one that cannot be read to its end is listed in Unreadable, with
// what was read before counted.
func Summarize(paths []string, topN int) (*Summary, error) {
	z := &summarizer{pairs: map[pairKey]*counts{}, convs: map[convKey]*counts{}}
	z.s.Files = paths
	z.parser = gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &z.eth, &z.dot1q, &z.ip4, &z.ip6, &z.tcp, &z.udp, &z.sctp)
	z.parser.IgnoreUnsupported = true
	for _, path := range paths {
		if err := z.file(path); err != nil {
			return nil, err
		}
	}
	s := &z.s
	if s.Packets > 0 {
		s.Seconds = s.Last.Sub(s.First).Seconds()
		if s.Seconds > 0 {
			s.PacketRate = float64(s.Packets) / s.Seconds
			s.ByteRate = float64(s.Bytes) / s.Seconds
		}
	}
	s.Interfaces = z.ifs
	if s.Interfaces == nil {
		s.Interfaces = []IfaceSummary{}
	}
	s.Pairs = make([]PairSummary, 0, len(z.pairs))
	for k, c := range z.pairs {
		s.Pairs = append(s.Pairs, PairSummary{k.src, k.dst, c.packets, c.bytes})
	}
	slices.SortFunc(s.Pairs, func(a, b PairSummary) int {
		return cmp.Or(-cmp.Compare(a.Packets, b.Packets), cmp.Compare(a.SrcVN, b.SrcVN), cmp.Compare(a.DstVN, b.DstVN))
	})
	convs := make([]Conversation, 0, len(z.convs))
	for k, c := range z.convs {
		convs = append(convs, Conversation{protoName(k.proto), k.a, k.aPort, k.b, k.bPort, c.packets, c.bytes})
	}
	slices.SortFunc(convs, func(a, b Conversation) int {
		return cmp.Or(-cmp.Compare(a.Packets, b.Packets), -cmp.Compare(a.Bytes, b.Bytes), a.A.Compare(b.A), a.B.Compare(b.B),
			cmp.Compare(a.APort, b.APort), cmp.Compare(a.BPort, b.BPort), cmp.Compare(a.Proto, b.Proto))
	})
	if len(convs) > topN {
		convs = convs[:max(topN, 0)]
	}
	s.Conversations = convs
	return s, nil
}

func (z *summarizer) file(path string) error {
	rd, c, err := pcapfile.Open(path)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	defer c.Close()
	var local []int
	var p mirror.Packet
	err = rd.Guard(func() error {
		for {
			if err := rd.Next(&p); err != nil {
				return err
			}
			for len(local) <= p.Interface {
				local = append(local, z.iface(rd.Interface(len(local))))
			}
			z.packet(&p, local[p.Interface])
		}
	})
	if !errors.Is(err, io.EOF) {
		z.s.Unreadable = append(z.s.Unreadable, fmt.Sprintf("%s: %v", path, err))
	}
	// The statistics of each interface of the file: its last block.
	for i, g := range local {
		st, ok := rd.Stats(i)
		if !ok {
			continue
		}
		f := &z.ifs[g]
		add := func(dst **uint64, v uint64, has bool) {
			if has {
				if *dst == nil {
					*dst = new(uint64)
				}
				**dst += v
			}
		}
		add(&f.Received, st.Received, st.HasReceived)
		add(&f.IfDropped, st.IfDropped, st.HasIfDropped)
		add(&f.OSDropped, st.OSDropped, st.HasOSDropped)
	}
	return nil
}

// iface returns the summary index of an interface description.
func (z *summarizer) iface(d pcapfile.Interface) int {
	g := z.ifaces.index(d)
	if g == len(z.ifs) {
		z.ifs = append(z.ifs, IfaceSummary{Name: d.Name, Description: d.Description, LinkType: d.LinkType.String()})
	}
	return g
}

func (z *summarizer) packet(p *mirror.Packet, iface int) {
	s := &z.s
	n := uint64(len(p.Data))
	s.Packets++
	s.Bytes += n
	s.WireBytes += uint64(p.WireLen)
	z.ifs[iface].Packets++
	if !p.Timestamp.IsZero() {
		if s.First.IsZero() || p.Timestamp.Before(s.First) {
			s.First = p.Timestamp
		}
		if p.Timestamp.After(s.Last) {
			s.Last = p.Timestamp
		}
	}

	var m mirror.Meta
	if len(p.Comments) > 0 {
		z.names, _ = mirror.ParseCommentBuf(p.Comments[0], &m, z.names)
	}
	if c := z.pairs[pairKey{string(m.SrcVN), string(m.DstVN)}]; c != nil {
		c.packets++
		c.bytes += n
	} else if len(z.pairs) < MaxTracked {
		z.pairs[pairKey{string(m.SrcVN), string(m.DstVN)}] = &counts{1, n}
	} else {
		s.PairsOther++
	}

	if p.LinkType != layers.LinkTypeEthernet {
		s.NotIP++
		return
	}
	k, ok := z.conversation(p.Data)
	if !ok {
		s.NotIP++
		return
	}
	if c := z.convs[k]; c != nil {
		c.packets++
		c.bytes += n
	} else if len(z.convs) < MaxTracked {
		z.convs[k] = &counts{1, n}
	} else {
		s.ConversationsOther++
	}
}

// conversation returns the 5-tuple of an Ethernet frame, its endpoints in
// a canonical order so that both directions count together.
func (z *summarizer) conversation(frame []byte) (convKey, bool) {
	// An error is a layer it could not decode: what came before counts.
	_ = z.parser.DecodeLayers(frame, &z.decoded)
	var k convKey
	var sport, dport uint16
	ip := false
	for _, t := range z.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			k.a, _ = netip.AddrFromSlice(z.ip4.SrcIP)
			k.b, _ = netip.AddrFromSlice(z.ip4.DstIP)
			k.proto, ip = z.ip4.Protocol, true
		case layers.LayerTypeIPv6:
			k.a, _ = netip.AddrFromSlice(z.ip6.SrcIP)
			k.b, _ = netip.AddrFromSlice(z.ip6.DstIP)
			k.proto, ip = z.ip6.NextHeader, true
		case layers.LayerTypeTCP:
			sport, dport = uint16(z.tcp.SrcPort), uint16(z.tcp.DstPort)
		case layers.LayerTypeUDP:
			sport, dport = uint16(z.udp.SrcPort), uint16(z.udp.DstPort)
		case layers.LayerTypeSCTP:
			sport, dport = uint16(z.sctp.SrcPort), uint16(z.sctp.DstPort)
		}
	}
	if !ip {
		return k, false
	}
	k.aPort, k.bPort = sport, dport
	if c := k.a.Compare(k.b); c > 0 || (c == 0 && k.aPort > k.bPort) {
		k.a, k.b, k.aPort, k.bPort = k.b, k.a, k.bPort, k.aPort
	}
	return k, true
}

func protoName(p layers.IPProtocol) string {
	switch p {
	case layers.IPProtocolTCP:
		return "tcp"
	case layers.IPProtocolUDP:
		return "udp"
	case layers.IPProtocolSCTP:
		return "sctp"
	case layers.IPProtocolICMPv4:
		return "icmp"
	case layers.IPProtocolICMPv6:
		return "icmpv6"
	}
	return fmt.Sprint(uint8(p))
}
