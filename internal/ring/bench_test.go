package ring

import (
	"testing"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

func benchRing(b *testing.B, o Options, pairs int) {
	r := newTestRing(b, b.TempDir(), o)
	ps := make([]*mirror.Packet, 64)
	for i := range ps {
		ps[i] = testPacket(i, pairs, 1400)
	}
	// Open the files first: a new file or VN pair may allocate.
	for _, p := range ps {
		if err := r.WritePacket(p); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(ps[0].Frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := r.WritePacket(ps[i%len(ps)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRingWrite(b *testing.B) {
	b.Run("one-file", func(b *testing.B) { benchRing(b, Options{}, 3) })
	b.Run("split-by-vn", func(b *testing.B) { benchRing(b, Options{Split: vnpair.Undirected}, 3) })
}

// TestRingWriteAllocs keeps the steady-state write path free of allocations.
func TestRingWriteAllocs(t *testing.T) {
	for _, split := range []vnpair.Split{vnpair.None, vnpair.Undirected, vnpair.Directed} {
		r := newTestRing(t, t.TempDir(), Options{Split: split})
		ps := make([]*mirror.Packet, 9)
		for i := range ps {
			ps[i] = testPacket(i, 3, 1400)
			r.WritePacket(ps[i])
		}
		i := 0
		allocs := testing.AllocsPerRun(2000, func() {
			if err := r.WritePacket(ps[i%len(ps)]); err != nil {
				t.Fatal(err)
			}
			i++
		})
		if allocs != 0 {
			t.Errorf("split=%v: %.2f allocations per packet", split, allocs)
		}
	}
}
