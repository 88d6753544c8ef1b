package testenv

import (
	"net"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestFreeAddrAndSendUDP(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		addr := FreeAddr(t, network)
		var err error
		if network == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket(network, addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen(network, addr); err == nil {
				l.Close()
			}
		}
		if err != nil {
			t.Errorf("%s address %s is not free: %v", network, addr, err)
		}
	}

	c, err := net.ListenPacket("udp", FreeAddr(t, "udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sent [][]byte
	for i := range 100 {
		sent = append(sent, []byte{byte(i), 1, 2, 3})
	}
	SendUDP(t, c.LocalAddr().String(), sent)
	buf := make([]byte, 64)
	for i, want := range sent {
		n, _, err := c.ReadFrom(buf)
		if err != nil || !slices.Equal(buf[:n], want) {
			t.Fatalf("datagram %d: % x (%v), want % x", i, buf[:n], err, want)
		}
	}
}

func TestWaitFor(t *testing.T) {
	calls := 0
	WaitFor(t, "the fifth call", func() bool { calls++; return calls == 5 })
	if calls != 5 {
		t.Fatalf("WaitFor returned after %d calls, want 5", calls)
	}
}

func TestSerialize(t *testing.T) {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	udp := &layers.UDP{SrcPort: 1, DstPort: 2}
	udp.SetNetworkLayerForChecksum(ip)
	b := Serialize(t, ip, udp, gopacket.Payload("hello"))
	p := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
	got, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok || got.Length != 33 || got.IHL != 5 || got.Checksum == 0 {
		t.Fatalf("IPv4 header: %+v", got)
	}
	if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); !ok || u.Length != 13 || u.Checksum == 0 {
		t.Fatalf("UDP header: %+v", u)
	}
}
