package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// daemon is a running `vrsniff capture`.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error // of cmd.Wait, once done is closed
	base   string
	token  string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCapture runs `vrsniff capture` with args plus an HTTP API on a
// loopback port, protected by token, and waits until it captures and
// serves. The daemon is killed at the end of the test if still running.
func startCapture(t *testing.T, token string, args ...string) *daemon {
	t.Helper()
	addr := testenv.FreeAddr(t, "tcp")
	args = append([]string{"capture", "--http", addr, "--stats-every", "0"}, args...)
	if token != "" {
		tf := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tf, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--token-file", tf)
	}
	d := &daemon{t: t, cmd: exec.Command(vrsniffBin, args...), stderr: &syncBuffer{}, done: make(chan struct{}),
		base: "http://" + addr, token: token}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("vrsniff %s:\n%s", strings.Join(args, " "), d.stderr)
		}
	})
	d.waitFor("daemon up", func() bool {
		if !strings.Contains(d.stderr.String(), "msg=capturing") {
			return false
		}
		resp, err := http.Get(d.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return d
}

// waitFor polls cond for up to 30 s; it fails the test if the daemon ends
// or the time runs out.
func (d *daemon) waitFor(what string, cond func() bool, detail ...func() string) {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case <-d.done:
			d.t.Fatalf("waiting for %s: vrsniff ended (%v):\n%s", what, d.err, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			var more string
			for _, f := range detail {
				more += "\n" + f()
			}
			d.t.Fatalf("timed out waiting for %s%s", what, more)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop signals the daemon and returns its exit code.
func (d *daemon) stop(sig syscall.Signal) int {
	d.t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Fatalf("vrsniff did not end on %v", sig)
	}
	if ee, ok := d.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if d.err != nil {
		d.t.Fatal(d.err)
	}
	return 0
}

func (d *daemon) request(method, path string, hdr map[string]string) (*http.Response, []byte) {
	d.t.Helper()
	req, err := http.NewRequest(method, d.base+path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, body
}

type daemonStats struct {
	Pipeline struct {
		Read    uint64 `json:"packets_read"`
		Written uint64 `json:"written"`
	} `json:"pipeline"`
	Source struct {
		Received    uint64 `json:"received"`
		KernelDrops uint64 `json:"kernel_drops"`
	} `json:"source"`
	StreamClients int    `json:"stream_clients"`
	StreamDrops   uint64 `json:"stream_drops"`
}

func (d *daemon) stats() daemonStats {
	d.t.Helper()
	resp, body := d.request("GET", "/api/stats", nil)
	var s daemonStats
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("/api/stats: %s", resp.Status)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		d.t.Fatalf("/api/stats: %v", err)
	}
	return s
}

// waitWritten waits until n packets have gone to the files.
func (d *daemon) waitWritten(n uint64) {
	d.t.Helper()
	var last []byte
	d.waitFor(fmt.Sprintf("%d packets written", n), func() bool {
		resp, body := d.request("GET", "/api/stats", nil)
		last = body
		return resp.StatusCode == http.StatusOK && d.stats().Pipeline.Written >= n
	}, func() string { return string(last) })
}

type captureInfo struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Packets uint64 `json:"packets"`
	Open    bool   `json:"open"`
}

func (d *daemon) list() []captureInfo {
	d.t.Helper()
	resp, body := d.request("GET", "/api/captures", nil)
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("list: %s", resp.Status)
	}
	var l []captureInfo
	if err := json.Unmarshal(body, &l); err != nil {
		d.t.Fatalf("list: %v: %s", err, body)
	}
	return l
}

// cases returns n generated mirror cases, each with its own copy of the data.
func cases(t *testing.T, profile string, seed uint64, n, mtu int) []*gen.Case {
	t.Helper()
	g, err := gen.New(gen.Options{Seed: seed, Mix: gen.Profiles[profile], MTU: mtu, LinkType: layers.LinkTypeEthernet,
		MaxFrame: 2000})
	if err != nil {
		t.Fatal(err)
	}
	cs := make([]*gen.Case, n)
	for i := range cs {
		cs[i] = g.Next().Clone()
	}
	return cs
}

func outerFrames(cs []*gen.Case) [][]byte {
	var fs [][]byte
	for _, c := range cs {
		for _, w := range c.Packets {
			fs = append(fs, w.Data)
		}
	}
	return fs
}

// comment is the pcapng comment a decoded case must carry.
func comment(c *gen.Case) string {
	p := mirror.Packet{Mode: c.Mode, Meta: c.Meta()}
	return string(mirror.AppendComment(nil, &p))
}

// captureFiles lists the capture files in dir (no sidecars), in the
// order they were written.
func captureFiles(t *testing.T, dir string) (closed []string, parts []string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		switch n := e.Name(); {
		case strings.HasSuffix(n, ".part"):
			parts = append(parts, n)
		case strings.HasSuffix(n, ".pcapng"), strings.HasSuffix(n, ".pcap"):
			closed = append(closed, n)
		}
	}
	slices.Sort(closed)
	return closed, parts
}

// checkFiles checks that the closed files of dir hold exactly the inner
// frames of cs, in order, each with its metadata comment, that tshark reads
// every file completely and that every file has its sidecar.
func checkFiles(t *testing.T, dir string, cs []*gen.Case) {
	t.Helper()
	closed, parts := captureFiles(t, dir)
	if len(parts) != 0 || len(closed) < 2 {
		t.Fatalf("want several closed files and no .part: %v %v", closed, parts)
	}
	var got [][]string
	i := 0
	for _, n := range closed {
		name := filepath.Join(dir, n)
		for _, p := range readAll(t, name) {
			if i >= len(cs) {
				t.Fatalf("%s: more packets than were sent", n)
			}
			if !bytes.Equal(p.Data, cs[i].Frame) {
				t.Fatalf("%s: packet %d is not inner frame %d", n, len(got), i)
			}
			i++
		}
		got = append(got, tshark(t, name, nil, "frame.comment")...)
		if _, err := os.Stat(name + ".json"); err != nil {
			t.Errorf("sidecar: %v", err)
		}
	}
	if i != len(cs) || len(got) != len(cs) {
		t.Fatalf("files hold %d packets (tshark reads %d), %d were sent", i, len(got), len(cs))
	}
	for i, c := range cs {
		if want := comment(c); got[i][0] != want {
			t.Fatalf("packet %d: tshark reads comment %q, want %q", i, got[i][0], want)
		}
	}
}

// AF_PACKET on a veth end without an address: generated mirror traffic
// goes in, rotated files with the original inner frames and their metadata
// come out, and SIGTERM leaves every file closed and valid.
func TestCaptureInterface(t *testing.T) {
	env := testenv.NewNetns(t)
	dir := t.TempDir()
	d := startCapture(t, "", "-i", env.CaptureIf, "--dir", dir, "--rotate-size", "64K")
	cs := cases(t, "acl", 21, 400, 1400)
	env.Send(t, outerFrames(cs))
	d.waitWritten(uint64(len(cs)))
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d on SIGTERM", code)
	}
	checkFiles(t, dir, cs)
	line := lastCounters(t, d.stderr.String())
	if line["written"] != strconv.Itoa(len(cs)) || line["kernel_dropped"] != "0" || line["malformed"] != "0" {
		t.Errorf("final counters %v", line)
	}
}

// Outer IPv6 datagrams with a hop-by-hop or destination options header
// before the UDP header are mirror traffic too.
func TestCaptureInterfaceIPv6Extensions(t *testing.T) {
	_, cs := splitIPv6Ext(t, cases(t, "acl", 27, 600, 1400))
	if len(cs) < 10 {
		t.Fatalf("only %d cases with IPv6 extension headers", len(cs))
	}
	env := testenv.NewNetns(t)
	dir := t.TempDir()
	d := startCapture(t, "", "-i", env.CaptureIf, "--dir", dir, "--rotate-size", "4K")
	env.Send(t, outerFrames(cs))
	d.waitWritten(uint64(len(cs)))
	d.stop(syscall.SIGTERM)
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

// lastCounters parses the last "counters" log line.
func lastCounters(t *testing.T, log string) map[string]string {
	t.Helper()
	var last string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "msg=counters") {
			last = l
		}
	}
	if last == "" {
		t.Fatalf("no counters logged:\n%s", log)
	}
	m := map[string]string{}
	for _, f := range strings.Fields(last) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// udpPayloads returns the UDP payloads of the cases' outer frames, as a
// vRouter sends them to an analyzer address.
func udpPayloads(t *testing.T, cs []*gen.Case) [][]byte {
	t.Helper()
	var ps [][]byte
	for _, c := range cs {
		if len(c.Packets) != 1 {
			t.Fatalf("case %d is fragmented", c.Index)
		}
		pkt := gopacket.NewPacket(c.Packets[0].Data, layers.LayerTypeEthernet, gopacket.Default)
		udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			t.Fatalf("case %d: no UDP layer", c.Index)
		}
		ps = append(ps, udp.Payload)
	}
	return ps
}

// The same through a UDP socket on loopback, where the analyzer address is
// local.
func TestCaptureUDP(t *testing.T) {
	dir := t.TempDir()
	addr := testenv.FreeAddr(t, "udp")
	d := startCapture(t, "", "--listen", addr, "--dir", dir, "--rotate-size", "64K")
	cs := cases(t, "acl", 22, 400, 9000)
	testenv.SendUDP(t, addr, udpPayloads(t, cs))
	d.waitWritten(uint64(len(cs)))
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d on SIGTERM", code)
	}
	checkFiles(t, dir, cs)
}

// The HTTP API of a running daemon: auth, list, download with Range,
// delete, path traversal, the live stream read by tshark while traffic
// flows, and a stream client that never reads does not make the capture
// lose packets. SIGHUP rotates.
func TestCaptureHTTP(t *testing.T) {
	dir := t.TempDir()
	addr := testenv.FreeAddr(t, "udp")
	d := startCapture(t, "s3cret-0123456789", "--listen", addr, "--dir", dir)
	cs := cases(t, "acl", 23, 600, 9000)
	payloads := udpPayloads(t, cs)

	// Auth.
	for _, h := range []map[string]string{{"Authorization": ""}, {"Authorization": "Bearer wrong"}} {
		if resp, _ := d.request("GET", "/api/captures", h); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("list with %v: %s, want 401", h, resp.Status)
		}
	}
	if resp, _ := d.request("GET", "/api/captures?token=s3cret-0123456789", map[string]string{"Authorization": ""}); resp.StatusCode != http.StatusOK {
		t.Errorf("list with the token parameter: %s", resp.Status)
	}

	// A client that connects to the stream and never reads.
	stuck, err := net.Dial("tcp", strings.TrimPrefix(d.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	fmt.Fprintf(stuck, "GET /api/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-0123456789\r\n\r\n")

	// The live stream, decoded by tshark as it arrives.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", d.base+"/api/stream", nil)
	req.Header.Set("Authorization", "Bearer s3cret-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	live := testenv.Tshark{Stdin: resp.Body}.Start(t, "-n", "-r", "-", "-c", "300", "-T", "fields", "-e", "frame.comment", "-e", "frame.len")
	d.waitFor("two stream clients", func() bool { return d.stats().StreamClients == 2 })

	testenv.SendUDP(t, addr, payloads[:300])
	d.waitWritten(300)

	// SIGHUP closes the file: one closed file, then a new one.
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor("rotation", func() bool { closed, _ := captureFiles(t, dir); return len(closed) == 1 })
	// tshark prints a packet once it has seen what follows it: the second
	// half lets it finish the first 300.
	testenv.SendUDP(t, addr, payloads[300:])
	d.waitWritten(uint64(len(cs)))
	rows := live.Lines(t)
	if len(rows) != 300 {
		t.Fatalf("tshark read %d packets from the stream, want 300", len(rows))
	}
	for i, r := range rows {
		if want := comment(cs[i]) + "\t" + strconv.Itoa(len(cs[i].Frame)); r != want {
			t.Fatalf("stream packet %d: %q, want %q", i, r, want)
		}
	}
	st := d.stats()
	if st.Source.KernelDrops != 0 || st.Pipeline.Read != uint64(len(cs)) {
		t.Errorf("with a stuck stream client: %+v", st)
	}

	l := d.list()
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
	r, body := d.request("GET", "/api/captures/"+closedName, nil)
	if r.StatusCode != http.StatusOK || !bytes.Equal(body, disk) {
		t.Fatalf("download: %s, %d bytes, the file has %d", r.Status, len(body), len(disk))
	}
	r, body = d.request("GET", "/api/captures/"+closedName, map[string]string{"Range": "bytes=100-1099"})
	if r.StatusCode != http.StatusPartialContent || !bytes.Equal(body, disk[100:1100]) ||
		r.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-1099/%d", len(disk)) {
		t.Fatalf("range download: %s %q, %d bytes", r.Status, r.Header.Get("Content-Range"), len(body))
	}

	// Path traversal: never a file outside the store.
	for _, p := range []string{"..%2f..%2fetc%2fpasswd", "..", "%2e%2e", "x%2f..%2f" + closedName, "%2fetc%2fpasswd"} {
		r, body := d.request("GET", "/api/captures/"+p, nil)
		if r.StatusCode == http.StatusOK || bytes.Contains(body, []byte("root:")) {
			t.Errorf("GET /api/captures/%s: %s", p, r.Status)
		}
	}

	// Delete: not the open file, and the closed one goes with its sidecar.
	if r, _ := d.request("DELETE", "/api/captures/"+openName, nil); r.StatusCode != http.StatusConflict {
		t.Errorf("delete the open file: %s", r.Status)
	}
	if r, _ := d.request("DELETE", "/api/captures/"+closedName, map[string]string{"Authorization": "Bearer no"}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("delete without the token: %s", r.Status)
	}
	if r, _ := d.request("DELETE", "/api/captures/"+closedName, nil); r.StatusCode/100 != 2 {
		t.Fatalf("delete: %s", r.Status)
	}
	for _, n := range []string{closedName, closedName + ".json"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s after delete: %v", n, err)
		}
	}
	if l := d.list(); len(l) != 1 || l[0].Name != openName {
		t.Errorf("list after delete: %+v", l)
	}

	// Enough traffic to overflow what waits for the stuck client: its
	// stream loses packets, the capture does not.
	var bulk [][]byte
	for len(bulk) < 40000 {
		bulk = append(bulk, payloads...)
	}
	testenv.SendUDP(t, addr, bulk)
	total := uint64(len(cs) + len(bulk))
	d.waitWritten(total)
	if st := d.stats(); st.StreamDrops == 0 || st.Source.KernelDrops != 0 || st.Pipeline.Read != total {
		t.Errorf("after overflowing the stuck stream client: %+v", st)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// kill -9 in the middle of a capture: the closed files read completely,
// the .part file up to its last complete block, and a restart recovers it.
func TestCaptureKilled(t *testing.T) {
	env := testenv.NewNetns(t)
	dir := t.TempDir()
	d := startCapture(t, "", "-i", env.CaptureIf, "--dir", dir, "--rotate-size", "64K")
	cs := cases(t, "acl", 24, 300, 1400)
	env.Send(t, outerFrames(cs))
	d.waitWritten(uint64(len(cs)))
	time.Sleep(1500 * time.Millisecond) // more than the flush period
	d.stop(syscall.SIGKILL)

	closed, parts := captureFiles(t, dir)
	if len(parts) != 1 || len(closed) == 0 {
		t.Fatalf("after kill -9: closed %v, part %v", closed, parts)
	}
	var got []string
	for _, n := range closed {
		for _, r := range tshark(t, filepath.Join(dir, n), nil, "frame.comment", "frame.len") {
			got = append(got, strings.Join(r, "\t"))
		}
	}
	part := filepath.Join(dir, parts[0])
	partRows := readPart(t, part)
	got = append(got, partRows...)
	var want []string
	for _, c := range cs {
		want = append(want, comment(c)+"\t"+strconv.Itoa(len(c.Frame)))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after kill -9 the files hold %d packets (%d in the .part), want the %d sent", len(got), len(partRows), len(want))
	}
	// A kill in the middle of a write leaves half a block behind.
	st, err := os.Stat(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(part, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	if cut := readPart(t, part); !slices.Equal(cut, partRows[:len(partRows)-1]) {
		t.Fatalf("tshark reads %d packets of the cut .part, want %d", len(cut), len(partRows)-1)
	}

	// A new daemon on the directory closes the .part as a listed file.
	d = startCapture(t, "", "-i", env.CaptureIf, "--dir", dir)
	l := d.list()
	if len(l) != len(closed)+1 || l[len(l)-1].Name != strings.TrimSuffix(parts[0], ".part") ||
		l[len(l)-1].Packets != uint64(len(partRows)-1) || l[len(l)-1].Open {
		t.Fatalf("after restart: %+v", l)
	}
	d.stop(syscall.SIGTERM)
}

// readPart reads comment and length of every packet tshark can read of a
// file that may be cut short.
func readPart(t *testing.T, name string) []string {
	t.Helper()
	return testenv.Tshark{CutShort: true}.Lines(t, "-n", "-r", name, "-T", "fields", "-e", "frame.comment", "-e", "frame.len")
}

// A capture directory on a tiny filesystem fills up: the daemon keeps
// running, and writes again once files are deleted.
func TestCaptureDiskFull(t *testing.T) {
	dir := testenv.MountTmpfs(t, "512k")

	addr := testenv.FreeAddr(t, "udp")
	d := startCapture(t, "tok-0123456789abcdef", "--listen", addr, "--dir", dir, "--rotate-size", "100K")
	cs := cases(t, "acl", 25, 1200, 9000)
	payloads := udpPayloads(t, cs)
	testenv.SendUDP(t, addr, payloads[:600]) // about 1.3 MB
	d.waitFor("600 packets read", func() bool { return d.stats().Pipeline.Read >= 600 })
	d.waitFor("disk full", func() bool { return strings.Contains(d.stderr.String(), "disk full") })
	stored := func() (n uint64) {
		for _, f := range d.list() {
			n += f.Packets
		}
		return n
	}
	if n := stored(); n == 0 || n >= 600 {
		t.Fatalf("%d of 600 packets stored on a 512k disk", n)
	}
	_, metrics := d.request("GET", "/metrics", nil)
	if !strings.Contains(string(metrics), "vrsniff_store_disk_full 1\n") ||
		strings.Contains(string(metrics), "vrsniff_store_dropped_total 0\n") ||
		!strings.Contains(string(metrics), "vrsniff_store_dropped_total ") {
		t.Fatalf("metrics do not show the full disk:\n%s", grepLines(string(metrics), "vrsniff_store_"))
	}

	// Free the space through the API; the daemon writes again.
	for _, f := range d.list() {
		if !f.Open {
			if r, _ := d.request("DELETE", "/api/captures/"+f.Name, nil); r.StatusCode/100 != 2 {
				t.Fatalf("delete %s: %s", f.Name, r.Status)
			}
		}
	}
	left := stored()
	time.Sleep(1200 * time.Millisecond) // a full disk is retried after a second
	testenv.SendUDP(t, addr, payloads[600:700])
	d.waitFor("700 packets read", func() bool { return d.stats().Pipeline.Read >= 700 })
	d.waitFor("writing again", func() bool { return stored() >= left+100 })
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after the disk filled", code)
	}
	closed, parts := captureFiles(t, dir)
	if len(parts) != 0 || len(closed) == 0 {
		t.Fatalf("after SIGTERM: %v %v", closed, parts)
	}
	for _, n := range closed {
		tshark(t, filepath.Join(dir, n), nil, "frame.len")
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

// A YAML --config file is the same as the flags.
func TestCaptureConfigFile(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "--profile", "bench", "--count", "500", "--seed", "26", raw)
	flagsDir, confDir := filepath.Join(dir, "flags"), filepath.Join(dir, "conf")
	mustRun(t, "capture", "--read", raw, "--dir", flagsDir, "--format", "pcap", "--rotate-size", "30K",
		"--max-files", "3", "--direction", "ingress", "--stats-every", "0")
	conf := filepath.Join(dir, "vrsniff.yaml")
	yaml := fmt.Sprintf("read: %s\ndir: %s\nformat: pcap\nrotate-size: 30K\nmax-files: 3\ndirection: ingress\nstats-every: 0s\n", raw, confDir)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "capture", "--config", conf)
	a, _ := captureFiles(t, flagsDir)
	b, _ := captureFiles(t, confDir)
	if len(a) != 3 || len(b) != len(a) {
		t.Fatalf("flags made %v, the config file %v", a, b)
	}
	for i := range a {
		x, _ := os.ReadFile(filepath.Join(flagsDir, a[i]))
		y, _ := os.ReadFile(filepath.Join(confDir, b[i]))
		if !bytes.Equal(x, y) {
			t.Errorf("%s and %s differ", a[i], b[i])
		}
	}
	// Flags given too win over the file.
	over := filepath.Join(dir, "over")
	mustRun(t, "capture", "--config", conf, "--dir", over, "--max-files", "1")
	if c, _ := captureFiles(t, over); len(c) != 1 {
		t.Errorf("--max-files 1 after --config: %v", c)
	}
}

// The web page of a running daemon, loaded in headless Chromium, lists
// its files.
func TestCapturePage(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed for the page test (apt-get install -y chromium): %v", err)
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "--profile", "acl", "--count", "300", "--seed", "28", raw)
	capDir := filepath.Join(dir, "captures")
	d := startCapture(t, "pagetok-0123456789", "--read", raw, "--linger", "--dir", capDir, "--rotate-size", "200K")
	d.waitWritten(300)
	l := d.list()
	if len(l) < 2 {
		t.Fatalf("list: %+v", l)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", d.base+"/?token=pagetok-0123456789")
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
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
