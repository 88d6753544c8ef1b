package extcap

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/server"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// These tests run the real tshark, which runs the vrsniff binary as its
// extcap program from a private home folder.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildVrsniff builds the vrsniff binary once for all tests into binPath.
func buildVrsniff(t *testing.T) {
	t.Helper()
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
}

// wireshark returns a home folder whose personal extcap folder holds the
// vrsniff link, as "vrsniff extcap install" makes it.
func wireshark(t *testing.T) (home string) {
	t.Helper()
	buildVrsniff(t)
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
func readFrames(t *testing.T, name string) [][]byte {
	t.Helper()
	ps, err := pcapfile.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	frames := make([][]byte, len(ps))
	for i, p := range ps {
		frames[i] = p.Data
	}
	return frames
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
		return testenv.Serialize(t, eth, ip, l4, payload)
	}
	ip.Protocol = layers.IPProtocolUDP
	l4 := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(port)}
	l4.SetNetworkLayerForChecksum(ip)
	return testenv.Serialize(t, eth, ip, l4, payload)
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
	comment string // the metadata as the packet comment gives it
	ingress bool
	keep    bool // passes the test's filter
}

// traffic is a mix of mirrored packets; the tests' filters keep TCP frames
// to port 80 of vn-left in the ingress direction.
func traffic(t *testing.T) []mirrored {
	const left, right = "default-domain:admin:vn-left", "default-domain:admin:vn-right"
	var ms []mirrored
	add := func(src, dst string, ingress, tcp bool, port uint16, keep bool, seq int) {
		f := inner(t, tcp, port, seq)
		dir := "egress"
		if ingress {
			dir = "ingress"
		}
		ms = append(ms, mirrored{
			payload: append(metadata(src, dst, ingress), f...), frame: f, keep: keep, ingress: ingress,
			comment: "src_vn=" + src + " dst_vn=" + dst + " dir=" + dir + " host=192.168.10.11 action=pass,mirror",
		})
	}
	for i := range 12 {
		switch i % 4 {
		case 0, 1:
			add(left, right, true, true, 80, true, i)
		case 2:
			add(right, left, true, true, 80, false, i) // other source VN
		case 3:
			add(left, right, true, false, 80, false, i) // UDP: the inner filter drops it
		}
	}
	add(left, right, true, true, 22, false, 98)  // another port
	add(left, right, false, true, 80, false, 99) // egress
	return ms
}

func kept(ms []mirrored) int {
	n := 0
	for _, m := range ms {
		if m.keep {
			n++
		}
	}
	return n
}

// daemon is a running "vrsniff capture" that receives mirror datagrams on
// a loopback UDP socket and serves its HTTP API on loopback.
type daemon struct {
	udpAddr string // where the mirror datagrams go
	url     string // the HTTP API
	token   string
	cmd     *exec.Cmd
	stderr  bytes.Buffer // read only after exited is closed
	exited  chan struct{}
	err     error // the exit status, set before exited is closed
}

// startDaemon runs vrsniff capture with the token until the test ends, and
// returns once its HTTP server answers. At the end it stops it with SIGTERM,
// as a service manager would, and expects a clean exit.
func startDaemon(t *testing.T, token string) *daemon {
	t.Helper()
	buildVrsniff(t)
	dir := t.TempDir()
	tf := tokenFile(t, token)
	for attempt := 1; ; attempt++ {
		d := &daemon{udpAddr: testenv.FreeAddr(t, "udp"), token: token, exited: make(chan struct{})}
		httpAddr := testenv.FreeAddr(t, "tcp")
		d.url = "http://" + httpAddr
		d.cmd = exec.Command(binPath, "capture", "--listen", d.udpAddr, "--http", httpAddr,
			"--token-file", tf, "--dir", dir, "--stats-every", "0")
		d.cmd.Stderr = &d.stderr
		if err := d.cmd.Start(); err != nil {
			t.Fatalf("start vrsniff capture: %v", err)
		}
		go func() { d.err = d.cmd.Wait(); close(d.exited) }()
		if d.healthy(t) {
			t.Cleanup(func() { d.stop(t) })
			return d
		}
		// Another process may have taken a port between FreeAddr and
		// the daemon's bind: pick new ones.
		if attempt == 3 || !strings.Contains(d.stderr.String(), "address already in use") {
			t.Fatalf("vrsniff capture exited at start: %v\n%s", d.err, d.stderr.String())
		}
	}
}

// healthy waits for /healthz to answer; false means the daemon exited.
func (d *daemon) healthy(t *testing.T) bool {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-d.exited:
			return false
		default:
		}
		resp, err := c.Get(d.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
	}
	d.cmd.Process.Kill()
	<-d.exited
	t.Fatalf("vrsniff capture did not answer /healthz\n%s", d.stderr.String())
	return false
}

func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("stop vrsniff capture: %v", err)
	}
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		t.Errorf("vrsniff capture did not stop on SIGTERM\n%s", d.stderr.String())
		return
	}
	if d.err != nil {
		t.Errorf("vrsniff capture: %v\n%s", d.err, d.stderr.String())
	}
}

// stats reads the daemon's /api/stats.
func (d *daemon) stats(t *testing.T) server.StatsReport {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.url+"/api/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: %s", resp.Status)
	}
	var rep server.StatsReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return rep
}

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// payloads are the mirror datagrams of ms.
func payloads(ms []mirrored) [][]byte {
	ps := make([][]byte, len(ms))
	for i, m := range ms {
		ps[i] = m.payload
	}
	return ps
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

// checkComments reads the capture with tshark and checks that every packet
// carries its metadata as comment and its direction in the packet flags.
func checkComments(t *testing.T, path string, ms []mirrored) {
	t.Helper()
	got := testenv.Tshark{}.Lines(t, "-r", path, "-T", "fields", "-E", "separator=|",
		"-e", "frame.comment", "-e", "frame.packet_flags_direction")
	var want []string
	for _, m := range ms {
		if m.keep {
			dir := "0x00000002" // outbound
			if m.ingress {
				dir = "0x00000001" // inbound
			}
			want = append(want, m.comment+"|"+dir)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("tshark read %d packets, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("packet %d: comment and direction\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestRemoteCaptureWithTshark(t *testing.T) {
	home := wireshark(t)
	d := startDaemon(t, "s3cret-0123456789")
	out := filepath.Join(t.TempDir(), "out.pcapng")
	// The inner filter and the capture filter field are combined.
	run := testenv.Tshark{Home: home}.Start(t, "-i", Remote,
		"-o", "extcap.vrsniff_remote.url:"+d.url,
		"-o", "extcap.vrsniff_remote.token_file:"+tokenFile(t, "s3cret-0123456789"),
		"-o", "extcap.vrsniff_remote.src_vn:*:vn-left",
		"-o", "extcap.vrsniff_remote.direction:ingress",
		"-o", "extcap.vrsniff_remote.bpf:tcp",
		"-f", "port 80",
		"-a", "duration:4", "-w", out)
	testenv.WaitFor(t, "the stream client", func() bool { return d.stats(t).StreamClients == 1 })
	ms := traffic(t)
	testenv.SendUDP(t, d.udpAddr, payloads(ms))
	run.Output(t)
	checkFrames(t, readFrames(t, out), ms)
	checkComments(t, out, ms)
	// Stopping in Wireshark ends the stream on the server too.
	testenv.WaitFor(t, "the stream to end on the server", func() bool { return d.stats(t).StreamClients == 0 })
	st := d.stats(t)
	if st.Pipeline.Read != uint64(len(ms)) || st.Pipeline.TotalMalformed() != 0 {
		t.Errorf("daemon read %d packets, %d malformed; sent %d", st.Pipeline.Read, st.Pipeline.TotalMalformed(), len(ms))
	}
	// The server filters: only the selected packets cross the network.
	if want := kept(ms); st.StreamSent != uint64(want) {
		t.Errorf("daemon streamed %d packets, want %d", st.StreamSent, want)
	}
}

func TestRemoteErrorsInTshark(t *testing.T) {
	home := wireshark(t)
	d := startDaemon(t, "s3cret-0123456789")
	for _, tc := range []struct{ url, token, want string }{
		{d.url, "wrong", d.url + "/api/stream: 401 Unauthorized: missing or wrong bearer token (check the token)"},
		{"http://127.0.0.1:1", "s3cret-0123456789", "connect to http://127.0.0.1:1/api/stream"},
	} {
		start := time.Now()
		run := testenv.Tshark{Home: home}.Start(t, "-i", Remote, "-o", "extcap.vrsniff_remote.url:"+tc.url,
			"-o", "extcap.vrsniff_remote.token_file:"+tokenFile(t, tc.token), "-a", "duration:20", "-w", filepath.Join(t.TempDir(), "x.pcapng"))
		stderr, err := run.Result()
		if err == nil {
			t.Errorf("%s: tshark succeeded", tc.want)
		}
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
		}
		// An error ends the capture at once, long before the duration.
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("%s: took %v", tc.want, d)
		}
	}
	if n := d.stats(t).StreamClients; n != 0 {
		t.Errorf("refused requests left %d stream clients", n)
	}
}

func TestLocalCaptureWithTshark(t *testing.T) {
	home := wireshark(t)
	env := testenv.NewNetns(t)
	out := filepath.Join(t.TempDir(), "out.pcapng")
	run := testenv.Tshark{Home: home}.Start(t, "-i", Local,
		"-o", "extcap.vrsniff_local.iface:"+env.CaptureIf,
		"-o", "extcap.vrsniff_local.vn:*:vn-left",
		"-o", "extcap.vrsniff_local.bpf:tcp port 80",
		"-o", "extcap.vrsniff_local.direction:ingress",
		"-a", "duration:4", "-w", out)
	// The extcap writes the capture header once its source is open; dumpcap
	// then writes its own to the output file.
	testenv.WaitFor(t, "the extcap to capture", func() bool {
		st, err := os.Stat(out)
		return err == nil && st.Size() > 0
	})
	ms := traffic(t)
	// vn matches either side: the reverse-direction packets pass it too.
	for i := range ms {
		if strings.HasPrefix(ms[i].comment, "src_vn=default-domain:admin:vn-right") && ms[i].frame[23] == byte(layers.IPProtocolTCP) &&
			ms[i].ingress {
			ms[i].keep = true
		}
	}
	var frames [][]byte
	for i, m := range ms {
		eth := &layers.Ethernet{SrcMAC: env.SenderMAC, DstMAC: env.CaptureMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 168, 10, 11}, DstIP: net.IP{192, 168, 10, 99}}
		udp := &layers.UDP{SrcPort: 49152, DstPort: 8099}
		udp.SetNetworkLayerForChecksum(ip)
		frames = append(frames, testenv.Serialize(t, eth, ip, udp, gopacket.Payload(m.payload)))
	}
	env.Send(t, frames)
	run.Output(t)
	checkFrames(t, readFrames(t, out), ms)
	checkComments(t, out, ms)
	testenv.WaitFor(t, "the extcap to exit", func() bool { return !extcapWriting(Local) })
}
