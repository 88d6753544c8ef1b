package server

import (
	"fmt"
	"testing"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// BenchmarkHubWritePacket measures the capture goroutine's cost of the live
// stream: per client its filter, the pcapng encoding and the hand-over. The
// clients' buffers are taken every 256 packets on the benchmark goroutine
// itself, as a client keeping up would, so that scheduling noise on a busy
// machine neither turns packets into (cheaper) drops nor shows up as cost.
func BenchmarkHubWritePacket(b *testing.B) {
	p := decodedPacket(frame(b, true, 1, 500), vnA, vnB, mirror.DirIngress, t0)
	for _, bc := range []struct {
		n  int
		vn string
	}{{0, ""}, {1, ""}, {4, ""}, {1, "*:vn-a"}, {4, "*:vn-a"}} {
		name := fmt.Sprintf("clients=%d", bc.n)
		if bc.vn != "" {
			name += "/vn=" + bc.vn
		}
		b.Run(name, func(b *testing.B) {
			h := newHub(DefaultStreamBuffer, newPcapNG)
			var clients []*streamClient
			spares := make([][]byte, bc.n)
			for i := range bc.n {
				f, err := filter.New(filter.Options{VN: bc.vn})
				if err != nil {
					b.Fatal(err)
				}
				c, err := h.attach(f)
				if err != nil {
					b.Fatal(err)
				}
				clients = append(clients, c)
				spares[i] = make([]byte, 0, 64<<10)
			}
			b.SetBytes(int64(len(p.Frame)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := h.WritePacket(p); err != nil {
					b.Fatal(err)
				}
				if i++; i%256 == 0 {
					for j, c := range clients {
						select {
						case <-c.wake:
						default:
						}
						spares[j] = c.take(spares[j])
					}
				}
			}
			if h.Dropped() != 0 {
				b.Fatalf("%d packets dropped", h.Dropped())
			}
		})
	}
}
