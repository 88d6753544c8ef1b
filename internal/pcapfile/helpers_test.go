package pcapfile

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// udpFrame builds an Ethernet/IPv4/UDP frame with payload bytes of filler,
// varying the addresses with i so that every frame is distinguishable.
func udpFrame(t testing.TB, i, payload int) []byte {
	t.Helper()
	return udpFrameWith(t, i, 9999, bytes.Repeat([]byte{byte(i)}, payload))
}

func udpFrameWith(t testing.TB, i int, dport layers.UDPPort, pl []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)},
		DstMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0xff, 0xfe},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{
		Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 1, byte(i>>8), byte(i)), DstIP: net.IPv4(10, 2, 0, 1),
	}
	udp := &layers.UDP{SrcPort: layers.UDPPort(1000 + i%1000), DstPort: dport}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(pl)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// juniperTLVs builds the metadata block the vRouter puts before a mirrored
// frame: source VN, destination VN, end.
func juniperTLVs(src, dst string) []byte {
	b := []byte{3, byte(len(src))}
	b = append(b, src...)
	b = append(b, 4, byte(len(dst)))
	b = append(b, dst...)
	return append(b, 0xff, 0)
}

// juniperPacket returns a decoded Juniper-mode packet as the decoder would
// leave it: Data is the outer Ethernet/IPv4/UDP datagram to port 8099,
// carrying the TLVs and then the frame.
func juniperPacket(t testing.TB, i int, ts time.Time, dir mirror.Direction) *mirror.Packet {
	t.Helper()
	src := "default-domain:admin:vn-a"
	dst := "default-domain:admin:vn-b"
	tlv := juniperTLVs(src, dst)
	frame := udpFrame(t, i, 40+i%200)
	data := udpFrameWith(t, 1000+i, 8099, append(append([]byte{}, tlv...), frame...))
	off := len(data) - len(frame) - len(tlv)
	p := &mirror.Packet{
		Timestamp: ts, LinkType: layers.LinkTypeEthernet, Data: data, WireLen: len(data),
		Mode: mirror.ModeJuniper, Frame: data[off+len(tlv):], FrameLen: len(frame),
	}
	p.Meta.TLVs = data[off : off+len(tlv)]
	p.Meta.SrcVN = []byte(src)
	p.Meta.DstVN = []byte(dst)
	p.Meta.Direction = dir
	return p
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeAll writes ps with a Writer of options o and returns the file.
func writeAll(t testing.TB, o Options, ps []*mirror.Packet) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, o)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		if err := w.WritePacket(p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// readAll reads every packet of b, copying the data.
func readAll(t testing.TB, b []byte) []mirror.Packet {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var ps []mirror.Packet
	for {
		var p mirror.Packet
		err := r.Next(&p)
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("after %d packets: %v", len(ps), err)
		}
		p.Data = append([]byte(nil), p.Data...)
		var cs [][]byte
		for _, c := range p.Comments {
			cs = append(cs, append([]byte(nil), c...))
		}
		p.Comments = cs
		ps = append(ps, p)
	}
	if r.Offset() != int64(len(b)) {
		t.Errorf("Offset %d at EOF, file has %d bytes", r.Offset(), len(b))
	}
	return ps
}

// pcapRecord is a classic pcap record for hand-built files.
type pcapRecord struct {
	sec, frac  uint32
	data       []byte
	incl, orig uint32 // 0: len(data)
}

// buildPcap builds a classic pcap file in the given byte order by hand, so
// that the Reader is not only tested against our own Writer.
func buildPcap(order binary.AppendByteOrder, nanos bool, snap uint32, link uint32, recs []pcapRecord) []byte {
	magic := uint32(magicMicros)
	if nanos {
		magic = magicNanos
	}
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, snap)
	b = order.AppendUint32(b, link)
	for _, r := range recs {
		incl, orig := r.incl, r.orig
		if incl == 0 {
			incl = uint32(len(r.data))
		}
		if orig == 0 {
			orig = uint32(len(r.data))
		}
		b = order.AppendUint32(b, r.sec)
		b = order.AppendUint32(b, r.frac)
		b = order.AppendUint32(b, incl)
		b = order.AppendUint32(b, orig)
		b = append(b, r.data...)
	}
	return b
}
