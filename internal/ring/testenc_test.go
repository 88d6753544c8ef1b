package ring

import (
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

type ngEnc struct{ w *pcapgo.NgWriter }

func (e ngEnc) WritePacket(p *mirror.Packet) error {
	ci := gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Frame), Length: p.FrameLen}
	return e.w.WritePacketWithOptions(ci, p.Frame, pcapgo.NgPacketOptions{Comments: []string{string(mirror.AppendComment(nil, p))}})
}
func (e ngEnc) Flush() error { return e.w.Flush() }

func useTestEncoder(r *Ring) {
	r.newEnc = func(w io.Writer) (encoder, error) {
		nw, err := pcapgo.NewNgWriter(w, layers.LinkTypeEthernet)
		return ngEnc{nw}, err
	}
}
