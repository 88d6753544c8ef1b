package source

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// collect reads packets in the background, copying them, until Close.
func collect(src Source) (<-chan []byte, <-chan error) {
	pkts, done := make(chan []byte, 10000), make(chan error, 1)
	go func() {
		var p mirror.Packet
		for {
			if err := src.Next(&p); err != nil {
				done <- err
				return
			}
			if p.LinkType != layers.LinkTypeEthernet || p.WireLen != len(p.Data) || p.Timestamp.IsZero() {
				done <- errors.New("bad source fields")
				return
			}
			pkts <- append([]byte(nil), p.Data...)
		}
	}()
	return pkts, done
}

func TestAFPacketKeepsOnlyMirrorTraffic(t *testing.T) {
	e := testenv.NewNetns(t)
	src, err := OpenAFPacket(e.CaptureIf, Options{Traffic: mirror.Traffic{MirrorVLAN: 100}, Promisc: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	var frames, want [][]byte
	for _, c := range filterCases() {
		if len(c.frame) < 14 {
			continue // too short to send
		}
		frames = append(frames, c.frame)
		if c.keep {
			want = append(want, c.frame)
		}
	}
	e.Send(t, frames)
	pkts, done := collect(src)
	for i, w := range want {
		select {
		case got := <-pkts:
			if !bytes.Equal(got, w) {
				t.Fatalf("packet %d:\n got % x\nwant % x", i, got, w)
			}
		case err := <-done:
			t.Fatalf("Next: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatalf("packet %d never arrived", i)
		}
	}
	// Noise would have arrived with the frames sent around it; give the
	// ring a few block timeouts to hand over anything left.
	select {
	case got := <-pkts:
		t.Fatalf("unexpected packet % x", got)
	case <-time.After(200 * time.Millisecond):
	}
	st := src.Stats()
	if st.Received != uint64(len(want)) || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want Received %d, Dropped 0", st, len(want))
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	if st := src.Stats(); st.Received != uint64(len(want)) {
		t.Errorf("Stats after Close = %+v", st)
	}
}

func TestAFPacketCountsKernelDrops(t *testing.T) {
	e := testenv.NewNetns(t)
	// Two small blocks fill up long before all frames are read.
	src, err := OpenAFPacket(e.CaptureIf, Options{RingBlockSize: 1 << 16, RingBlocks: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const n = 3000
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = ether(nil, 0x0800, ipv4(17, 0, nil, udp(49152, 8099, juniperPayload(innerFrame(i)))))
	}
	e.Send(t, frames)
	pkts, done := collect(src)
	var got uint64
	for {
		select {
		case <-pkts:
			got++
			continue
		case err := <-done:
			t.Fatalf("Next: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		break
	}
	st := src.Stats()
	if st.Dropped == 0 || st.Received != got || st.Received+st.Dropped != n {
		t.Errorf("Stats = %+v after reading %d of %d frames: want Received+Dropped = %d, Dropped > 0", st, got, n, n)
	}
	if st2 := src.Stats(); st2.Dropped != st.Dropped {
		t.Errorf("Dropped changed from %d to %d with no traffic: counters not accumulated", st.Dropped, st2.Dropped)
	}
}

func TestAFPacketCloseWakesNext(t *testing.T) {
	e := testenv.NewNetns(t)
	src, err := OpenAFPacket(e.CaptureIf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	testCloseWakesNext(t, src)
}

func TestUDPCloseWakesNext(t *testing.T) {
	src, err := ListenUDP("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	testCloseWakesNext(t, src)
}

func testCloseWakesNext(t *testing.T, src Source) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		var p mirror.Packet
		done <- src.Next(&p)
	}()
	time.Sleep(50 * time.Millisecond) // let Next block
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still blocked after Close")
	}
	var p mirror.Packet
	if err := src.Next(&p); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close returned %v", err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenAFPacketErrors(t *testing.T) {
	if _, err := OpenAFPacket("vrsniff-none0", Options{}); err == nil {
		t.Error("opened a missing interface")
	}
	if _, err := OpenAFPacket("lo", Options{RingBlockSize: 5000}); err == nil {
		t.Error("accepted a block size that is not a multiple of the page size")
	}
}

func TestUDPSource(t *testing.T) {
	src, err := ListenUDP("127.0.0.1:0", Options{Batch: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	conn, err := net.DialUDP("udp", nil, src.(*udpSource).conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var sent [][]byte
	for i := range 50 {
		sent = append(sent, juniperPayload(innerFrame(i)))
	}
	sent = append(sent, []byte{0xff, 0}, juniperPayload(make([]byte, 60000)))
	before := time.Now()
	for _, d := range sent {
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	var p mirror.Packet
	for i, want := range sent {
		if err := src.Next(&p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p.Data, want) || p.WireLen != len(want) || p.LinkType != mirror.LinkTypeJuniperVN {
			t.Fatalf("datagram %d: got %d bytes (wire %d, link type %d), want %d bytes", i, len(p.Data), p.WireLen, p.LinkType, len(want))
		}
		if p.Timestamp.Before(before.Add(-time.Second)) || p.Timestamp.After(time.Now()) {
			t.Fatalf("datagram %d: timestamp %v not near %v", i, p.Timestamp, before)
		}
	}
	if st := src.Stats(); st.Received != uint64(len(sent)) || st.Dropped != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

// udpBurst listens with a tiny receive buffer, keeping 100 bytes of each
// datagram, and sends n datagrams of d to it before anything is read: the
// buffer overflows.
func udpBurst(t *testing.T, n int, d []byte) (Source, *net.UDPConn) {
	t.Helper()
	src, err := ListenUDP("[::1]:0", Options{SnapLen: 100, ReadBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	conn, err := net.DialUDP("udp", nil, src.(*udpSource).conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for range n {
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	return src, conn
}

func TestUDPSnapLenAndDrops(t *testing.T) {
	const n = 200
	d := juniperPayload(make([]byte, 500))
	src, conn := udpBurst(t, n, d)
	// The kernel reports the drop count on datagrams queued after a drop:
	// once the queue has room again, a marker datagram carries it.
	var p mirror.Packet
	if err := src.Next(&p); err != nil {
		t.Fatal(err)
	}
	marker := juniperPayload(make([]byte, 500))
	marker[len(marker)-500] = 1
	if _, err := conn.Write(marker); err != nil {
		t.Fatal(err)
	}
	for !bytes.Equal(p.Data, marker[:100]) {
		if len(p.Data) != 100 || p.WireLen != len(d) || !bytes.Equal(p.Data, d[:100]) {
			t.Fatalf("got %d bytes, wire %d; want 100 of %d", len(p.Data), p.WireLen, len(d))
		}
		if err := src.Next(&p); err != nil {
			t.Fatal(err)
		}
	}
	if st := src.Stats(); st.Dropped == 0 || st.Received+st.Dropped != n+1 {
		t.Errorf("Stats = %+v, want Dropped > 0 and Received+Dropped = %d", st, n+1)
	}
}

// Drops at the end of a burst are counted without a later datagram to
// carry SO_RXQ_OVFL.
func TestUDPDropsAtEndOfBurst(t *testing.T) {
	const n = 200
	src, _ := udpBurst(t, n, juniperPayload(make([]byte, 500)))
	// Read what was queued: the source then has nothing more to read, and
	// only the socket's own drop count can account for the rest. Should
	// it not, Next would wait forever: a guard closes the source.
	guard := time.AfterFunc(10*time.Second, func() { src.Close() })
	defer guard.Stop()
	var p mirror.Packet
	got := 0
	for src.Stats().Received+src.Stats().Dropped < n {
		if err := src.Next(&p); err != nil {
			t.Fatalf("%v with %+v: drops at the end of the burst not counted", err, src.Stats())
		}
		got++
		if got > n {
			t.Fatalf("read %d of %d datagrams", got, n)
		}
	}
	if st := src.Stats(); st.Dropped == 0 || st.Received+st.Dropped != n {
		t.Errorf("Stats = %+v, want Dropped > 0 and Received+Dropped = %d", st, n)
	}
}
