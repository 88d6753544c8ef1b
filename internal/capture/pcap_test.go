package capture

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/server"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// pcapPacket is packet i of a reference stream: VN pair i%3, 10 ms apart,
// ingress and egress in turn, TCP source port 2000+i.
func pcapPacket(t *testing.T, i int) *mirror.Packet {
	vns := []string{"default-domain:admin:vn-a", "default-domain:admin:vn-b", "default-domain:admin:vn-c"}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(2000 + i), DstPort: 443, ACK: true, Window: 1000}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	f := testenv.Serialize(t, &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv4}, ip, tcp, gopacket.Payload(make([]byte, 40+i%30)))
	dir := mirror.DirIngress
	if i%2 == 1 {
		dir = mirror.DirEgress
	}
	return &mirror.Packet{
		Timestamp: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * 10 * time.Millisecond),
		Mode:      mirror.ModeJuniper, Frame: f, FrameLen: len(f),
		Meta: mirror.Meta{SrcVN: []byte(vns[i%3]), DstVN: []byte(vns[(i+1)%3]), Direction: dir,
			Host: netip.AddrFrom4([4]byte{10, 1, 1, 3}), Flags: mirror.FlagPass | mirror.FlagMirror, FlagBits: 32},
	}
}

// TestPcapAPI: GET /api/pcap over a ring of small rotated files, the last
// one still being written, gives exactly the reference's packets of the
// window that pass the filter, in time order, as tshark reads them.
func TestPcapAPI(t *testing.T) {
	dir := t.TempDir()
	r, err := ring.New(dir, ring.Options{MaxSize: 2000, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps := make([]*mirror.Packet, 200)
	for i := range ps {
		ps[i] = pcapPacket(t, i)
		if err := r.WritePacket(ps[i]); err != nil {
			t.Fatal(err)
		}
	}
	closed, parts := captureFiles(t, dir)
	if len(closed) < 5 || len(parts) != 1 {
		t.Fatalf("want many closed files and one being written: %v %v", closed, parts)
	}
	srv, err := server.New(server.Options{Store: store{r}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Hub().Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	t0 := ps[0].Timestamp
	for _, tc := range []struct {
		name     string
		q        url.Values
		from, to int // the window, in packets
		keep     func(i int) bool
	}{
		{"window", url.Values{}, 37, 163, func(int) bool { return true }},
		{"to the open file", url.Values{}, 150, 200, func(int) bool { return true }},
		{"vn", url.Values{"vn": {"vn-b"}}, 10, 190, func(i int) bool { return i%3 != 2 }},
		{"src_vn dst_vn direction", url.Values{"src_vn": {"*:vn-a"}, "dst_vn": {"vn-b"}, "direction": {"egress"}}, 0, 200,
			func(i int) bool { return i%3 == 0 && i%2 == 1 }},
		{"bpf", url.Values{"bpf": {"tcp src portrange 2050-2099"}}, 0, 200, func(i int) bool { return i >= 50 && i < 100 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Set("since", t0.Add(time.Duration(tc.from)*10*time.Millisecond).Format(time.RFC3339Nano))
			q.Set("until", t0.Add(time.Duration(tc.to)*10*time.Millisecond-time.Millisecond).Format(time.RFC3339Nano))
			resp, body := testenv.Request(t, ts.URL, "", "GET", "/api/pcap?"+q.Encode(), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", resp.Status, body)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment; filename=vrsniff_20260301T") {
				t.Errorf("Content-Disposition %q", resp.Header.Get("Content-Disposition"))
			}
			got := filepath.Join(t.TempDir(), "got.pcapng")
			if err := os.WriteFile(got, body, 0o644); err != nil {
				t.Fatal(err)
			}
			var want []*mirror.Packet
			for i := tc.from; i < tc.to; i++ {
				if tc.keep(i) {
					want = append(want, ps[i])
				}
			}
			ref := writeReference(t, want)
			fields := []string{"frame.time_epoch", "tcp.srcport", "frame.len", "frame.comment", "frame.packet_flags_direction"}
			g, w := tshark(t, got, fields...), tshark(t, ref, fields...)
			if len(w) == 0 || !slices.EqualFunc(g, w, slices.Equal) {
				t.Errorf("got %d packets, want %d:\n%q\nwant\n%q", len(g), len(w), g, w)
			}
		})
	}
}

// TestStoreStableName: the file being written is reachable under its
// name without ".part", and under its listed name once closed.
func TestStoreStableName(t *testing.T) {
	dir := t.TempDir()
	r, err := ring.New(dir, ring.Options{FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 3 {
		if err := r.WritePacket(pcapPacket(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(server.Options{Store: store{r}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Hub().Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	_, parts := captureFiles(t, dir)
	if len(parts) != 1 {
		t.Fatalf("files being written: %v", parts)
	}
	part, base := parts[0], strings.TrimSuffix(parts[0], ".part")
	get := func(name string) int {
		t.Helper()
		resp, body := testenv.Request(t, ts.URL, "", "GET", "/api/captures/"+name, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", name, resp.Status, body)
		}
		rd, err := pcapfile.NewReaderBytes(body)
		if err != nil {
			t.Fatal(err)
		}
		var p mirror.Packet
		n := 0
		for rd.Next(&p) == nil {
			n++
		}
		return n
	}
	if n := get(base); n != 3 {
		t.Errorf("open file by its final name: %d packets, want 3", n)
	}
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	if n := get(part); n != 3 {
		t.Errorf("closed file by its .part name: %d packets, want 3", n)
	}
}

func captureFiles(t *testing.T, dir string) (closed, parts []string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		switch n := e.Name(); {
		case strings.HasSuffix(n, ".part"):
			parts = append(parts, n)
		case strings.HasSuffix(n, ".pcapng"):
			closed = append(closed, n)
		}
	}
	return closed, parts
}

// writeReference writes packets into one pcapng file as the ring encodes
// them.
func writeReference(t *testing.T, ps []*mirror.Packet) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "ref.pcapng")
	capturetest.WritePcapng(t, name, ps)
	return name
}
