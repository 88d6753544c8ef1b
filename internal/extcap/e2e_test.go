package extcap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/capture"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/netnstest"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
)

// These tests run the real tshark, which runs the vrsniff binary as its
// extcap program from a private home folder.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// wireshark returns a home folder whose personal extcap folder holds the
// vrsniff link, as "vrsniff extcap install" makes it.
func wireshark(t *testing.T) (home string) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is required (Debian package tshark)")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vrsniff-extcap-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "vrsniff")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/vrsniff").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build vrsniff: %v", buildErr)
	}
	home = t.TempDir()
	if _, err := Install(binPath, PersonalDirs(WiresharkVersion(), home, "")); err != nil {
		t.Fatal(err)
	}
	return home
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type tsharkRun struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
}

func startTshark(t *testing.T, home string, args ...string) *tsharkRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	r := &tsharkRun{done: make(chan error, 1)}
	r.cmd = exec.CommandContext(ctx, "tshark", args...)
	r.cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	r.cmd.Stderr = &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	return r
}

func (r *tsharkRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(45 * time.Second):
		t.Fatalf("tshark did not end\n%s", r.stderr.String())
	}
	return nil
}

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// extcapWriting reports whether the extcap process for iface has opened
// Wireshark's FIFO: from then on it captures.
func extcapWriting(iface string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(LinkName)) || !bytes.Contains(b, []byte("--capture\x00")) ||
			!bytes.Contains(b, []byte(iface)) {
			continue
		}
		fds, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "fd", "*"))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && strings.Contains(l, "wireshark_extcap_"+iface) {
				return true
			}
		}
	}
	return false
}

// readFrames reads a capture file's frames.
func readFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapfile.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for {
		var p mirror.Packet
		err := r.Next(&p)
		if errors.Is(err, io.EOF) {
			return frames
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, append([]byte(nil), p.Data...))
	}
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// inner is a frame a VM sent, TCP or UDP to port.
func inner(t *testing.T, tcp bool, port uint16, seq int) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{0, 0, 0x5e, 0, 1, 0}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(seq), SrcIP: net.IP{10, 1, 1, 3}, DstIP: net.IP{10, 2, 2, 4}}
	payload := gopacket.Payload("packet " + strconv.Itoa(seq))
	if tcp {
		ip.Protocol = layers.IPProtocolTCP
		l4 := &layers.TCP{SrcPort: 40000, DstPort: layers.TCPPort(port), Seq: uint32(seq), ACK: true, Window: 100}
		l4.SetNetworkLayerForChecksum(ip)
		return serialize(t, eth, ip, l4, payload)
	}
	ip.Protocol = layers.IPProtocolUDP
	l4 := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(port)}
	l4.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, l4, payload)
}

// metadata is the TLV list of ACL mirroring.
func metadata(src, dst string, ingress bool) []byte {
	flags := uint32(mirror.FlagPass | mirror.FlagMirror)
	if ingress {
		flags |= mirror.FlagIngress
	}
	b := []byte{1, 4, 192, 168, 10, 11, 2, 4, byte(flags >> 24), byte(flags >> 16), byte(flags >> 8), byte(flags)}
	b = append(append(b, 3, byte(len(src))), src...)
	b = append(append(b, 4, byte(len(dst))), dst...)
	return append(b, 0xff, 0)
}

type mirrored struct {
	payload []byte // UDP payload: metadata, then frame
	frame   []byte
	keep    bool // passes the test's filter
}

// traffic is a mix of mirrored packets; the tests' filters keep TCP frames
// of vn-left in the ingress direction.
func traffic(t *testing.T) []mirrored {
	const left, right = "default-domain:admin:vn-left", "default-domain:admin:vn-right"
	var ms []mirrored
	add := func(src, dst string, ingress, tcp, keep bool, seq int) {
		f := inner(t, tcp, 80, seq)
		ms = append(ms, mirrored{payload: append(metadata(src, dst, ingress), f...), frame: f, keep: keep})
	}
	for i := range 12 {
		switch i % 4 {
		case 0, 1:
			add(left, right, true, true, true, i)
		case 2:
			add(right, left, true, true, false, i) // other source VN
		case 3:
			add(left, right, true, false, false, i) // UDP: the capture filter drops it
		}
	}
	add(left, right, false, true, false, 99) // egress
	return ms
}

// streamServer serves the live stream API of vrsniff capture (bearer
// token, filters in the query, pcapng with metadata comments) from a
// pipeline fed by a UDP socket on loopback.
type streamServer struct {
	token   string
	mu      sync.Mutex
	clients map[*streamClient]struct{}
}

type streamClient struct {
	f *filter.Filter
	w *pcapfile.Writer
}

func (s *streamServer) WritePacket(p *mirror.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		if c.f.Match(p) {
			if c.w.WritePacket(p) != nil || c.w.Flush() != nil {
				delete(s.clients, c)
			}
		}
	}
	return nil
}

func (s *streamServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func (s *streamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != streamPath {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
		return
	}
	f, err := filter.FromQuery(r.URL.Query())
	if err != nil {
		http.Error(w, "bad filter: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-pcapng")
	fw := flushWriter{w, http.NewResponseController(w)}
	pw, err := pcapfile.NewWriter(fw, pcapfile.Options{Format: pcapfile.FormatPcapNG})
	if err != nil || pw.Flush() != nil {
		return
	}
	c := &streamClient{f: f, w: pw}
	s.mu.Lock()
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	<-r.Context().Done()
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
}

type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// startCapture runs a UDP mirror receiver on loopback feeding the stream
// server, and returns the UDP address and the server URL.
func startCapture(t *testing.T, token string) (*streamServer, string, string) {
	t.Helper()
	srv := &streamServer{token: token, clients: map[*streamClient]struct{}{}}
	udpAddr := freeUDPAddr(t)
	src, err := capture.ListenUDP(udpAddr, capture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pl := &pipeline.Pipeline{Source: src, Decoder: mirror.NewDecoder(mirror.Config{}), Sinks: []pipeline.Sink{srv}, Stats: new(pipeline.Stats)}
	ran := make(chan struct{})
	go func() { pl.Run(context.Background()); close(ran) }()
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		src.Close()
		<-ran
		ts.CloseClientConnections()
		ts.Close()
	})
	return srv, udpAddr, ts.URL
}

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sendUDP(t *testing.T, addr string, ms []mirrored) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range ms {
		if _, err := c.Write(m.payload); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

func checkFrames(t *testing.T, got [][]byte, ms []mirrored) {
	t.Helper()
	var want [][]byte
	for _, m := range ms {
		if m.keep {
			want = append(want, m.frame)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("captured %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d:\n got %x\nwant %x", i, got[i], want[i])
		}
	}
}

func TestRemoteCaptureWithTshark(t *testing.T) {
	home := wireshark(t)
	srv, udpAddr, url := startCapture(t, "s3cret")
	out := filepath.Join(t.TempDir(), "out.pcapng")
	run := startTshark(t, home, "-i", Remote,
		"-o", "extcap.vrsniff_remote.url:"+url,
		"-o", "extcap.vrsniff_remote.token_file:"+tokenFile(t, "s3cret"),
		"-o", "extcap.vrsniff_remote.src_vn:*:vn-left",
		"-o", "extcap.vrsniff_remote.direction:ingress",
		"-f", "tcp",
		"-a", "duration:4", "-w", out)
	waitFor(t, "the stream client", func() bool { return srv.count() == 1 })
	ms := traffic(t)
	sendUDP(t, udpAddr, ms)
	if err := run.wait(t); err != nil {
		t.Fatalf("tshark: %v\n%s", err, run.stderr.String())
	}
	checkFrames(t, readFrames(t, out), ms)
	// Stopping in Wireshark ends the stream on the server too.
	waitFor(t, "the stream to end on the server", func() bool { return srv.count() == 0 })
}

func TestRemoteErrorsInTshark(t *testing.T) {
	home := wireshark(t)
	_, _, url := startCapture(t, "s3cret")
	for _, tc := range []struct{ url, token, want string }{
		{url, "wrong", "401 Unauthorized: missing or wrong bearer token (check the token)"},
		{"http://127.0.0.1:1", "s3cret", "connect to http://127.0.0.1:1/api/stream"},
	} {
		start := time.Now()
		run := startTshark(t, home, "-i", Remote, "-o", "extcap.vrsniff_remote.url:"+tc.url,
			"-o", "extcap.vrsniff_remote.token_file:"+tokenFile(t, tc.token), "-a", "duration:20", "-w", filepath.Join(t.TempDir(), "x.pcapng"))
		err := run.wait(t)
		if err == nil {
			t.Errorf("%s: tshark succeeded", tc.want)
		}
		if !strings.Contains(run.stderr.String(), tc.want) {
			t.Errorf("stderr lacks %q:\n%s", tc.want, run.stderr.String())
		}
		// An error ends the capture at once, long before the duration.
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("%s: took %v", tc.want, d)
		}
	}
}

func TestLocalCaptureWithTshark(t *testing.T) {
	home := wireshark(t)
	env := netnstest.New(t)
	out := filepath.Join(t.TempDir(), "out.pcapng")
	run := startTshark(t, home, "-i", Local,
		"-o", "extcap.vrsniff_local.iface:"+env.CaptureIf,
		"-o", "extcap.vrsniff_local.vn:*:vn-left",
		"-o", "extcap.vrsniff_local.bpf:tcp",
		"-o", "extcap.vrsniff_local.direction:ingress",
		"-a", "duration:4", "-w", out)
	// The extcap writes the capture header once its source is open; dumpcap
	// then writes its own to the output file.
	waitFor(t, "the extcap to capture", func() bool {
		st, err := os.Stat(out)
		return err == nil && st.Size() > 0
	})
	ms := traffic(t)
	// vn matches either side: the reverse-direction packets pass it too.
	for i := range ms {
		if strings.Contains(string(ms[i].payload), "vn-right") && ms[i].frame[23] == byte(layers.IPProtocolTCP) &&
			ms[i].payload[8]&0x40 != 0 {
			ms[i].keep = true
		}
	}
	var frames [][]byte
	for i, m := range ms {
		eth := &layers.Ethernet{SrcMAC: env.SenderMAC, DstMAC: env.CaptureMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 168, 10, 11}, DstIP: net.IP{192, 168, 10, 99}}
		udp := &layers.UDP{SrcPort: 49152, DstPort: 8099}
		udp.SetNetworkLayerForChecksum(ip)
		frames = append(frames, serialize(t, eth, ip, udp, gopacket.Payload(m.payload)))
	}
	env.Send(t, frames)
	if err := run.wait(t); err != nil {
		t.Fatalf("tshark: %v\n%s", err, run.stderr.String())
	}
	checkFrames(t, readFrames(t, out), ms)
	waitFor(t, "the extcap to exit", func() bool { return !extcapWriting(Local) })
}
