package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// countingEncoder counts the packets it encodes.
type countingEncoder struct {
	encoder
	n *atomic.Int64
}

func (e countingEncoder) Append(dst []byte, p *mirror.Packet) ([]byte, error) {
	e.n.Add(1)
	return e.encoder.Append(dst, p)
}

// reference is the pcapng stream of ps as one writer writes it.
func reference(t *testing.T, ps []*mirror.Packet) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := pcapfile.NewWriter(&buf, streamOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := enc.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// 200 reading clients: each packet is encoded once, whatever the number of
// clients, and every client receives the same bytes as a lone encoder
// writes (before, each packet was encoded once per client on the capture
// goroutine: 34 % kernel drops with 200 clients at 20k packets/s).
func TestStreamEncodedOnce(t *testing.T) {
	const clients, packets = 200, 2000
	var encoded atomic.Int64
	s, err := newServer(Options{StreamClients: clients}, func() (encoder, error) {
		e, err := newPcapNG()
		return countingEncoder{e, &encoded}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s, "127.0.0.1")
	var ps []*mirror.Packet
	for i := range packets {
		fr := frame(t, i%3 != 0, uint16(i), 80+i%400)
		ps = append(ps, decodedPacket(fr, vnA, vnB, mirror.Direction(1+i%2), t0.Add(time.Duration(i)*time.Microsecond)))
	}
	want := reference(t, ps)

	got := make([][]byte, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		resp, err := http.Get("http://" + addr + "/api/stream")
		if err != nil {
			t.Fatal(err)
		}
		mustStatus(t, resp.StatusCode, 200, "stream")
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			got[i], errs[i] = io.ReadAll(resp.Body)
		}()
	}
	testenv.WaitFor(t, "clients", func() bool { return s.Hub().Clients() == clients })
	for _, p := range ps {
		if err := s.Hub().WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if n := encoded.Load(); n != packets {
		t.Errorf("%d packets encoded for %d clients, want %d: once each", n, clients, packets)
	}
	s.Hub().Close()
	wg.Wait()
	for i := range clients {
		if errs[i] != nil || !bytes.Equal(got[i], want) {
			t.Fatalf("client %d: %d bytes (%v), want the %d of a lone encoder", i, len(got[i]), errs[i], len(want))
		}
	}
	if d, n := s.Hub().Dropped(), s.Hub().Sent(); d != 0 || n != clients*packets {
		t.Errorf("dropped %d, sent %d; want 0, %d", d, n, clients*packets)
	}
}

// The capture side allocates nothing per packet, with 200 clients on one
// filter and 20 on filters of their own, none of them reading.
func TestHubCaptureSideAllocs(t *testing.T) {
	h, err := newHub(MinStreamBuffer, 220, newPcapNG)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	attachN(t, h, 200, false)
	attachN(t, h, 20, true)
	ps := []*mirror.Packet{
		decodedPacket(frame(t, true, 1, 500), vnA, vnB, mirror.DirIngress, t0),
		decodedPacket(frame(t, false, 2, 90), vnC, vnC, mirror.DirEgress, t0),
	}
	for i := range 4 * MinStreamBuffer / 300 { // every chunk used once
		_ = h.WritePacket(ps[i%2])
	}
	i := 0
	if a := testing.AllocsPerRun(10000, func() {
		_ = h.WritePacket(ps[i%2])
		i++
	}); a != 0 {
		t.Errorf("%v allocations per packet on the capture side", a)
	}
}

// 100 clients that never read cost their own bounded buffers and the shared
// backlog, not a buffer per client that fills with the traffic (before,
// 500 such clients took 4 GB), and each counts the packets it lost.
func TestStreamNonReadingClients(t *testing.T) {
	const clients, buffer = 100, 2 << 20
	s, err := New(Options{StreamClients: clients, StreamBuffer: buffer})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s, "127.0.0.1")
	var conns []net.Conn
	for range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Keep what the kernel holds for them small as well.
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
		conns = append(conns, c)
	}
	h := s.Hub()
	testenv.WaitFor(t, "clients", func() bool { return h.Clients() == clients })
	p := decodedPacket(frame(t, true, 9, 600), vnA, vnB, mirror.DirIngress, t0)
	const packets = 16 * buffer / 600 // the backlog over eight times
	var live uint64
	peak := peakRSS(t, func() {
		for range packets {
			if err := h.WritePacket(p); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		live = ms.HeapAlloc
	})
	t.Logf("%d non-reading clients, %d packets: peak RSS +%.1f MiB, live heap %.1f MiB",
		clients, packets, float64(peak)/(1<<20), float64(live)/(1<<20))
	if peak > 48<<20 || live > 48<<20 {
		t.Errorf("peak RSS +%.1f MiB, live heap %.1f MiB; want both under 48 MiB", float64(peak)/(1<<20), float64(live)/(1<<20))
	}
	var total uint64
	for i, st := range h.Streams() {
		if st.Dropped == 0 || st.Packets+st.Dropped > packets {
			t.Errorf("client %d: sent %d, dropped %d of %d", i, st.Packets, st.Dropped, packets)
		}
		total += st.Dropped
	}
	if d := h.Dropped(); d != total || d == 0 {
		t.Errorf("hub drops %d, clients' %d", d, total)
	}
	fams := scrape(t, "http://"+addr+"/metrics")
	if got := value(t, fams, "vrsniff_stream_drops_total"); got < float64(total) {
		t.Errorf("vrsniff_stream_drops_total %v, clients lost %d", got, total)
	}
	for _, c := range conns {
		c.Close()
	}
	testenv.WaitFor(t, "clients to leave", func() bool { return h.Clients() == 0 })
}

// Past StreamClients, a stream request gets 503 and is counted; a place
// freed is taken again.
func TestStreamClientCap(t *testing.T) {
	s, ts := newTestServer(t, Options{StreamClients: 2})
	var bodies []io.Closer
	for range 2 {
		resp, err := http.Get(ts.URL + "/api/stream?vn=*")
		if err != nil {
			t.Fatal(err)
		}
		mustStatus(t, resp.StatusCode, 200, "stream")
		bodies = append(bodies, resp.Body)
	}
	resp, body := do(t, "GET", ts.URL+"/api/stream", nil)
	mustStatus(t, resp.StatusCode, http.StatusServiceUnavailable, "third stream")
	if !strings.Contains(string(body), "too many stream clients (at most 2)") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("503: %q, Retry-After %q", body, resp.Header.Get("Retry-After"))
	}
	if got := value(t, scrape(t, ts.URL+"/metrics"), "vrsniff_stream_rejected_total"); got != 1 {
		t.Errorf("vrsniff_stream_rejected_total %v", got)
	}
	bodies[0].Close()
	testenv.WaitFor(t, "a client to leave", func() bool { return s.Hub().Clients() == 1 })
	resp, err := http.Get(ts.URL + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	mustStatus(t, resp.StatusCode, 200, "stream after one left")
	bodies[1].Close()
}

// Clients with the same filter share it: one filter decision per packet.
func TestStreamFilterShared(t *testing.T) {
	h, err := newHub(MinStreamBuffer, 10, newPcapNG)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, o := range []filter.Options{{}, {}, {VN: "*:vn-a"}, {VN: "*:vn-a"}, {VN: "*:vn-b"}, {BPF: "udp"}} {
		f, err := filter.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.attach(f, "t"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(*h.groups.Load()); n != 4 {
		t.Errorf("%d filters for 6 clients with 4 distinct ones", n)
	}
}

// rawPacket is a packet passed through undecoded, with its own link type.
func rawPacket(link layers.LinkType, data []byte) *mirror.Packet {
	return &mirror.Packet{Timestamp: t0, LinkType: link, Data: data, WireLen: len(data), Mode: mirror.ModeOther}
}

// Packets of a new link type describe a new interface to every client, in
// front of the first packet that needs it, also to a client that joined
// later or skipped the packet where it first appeared.
func TestStreamNewInterface(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	h := s.Hub()
	open := func() <-chan []byte {
		resp, err := http.Get(ts.URL + "/api/stream")
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan []byte, 1)
		go func() {
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out <- b
		}()
		return out
	}
	eth := decodedPacket(frame(t, true, 1, 100), vnA, vnB, mirror.DirIngress, t0)
	sll := rawPacket(layers.LinkTypeLinuxSLL, bytes.Repeat([]byte{1}, 40))
	rawIP := rawPacket(layers.LinkTypeRaw, bytes.Repeat([]byte{0x45}, 60))
	first := open()
	testenv.WaitFor(t, "first client", func() bool { return h.Clients() == 1 })
	for _, p := range []*mirror.Packet{eth, sll, eth} {
		if err := h.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	second := open()
	testenv.WaitFor(t, "second client", func() bool { return h.Clients() == 2 })
	for _, p := range []*mirror.Packet{rawIP, eth} {
		if err := h.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	if got, want := <-first, reference(t, []*mirror.Packet{eth, sll, eth, rawIP, eth}); !bytes.Equal(got, want) {
		t.Errorf("first client: %d bytes, want the %d of a lone encoder", len(got), len(want))
	}
	ng, err := pcapgo.NewNgReader(bytes.NewReader(<-second), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	var links []layers.LinkType
	for {
		_, ci, err := ng.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		in, err := ng.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatal(err)
		}
		links = append(links, in.LinkType)
	}
	if fmt.Sprint(links) != fmt.Sprint([]layers.LinkType{layers.LinkTypeRaw, layers.LinkTypeEthernet}) {
		t.Errorf("second client's packets have link types %v", links)
	}
}

// Clients come, read at their own pace, stall and go while packets flow
// through a small backlog that is reused all the time: every stream is a
// valid pcapng whose packets are whole and unaltered, and a stalled client
// counts what it lost.
func TestStreamChurn(t *testing.T) {
	s, ts := newTestServer(t, Options{StreamBuffer: MinStreamBuffer, StreamClients: 64})
	h := s.Hub()
	var ps []*mirror.Packet
	frames := map[string]bool{}
	for i := range 64 {
		fr := frame(t, i%2 == 0, uint16(i), 60+i*97%1400)
		frames[string(fr)] = true
		ps = append(ps, decodedPacket(fr, vnA, vnB, mirror.DirIngress, t0))
	}
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = h.WritePacket(ps[i%len(ps)])
		}
	}()
	var wg sync.WaitGroup
	var lost atomic.Uint64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 6 {
				resp, err := http.Get(ts.URL + "/api/stream")
				if err != nil {
					t.Error(err)
					return
				}
				ng, err := pcapgo.NewNgReader(resp.Body, pcapgo.DefaultNgReaderOptions)
				if err != nil {
					t.Error(err)
					resp.Body.Close()
					return
				}
				for n := range 3000 {
					data, _, err := ng.ReadPacketData()
					if err != nil {
						t.Errorf("client %d round %d packet %d: %v", g, round, n, err)
						break
					}
					if !frames[string(data)] {
						t.Errorf("client %d round %d packet %d: %d bytes that were never sent", g, round, n, len(data))
						break
					}
					if (g+round)%3 == 0 && n == 100 {
						// Stall until the backlog has moved past this client.
						before := h.Dropped()
						testenv.WaitFor(t, "the stalled client to lose packets", func() bool { return h.Dropped() > before })
						lost.Add(1)
					}
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-writerDone
	if lost.Load() == 0 || h.Dropped() == 0 {
		t.Errorf("no client lost packets: %d stalls, %d dropped", lost.Load(), h.Dropped())
	}
	testenv.WaitFor(t, "clients to leave", func() bool { return h.Clients() == 0 })
}

// A stream client that stops reading can pin only the capped kernel send
// buffer: Linux would otherwise grow it to tcp_wmem's maximum (4 MiB).
func TestSendBufferCapped(t *testing.T) {
	const size = 64 << 10
	s, err := New(Options{SendBuffer: size})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s, "127.0.0.1")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
	testenv.WaitFor(t, "the client", func() bool { return s.Hub().Clients() == 1 })
	// The server's end of the connection: a socket of this process whose
	// local port is the server's.
	port := portOf(t, addr)
	inodes := map[string]bool{}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 10 || f[3] != "01" {
			continue
		}
		if _, hexPort, _ := strings.Cut(f[1], ":"); hexPort == fmt.Sprintf("%04X", port) {
			inodes[f[9]] = true
		}
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		in, ok := strings.CutPrefix(l, "socket:[")
		if err != nil || !ok || !inodes[strings.TrimSuffix(in, "]")] {
			continue
		}
		fd, _ := strconv.Atoi(e.Name())
		got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
		if err != nil {
			t.Fatal(err)
		}
		// The kernel doubles what was set, for its bookkeeping.
		if got != 2*size {
			t.Errorf("server socket send buffer %d bytes, want %d", got, 2*size)
		}
		found++
	}
	if found != 1 {
		t.Fatalf("%d server sockets found", found)
	}
}

// Packets whose metadata comments are longer than the encoder's size hint
// (VN names of a few kilobytes) across several chunks of the backlog reach
// a client as a lone writer writes them: a block that outgrew the room
// left in a chunk goes whole into the next.
func TestStreamLongComments(t *testing.T) {
	s, ts := newTestServer(t, Options{StreamBuffer: 16 * chunkSize})
	h := s.Hub()
	resp, err := http.Get(ts.URL + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- b
	}()
	testenv.WaitFor(t, "client", func() bool { return h.Clients() == 1 })
	var ps []*mirror.Packet
	for i := range 1200 { // about 6 MB: a dozen chunks
		long := "default-domain:admin:" + strings.Repeat(string(rune('a'+i%26)), 1000+i%3000)
		ps = append(ps, decodedPacket(frame(t, true, uint16(i), 60+i%1400), long, vnB, mirror.DirEgress, t0.Add(time.Duration(i))))
	}
	for _, p := range ps {
		if err := h.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	if b, want := <-got, reference(t, ps); !bytes.Equal(b, want) {
		t.Fatalf("client got %d bytes, want the %d a lone writer writes", len(b), len(want))
	}
	if d := h.Dropped(); d != 0 {
		t.Errorf("%d packets dropped", d)
	}
}

// A capture's workers write to the hub at once: every packet reaches each
// client once, whole, and is encoded once. Run with -race.
func TestHubWriters(t *testing.T) {
	const clients, writers, each = 3, 4, 1500
	var encoded atomic.Int64
	s, err := newServer(Options{StreamClients: clients}, func() (encoder, error) {
		e, err := newPcapNG()
		return countingEncoder{e, &encoded}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s, "127.0.0.1")
	got := make([]map[string]int, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		resp, err := http.Get("http://" + addr + "/api/stream")
		if err != nil {
			t.Fatal(err)
		}
		mustStatus(t, resp.StatusCode, 200, "stream")
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			got[i] = map[string]int{}
			ng, err := pcapgo.NewNgReader(resp.Body, pcapgo.DefaultNgReaderOptions)
			if err != nil {
				errs[i] = err
				return
			}
			for {
				data, _, err := ng.ReadPacketData()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						errs[i] = err
					}
					return
				}
				got[i][string(data)]++
			}
		}()
	}
	testenv.WaitFor(t, "clients", func() bool { return s.Hub().Clients() == clients })
	var frames [][]byte
	var ww sync.WaitGroup
	for w := range writers {
		var ps []*mirror.Packet
		for i := range each {
			fr := frame(t, true, uint16(w*each+i), 80+i%400)
			frames = append(frames, fr)
			ps = append(ps, decodedPacket(fr, vnA, vnB, mirror.Direction(1+i%2), t0.Add(time.Duration(i)*time.Microsecond)))
		}
		ww.Add(1)
		go func() {
			defer ww.Done()
			for j, p := range ps {
				if err := s.Hub().WritePacket(p); err != nil {
					t.Error(err)
				}
				if j%100 == 99 {
					// Let the clients keep up: this is not about loss.
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	ww.Wait()
	s.Hub().Close()
	wg.Wait()
	if n := encoded.Load(); n != writers*each {
		t.Errorf("%d packets encoded, want %d", n, writers*each)
	}
	for i := range clients {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		for _, fr := range frames {
			if got[i][string(fr)] != 1 {
				t.Fatalf("client %d: a frame received %d times", i, got[i][string(fr)])
			}
		}
	}
	if d := s.Hub().Dropped(); d != 0 {
		t.Errorf("dropped %d", d)
	}
}
