// Command genmirror writes a pcap of Juniper-header mirror datagrams
// (UDP to 8099, metadata TLVs, a 64-byte inner frame) for the capture
// benchmark.
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
	flag.Parse()
	if err := run(*n, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genmirror:", err)
		os.Exit(1)
	}
}

func run(n int, name string) error {
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
		inner := make([]byte, 64)
		copy(inner, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0})
		binary.BigEndian.PutUint32(inner[60:], uint32(i))
		payload := append(append([]byte{}, meta...), inner...)
		eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 1, 1}, DstMAC: []byte{2, 0, 0, 0, 1, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 1, 1, 3}, DstIP: []byte{10, 9, 9, 9}}
		udp := &layers.UDP{SrcPort: layers.UDPPort(49152 + i%1024), DstPort: 8099}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return err
		}
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, udp, gopacket.Payload(payload)); err != nil {
			return err
		}
		data := buf.Bytes()
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return f.Close()
}
