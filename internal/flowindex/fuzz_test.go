package flowindex

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// FuzzOpen: Open and Lookup on arbitrary bytes return an error or rows,
// never panic. The seeds are real indexes, whole and cut.
func FuzzOpen(f *testing.F) {
	ps, c := knownCapture(f)
	data := build(f, Options{RowGroupRows: 4}, ps, c)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(data[len(data)/3:])
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, q := range []Query{{}, {Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.2.3/32")}}, {CommunityID: "1:x", Ports: []uint16{80}}} {
			_, _ = ix.Lookup(q)
		}
	})
}

// FuzzRoundTrip: packets built from random bytes, indexed, written,
// opened: a lookup of each packet's source address finds its record, in
// its flow's row or in the overflow row's ranges.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, uint8(3))
	f.Add(bytes.Repeat([]byte{0x42, 0x17, 0x99, 0x06}, 40), uint8(0))
	f.Fuzz(roundTrip)
}

func roundTrip(t *testing.T, seed []byte, maxFlows uint8) {
	{
		if len(seed) == 0 {
			return
		}
		ps := randomPackets(t, seed)
		c := encode(t, ps)
		data := build(t, Options{MaxFlows: int(maxFlows), MaxRecords: 3 * int(maxFlows), RowGroupRows: 3}, ps, c)
		ix, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		// Every packet is in its flow's row or the overflow's ranges;
		// a lookup of a packet's source address finds it (a few of them,
		// to keep each run short).
		for i, p := range ps {
			var q Query
			if i < 4 {
				var tp tuple
				parseFrame(p.Frame, &tp)
				if tp.family != 0 {
					a := netip.MustParseAddr(addrString(tp.family, &tp.src))
					q.Addrs = []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}
				}
			} else if i > 4 {
				continue
			}
			rows, err := ix.Lookup(q)
			if err != nil {
				t.Fatal(err)
			}
			for j := range ps {
				if q.Addrs != nil && j != i {
					continue
				}
				if !slices.ContainsFunc(rows, func(r Row) bool {
					if r.Overflow {
						return covered(r, c.offs[j], c.lens[j])
					}
					return slices.Contains(r.Offsets, c.offs[j])
				}) {
					t.Fatalf("packet %d (%v) not found", j, q.Addrs)
				}
			}
		}
	}
}

// randomPackets makes up to 64 packets from seed: IPv4 or IPv6, TCP, UDP,
// SCTP, ICMP or another protocol, a few addresses, ports and VN names,
// sometimes cut short or without IP.
func randomPackets(t testing.TB, seed []byte) []*mirror.Packet {
	at := func(i int) byte { return seed[i%len(seed)] }
	kinds := []string{"tcp", "udp", "sctp", "icmp", "ip"}
	var ps []*mirror.Packet
	for i := 0; i < min(64, 4*len(seed)); i++ {
		b0, b1, b2, b3 := at(4*i), at(4*i+1), at(4*i+2), at(4*i+3)
		src, dst := "10.0.0."+itoa(b0%8), "10.0.1."+itoa(b1%8)
		if b2&1 != 0 {
			src, dst = "fd00::"+itoa(b0%8+1), "fd00:1::"+itoa(b1%8+1)
		}
		h := l4{kind: kinds[int(b2>>1)%len(kinds)], sport: uint16(b3 % 4), dport: uint16(b0 % 3), proto: 47, flags: b1}
		var fr []byte
		switch {
		case b3%13 == 0:
			fr = arp(t)
		default:
			fr = frame(t, src, dst, h)
		}
		if b3%7 == 0 {
			fr = fr[:min(len(fr), 14+int(b0%48))]
		}
		p := packet(time.Duration(b2)*time.Millisecond, fr, []string{"", "a", "b"}[b1%3], "x", mirror.Direction(b2%3), "")
		if b3%5 == 0 {
			p.Meta.HasVNI, p.Meta.VNI = true, uint32(b0)
		}
		if b3%11 == 0 {
			p.Mode, p.LinkType = mirror.ModeOther, layers.LinkTypeEthernet
		}
		ps = append(ps, p)
	}
	return ps
}

func itoa(b byte) string { return strconv.Itoa(int(b)) }
