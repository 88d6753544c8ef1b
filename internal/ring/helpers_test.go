package ring

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 3, 0, time.UTC)

// udpFrame is an Ethernet/IPv4/UDP frame whose UDP source port carries i,
// so that tshark output shows which packet is which.
func udpFrame(i, payload int) []byte {
	b := make([]byte, 14+20+8+payload)
	copy(b, []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00})
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+payload))
	ip[8], ip[9] = 64, 17
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	var sum uint32
	for j := 0; j < 20; j += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[j:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp, uint16(1000+i))
	binary.BigEndian.PutUint16(udp[2:], 5000)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+payload))
	for j := range payload {
		udp[8+j] = byte(i + j)
	}
	return b
}

var vns = []string{"default-domain:admin:vn-a", "default-domain:admin:vn-b", "default-domain:proj 2:web/db"}

// packet i of a test capture: VN pair i%pairs, one second apart.
func testPacket(i, pairs, payload int) *mirror.Packet {
	f := udpFrame(i, payload)
	k := i % pairs
	return &mirror.Packet{
		Timestamp: t0.Add(time.Duration(i) * time.Second),
		Mode:      mirror.ModeJuniper,
		Frame:     f,
		FrameLen:  len(f),
		Meta: mirror.Meta{
			SrcVN:     []byte(vns[k%len(vns)]),
			DstVN:     []byte(vns[(k+1)%len(vns)]),
			Direction: mirror.DirIngress,
			Host:      netip.AddrFrom4([4]byte{10, 1, 1, byte(k)}),
			FlagBits:  32,
			Flags:     mirror.FlagPass | mirror.FlagMirror,
		},
	}
}

// wantLine is what tshark prints for a packet: its UDP source port and comment.
func wantLine(p *mirror.Packet) string {
	return fmt.Sprintf("%d\t%s", binary.BigEndian.Uint16(p.Frame[34:]), mirror.AppendComment(nil, p))
}

// tsharkLines reads a capture file with tshark, failing on any complaint:
// one line per packet, UDP source port and comment.
func tsharkLines(t testing.TB, path string) []string {
	t.Helper()
	return testenv.Tshark{}.Lines(t, "-n", "-r", path, "-T", "fields", "-e", "udp.srcport", "-e", "frame.comment")
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// debugLogger logs everything into w as text.
func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newTestRing(t testing.TB, dir string, o Options) *Ring {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := New(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// dirFiles lists the names in dir, sorted.
func dirFiles(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// checkStore checks that List matches the closed files in dir and that
// every file is valid: capinfos counts the packets of each, and tshark reads
// all of them, concatenated by mergecap, for the packets' ports and comments.
// Wireshark's tools start slowly, so each runs once for the whole store.
func checkStore(t testing.TB, r *Ring, dir string) ([]Info, []string) {
	t.Helper()
	infos, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, in := range infos {
		if in.Open {
			t.Errorf("%s still open", in.Name)
			continue
		}
		path := filepath.Join(dir, in.Name)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != in.Size {
			t.Errorf("%s: List size %d, file %d", in.Name, in.Size, st.Size())
		}
		n := in.PairsOther
		for _, p := range in.Pairs {
			n += p.Packets
		}
		if n != in.Packets && (len(in.Pairs) > 0 || in.PairsOther > 0) {
			t.Errorf("%s: pairs count %d packets, file %d", in.Name, n, in.Packets)
		}
		paths = append(paths, path)
	}
	if len(paths) == 0 {
		return infos, nil
	}
	out := run(t, "capinfos", append([]string{"-T", "-r", "-c", "-M"}, paths...)...)
	for i, line := range splitLines(out) {
		name, count, _ := strings.Cut(line, "\t")
		if i >= len(infos) || name != paths[i] || count != fmt.Sprint(infos[i].Packets) {
			t.Errorf("capinfos: %q, List: %+v", line, infos[min(i, len(infos)-1)])
		}
	}
	merged := filepath.Join(t.TempDir(), "all.pcapng")
	run(t, "mergecap", append([]string{"-a", "-F", "pcapng", "-w", merged}, paths...)...)
	return infos, tsharkLines(t, merged)
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// openFDs counts the file descriptors of this process.
func openFDs(t testing.TB) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// heapInUse is the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
