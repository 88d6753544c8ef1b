package extcap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/query"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// oneFileBucket is a bucket holding one stored capture file and its
// manifest.
type oneFileBucket struct {
	m    objstore.Manifest
	pcap []byte
}

func (b *oneFileBucket) Manifests(context.Context, time.Time, time.Time, []string) ([]objstore.Manifest, error) {
	return []objstore.Manifest{b.m}, nil
}

func (b *oneFileBucket) GetRange(_ context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if key != b.m.Pcap || off < 0 || off+n > int64(len(b.pcap)) {
		return nil, fmt.Errorf("%s [%d, %d): no such object or range", key, off, off+n)
	}
	return io.NopCloser(bytes.NewReader(b.pcap[off : off+n])), nil
}

var fleetT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newOneFileBucket stores 40 packets, UDP and TCP in turn, a second apart.
func newOneFileBucket(t *testing.T) *oneFileBucket {
	enc, err := pcapfile.NewEncoder(pcapfile.Options{Application: "vrsniff"})
	if err != nil {
		t.Fatal(err)
	}
	buf := enc.AppendHeader(nil)
	hl := int64(len(buf))
	for i := range 40 {
		eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}}
		var fr []byte
		if i%2 == 0 {
			udp := &layers.UDP{SrcPort: 1000, DstPort: 53}
			udp.SetNetworkLayerForChecksum(ip)
			fr = testenv.Serialize(t, eth, ip, udp)
		} else {
			ip.Protocol = layers.IPProtocolTCP
			tcp := &layers.TCP{SrcPort: 1000, DstPort: 80, Window: 1}
			tcp.SetNetworkLayerForChecksum(ip)
			fr = testenv.Serialize(t, eth, ip, tcp)
		}
		p := &mirror.Packet{Timestamp: fleetT0.Add(time.Duration(i) * time.Second), LinkType: layers.LinkTypeEthernet,
			Data: fr, Mode: mirror.ModeJuniper, Frame: fr, FrameLen: len(fr),
			Meta: mirror.Meta{SrcVN: []byte("d:p:vn-a"), DstVN: []byte("d:p:vn-b"), Host: netip.MustParseAddr("192.0.2.1")}}
		if buf, err = enc.Append(buf, p); err != nil {
			t.Fatal(err)
		}
	}
	base := objstore.FileBase("sniffer-1", fleetT0, 0)
	return &oneFileBucket{pcap: buf, m: objstore.Manifest{Version: 1, Sniffer: "sniffer-1", Pcap: base + objstore.SuffixPcap,
		PcapSize: int64(len(buf)), HeaderLen: hl, First: fleetT0, Last: fleetT0.Add(39 * time.Second), Packets: 40,
		Pairs: []vnpair.Pair{{SrcVN: "d:p:vn-a", DstVN: "d:p:vn-b", Packets: 40}}}}
}

// TestFleetProtocol: the fleet interface is offered only when the program
// can open a store, with its options.
func TestFleetProtocol(t *testing.T) {
	if _, err := run(t, &Program{}, "--extcap-interface", Fleet, "--extcap-config"); err == nil {
		t.Error("the fleet interface answered without OpenFleet")
	}
	out, err := run(t, &Program{}, "--extcap-interfaces")
	if err != nil || strings.Contains(out, Fleet) {
		t.Errorf("without OpenFleet: %q, %v", out, err)
	}
	pr := &Program{OpenFleet: func(string) (query.Bucket, query.Options, error) { return nil, query.Options{}, nil }}
	out, err = run(t, pr, "--extcap-interfaces")
	if err != nil || !strings.Contains(out, "interface {value=vrsniff-fleet}{display=") {
		t.Errorf("interfaces: %q, %v", out, err)
	}
	out, err = run(t, pr, "--extcap-interface", Fleet, "--extcap-config")
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if m := argLine.FindStringSubmatch(l); m != nil {
			calls = append(calls, m[2])
		} else if !valueLine.MatchString(l) {
			t.Errorf("bad config line %q", l)
		}
	}
	if got, want := strings.Join(calls, " "), "store since until sniffer community_id vn src_vn dst_vn direction bpf"; got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// TestFleetCapture: a capture writes into the FIFO what the query writes
// for the same window and filters (capture filter included).
func TestFleetCapture(t *testing.T) {
	b := newOneFileBucket(t)
	var opened string
	pr := &Program{OpenFleet: func(store string) (query.Bucket, query.Options, error) {
		opened = store
		return b, query.Options{}, nil
	}}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := os.WriteFile(fifo, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	since, until := fleetT0.Add(5*time.Second), fleetT0.Add(25*time.Second)
	_, err := run(t, pr, "--capture", "--extcap-interface", Fleet, "--fifo", fifo, "--store", "s3://captures/fleet",
		"--since", since.Format(time.RFC3339), "--until", until.Format(time.RFC3339), "--sniffer", "sniffer-1",
		"--vn", "vn-a", "--extcap-capture-filter", "udp")
	if err != nil {
		t.Fatal(err)
	}
	if opened != "s3://captures/fleet" {
		t.Errorf("opened store %q", opened)
	}
	got, err := os.ReadFile(fifo)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	q := query.Query{Since: since, Until: until, Sniffers: []string{"sniffer-1"}}
	q.Filter.VN, q.Filter.BPF = "vn-a", "udp"
	st, err := query.Run(context.Background(), b, q, &want, query.Options{Application: "vrsniff extcap"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != 10 {
		t.Errorf("the query wrote %d packets, want the 10 UDP ones of the window", st.Packets)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the FIFO got %d bytes, the query writes %d", len(got), want.Len())
	}

	// A store that cannot be opened, and a query without a store, are
	// errors Wireshark shows.
	pr.OpenFleet = func(string) (query.Bucket, query.Options, error) {
		return nil, query.Options{}, errors.New("no credentials")
	}
	if _, err := run(t, pr, "--capture", "--extcap-interface", Fleet, "--fifo", fifo, "--store", "s3://x/y"); err == nil ||
		!strings.Contains(err.Error(), "no credentials") {
		t.Errorf("store that cannot be opened: %v", err)
	}
	if _, err := run(t, pr, "--capture", "--extcap-interface", Fleet, "--fifo", fifo); err == nil ||
		!strings.Contains(err.Error(), "no store") {
		t.Errorf("no store: %v", err)
	}
}
