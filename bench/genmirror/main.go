// Command genmirror writes a pcap of Juniper-header mirror datagrams
// (UDP to 8099, metadata TLVs, a 64-byte inner frame) for the capture
// benchmarks.
//
// Inner frame i carries i as a big-endian uint32 at byte 60, so that
// bench/genhostile can tell which ones reached a capture file. With
// -big-every K every K-th inner frame is a full-size 1514-byte one, whose
// datagram is larger than -mtu and leaves as two outer IP fragments.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func main() {
	n := flag.Int("n", 100000, "packets")
	out := flag.String("o", "mirror.pcap", "output file")
	bigEvery := flag.Int("big-every", 0, "make every `K`-th inner frame 1514 bytes long (0: none)")
	mtu := flag.Int("mtu", 1500, "outer IP datagrams longer than `bytes` are fragmented")
	flag.Parse()
	if *n <= 0 || *bigEvery < 0 || *mtu < 576 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*n, *out, *bigEvery, *mtu); err != nil {
		fmt.Fprintln(os.Stderr, "genmirror:", err)
		os.Exit(1)
	}
}

func run(n int, name string, bigEvery, mtu int) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	vn := []byte("default-domain:admin:vn-left")
	meta := []byte{1, 4, 10, 1, 1, 3, 2, 4, 0x40, 0, 0, 0xa0, 3, byte(len(vn))}
	meta = append(meta, vn...)
	meta = append(meta, 0xff, 0)
	buf := gopacket.NewSerializeBuffer()
	t0 := time.Unix(1700000000, 0)
	for i := range n {
		size := 64
		if bigEvery > 0 && i%bigEvery == bigEvery-1 {
			size = 1514
		}
		inner := make([]byte, size)
		copy(inner, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0})
		binary.BigEndian.PutUint32(inner[60:], uint32(i))
		payload := append(append([]byte{}, meta...), inner...)
		eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 1, 1}, DstMAC: []byte{2, 0, 0, 0, 1, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 1, 1, 3}, DstIP: []byte{10, 9, 9, 9}}
		udp := &layers.UDP{SrcPort: layers.UDPPort(49152 + i%1024), DstPort: 8099}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return err
		}
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, udp, gopacket.Payload(payload)); err != nil {
			return err
		}
		for _, data := range fragment(buf.Bytes(), mtu) {
			ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(data), Length: len(data)}
			if err := w.WritePacket(ci, data); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
	}
	return f.Close()
}

// fragment splits an Ethernet frame holding an IPv4 datagram (20-byte
// header, no options) longer than mtu into IP fragments, as a router
// would; a shorter one is returned whole.
func fragment(frame []byte, mtu int) [][]byte {
	const eth, ihl = 14, 20
	if len(frame)-eth <= mtu {
		return [][]byte{frame}
	}
	hdr, payload := frame[:eth+ihl], frame[eth+ihl:]
	step := (mtu - ihl) &^ 7
	var out [][]byte
	for off := 0; off < len(payload); off += step {
		end := min(off+step, len(payload))
		f := append(append([]byte(nil), hdr...), payload[off:end]...)
		ip := f[eth:]
		binary.BigEndian.PutUint16(ip[2:], uint16(ihl+end-off))
		fo := uint16(off / 8)
		if end < len(payload) {
			fo |= 0x2000 // more fragments
		}
		binary.BigEndian.PutUint16(ip[6:], fo)
		ip[10], ip[11] = 0, 0
		var sum uint32
		for j := 0; j < ihl; j += 2 {
			sum += uint32(ip[j])<<8 | uint32(ip[j+1])
		}
		for sum > 0xffff {
			sum = sum>>16 + sum&0xffff
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
		out = append(out, f)
	}
	return out
}
