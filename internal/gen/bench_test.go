package gen

import (
	"io"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

func BenchmarkGenerate(b *testing.B) {
	for _, p := range []string{"bench", "mixed", "all"} {
		b.Run(p, func(b *testing.B) {
			g, err := New(Options{Seed: 1, Mix: Profiles[p]})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			packets, bytes := 0, 0
			for b.Loop() {
				c := g.Next()
				packets += len(c.Packets)
				for _, w := range c.Packets {
					bytes += len(w.Data)
				}
			}
			b.SetBytes(int64(bytes / max(1, b.N)))
			b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

// BenchmarkWrite includes writing classic pcap through pcapgo.
func BenchmarkWrite(b *testing.B) {
	g, err := New(Options{Seed: 1, Mix: Profiles["bench"], LinkType: layers.LinkTypeEthernet})
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewWriter(io.Discard, FormatPcap, 262144, layers.LinkTypeEthernet)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	packets := 0
	for b.Loop() {
		c := g.Next()
		if err := w.WriteCase(c); err != nil {
			b.Fatal(err)
		}
		packets += len(c.Packets)
	}
	b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
}
