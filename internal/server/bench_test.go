package server

import (
	"fmt"
	"testing"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// BenchmarkHubWritePacket measures the capture goroutine's cost of the live
// stream: per client a VN filter, the pcapng encoding and the hand-over,
// with client goroutines draining as a fast network would.
func BenchmarkHubWritePacket(b *testing.B) {
	p := decodedPacket(frame(b, true, 1, 500), vnA, vnB, mirror.DirIngress, t0)
	for _, n := range []int{0, 1, 4} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			h := newHub(DefaultStreamBuffer, testEncoder)
			stop := make(chan struct{})
			drained := make(chan struct{}, n)
			for range n {
				f, err := filter.New(filter.Options{VN: "*:vn-a"})
				if err != nil {
					b.Fatal(err)
				}
				c, err := h.attach(f)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					spare := make([]byte, 0, 64<<10)
					for {
						select {
						case <-c.wake:
							spare = c.take(spare)
						case <-stop:
							drained <- struct{}{}
							return
						}
					}
				}()
			}
			b.SetBytes(int64(len(p.Frame)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := h.WritePacket(p); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(stop)
			for range n {
				<-drained
			}
			b.ReportMetric(float64(h.Dropped()), "drops")
		})
	}
}
