package source

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// fromHost rewrites an IPv4 packet built by ipv4 as sent by 10.0.1.host
// with IP ID id, its header checksum made anew.
func fromHost(pkt []byte, host byte, id uint16) []byte {
	pkt = append([]byte(nil), pkt...)
	binary.BigEndian.PutUint16(pkt[4:], id)
	copy(pkt[12:], []byte{10, 0, 1, host})
	binary.BigEndian.PutUint16(pkt[10:], 0)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(pkt[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(pkt[10:], ^uint16(sum))
	return pkt
}

// datagram is one mirror datagram as frames on the wire: one, or its IP
// fragments.
type datagram [][]byte

// groupTraffic is mirror traffic from hosts vRouters, each sending from
// several UDP source ports, one datagram in three fragmented.
func groupTraffic(hosts, perHost int) []datagram {
	var ds []datagram
	seq := 0
	for h := range hosts {
		for i := range perHost {
			seq++
			payload := udp(uint16(50000+i), mirror.DefaultPort, juniperPayload(innerFrame(seq)))
			id := uint16(seq)
			if i%3 != 0 {
				ds = append(ds, datagram{ether(nil, 0x0800, fromHost(ipv4(17, 0, nil, payload), byte(h+1), id))})
				continue
			}
			// Three fragments, at offsets 0, 48 and 96 bytes.
			var d datagram
			for off := 0; off < len(payload); off += 48 {
				end, mf := off+48, uint16(0x2000)
				if end >= len(payload) {
					end, mf = len(payload), 0
				}
				d = append(d, ether(nil, 0x0800, fromHost(ipv4(17, mf|uint16(off/8), nil, payload[off:end]), byte(h+1), id)))
			}
			ds = append(ds, d)
		}
	}
	return ds
}

// readAll reads the sources until want packets came or the wait runs out;
// it returns which source read each packet, by its bytes.
func readAll(t *testing.T, srcs []Source, want int) map[string][]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string][]int{}
	n := 0
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p mirror.Packet
			for s.Next(&p) == nil {
				mu.Lock()
				got[string(p.Data)] = append(got[string(p.Data)], i)
				n++
				mu.Unlock()
			}
		}()
	}
	testenv.WaitFor(t, fmt.Sprintf("%d packets", want), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return n >= want
	})
	// Anything more (a copy) would come with the rest: give the rings a
	// few block timeouts to hand it over.
	time.Sleep(200 * time.Millisecond)
	closeAll(srcs)
	wg.Wait()
	return got
}

// Four sockets in one group share the traffic of many flows: every frame
// is read exactly once, the fragments of a datagram by the socket that
// reads the rest of it, and more than one socket works.
func TestAFPacketGroup(t *testing.T) {
	e := testenv.NewNetns(t)
	srcs, _, err := OpenAFPacketGroup(e.CaptureIf, Options{Promisc: true}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(srcs)
	ds := groupTraffic(8, 24)
	var frames [][]byte
	for _, d := range ds {
		frames = append(frames, d...)
	}
	e.Send(t, frames)
	got := readAll(t, srcs, len(frames))
	used := map[int]bool{}
	for i, d := range ds {
		var by []int
		for _, f := range d {
			by = append(by, got[string(f)]...)
		}
		if len(by) != len(d) {
			t.Fatalf("datagram %d: its %d frames were read %d times", i, len(d), len(by))
		}
		for _, s := range by {
			if s != by[0] {
				t.Fatalf("datagram %d: fragments read by sockets %v", i, by)
			}
		}
		used[by[0]] = true
	}
	if len(used) < 2 {
		t.Errorf("only sockets %v read packets", used)
	}
	var sum uint64
	for _, s := range srcs {
		st := s.Stats()
		sum += st.Received
		if st.Dropped != 0 {
			t.Errorf("socket drops: %+v", st)
		}
	}
	if sum != uint64(len(frames)) {
		t.Errorf("sockets received %d, %d sent", sum, len(frames))
	}
}

// Two groups of the kernel's choosing do not share traffic: each reads
// every frame, once. A group named by the caller is joined as named.
func TestAFPacketGroupsApart(t *testing.T) {
	e := testenv.NewNetns(t)
	a, ida, err := OpenAFPacketGroup(e.CaptureIf, Options{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(a)
	b, idb, err := OpenAFPacketGroup(e.CaptureIf, Options{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(b)
	if ida == idb {
		t.Fatalf("both groups got id %d", ida)
	}
	named, idn, err := OpenAFPacketGroup(e.CaptureIf, Options{Fanout: 4242}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(named)
	if idn != 4242 {
		t.Errorf("named group: id %d", idn)
	}
	var frames [][]byte
	for _, d := range groupTraffic(4, 6) {
		frames = append(frames, d...)
	}
	e.Send(t, frames)
	for name, srcs := range map[string][]Source{"first": a, "second": b, "named": named} {
		got := readAll(t, srcs, len(frames))
		for i, f := range frames {
			if n := len(got[string(f)]); n != 1 {
				t.Errorf("%s group: frame %d read %d times", name, i, n)
			}
		}
	}
}

// Four sockets bound with SO_REUSEPORT share the datagrams of many
// senders: each is read once, and more than one socket works.
func TestUDPGroup(t *testing.T) {
	srcs, err := ListenUDPGroup("127.0.0.1:0", Options{}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(srcs)
	addr := srcs[0].(*udpSource).conn.LocalAddr().(*net.UDPAddr)
	for _, s := range srcs[1:] {
		if a := s.(*udpSource).conn.LocalAddr().String(); a != addr.String() {
			t.Fatalf("sockets on %s and %s", addr, a)
		}
	}
	const senders, each = 16, 20
	var sent [][]byte
	for i := range senders {
		c, err := net.DialUDP("udp", nil, addr)
		if err != nil {
			t.Fatal(err)
		}
		for j := range each {
			d := juniperPayload(innerFrame(i*each + j))
			sent = append(sent, d)
			if _, err := c.Write(d); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	got := readAll(t, srcs, len(sent))
	used := map[int]bool{}
	for i, d := range sent {
		by := got[string(d)]
		if len(by) != 1 {
			t.Fatalf("datagram %d read %d times", i, len(by))
		}
		used[by[0]] = true
	}
	if len(used) < 2 {
		t.Errorf("only sockets %v read datagrams", used)
	}
}
