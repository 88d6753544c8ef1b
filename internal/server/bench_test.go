package server

import (
	"fmt"
	"testing"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// attachN attaches n stream clients that never read: the cost of the
// capture side does not depend on whether clients keep up. With distinct,
// each client has a filter of its own (all matching vnA packets); without,
// they all ask for the whole stream.
func attachN(tb testing.TB, h *Hub, n int, distinct bool) {
	tb.Helper()
	for i := range n {
		var o filter.Options
		if distinct {
			o.VN = fmt.Sprintf("default-domain:admin:vn-[a%d]", i)
		}
		f, err := filter.New(o)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := h.attach(f, "bench"); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkHubWritePacket measures what the live stream costs the capture
// goroutine per packet. With N clients sharing a filter it is one filter
// decision, one encoding and one hand-over whatever N; with N distinct
// filters it grows only by a filter decision and a 16-byte reference per
// filter. The clients never read, which the capture side does not notice.
func BenchmarkHubWritePacket(b *testing.B) {
	p := decodedPacket(frame(b, true, 1, 500), vnA, vnB, mirror.DirIngress, t0)
	for _, bc := range []struct {
		n        int
		distinct bool
	}{{0, false}, {1, false}, {10, false}, {100, false}, {1000, false}, {10, true}, {100, true}} {
		name := fmt.Sprintf("clients=%d", bc.n)
		if bc.distinct {
			name = fmt.Sprintf("filters=%d", bc.n)
		}
		b.Run(name, func(b *testing.B) {
			h, err := newHub(DefaultStreamBuffer, max(bc.n, 1), newPcapNG)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(h.Close)
			attachN(b, h, bc.n, bc.distinct)
			// Fill the backlog once, so that its chunks are reused and the
			// loop measures the steady state.
			for range 2 * DefaultStreamBuffer / 500 {
				_ = h.WritePacket(p)
			}
			b.SetBytes(int64(len(p.Frame)))
			b.ReportAllocs()
			for b.Loop() {
				if err := h.WritePacket(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
