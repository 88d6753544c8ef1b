package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

const (
	vnA = "default-domain:admin:vn-a"
	vnB = "default-domain:admin:vn-b"
	vnC = "default-domain:other:vn-c"
)

// streamPackets is a mix of VN pairs, directions and protocols.
func streamPackets(t *testing.T) []*mirror.Packet {
	var ps []*mirror.Packet
	for i := range 12 {
		src, dst := vnA, vnB
		if i%3 == 1 {
			src, dst = vnC, vnA
		} else if i%3 == 2 {
			src, dst = vnC, vnC
		}
		dir := mirror.DirIngress
		if i%2 == 1 {
			dir = mirror.DirEgress
		}
		fr := frame(t, i%4 < 2, uint16(1000+i), 60+i*37)
		ps = append(ps, decodedPacket(fr, src, dst, dir, t0.Add(time.Duration(i)*time.Millisecond)))
	}
	return ps
}

// tsharkClient reads the stream at url through tshark; its lines are one
// per packet: frame length, tab, comment.
func tsharkClient(t *testing.T, url string) *testenv.TsharkRun {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, resp.StatusCode, 200, url)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-pcapng" {
		t.Errorf("stream content type %q", ct)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return testenv.Tshark{Stdin: resp.Body}.Start(t, "-r", "-", "-T", "fields", "-e", "frame.len", "-e", "frame.comment")
}

func TestStream(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	ps := streamPackets(t)
	cases := []struct {
		query string
		keep  func(p *mirror.Packet) bool
	}{
		{"", func(*mirror.Packet) bool { return true }},
		{"?vn=*:vn-b", func(p *mirror.Packet) bool { return string(p.Meta.DstVN) == vnB }},
		{"?src_vn=default-domain:other:*&direction=egress", func(p *mirror.Packet) bool {
			return string(p.Meta.SrcVN) == vnC && p.Meta.Direction == mirror.DirEgress
		}},
		{"?bpf=udp", func(p *mirror.Packet) bool { return p.Frame[23] == 17 }},
		{"?bpf=tcp+and+dst+port+80&vn=" + vnC, func(p *mirror.Packet) bool {
			return p.Frame[23] == 6 && (string(p.Meta.SrcVN) == vnC || string(p.Meta.DstVN) == vnC)
		}},
	}
	outs := make([]*testenv.TsharkRun, len(cases))
	for i, c := range cases {
		outs[i] = tsharkClient(t, ts.URL+"/api/stream"+c.query)
	}
	testenv.WaitFor(t, "stream clients", func() bool { return s.Hub().Clients() == len(cases) })
	for _, p := range ps {
		if err := s.Hub().WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	s.Hub().Close()
	for i, c := range cases {
		var want []string
		for _, p := range ps {
			if c.keep(p) {
				want = append(want, fmt.Sprintf("%d\t%s", len(p.Frame), comment(p)))
			}
		}
		if len(want) == 0 || len(want) == len(ps) && c.query != "" {
			t.Fatalf("%q: test selects %d of %d packets", c.query, len(want), len(ps))
		}
		got := outs[i].Lines(t)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("stream%s:\ngot  %q\nwant %q", c.query, got, want)
		}
	}
	testenv.WaitFor(t, "clients to leave", func() bool { return s.Hub().Clients() == 0 })
}

func TestStreamBadFilter(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	for _, q := range []string{"bpf=not+a+filter+%28", "direction=sideways", "vn=%5B"} {
		resp, body := do(t, "GET", ts.URL+"/api/stream?"+q, nil)
		mustStatus(t, resp.StatusCode, 400, q)
		if !strings.HasPrefix(string(body), "bad filter: ") {
			t.Errorf("%s: body %q", q, body)
		}
	}
}

// countStream reads a pcapng stream to its end, checking each packet's
// length against wantLen.
func countStream(r io.Reader, wantLen func(i int) int) (int, error) {
	ng, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		return 0, fmt.Errorf("stream header: %w", err)
	}
	n := 0
	for {
		data, _, err := ng.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("packet %d: %w", n, err)
		}
		if len(data) != wantLen(n) {
			return n, fmt.Errorf("packet %d: %d bytes, want %d", n, len(data), wantLen(n))
		}
		n++
	}
}

// client returns the i-th connected stream client.
func (h *Hub) client(i int) *streamClient {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clients[i]
}

// A client that never reads loses packets of its own stream, counted; one
// that keeps up beside it loses none, and the writer never waits for either.
func TestStreamSlowClient(t *testing.T) {
	const total = 200_000
	s, ts := newTestServer(t, Options{StreamBuffer: MinStreamBuffer})
	h := s.Hub()
	frames := [][]byte{frame(t, true, 1, 300), frame(t, false, 2, 260)}
	fast := make(chan error, 1)
	var fastN int
	resp, err := http.Get(ts.URL + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer resp.Body.Close()
		n, err := countStream(resp.Body, func(i int) int { return len(frames[i%2]) })
		fastN = n
		fast <- err
	}()
	testenv.WaitFor(t, "fast client", func() bool { return h.Clients() == 1 })
	fastClient := h.client(0)

	// The slow client never reads its body.
	slowResp, err := http.Get(ts.URL + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer slowResp.Body.Close()
	testenv.WaitFor(t, "slow client", func() bool { return h.Clients() == 2 })
	slowClient := h.client(1)

	ps := []*mirror.Packet{
		decodedPacket(frames[0], vnA, vnB, mirror.DirIngress, t0),
		decodedPacket(frames[1], vnB, vnA, mirror.DirEgress, t0),
	}
	for i := range total {
		if err := h.WritePacket(ps[i%2]); err != nil {
			t.Fatal(err)
		}
		// Let the fast client catch up now and then, so that only the slow
		// one falls behind; the writer itself never waits for a client.
		if i%1000 == 999 {
			testenv.WaitFor(t, "fast client to take its packets", func() bool {
				return fastClient.sent.Load()+fastClient.dropped.Load() == uint64(i+1)
			})
		}
	}
	streams := s.Hub().Streams()
	dropped := s.Hub().Dropped()
	h.Close()
	if err := <-fast; err != nil {
		t.Fatalf("fast client: %v", err)
	}
	if fastN != total || fastClient.dropped.Load() != 0 {
		t.Errorf("fast client got %d packets, dropped %d; want %d, 0", fastN, fastClient.dropped.Load(), total)
	}
	if len(streams) != 2 || streams[0].Packets != total || streams[0].Dropped != 0 {
		t.Fatalf("streams: %+v", streams)
	}
	// What the slow client neither got nor lost is still held for it: at
	// most one reference per slot of its filter's list.
	sl := streams[1]
	held := uint64(len(slowClient.g.refs))
	if sl.Dropped == 0 || sl.Packets+sl.Dropped > total || sl.Packets+sl.Dropped+held < total {
		t.Errorf("slow client: sent %d, dropped %d of %d (at most %d held)", sl.Packets, sl.Dropped, total, held)
	}
	if dropped != sl.Dropped {
		t.Errorf("hub drops %d, slow client drops %d", dropped, sl.Dropped)
	}
	t.Logf("slow client: %d sent, %d dropped", sl.Packets, sl.Dropped)
}

func TestStreamShutdown(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, "", "") }()

	const clients = 3
	var wg sync.WaitGroup
	counts := make([]int, clients)
	errs := make([]error, clients)
	fr := frame(t, true, 7, 500)
	for i := range clients {
		resp, err := http.Get("http://" + ln.Addr().String() + "/api/stream")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			counts[i], errs[i] = countStream(resp.Body, func(int) int { return len(fr) })
		}()
	}
	testenv.WaitFor(t, "clients", func() bool { return s.Hub().Clients() == clients })
	p := decodedPacket(fr, vnA, vnB, mirror.DirIngress, t0)
	for range 500 {
		if err := s.Hub().WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	wg.Wait()
	for i := range clients {
		if errs[i] != nil || counts[i] != 500 {
			t.Errorf("client %d: %d packets, %v; want 500 and a clean end", i, counts[i], errs[i])
		}
	}
	// Packets after shutdown go nowhere and do not block.
	if err := s.Hub().WritePacket(p); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

func TestStreamClientLeaves(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	resp, err := http.Get(ts.URL + "/api/stream?vn=*")
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "client", func() bool { return s.Hub().Clients() == 1 })
	resp.Body.Close()
	testenv.WaitFor(t, "client to be removed", func() bool { return s.Hub().Clients() == 0 })
	if err := s.Hub().WritePacket(decodedPacket(frame(t, true, 1, 80), vnA, vnB, mirror.DirIngress, t0)); err != nil {
		t.Fatal(err)
	}
	if s.Hub().Sent() != 0 || s.Hub().Dropped() != 0 {
		t.Errorf("packet went to a departed client: sent %d, dropped %d", s.Hub().Sent(), s.Hub().Dropped())
	}
}
