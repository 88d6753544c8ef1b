package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/gen"

	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/server"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// AF_PACKET on a veth end without an address: generated mirror traffic
// goes in, rotated files with the original inner frames and their metadata
// come out, and the end of Run leaves every file closed and valid.
func TestInterface(t *testing.T) {
	env := testenv.NewNetns(t)
	dir := t.TempDir()
	c := config(dir)
	c.Interface, c.Files.MaxSize = env.CaptureIf, 64<<10
	r := start(t, c)
	cs := capturetest.Cases(t, "acl", 21, 400, 1400)
	env.Send(t, capturetest.OuterFrames(cs))
	r.waitWritten(uint64(len(cs)))
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkFiles(t, dir, cs)
	st := r.svc.Stats()
	if st.Files.Packets != uint64(len(cs)) || st.Source.Dropped != 0 || st.Pipeline.TotalMalformed() != 0 {
		t.Errorf("final counters %+v", st)
	}
}

// Outer IPv6 datagrams with a hop-by-hop or destination options header
// before the UDP header are mirror traffic too.
func TestInterfaceIPv6Extensions(t *testing.T) {
	_, cs := splitIPv6Ext(t, capturetest.Cases(t, "acl", 27, 600, 1400))
	if len(cs) < 10 {
		t.Fatalf("only %d cases with IPv6 extension headers", len(cs))
	}
	env := testenv.NewNetns(t)
	dir := t.TempDir()
	c := config(dir)
	c.Interface, c.Files.MaxSize = env.CaptureIf, 4<<10
	r := start(t, c)
	env.Send(t, capturetest.OuterFrames(cs))
	r.waitWritten(uint64(len(cs)))
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkFiles(t, dir, cs)
}

// splitIPv6Ext separates the cases whose outer IPv6 header is followed by
// an extension header other than a fragment header.
func splitIPv6Ext(t *testing.T, cs []*gen.Case) (plain, ext []*gen.Case) {
	t.Helper()
	for _, c := range cs {
		pkt := gopacket.NewPacket(c.Packets[0].Data, layers.LayerTypeEthernet, gopacket.NoCopy)
		if ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok &&
			ip.NextHeader != layers.IPProtocolUDP && ip.NextHeader != layers.IPProtocolIPv6Fragment {
			ext = append(ext, c)
		} else {
			plain = append(plain, c)
		}
	}
	return plain, ext
}

// The same through a UDP socket on loopback, where the analyzer address is
// local.
func TestUDP(t *testing.T) {
	dir := t.TempDir()
	c := config(dir)
	c.Listen, c.Files.MaxSize = testenv.FreeAddr(t, "udp"), 64<<10
	r := start(t, c)
	cs := capturetest.Cases(t, "acl", 22, 400, 9000)
	testenv.SendUDP(t, c.Listen, capturetest.UDPPayloads(t, cs))
	r.waitWritten(uint64(len(cs)))
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkFiles(t, dir, cs)
}

// The HTTP API of a running capture: auth, list, download with Range,
// delete, path traversal, the live stream read by tshark while traffic
// flows, and a stream client that never reads does not make the capture
// lose packets. Rotate closes the file being written.
func TestHTTP(t *testing.T) {
	const token = "s3cret-0123456789"
	dir := t.TempDir()
	c := config(dir)
	c.Listen, c.Server.Token = testenv.FreeAddr(t, "udp"), token
	r := start(t, c)
	cs := capturetest.Cases(t, "acl", 23, 600, 9000)
	payloads := capturetest.UDPPayloads(t, cs)

	// Auth.
	for _, h := range []map[string]string{{"Authorization": ""}, {"Authorization": "Bearer wrong"}} {
		if resp, _ := r.request("GET", "/api/captures", h); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("list with %v: %s, want 401", h, resp.Status)
		}
	}
	if resp, _ := r.request("GET", "/api/captures?token="+token, map[string]string{"Authorization": ""}); resp.StatusCode != http.StatusOK {
		t.Errorf("list with the token parameter: %s", resp.Status)
	}

	// A client that connects to the stream and never reads.
	stuck, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	fmt.Fprintf(stuck, "GET /api/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", token)

	// The live stream, decoded by tshark as it arrives.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.base+"/api/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	live := testenv.Tshark{Stdin: resp.Body}.Start(t, "-n", "-r", "-", "-c", "300", "-T", "fields", "-e", "frame.comment", "-e", "frame.len")
	r.waitFor("two stream clients", func() bool { return r.svc.Stats().StreamClients == 2 })

	testenv.SendUDP(t, c.Listen, payloads[:300])
	r.waitWritten(300)

	// Rotate closes the file: one closed file, then a new one.
	if err := r.svc.Rotate(); err != nil {
		t.Fatal(err)
	}
	if closed, _ := capturetest.CaptureFiles(t, dir); len(closed) != 1 {
		t.Fatalf("after Rotate: closed files %v", closed)
	}
	// tshark prints a packet once it has seen what follows it: the second
	// half lets it finish the first 300.
	testenv.SendUDP(t, c.Listen, payloads[300:])
	r.waitWritten(uint64(len(cs)))
	rows := live.Lines(t)
	if len(rows) != 300 {
		t.Fatalf("tshark read %d packets from the stream, want 300", len(rows))
	}
	for i, row := range rows {
		if want := capturetest.Comment(cs[i]) + "\t" + strconv.Itoa(len(cs[i].Frame)); row != want {
			t.Fatalf("stream packet %d: %q, want %q", i, row, want)
		}
	}
	if st := r.svc.Stats(); st.Source.Dropped != 0 || st.Pipeline.Read != uint64(len(cs)) {
		t.Errorf("with a stuck stream client: %+v", st)
	}

	l := r.list()
	if len(l) != 2 || l[0].Open || !l[1].Open || l[0].Packets != 300 || l[1].Packets != 300 {
		t.Fatalf("list: %+v", l)
	}
	closedName, openName := l[0].Name, l[1].Name
	disk, err := os.ReadFile(filepath.Join(dir, closedName))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(disk)) != l[0].Size {
		t.Errorf("listed size %d, file has %d bytes", l[0].Size, len(disk))
	}

	// Download: whole and with a Range.
	rs, body := r.request("GET", "/api/captures/"+closedName, nil)
	if rs.StatusCode != http.StatusOK || !bytes.Equal(body, disk) {
		t.Fatalf("download: %s, %d bytes, the file has %d", rs.Status, len(body), len(disk))
	}
	rs, body = r.request("GET", "/api/captures/"+closedName, map[string]string{"Range": "bytes=100-1099"})
	if rs.StatusCode != http.StatusPartialContent || !bytes.Equal(body, disk[100:1100]) ||
		rs.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-1099/%d", len(disk)) {
		t.Fatalf("range download: %s %q, %d bytes", rs.Status, rs.Header.Get("Content-Range"), len(body))
	}

	// Path traversal: never a file outside the store.
	for _, p := range []string{"..%2f..%2fetc%2fpasswd", "..", "%2e%2e", "x%2f..%2f" + closedName, "%2fetc%2fpasswd"} {
		rs, body := r.request("GET", "/api/captures/"+p, nil)
		if rs.StatusCode == http.StatusOK || bytes.Contains(body, []byte("root:")) {
			t.Errorf("GET /api/captures/%s: %s", p, rs.Status)
		}
	}

	// Delete: not the open file, and the closed one goes with its sidecar.
	if rs, _ := r.request("DELETE", "/api/captures/"+openName, nil); rs.StatusCode != http.StatusConflict {
		t.Errorf("delete the open file: %s", rs.Status)
	}
	if rs, _ := r.request("DELETE", "/api/captures/"+closedName, map[string]string{"Authorization": "Bearer no"}); rs.StatusCode != http.StatusUnauthorized {
		t.Errorf("delete without the token: %s", rs.Status)
	}
	if rs, _ := r.request("DELETE", "/api/captures/"+closedName, nil); rs.StatusCode/100 != 2 {
		t.Fatalf("delete: %s", rs.Status)
	}
	for _, n := range []string{closedName, closedName + ".json"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s after delete: %v", n, err)
		}
	}
	if rs, _ := r.request("DELETE", "/api/captures/"+closedName, nil); rs.StatusCode != http.StatusNotFound {
		t.Errorf("delete again: %s", rs.Status)
	}
	if l := r.list(); len(l) != 1 || l[0].Name != openName {
		t.Errorf("list after delete: %+v", l)
	}

	// Enough traffic to overflow what waits for the stuck client: its
	// stream loses packets, the capture does not.
	var bulk [][]byte
	for len(bulk) < 40000 {
		bulk = append(bulk, payloads...)
	}
	testenv.SendUDP(t, c.Listen, bulk)
	total := uint64(len(cs) + len(bulk))
	r.waitWritten(total)
	if st := r.svc.Stats(); st.StreamDropped == 0 || st.Source.Dropped != 0 || st.Pipeline.Read != total {
		t.Errorf("after overflowing the stuck stream client: %+v", st)
	}
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A capture directory on a tiny filesystem fills up: the service keeps
// running, reports the full disk on /healthz and /metrics, and writes
// again once files are deleted through the API.
func TestDiskFull(t *testing.T) {
	dir := testenv.MountTmpfs(t, "512k")
	c := config(dir)
	c.Listen, c.Files.MaxSize, c.Server.Token = testenv.FreeAddr(t, "udp"), 100<<10, "tok-0123456789abcdef"
	r := start(t, c)
	cs := capturetest.Cases(t, "acl", 25, 1200, 9000)
	payloads := capturetest.UDPPayloads(t, cs)
	testenv.SendUDP(t, c.Listen, payloads[:600]) // about 1.3 MB
	r.waitFor("600 packets read", func() bool { return r.svc.Stats().Pipeline.Read >= 600 })
	r.waitFor("disk full", func() bool { return r.svc.Stats().Files.DiskFull })
	stored := func() (n uint64) {
		for _, f := range r.list() {
			n += f.Packets
		}
		return n
	}
	if n := stored(); n == 0 || n >= 600 {
		t.Fatalf("%d of 600 packets stored on a 512k disk", n)
	}
	if rs, _ := r.request("GET", "/healthz", nil); rs.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("healthz with a full disk: %s", rs.Status)
	}
	_, metrics := r.request("GET", "/metrics", nil)
	if !strings.Contains(string(metrics), "vrsniff_store_disk_full 1\n") ||
		strings.Contains(string(metrics), "vrsniff_store_dropped_total 0\n") ||
		!strings.Contains(string(metrics), "vrsniff_store_dropped_total ") {
		t.Fatalf("metrics do not show the full disk:\n%s", grepLines(string(metrics), "vrsniff_store_"))
	}

	// Free the space through the API; the service writes again.
	for _, f := range r.list() {
		if !f.Open {
			if rs, _ := r.request("DELETE", "/api/captures/"+f.Name, nil); rs.StatusCode/100 != 2 {
				t.Fatalf("delete %s: %s", f.Name, rs.Status)
			}
		}
	}
	left := stored()
	time.Sleep(1200 * time.Millisecond) // a full disk is retried after a second
	testenv.SendUDP(t, c.Listen, payloads[600:700])
	r.waitFor("700 packets read", func() bool { return r.svc.Stats().Pipeline.Read >= 700 })
	r.waitFor("writing again", func() bool { return stored() >= left+100 })
	if err := r.finish(); err != nil {
		t.Fatalf("Run after the disk filled: %v", err)
	}
	closed, parts := capturetest.CaptureFiles(t, dir)
	if len(parts) != 0 || len(closed) == 0 {
		t.Fatalf("after Run: %v %v", closed, parts)
	}
	for _, n := range closed {
		tshark(t, filepath.Join(dir, n), "frame.len")
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The web page of a running capture, loaded in headless Chromium, lists
// its files.
func TestPage(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed for the page test (apt-get install -y chromium): %v", err)
	}
	const token = "pagetok-0123456789"
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	cs := capturetest.Cases(t, "acl", 28, 300, 1500)
	capturetest.WriteCases(t, raw, cs)
	c := config(filepath.Join(dir, "captures"))
	c.Read, c.Linger, c.Files.MaxSize, c.Server.Token = raw, true, 200<<10, token
	c.Server.HistoryEvery = 10 * time.Millisecond
	r := start(t, c)
	r.waitFor("the end of the input", func() bool { return r.svc.Stats().Ended })
	l := r.list()
	if len(l) < 2 {
		t.Fatalf("list: %+v", l)
	}
	read := r.svc.Stats().Pipeline.Read
	r.waitFor("the rates of all packets", func() bool {
		_, body := r.request("GET", "/api/history", nil)
		var h server.HistoryReport
		return json.Unmarshal(body, &h) == nil && h.Packets == read && len(h.Rates) > 0
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", r.base+"/?token="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := stdout.String()
	if n := strings.Count(dom, "<tr data-name="); n != len(l) {
		t.Errorf("page shows %d files, the API lists %d", n, len(l))
	}
	// Links are signed; the token is nowhere on the page.
	for _, f := range l {
		if !strings.Contains(dom, `href="/api/captures/`+f.Name+`?expires=`) {
			t.Errorf("page has no link to %s", f.Name)
		}
	}
	if strings.Contains(dom, "pagetok") {
		t.Errorf("page shows the token")
	}
	// The header says what is captured; the charts and the VN pairs
	// have the traffic.
	for _, want := range []string{`<div data-key="File"><dt>File</dt><dd>` + raw + `</dd>`,
		`<div data-key="Uptime">`, `<div data-key="Disk used">`} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if m := regexp.MustCompile(`id="chart-packets" data-points="(\d+)"`).FindStringSubmatch(dom); m == nil || m[1] == "0" {
		t.Errorf("the packets chart has no points: %v", m)
	}
	// The busiest hundred of them, and how many there are.
	pairs := len(r.svc.Stats().Pipeline.Pairs)
	if n := strings.Count(dom, "<tr data-pair="); n != min(pairs, 100) || !strings.Contains(dom, fmt.Sprintf("busiest 100 of %d", pairs)) {
		t.Errorf("page lists %d VN pairs, the pipeline counted %d", n, pairs)
	}
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A replayed file served with Linger ends with its files finished:
// renamed from .part, listed as closed, ready to download; Run goes on
// until its context is done.
func TestLingerFinishesFiles(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	dir := filepath.Join(t.TempDir(), "caps")
	c := config(dir)
	c.Read, c.Linger, c.Server.Token = in, true, "linger-token-0123456789"
	r := start(t, c)
	r.waitFor("the end of the input", func() bool { return r.svc.Stats().Ended })
	closed, parts := capturetest.CaptureFiles(t, dir)
	if st := r.svc.Stats(); len(parts) != 0 || len(closed) == 0 || st.Files.OpenFiles != 0 || st.Files.Packets == 0 {
		t.Fatalf("lingering after the input: closed %v, open %v; counters %+v", closed, parts, st)
	}
	if l := r.list(); len(l) != len(closed) || l[0].Open {
		t.Errorf("lingering after the input, the API lists %+v", l)
	}
	select {
	case <-r.done:
		t.Fatalf("Run ended while lingering: %v", r.err)
	default:
	}
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// Without Linger, Run ends at the end of a replayed file, with its files
// closed.
func TestReadEnds(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	dir := t.TempDir()
	c := config(dir)
	c.Read, c.HTTP = in, ""
	svc, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := svc.Stats()
	closed, parts := capturetest.CaptureFiles(t, dir)
	if len(parts) != 0 || len(closed) != 1 || st.Files.Packets == 0 || st.Files.Packets != st.Pipeline.Written {
		t.Fatalf("files %v %v; counters %+v", closed, parts, st)
	}
	if n := len(tshark(t, filepath.Join(dir, closed[0]), "frame.len")); uint64(n) != st.Files.Packets {
		t.Errorf("tshark reads %d packets, %d written", n, st.Files.Packets)
	}
}

// A port already taken makes New fail, before a packet is read; so does a
// certificate that does not load; and the source is released.
func TestNewFailsBeforeReading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	in := testenv.FieldCase(t, "f01_tlv_lengths_16_and_2.pcap")
	dir := filepath.Join(t.TempDir(), "caps")
	udp := testenv.FreeAddr(t, "udp")
	c := config(dir)
	c.Listen, c.HTTP = udp, ln.Addr().String()
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("port taken: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files written before the start-up failed", len(ents))
	}
	// The UDP socket was closed: it can be bound again.
	pc, err := net.ListenPacket("udp", udp)
	if err != nil {
		t.Fatalf("source not released: %v", err)
	}
	pc.Close()

	cert := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = config("")
	c.Read, c.TLSCert, c.TLSKey = in, cert, cert
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("bad certificate: %v", err)
	}
}

// A configuration without exactly one source, or that would keep
// nothing, is refused.
func TestNewRefuses(t *testing.T) {
	in := testenv.FieldCase(t, "f01_tlv_lengths_16_and_2.pcap")
	for _, c := range []Config{
		{HTTP: "127.0.0.1:0"},
		{Read: in, Listen: "127.0.0.1:0", HTTP: "127.0.0.1:0"},
		{Read: in},
	} {
		if svc, err := New(c); err == nil {
			svc.Close()
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// A record longer than readers accept (1 MiB in a file whose snap length
// allows 16 MiB) is cut, so that every file the capture writes opens in
// tshark, rejects included.
func TestHugeRecord(t *testing.T) {
	in := testenv.HostileCase(t, "pcap-1mib-record.pcap")
	for _, format := range []pcapfile.Format{pcapfile.FormatPcapNG, pcapfile.FormatPcap} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			c := config(dir)
			c.Read, c.HTTP, c.KeepRejects, c.Files.Format = in, "", true, format
			svc, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.Run(context.Background()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			var files []string
			for _, d := range []string{dir, filepath.Join(dir, "rejects")} {
				closed, parts := capturetest.CaptureFiles(t, d)
				if len(parts) != 0 {
					t.Fatalf("left open: %v", parts)
				}
				for _, n := range closed {
					files = append(files, filepath.Join(d, n))
				}
			}
			packets := uint64(0)
			for _, f := range files {
				for _, row := range tshark(t, f, "frame.cap_len") {
					if n, _ := strconv.Atoi(row[0]); n > 262144 {
						t.Errorf("%s: a record of %d bytes", f, n)
					}
					packets++
				}
			}
			st := svc.Stats()
			if len(files) == 0 || packets != st.Pipeline.Read {
				t.Fatalf("%d files holding %d packets; counters %+v", len(files), packets, st)
			}
		})
	}
}

// Close without Run releases the source, the listener and the files.
func TestCloseWithoutRun(t *testing.T) {
	dir := t.TempDir()
	c := config(dir)
	c.Listen = testenv.FreeAddr(t, "udp")
	before := runtime.NumGoroutine()
	svc, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	api := svc.Addr().String()
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", c.Listen)
	if err != nil {
		t.Fatalf("UDP socket not released: %v", err)
	}
	pc.Close()
	ln, err := net.Listen("tcp", api)
	if err != nil {
		t.Fatalf("HTTP listener not released: %v", err)
	}
	ln.Close()
	if closed, parts := capturetest.CaptureFiles(t, dir); len(closed)+len(parts) != 0 {
		t.Errorf("files of a capture that never ran: %v %v", closed, parts)
	}
	// The stream hub's goroutine, started by New, ends too.
	testenv.WaitFor(t, "the service's goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
