package mirror

import (
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

func BenchmarkDecodeACL(b *testing.B) {
	pkt := outerUDP4(b, 8099, append(aclTLVs("default-domain:admin:vn-frontend", "default-domain:admin:vn-backend", FlagPass|FlagMirror|FlagIngress), innerFrame(b, 512)...))
	d := NewDecoder(Config{})
	p := &Packet{LinkType: layers.LinkTypeEthernet}
	var buf []byte
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		p.Data, p.WireLen = pkt, len(pkt)
		if d.Decode(p) != Decoded {
			b.Fatal(p.Err)
		}
		buf = AppendComment(buf[:0], p)
	}
}

func BenchmarkDecodeFragmented(b *testing.B) {
	pkt := outerUDP4(b, 8099, append(aclTLVs("default-domain:admin:vn-frontend", "default-domain:admin:vn-backend", FlagPass|FlagMirror), innerFrame(b, 1514)...))
	frags := fragment4(pkt, 1480)
	d := NewDecoder(Config{})
	p := &Packet{LinkType: layers.LinkTypeEthernet}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	// Each round is a new datagram: a repeated one would be a duplicate.
	for id := 0; b.Loop(); id++ {
		for i, f := range frags {
			binary.BigEndian.PutUint16(f[18:], uint16(id))
			p.Data, p.WireLen = f, len(f)
			st := d.Decode(p)
			if (i < len(frags)-1 && st != Held) || (i == len(frags)-1 && st != Decoded) {
				b.Fatal(st, p.Err)
			}
		}
	}
}

func BenchmarkAppendComment(b *testing.B) {
	pkt := outerUDP4(b, 8099, append(aclTLVs("default-domain:admin:vn-frontend", "default-domain:admin:vn-backend", FlagPass|FlagMirror|FlagIngress), innerFrame(b, 512)...))
	p := &Packet{LinkType: layers.LinkTypeEthernet, Data: pkt, WireLen: len(pkt)}
	if NewDecoder(Config{}).Decode(p) != Decoded {
		b.Fatal(p.Err)
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendComment(buf[:0], p)
	}
}
