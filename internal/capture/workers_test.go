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
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/extract"
	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/server"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// workerCases are mirror cases of which about one in three is an IP
// fragmented datagram.
func workerCases(t *testing.T, seed uint64, n int) []*gen.Case {
	t.Helper()
	g, err := gen.New(gen.Options{Seed: seed, Mix: gen.Mix{gen.KindACL: 2, gen.KindFragmented: 1}, MTU: 1400,
		LinkType: layers.LinkTypeEthernet, MaxFrame: 4000})
	if err != nil {
		t.Fatal(err)
	}
	cs := make([]*gen.Case, n)
	for i := range cs {
		cs[i] = g.Next().Clone()
	}
	return cs
}

// spread makes the cases come from hosts vRouters, case i from host i%hosts
// and, when its UDP header can be found, from source port 40000+i%ports:
// many flows, which the kernel spreads over the workers. All the fragments
// of a datagram keep one source.
func spread(t *testing.T, cs []*gen.Case, hosts, ports int) {
	t.Helper()
	for i, c := range cs {
		host := byte(1 + i%hosts)
		for _, w := range c.Packets {
			pkt := gopacket.NewPacket(w.Data, layers.LayerTypeEthernet, gopacket.NoCopy)
			var l4 []byte // the outer UDP header, if this packet starts it
			switch ip := pkt.NetworkLayer().(type) {
			case *layers.IPv4:
				h := ip.Contents
				h[15] = host
				h[10], h[11] = 0, 0
				var sum uint32
				for k := 0; k < len(h); k += 2 {
					sum += uint32(h[k])<<8 | uint32(h[k+1])
				}
				for sum > 0xffff {
					sum = sum>>16 + sum&0xffff
				}
				h[10], h[11] = byte(^sum>>8), byte(^sum)
				if ip.Protocol == layers.IPProtocolUDP && ip.FragOffset == 0 {
					l4 = ip.Payload
				}
			case *layers.IPv6:
				ip.Contents[23] = host
				if ip.NextHeader == layers.IPProtocolUDP {
					l4 = ip.Payload
				}
			default:
				t.Fatalf("case %d: outer %T", i, ip)
			}
			if len(l4) >= 2 {
				l4[0], l4[1] = byte((40000+i%ports)>>8), byte(40000+i%ports)
			}
		}
	}
}

// kept reads every closed capture file of dir: per worker prefix, the
// frames with their metadata comments. It checks that each file is in
// time order.
func kept(t *testing.T, dir string) map[string][]string {
	t.Helper()
	closed, parts := capturetest.CaptureFiles(t, dir)
	if len(parts) != 0 {
		t.Fatalf("files left open: %v", parts)
	}
	out := map[string][]string{}
	for _, n := range closed {
		ps, err := pcapfile.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		prefix, _, _ := strings.Cut(n, "_")
		for i, p := range ps {
			if i > 0 && p.Timestamp.Before(ps[i-1].Timestamp) {
				t.Errorf("%s: packet %d is older than the one before", n, i)
			}
			comment := "" // a datagram without metadata has none
			if len(p.Comments) > 0 {
				comment = string(p.Comments[0])
			}
			out[prefix] = append(out[prefix], string(p.Data)+"\x00"+comment)
		}
	}
	return out
}

// checkKept checks that the files hold the inner frames of cs, each once,
// and that workers wrote them, each under its own name.
func checkKept(t *testing.T, dir string, cs []*gen.Case, workers int) {
	t.Helper()
	want := map[string]int{}
	for _, c := range cs {
		want[string(c.Frame)+"\x00"+capturetest.Comment(c)]++
	}
	byWorker := kept(t, dir)
	n := 0
	for prefix, recs := range byWorker {
		if !strings.HasPrefix(prefix, "vrsniff-w") || len(prefix) != len("vrsniff-w00") {
			t.Errorf("file prefix %q", prefix)
		}
		for _, r := range recs {
			if want[r] == 0 {
				t.Fatalf("%s: a frame that was not sent, or kept twice", prefix)
			}
			want[r]--
			n++
		}
	}
	if n != len(cs) {
		t.Errorf("files hold %d frames, %d sent", n, len(cs))
	}
	if len(byWorker) < 2 || len(byWorker) > workers {
		t.Errorf("%d workers wrote files, of %d", len(byWorker), workers)
	}
}

// checkCounters checks the service's counters, summed over its workers,
// against what was sent, and that several workers read packets.
func checkCounters(t *testing.T, svc *Service, cs []*gen.Case, frames int) {
	t.Helper()
	st := svc.Stats()
	sum := st.Pipeline
	if st.Workers != len(svc.ws) || sum.Read != uint64(frames) || st.Source.Received != uint64(frames) ||
		sum.Written != uint64(len(cs)) || st.Files.Packets != uint64(len(cs)) ||
		sum.Merged != uint64(frames-len(cs)) || sum.TotalMalformed() != 0 || st.Source.Dropped != 0 {
		t.Errorf("counters: %d workers, read %d, received %d, written %d, on disk %d, merged %d, malformed %d, dropped %d; "+
			"sent %d datagrams in %d frames", st.Workers, sum.Read, st.Source.Received, sum.Written, st.Files.Packets,
			sum.Merged, sum.TotalMalformed(), st.Source.Dropped, len(cs), frames)
	}
	busy := 0
	var read uint64
	for _, w := range svc.ws {
		n := w.stats.Read.Load()
		read += n
		if n > 0 {
			busy++
		}
	}
	if busy < 2 || read != sum.Read {
		t.Errorf("%d workers read packets, %d in all, summed to %d", busy, read, sum.Read)
	}
	var pairs, named uint64
	for _, p := range sum.Pairs {
		pairs += p.Packets
	}
	for _, c := range cs {
		if m := c.Meta(); m.SrcVN != nil || m.DstVN != nil {
			named++
		}
	}
	if pairs+sum.PairsOther != named {
		t.Errorf("VN pairs count %d packets, %d sent with VN names", pairs+sum.PairsOther, named)
	}
}

// Four workers on AF_PACKET: mirror traffic of many flows, fragmented
// datagrams from several vRouters among it, is decoded and kept exactly
// once, each datagram reassembled by the worker its fragments reached.
func TestWorkersInterface(t *testing.T) {
	env := testenv.NewNetns(t)
	dir := t.TempDir()
	c := config(dir)
	c.Interface, c.Workers, c.Files.MaxSize = env.CaptureIf, 4, 32<<10
	r := start(t, c)
	cs := workerCases(t, 51, 600)
	spread(t, cs, 8, 32)
	frames := capturetest.OuterFrames(cs)
	if len(frames) < len(cs)+100 {
		t.Fatalf("only %d fragmented datagrams", len(frames)-len(cs))
	}
	env.Send(t, frames)
	r.waitWritten(uint64(len(cs)))
	if l := r.list(); len(l) < 4 {
		t.Errorf("API lists %d files", len(l))
	}
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkKept(t, dir, cs, 4)
	checkCounters(t, r.svc, cs, len(frames))
}

// Four workers on one UDP port with SO_REUSEPORT: the datagrams of many
// senders are kept exactly once.
func TestWorkersUDP(t *testing.T) {
	dir := t.TempDir()
	c := config(dir)
	c.Listen, c.Workers, c.Files.MaxSize = testenv.FreeAddr(t, "udp"), 4, 32<<10
	r := start(t, c)
	cs := capturetest.Cases(t, "acl", 52, 600, 9000)
	sendFromMany(t, c.Listen, capturetest.UDPPayloads(t, cs), 16)
	r.waitWritten(uint64(len(cs)))
	// The API's counters are the workers' summed.
	_, body := r.request("GET", "/api/stats", nil)
	var rep server.StatsReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	_, metrics := r.request("GET", "/metrics", nil)
	read := fmt.Sprintf("vrsniff_packets_read_total %d\n", len(cs))
	received := fmt.Sprintf("vrsniff_source_packets_received_total %d\n", len(cs))
	if rep.Pipeline.Read != uint64(len(cs)) || rep.Source == nil || rep.Source.Received != uint64(len(cs)) ||
		!strings.Contains(string(metrics), read) || !strings.Contains(string(metrics), received) {
		t.Errorf("/api/stats: read %d, source %+v; /metrics has %q: %v, %q: %v; sent %d", rep.Pipeline.Read, rep.Source,
			read, strings.Contains(string(metrics), read), received, strings.Contains(string(metrics), received), len(cs))
	}
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkKept(t, dir, cs, 4)
	checkCounters(t, r.svc, cs, len(cs))
}

// sendFromMany sends the payloads to addr from senders sockets in turn:
// as many source ports, which the kernel spreads over the workers.
func sendFromMany(t *testing.T, addr string, payloads [][]byte, senders int) {
	t.Helper()
	var conns []net.Conn
	for range senders {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for i := 0; i < len(payloads); i += senders {
		var part [][]byte
		for j := i; j < min(i+senders, len(payloads)); j++ {
			part = append(part, payloads[j])
		}
		for j, p := range part {
			if _, err := conns[j].Write(p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The workers' files make one store: the API lists them all, serves and
// deletes each by name, merges them into one time-ordered answer, and so
// does extract over the directory; retention divides the limits among
// the workers.
func TestWorkersStore(t *testing.T) {
	const workers, maxFiles = 3, 6
	dir := t.TempDir()
	c := config(dir)
	c.Listen, c.Workers = testenv.FreeAddr(t, "udp"), workers
	c.Files.MaxSize, c.Files.MaxFiles = 8<<10, maxFiles
	r := start(t, c)
	cs := capturetest.Cases(t, "acl", 53, 600, 9000)
	sendFromMany(t, c.Listen, capturetest.UDPPayloads(t, cs), 16)
	r.waitWritten(uint64(len(cs)))

	// Listing: every file on disk, of every worker, oldest first.
	l := r.list()
	closed, parts := capturetest.CaptureFiles(t, dir)
	if len(l) != len(closed)+len(parts) {
		t.Errorf("API lists %d files, %d on disk", len(l), len(closed)+len(parts))
	}
	prefixes := map[string]bool{}
	for i, e := range l {
		p, _, _ := strings.Cut(e.Name, "_")
		prefixes[p] = true
		if i > 0 && e.First.Before(l[i-1].First) && !e.First.IsZero() {
			t.Errorf("listing: %s before %s, first packets %v, %v", l[i-1].Name, e.Name, l[i-1].First, e.First)
		}
	}
	if len(prefixes) < 2 {
		t.Errorf("files of workers %v listed", prefixes)
	}
	// Retention: each worker keeps maxFiles/workers closed files.
	perWorker := map[string]int{}
	for _, n := range closed {
		p, _, _ := strings.Cut(n, "_")
		perWorker[p]++
	}
	for p, n := range perWorker {
		if n > maxFiles/workers {
			t.Errorf("%s: %d closed files kept, want at most %d", p, n, maxFiles/workers)
		}
	}
	if st := r.svc.Stats(); st.Files.RemovedMaxFiles == 0 {
		t.Errorf("no file removed by retention: %+v", st.Files)
	}

	// Download and delete, routed to the file's worker.
	var victim string
	for _, e := range l {
		if !e.Open && !strings.HasPrefix(e.Name, "vrsniff-w00_") {
			victim = e.Name
		}
	}
	if victim == "" {
		t.Fatalf("no closed file of a worker but the first: %v", closed)
	}
	resp, body := r.request("GET", "/api/captures/"+victim, nil)
	if want, _ := os.ReadFile(filepath.Join(dir, victim)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Errorf("download %s: %s, %d bytes, want %d", victim, resp.Status, len(body), len(want))
	}
	if resp, _ := r.request("DELETE", "/api/captures/"+victim, nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete %s: %s", victim, resp.Status)
	}
	if _, err := os.Stat(filepath.Join(dir, victim)); !os.IsNotExist(err) {
		t.Errorf("%s after delete: %v", victim, err)
	}
	if resp, _ := r.request("GET", "/api/captures/vrsniff-w09_00001_20260101000000.pcapng", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a name of no worker: %s", resp.Status)
	}

	// The merged answer of the API, in time order, all that is stored.
	resp, body = r.request("GET", "/api/pcap?since=2000-01-01T00:00:00Z", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pcap: %s", resp.Status)
	}
	if n := inOrder(t, "/api/pcap", body); n == 0 {
		t.Error("/api/pcap: no packets")
	}
	// SIGHUP's rotation closes every worker's file.
	if err := r.svc.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, parts := capturetest.CaptureFiles(t, dir); len(parts) != 0 {
		t.Errorf("open after Rotate: %v", parts)
	}
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// extract over the directory: every packet of every closed file, in
	// time order.
	srcs, err := extract.Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := extract.Write(context.Background(), &out, srcs, extract.Options{}); err != nil {
		t.Fatal(err)
	}
	var want int
	for _, recs := range kept(t, dir) {
		want += len(recs)
	}
	if n := inOrder(t, "extract", out.Bytes()); n != want || want == 0 {
		t.Errorf("extract: %d packets, the files hold %d", n, want)
	}
}

// inOrder reads a pcapng stream and checks that its packets are in time
// order; it returns how many there are.
func inOrder(t *testing.T, what string, b []byte) int {
	t.Helper()
	rd, err := pcapfile.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var p, prev mirror.Packet
	n := 0
	for rd.Next(&p) == nil {
		if n > 0 && p.Timestamp.Before(prev.Timestamp) {
			t.Fatalf("%s: packet %d is older than the one before", what, n)
		}
		prev.Timestamp = p.Timestamp
		n++
	}
	return n
}

// By default a capture runs a worker per CPU, up to MaxWorkers; a
// replayed file one.
func TestWorkerCount(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want int
		err  bool
	}{
		{Config{Interface: "eth0"}, min(runtime.GOMAXPROCS(0), MaxWorkers), false},
		{Config{Listen: ":8099", Workers: 3}, 3, false},
		{Config{Read: "x.pcap", Workers: 4}, 1, false},
		{Config{Interface: "eth0", Workers: MaxWorkers + 1}, 0, true},
		{Config{Interface: "eth0", Workers: -1}, 0, true},
	} {
		n, err := workerCount(tc.c)
		if n != tc.want || (err != nil) != tc.err {
			t.Errorf("%+v: %d workers, error %v; want %d", tc.c, n, err, tc.want)
		}
	}
	if got := fmt.Sprint(filePrefix("vrsniff", 0, 1), " ", filePrefix("vrsniff", 3, 4)); got != "vrsniff vrsniff-w03" {
		t.Errorf("prefixes %s", got)
	}
	if got := fmt.Sprint(share(10, 4), share(int64(0), 4), share(2, 4)); got != "2 0 1" {
		t.Errorf("shares %s", got)
	}
}

// An interface deleted under four workers fails every socket: Run ends
// with the one error, and every file is closed.
func TestWorkersInterfaceGone(t *testing.T) {
	env := testenv.NewNetns(t)
	dir := t.TempDir()
	c := config(dir)
	c.Interface, c.Workers = env.CaptureIf, 4
	r := start(t, c)
	cs := capturetest.Cases(t, "acl", 54, 100, 1400)
	spread(t, cs, 8, 32)
	env.Send(t, capturetest.OuterFrames(cs))
	r.waitWritten(uint64(len(cs)))
	if out, err := exec.Command("ip", "link", "delete", env.CaptureIf).CombinedOutput(); err != nil {
		t.Fatalf("ip link delete: %v: %s", err, out)
	}
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not end when the interface was deleted")
	}
	want := "read " + env.CaptureIf + ": the interface is gone"
	if r.err == nil || !strings.HasPrefix(r.err.Error(), want) || strings.Contains(r.err.Error(), "\n") {
		t.Fatalf("Run: %q, want one %q", r.err, want)
	}
	if closed, parts := capturetest.CaptureFiles(t, dir); len(closed) < 2 || len(parts) != 0 {
		t.Errorf("files: closed %v, open %v", closed, parts)
	}
}

// A worker that reads nothing while its socket drops is stuck, though the
// others read: the watchdog ping is withheld.
func TestWorkersStuck(t *testing.T) {
	a, b := &countingSource{}, &countingSource{}
	ws := workers{{src: a, stats: &pipeline.Stats{}}, {src: b, stats: &pipeline.Stats{}}}
	st := make([]stall, 2)
	step := func(readA, dropA, readB, dropB uint64) bool {
		ws[0].stats.Read.Add(readA)
		a.st.Dropped += dropA
		ws[1].stats.Read.Add(readB)
		b.st.Dropped += dropB
		return ws.stuck(st)
	}
	for i, tc := range []struct {
		readA, dropA, readB, dropB uint64
		want                       bool
	}{
		{0, 0, 0, 0, false},   // the first sample
		{10, 5, 10, 0, false}, // both read
		{10, 0, 0, 0, false},  // b idle, nothing dropped for it
		{10, 0, 0, 3, true},   // b stuck while a reads
		{0, 0, 1, 0, false},   // b reads again
		{0, 2, 0, 0, true},    // a stuck
	} {
		if got := step(tc.readA, tc.dropA, tc.readB, tc.dropB); got != tc.want {
			t.Errorf("period %d: stuck %v, want %v", i, got, tc.want)
		}
	}
}
