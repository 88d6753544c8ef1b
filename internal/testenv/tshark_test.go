package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// recorder is a testing.TB whose Fatal ends only the goroutine of the call
// under test, recording the message.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed []string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatal(args ...any) {
	r.mu.Lock()
	r.failed = append(r.failed, strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

// fails runs f with a recorder and returns the failure it reported, ""
// when it returned.
func fails(t *testing.T, f func(tb testing.TB)) string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return strings.Join(r.failed, "\n")
}

// udpCapture writes a pcap of n UDP frames from source ports 1000, 1001...
func udpCapture(t *testing.T, n int) string {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		udp := &layers.UDP{SrcPort: layers.UDPPort(1000 + i), DstPort: 5000}
		udp.SetNetworkLayerForChecksum(ip)
		f := Serialize(t, eth, ip, udp, gopacket.Payload(bytes.Repeat([]byte{byte(i)}, 20+i)))
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(i), 0), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "udp.pcap")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// One row per packet, fields split at tabs; a packet without the field
// keeps its (empty) row.
func TestTsharkRows(t *testing.T) {
	p := udpCapture(t, 3)
	rows := TsharkRows(t, "-n", "-r", p, "-T", "fields", "-e", "udp.srcport", "-e", "frame.len")
	want := [][]string{{"1000", "62"}, {"1001", "63"}, {"1002", "64"}}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("rows %q, want %q", rows, want)
	}
	lines := Tshark{}.Lines(t, "-n", "-r", p, "-T", "fields", "-e", "frame.comment")
	if !slices.Equal(lines, []string{"", "", ""}) {
		t.Fatalf("lines of an absent field %q, want three empty ones", lines)
	}
	if rows := TsharkRows(t, "-n", "-r", p, "-Y", "udp.srcport == 9", "-T", "fields", "-e", "frame.len"); rows != nil {
		t.Fatalf("no packet selected: rows %q", rows)
	}
}

// A failing tshark fails the test, with what it said; a file cut short
// fails it too unless the run expects one.
func TestTsharkFailures(t *testing.T) {
	p := udpCapture(t, 3)
	if msg := fails(t, func(tb testing.TB) { TsharkRows(tb, "-r", p, "-T", "fields", "-e", "no.such.field") }); !strings.Contains(msg, "no.such.field") {
		t.Errorf("an unknown field: failure %q", msg)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", "-r", p, "-T", "fields", "-e", "udp.srcport"}
	if msg := fails(t, func(tb testing.TB) { TsharkRows(tb, args...) }); !strings.Contains(msg, "cut short") {
		t.Errorf("a file cut short: failure %q", msg)
	}
	if rows := (Tshark{CutShort: true}).Rows(t, args...); !slices.EqualFunc(rows, [][]string{{"1000"}, {"1001"}}, slices.Equal) {
		t.Errorf("a file cut short, read as one: %q", rows)
	}
	missing := filepath.Join(t.TempDir(), "missing.pcap")
	if msg := fails(t, func(tb testing.TB) { Tshark{CutShort: true}.Output(tb, "-r", missing) }); !strings.Contains(msg, "missing.pcap") {
		t.Errorf("a missing file, cut short accepted: failure %q", msg)
	}
}

// The user's preferences do not reach tshark, unless the run names their
// HOME.
func TestTsharkPrivateHome(t *testing.T) {
	p := udpCapture(t, 1)
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".config", "wireshark"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "wireshark", "disabled_protos"), []byte("udp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	args := []string{"-n", "-r", p, "-T", "fields", "-e", "udp.srcport"}
	if got := (Tshark{}).Lines(t, args...); !slices.Equal(got, []string{"1000"}) {
		t.Errorf("with the user's HOME disabling UDP: %q, want tshark's defaults", got)
	}
	if got := (Tshark{Home: home}).Lines(t, args...); !slices.Equal(got, []string{""}) {
		t.Errorf("with a HOME disabling UDP given: %q, want no UDP field", got)
	}
}

func TestTsharkLayers(t *testing.T) {
	p := udpCapture(t, 2)
	ls := TsharkLayers[map[string][]string](t, Tshark{}, "-n", "-r", p, "-T", "json", "-e", "frame.len", "-e", "udp.srcport")
	if len(ls) != 2 || !slices.Equal(ls[1]["frame.len"], []string{"63"}) || !slices.Equal(ls[0]["udp.srcport"], []string{"1000"}) {
		t.Fatalf("layers %v", ls)
	}
}

// A run started on a stream reads it as it comes; Result reports a failed
// run without failing the test.
func TestTsharkStart(t *testing.T) {
	p := udpCapture(t, 3)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	run := Tshark{Stdin: pr}.Start(t, "-n", "-r", "-", "-T", "fields", "-e", "udp.srcport")
	go func() {
		pw.Write(b[:50]) // the header and part of a packet: tshark waits for more
		pw.Write(b[50:])
		pw.Close()
	}()
	if got := run.Lines(t); !slices.Equal(got, []string{"1000", "1001", "1002"}) {
		t.Fatalf("from the stream: %q", got)
	}

	bad := Tshark{}.Start(t, "-r", filepath.Join(t.TempDir(), "missing.pcap"))
	stderr, err := bad.Result()
	if err == nil || !strings.Contains(stderr, "missing.pcap") {
		t.Fatalf("a failing run: %v, stderr %q", err, stderr)
	}
}
