package extract

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// BenchmarkWrite merges 8 stored files of interleaved packets, as a
// capture split by VN pair leaves them, and reports the cost per packet
// written. The allocations are per file (a reader and its buffer, a
// cursor), none per packet: allocs/packet stays near 8/packets.
func BenchmarkWrite(b *testing.B) {
	const files, per = 8, 2000
	srcs := make([]Source, files)
	for k := range srcs {
		var buf bytes.Buffer
		w, err := pcapfile.NewWriter(&buf, pcapfile.Options{Format: pcapfile.FormatPcapNG})
		if err != nil {
			b.Fatal(err)
		}
		for i := range per {
			if err := w.WritePacket(testPacket(b, i*files+k)); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		data := buf.Bytes()
		srcs[k] = Source{Name: "f", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	}
	ctx := context.Background()
	b.ReportAllocs()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for b.Loop() {
		st, err := Write(ctx, io.Discard, srcs, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if st.Written != files*per {
			b.Fatalf("wrote %d packets, want %d", st.Written, files*per)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	n := float64(b.N) * files * per
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/packet")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/n, "allocs/packet")
}
