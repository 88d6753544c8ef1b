package server

import (
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// ngEncoder stands in for the pcapng encoder.
type ngEncoder struct{ w *pcapgo.NgWriter }

func newNgEncoder(w io.Writer) (encoder, error) {
	ng, err := pcapgo.NewNgWriter(w, layers.LinkTypeEthernet)
	if err != nil {
		return nil, err
	}
	return ngEncoder{ng}, nil
}

func (e ngEncoder) WritePacket(p *mirror.Packet) error {
	ci := gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Frame), Length: p.FrameLen}
	return e.w.WritePacketWithOptions(ci, p.Frame, pcapgo.NgPacketOptions{Comments: []string{string(mirror.AppendComment(nil, p))}})
}

func (e ngEncoder) Flush() error { return e.w.Flush() }

var testEncoder newEncoderFunc = newNgEncoder
