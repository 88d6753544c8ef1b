package source

import (
	"net"
	"testing"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// FuzzParseControl feeds arbitrary control messages to the UDP source's
// hand-written parser: it must never read past them.
func FuzzParseControl(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add([]byte{32, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x23, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
		20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x28, 0, 0, 0, 7, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s udpSource
		if ts := s.parseControl(b); ts.IsZero() {
			t.Fatal("zero timestamp")
		}
	})
}

const benchBatch = 1000

func BenchmarkAFPacketNext(b *testing.B) {
	e := testenv.NewNetns(b)
	src, err := OpenAFPacket(e.CaptureIf, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	frames := make([][]byte, benchBatch)
	for i := range frames {
		frames[i] = ether(nil, 0x0800, ipv4(17, 0, nil, udp(49152, 8099, juniperPayload(innerFrame(i)))))
	}
	var p mirror.Packet
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += benchBatch {
		b.StopTimer()
		e.Send(b, frames)
		b.StartTimer()
		for range benchBatch {
			if err := src.Next(&p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkUDPNext(b *testing.B) {
	src, err := ListenUDP("127.0.0.1:0", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	conn, err := net.DialUDP("udp", nil, src.(*udpSource).conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	d := juniperPayload(innerFrame(0))
	var p mirror.Packet
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += benchBatch {
		b.StopTimer()
		for range benchBatch {
			if _, err := conn.Write(d); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for range benchBatch {
			if err := src.Next(&p); err != nil {
				b.Fatal(err)
			}
		}
	}
}
