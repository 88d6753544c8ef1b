package pcapfile

import (
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Benchmarks report ns per packet (one op is one packet) on packets of the
// size a Juniper-mode mirror datagram of a small TCP segment has.

// loopReader returns head once and then body over and over, so that a
// reader can be benchmarked for any b.N without reopening.
type loopReader struct {
	head, body []byte
	off        int
	inBody     bool
}

func (l *loopReader) Read(p []byte) (int, error) {
	src := l.head
	if l.inBody {
		src = l.body
	}
	n := copy(p, src[l.off:])
	l.off += n
	if l.off == len(src) {
		l.off, l.inBody = 0, true
	}
	return n, nil
}

// benchFile writes 1000 mirror packets in format f and splits the result
// into the file header and the packet records.
func benchFile(b *testing.B, f Format) (head, body []byte) {
	b.Helper()
	ps := testPackets(b)[:20]
	for _, p := range ps {
		// Read back as captured: the whole datagram, as decap sees it.
		p.Mode = mirror.ModeOther
	}
	empty := writeAll(b, Options{Format: f}, nil)
	if f == FormatRaw {
		// Describe the interface in the head so the body repeats cleanly.
		empty = writeAll(b, Options{Format: f}, ps[:1])
		empty = empty[:len(empty)-epbLen(ps[0])]
	}
	var all []*mirror.Packet
	for range 50 {
		all = append(all, ps...)
	}
	file := writeAll(b, Options{Format: f}, all)
	return file[:len(empty)], file[len(empty):]
}

func epbLen(p *mirror.Packet) int { return 32 + (len(p.Data)+3)&^3 }

func BenchmarkReaderPcap(b *testing.B)   { benchReader(b, FormatPcap) }
func BenchmarkReaderPcapNG(b *testing.B) { benchReader(b, FormatRaw) }

func benchReader(b *testing.B, f Format) {
	head, body := benchFile(b, f)
	r, err := NewReader(&loopReader{head: head, body: body})
	if err != nil {
		b.Fatal(err)
	}
	var p mirror.Packet
	b.SetBytes(int64(len(body) / 1000))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Next(&p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPcapgoReaderPcap(b *testing.B) {
	head, body := benchFile(b, FormatPcap)
	r, err := pcapgo.NewReader(&loopReader{head: head, body: body})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body) / 1000))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.ZeroCopyReadPacketData(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPcapgoReaderPcapNG(b *testing.B) {
	head, body := benchFile(b, FormatRaw)
	r, err := pcapgo.NewNgReader(&loopReader{head: head, body: body}, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body) / 1000))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.ZeroCopyReadPacketData(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchWriter(b *testing.B, f Format) {
	ps := testPackets(b)[:20]
	w, err := NewWriter(discard{}, Options{Format: f})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(ps[0].Frame)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := w.WritePacket(ps[i%len(ps)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkWriterPcapNG(b *testing.B)     { benchWriter(b, FormatPcapNG) }
func BenchmarkWriterPcap(b *testing.B)       { benchWriter(b, FormatPcap) }
func BenchmarkWriterJuniperVN(b *testing.B)  { benchWriter(b, FormatJuniperVN) }
func BenchmarkWriterRawPcapNG(b *testing.B)  { benchWriter(b, FormatRaw) }
func BenchmarkPcapgoWriterPcap(b *testing.B) { benchPcapgoWriter(b, false) }

// BenchmarkPcapgoWriterPcapNG writes the same packets and comments with
// pcapgo.NgWriter, for comparison with BenchmarkWriterPcapNG.
func BenchmarkPcapgoWriterPcapNG(b *testing.B) { benchPcapgoWriter(b, true) }

func benchPcapgoWriter(b *testing.B, ng bool) {
	ps := testPackets(b)[:20]
	var write func(ci gopacket.CaptureInfo, data []byte, p *mirror.Packet) error
	var flush func() error
	if ng {
		w, err := pcapgo.NewNgWriter(discard{}, layers.LinkTypeEthernet)
		if err != nil {
			b.Fatal(err)
		}
		var comment []byte
		write = func(ci gopacket.CaptureInfo, data []byte, p *mirror.Packet) error {
			comment = mirror.AppendComment(comment[:0], p)
			opts := pcapgo.NgPacketOptions{Comments: []string{string(comment)}}
			return w.WritePacketWithOptions(ci, data, opts)
		}
		flush = w.Flush
	} else {
		w := pcapgo.NewWriter(discard{})
		if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
			b.Fatal(err)
		}
		write = func(ci gopacket.CaptureInfo, data []byte, _ *mirror.Packet) error { return w.WritePacket(ci, data) }
		flush = func() error { return nil }
	}
	b.SetBytes(int64(len(ps[0].Frame)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := ps[i%len(ps)]
		ci := gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Frame), Length: p.FrameLen}
		if err := write(ci, p.Frame, p); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if err := flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCopyPcap reads mirror datagrams from pcap and writes their
// frames to pcap: the file handling part of decap, per packet.
func BenchmarkCopyPcap(b *testing.B) { benchCopy(b, FormatPcap) }

// BenchmarkCopyPcapNG is the same with pcapng output and a comment per
// packet.
func BenchmarkCopyPcapNG(b *testing.B) { benchCopy(b, FormatPcapNG) }

func benchCopy(b *testing.B, f Format) {
	head, body := benchFile(b, FormatPcap)
	r, err := NewReader(&loopReader{head: head, body: body})
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewWriter(discard{}, Options{Format: f})
	if err != nil {
		b.Fatal(err)
	}
	var p mirror.Packet
	b.SetBytes(int64(len(body) / 1000))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Next(&p); err != nil {
			b.Fatal(err)
		}
		// Stand-in for the decoder: the frame follows the 42-byte outer
		// header and the 56 bytes of TLVs the test packets carry.
		p.Mode, p.Frame, p.FrameLen = mirror.ModeJuniper, p.Data[98:], p.WireLen-98
		p.Meta.TLVs = p.Data[42:98]
		p.Meta.SrcVN, p.Meta.DstVN = p.Data[44:69], p.Data[71:96]
		p.Meta.Direction = mirror.DirIngress
		if err := w.WritePacket(&p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncoderAppend measures Encoder.Append alone, into a buffer
// reused for every packet, as the ring and the stream hub use it.
func BenchmarkEncoderAppend(b *testing.B) {
	for _, f := range []Format{FormatPcapNG, FormatPcap, FormatJuniperVN, FormatRaw} {
		b.Run(f.String(), func(b *testing.B) {
			ps := testPackets(b)[:20]
			e, err := NewEncoder(Options{Format: f})
			if err != nil {
				b.Fatal(err)
			}
			buf := e.AppendHeader(make([]byte, 0, 64<<10))
			b.SetBytes(int64(len(ps[0].Frame)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if buf, err = e.Append(buf[:0], ps[i%len(ps)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
