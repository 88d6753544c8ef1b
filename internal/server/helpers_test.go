package server

import (
	"fmt"
	"net/netip"

	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// dirStore is a Store over a plain directory, with fixed metadata.
type dirStore struct {
	dir   string
	infos map[string]FileInfo
}

func (s *dirStore) List() ([]FileInfo, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []FileInfo
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		in := s.infos[e.Name()]
		in.Name, in.Size = e.Name(), fi.Size()
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *dirStore) Open(name string) (io.ReadSeekCloser, FileInfo, error) {
	if name != filepath.Base(name) || name == ".." || name == "." {
		return nil, FileInfo{}, fs.ErrNotExist
	}
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return nil, FileInfo{}, err
	}
	return f, s.infos[name], nil
}

func (s *dirStore) Delete(name string) error {
	if s.infos[name].Open {
		return fmt.Errorf("delete %s: %w", name, ErrBusy)
	}
	if name != filepath.Base(name) {
		return fs.ErrNotExist
	}
	return os.Remove(filepath.Join(s.dir, name))
}

func (s *dirStore) DiskUsage() int64 {
	fs, _ := s.List()
	var n int64
	for _, f := range fs {
		n += f.Size
	}
	return n
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newDirStore makes a store with three files: two closed, one open. A file
// "secret" sits next to the store directory, for traversal tests.
func newDirStore(t *testing.T) *dirStore {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "captures")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "secret"), []byte("TOPSECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string]int{"cap_00001.pcapng": 300, "cap_00002.pcap": 1234, "cap_00003.pcapng.part": 50}
	for name, n := range files {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pairs := []vnpair.Pair{{SrcVN: "default-domain:admin:vn-a", DstVN: "default-domain:admin:vn-b", Packets: 7}}
	return &dirStore{dir: dir, infos: map[string]FileInfo{
		"cap_00001.pcapng":      {First: t0, Last: t0.Add(time.Minute), Packets: 7, Pairs: pairs},
		"cap_00002.pcap":        {First: t0.Add(time.Minute), Last: t0.Add(2 * time.Minute), Packets: 3},
		"cap_00003.pcapng.part": {First: t0.Add(2 * time.Minute), Packets: 1, Open: true},
	}}
}

// frame builds an Ethernet/IPv4 frame carrying UDP or TCP, padded with
// payload to at least size bytes.
func frame(t testing.TB, udp bool, srcPort uint16, size int) []byte {
	t.Helper()
	eth := &layers.Ethernet{
		SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2)}
	var l4 gopacket.SerializableLayer
	if udp {
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(srcPort), DstPort: 53}
		_ = u.SetNetworkLayerForChecksum(ip)
		l4 = u
	} else {
		ip.Protocol = layers.IPProtocolTCP
		tc := &layers.TCP{SrcPort: layers.TCPPort(srcPort), DstPort: 80, SYN: true, Window: 1000}
		_ = tc.SetNetworkLayerForChecksum(ip)
		l4 = tc
	}
	pay := make([]byte, max(0, size-54))
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, l4, gopacket.Payload(pay))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decodedPacket is a packet as the decoder leaves it.
func decodedPacket(fr []byte, src, dst string, dir mirror.Direction, ts time.Time) *mirror.Packet {
	return &mirror.Packet{
		Timestamp: ts, LinkType: layers.LinkTypeEthernet, Data: fr, WireLen: len(fr),
		Mode: mirror.ModeJuniper, Frame: fr, FrameLen: len(fr),
		Meta: mirror.Meta{
			SrcVN: []byte(src), DstVN: []byte(dst), Direction: dir,
			Host:  netip.AddrFrom4([4]byte{10, 1, 1, 3}),
			Flags: mirror.FlagPass | mirror.FlagMirror, FlagBits: 32,
		},
	}
}

func comment(p *mirror.Packet) string { return string(mirror.AppendComment(nil, p)) }

func mustStatus(t *testing.T, got, want int, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d", what, got, want)
	}
}
