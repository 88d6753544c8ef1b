package flowindex

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// traffic is a capture file of n packets over the given number of flows,
// drawn with a Zipf law (a few flows carry most packets, as in a cloud's
// east-west traffic), TCP and UDP between 200 VMs of 8 VNs, frames of 64
// to 1514 bytes, mirrored by 4 hosts in both directions.
func traffic(b testing.TB, n, flows int) ([]*mirror.Packet, capture) {
	r := rand.New(rand.NewPCG(1, 2))
	type fl struct {
		f            []byte
		srcVN, dstVN string
		dir          mirror.Direction
		host         string
	}
	vns := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	fs := make([]fl, flows)
	sizes := []int{64, 64, 128, 576, 1514, 1514}
	for i := range fs {
		kind := "tcp"
		if r.IntN(4) == 0 {
			kind = "udp"
		}
		s4 := [4]byte{10, 0, byte(r.IntN(2)), byte(1 + r.IntN(100))}
		d4 := [4]byte{10, 0, byte(r.IntN(2)), byte(1 + r.IntN(100))}
		src, dst := s4, d4
		f := frame(b, netip.AddrFrom4(s4).String(), netip.AddrFrom4(d4).String(), l4{kind: kind, sport: uint16(1024 + r.IntN(60000)), dport: []uint16{80, 443, 53, 5432, 6379}[r.IntN(5)], flags: 16})
		size := sizes[r.IntN(len(sizes))]
		if len(f) < size {
			f = append(f, make([]byte, size-len(f))...)
		}
		fs[i] = fl{f, "default-domain:proj:vn-" + vns[src[2]*4+src[3]%4], "default-domain:proj:vn-" + vns[dst[2]*4+dst[3]%4],
			mirror.Direction(1 + r.IntN(2)), netip.AddrFrom4([4]byte{10, 10, 0, byte(11 + r.IntN(4))}).String()}
	}
	z := rand.NewZipf(r, 1.2, 1, uint64(flows-1))
	ps := make([]*mirror.Packet, n)
	for i := range ps {
		f := fs[z.Uint64()]
		ps[i] = packet(time.Duration(i)*10*time.Microsecond, f.f, f.srcVN, f.dstVN, f.dir, f.host)
	}
	return ps, encode(b, ps)
}

// genTraffic is the decodable cases of internal/gen's "bench" profile as
// the decoder hands them on, and their capture file.
func genTraffic(b testing.TB, n int) ([]*mirror.Packet, capture) {
	g, err := gen.New(gen.Options{Seed: 7, Mix: gen.Profiles["bench"], LinkType: layers.LinkTypeEthernet, MaxFrame: 1514})
	if err != nil {
		b.Fatal(err)
	}
	var ps []*mirror.Packet
	for len(ps) < n {
		c := g.Next().Clone()
		if c.Reason != "" {
			continue
		}
		ps = append(ps, &mirror.Packet{Timestamp: c.Packets[0].Timestamp, LinkType: layers.LinkTypeEthernet,
			Mode: c.Mode, Frame: c.Frame, FrameLen: c.FrameLen, Truncated: c.Truncated, Meta: c.Meta(),
			Data: c.Packets[0].Data, WireLen: c.Packets[0].WireLen})
	}
	return ps, encode(b, ps)
}

// BenchmarkAdd is the cost of indexing one packet (ns/op is per packet):
// 0 allocs/op once the builder has grown to the file, since Reset keeps
// its tables. As in the pipeline, one Packet is reused for every packet.
func BenchmarkAdd(b *testing.B) {
	ps, c := traffic(b, 100_000, 2000)
	bl := NewBuilder(Options{})
	for i, p := range ps {
		bl.Add(p, c.offs[i], c.lens[i])
	}
	bl.Reset()
	var p mirror.Packet
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(ps) {
			bl.Reset()
			i = 0
		}
		p = *ps[i]
		bl.Add(&p, c.offs[i], c.lens[i])
		i++
	}
}

// TestAddDoesNotAllocate holds Add to no allocation in steady state, as
// BenchmarkAdd reports it.
func TestAddDoesNotAllocate(t *testing.T) {
	ps, c := traffic(t, 5000, 300)
	bl := NewBuilder(Options{})
	fill := func() {
		for i, p := range ps {
			bl.Add(p, c.offs[i], c.lens[i])
		}
	}
	fill()
	bl.Reset()
	if n := testing.AllocsPerRun(5, func() { fill(); bl.Reset() }); n != 0 {
		t.Errorf("%v allocations indexing a file again after Reset, want 0", n)
	}
}

// BenchmarkWriteTo writes the index of a file: per op one index, with its
// size as a share of the pcapng file it indexes.
func BenchmarkWriteTo(b *testing.B) {
	for _, tc := range []struct {
		name string
		load func(testing.TB) ([]*mirror.Packet, capture)
	}{
		{"zipf-100k-2000flows", func(tb testing.TB) ([]*mirror.Packet, capture) { return traffic(tb, 100_000, 2000) }},
		{"zipf-100k-20000flows", func(tb testing.TB) ([]*mirror.Packet, capture) { return traffic(tb, 100_000, 20000) }},
		{"gen-bench-20k", func(tb testing.TB) ([]*mirror.Packet, capture) { return genTraffic(tb, 20_000) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ps, c := tc.load(b)
			bl := NewBuilder(Options{})
			for i, p := range ps {
				bl.Add(p, c.offs[i], c.lens[i])
			}
			var size int64
			b.ReportAllocs()
			for b.Loop() {
				n, err := bl.WriteTo(io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				size = n
			}
			b.ReportMetric(float64(bl.Flows()), "flows")
			b.ReportMetric(float64(size), "index-bytes")
			b.ReportMetric(100*float64(size)/float64(len(c.file)), "%-of-pcapng")
			b.ReportMetric(float64(size)/float64(len(ps)), "index-B/packet")
		})
	}
}

// BenchmarkLookupHost opens an index and looks one host up: bytes read
// against the index's size.
func BenchmarkLookupHost(b *testing.B) {
	ps, c := traffic(b, 100_000, 20000)
	bl := NewBuilder(Options{})
	for i, p := range ps {
		bl.Add(p, c.offs[i], c.lens[i])
	}
	var buf bytes.Buffer
	if _, err := bl.WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	q := Query{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.1.7/32")}}
	var read, opened int64
	b.ReportAllocs()
	for b.Loop() {
		cr := &countingReaderAt{r: bytes.NewReader(data)}
		ix, err := Open(cr, int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		opened = cr.n
		if _, err := ix.Lookup(q); err != nil {
			b.Fatal(err)
		}
		read = cr.n
	}
	b.ReportMetric(float64(len(data)), "index-bytes")
	b.ReportMetric(float64(opened), "open-bytes-read")
	b.ReportMetric(float64(read), "bytes-read")
	b.ReportMetric(100*float64(read)/float64(len(data)), "%-read")
}
