package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// memSource replays packets from memory, over and over for benchmarks.
type memSource struct {
	pkts  []gen.Wire
	i     int
	buf   []byte
	loops bool
}

func (s *memSource) Next(p *mirror.Packet) error {
	if s.i == len(s.pkts) {
		if !s.loops {
			return io.EOF
		}
		s.i = 0
	}
	w := s.pkts[s.i]
	s.i++
	// The decoder may rewrite bytes in place (VLAN strip), so hand out a copy.
	s.buf = append(s.buf[:0], w.Data...)
	p.Timestamp, p.LinkType, p.Data, p.WireLen = w.Timestamp, w.LinkType, s.buf, w.WireLen
	return nil
}

func generated(t testing.TB, profile string, n int, malformed float64) ([]gen.Wire, []*gen.Case) {
	g, err := gen.New(gen.Options{Seed: 1, Mix: gen.Profiles[profile], LinkType: layers.LinkTypeEthernet, Malformed: malformed})
	if err != nil {
		t.Fatal(err)
	}
	var ws []gen.Wire
	var cs []*gen.Case
	for range n {
		c := g.Next().Clone()
		cs = append(cs, c)
		ws = append(ws, c.Packets...)
	}
	return ws, cs
}

type collect struct {
	frames  [][]byte
	vnBytes uint64 // original frame lengths of packets with a VN name
}

func (c *collect) WritePacket(p *mirror.Packet) error {
	c.frames = append(c.frames, bytes.Clone(p.Frame))
	if p.Meta.SrcVN != nil || p.Meta.DstVN != nil {
		c.vnBytes += uint64(max(p.FrameLen, len(p.Frame)))
	}
	return nil
}

func mustNew(t testing.TB, c Config) *Pipeline {
	t.Helper()
	pl, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

type failing struct{ err error }

func (f failing) WritePacket(*mirror.Packet) error { return f.err }

func TestRunCountsEverything(t *testing.T) {
	ws, cases := generated(t, "mixed", 2000, 0.2)
	var good, rejected collect
	st := &Stats{}
	pl := mustNew(t, Config{
		Source: &memSource{pkts: ws}, Decoder: mirror.Config{Traffic: mirror.Traffic{MirrorVLAN: 999}},
		Sinks: []Sink{&good}, Rejects: &rejected, Stats: st,
	})
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := st.Summary()
	var dec uint64
	for _, n := range s.Decoded {
		dec += n
	}
	if s.Read != uint64(len(ws)) || dec+s.TotalMalformed()+s.Merged+s.Duplicates != s.Read {
		t.Fatalf("read %d packets of %d; decoded %d + malformed %d + merged %d + duplicates %d", s.Read, len(ws), dec, s.TotalMalformed(), s.Merged, s.Duplicates)
	}
	if uint64(len(rejected.frames)) != s.TotalMalformed() || uint64(len(good.frames)) != dec {
		t.Fatalf("sinks got %d and %d packets", len(good.frames), len(rejected.frames))
	}
	var want [][]byte
	for _, c := range cases {
		if c.Reason == "" {
			want = append(want, c.Frame)
		}
	}
	if len(want) != len(good.frames) {
		t.Fatalf("%d frames decoded, %d expected", len(good.frames), len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], good.frames[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	var pairBytes uint64
	for _, p := range s.Pairs {
		pairBytes += p.Bytes
	}
	if pairBytes == 0 || pairBytes != good.vnBytes {
		t.Errorf("VN pairs count %d bytes, the sink got %d in packets with VN names", pairBytes, good.vnBytes)
	}
	if got, want := st.LastPacket.Load(), ws[len(ws)-1].Timestamp.UnixNano(); got != want {
		t.Errorf("last packet time %d, want %d", got, want)
	}
}

// Times the source had to clamp are counted.
func TestTimeClampedCounted(t *testing.T) {
	ws, _ := generated(t, "acl", 10, 0)
	src := &clamping{memSource: memSource{pkts: ws}}
	st := &Stats{}
	pl := mustNew(t, Config{Source: src, Stats: st})
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := uint64(len(ws)+2) / 3
	if s := st.Summary(); s.TimeClamped != want || s.Read != uint64(len(ws)) {
		t.Fatalf("%d clamped of %d read, want %d of %d", s.TimeClamped, s.Read, want, len(ws))
	}
}

// clamping marks every third packet's time as clamped.
type clamping struct {
	memSource
	n int
}

func (c *clamping) Next(p *mirror.Packet) error {
	err := c.memSource.Next(p)
	p.TimeClamped = c.n%3 == 0
	c.n++
	return err
}

func TestSinkErrors(t *testing.T) {
	ws, _ := generated(t, "acl", 50, 0)
	boom := errors.New("boom")
	st := &Stats{}
	pl := mustNew(t, Config{Source: &memSource{pkts: ws}, Sinks: []Sink{failing{boom}}, Stats: st})
	if err := pl.Run(context.Background()); !errors.Is(err, boom) || st.Read.Load() != 1 {
		t.Fatalf("a failing sink: %v after %d packets", err, st.Read.Load())
	}
	st = &Stats{}
	pl = mustNew(t, Config{Source: &memSource{pkts: ws}, Sinks: []Sink{failing{boom}}, Stats: st,
		SinkError: func(error) error { return nil }})
	if err := pl.Run(context.Background()); err != nil || st.SinkErrs.Load() != st.Written.Load() || st.Read.Load() != uint64(len(ws)) {
		t.Fatalf("a tolerated sink error: %v, %d errors, %d read", err, st.SinkErrs.Load(), st.Read.Load())
	}
}

// The whole per-packet path — decode, filter, count, encode with a comment
// — must not allocate.
func BenchmarkPipeline(b *testing.B) {
	ws, _ := generated(b, "bench", 5000, 0)
	w, err := pcapfile.NewWriter(io.Discard, pcapfile.Options{})
	if err != nil {
		b.Fatal(err)
	}
	f, err := filter.New(filter.Options{VN: "default-domain:*"})
	if err != nil {
		b.Fatal(err)
	}
	src := &memSource{pkts: ws, loops: true}
	pl := mustNew(b, Config{Source: src, Filter: f, Sinks: []Sink{w}})
	var p mirror.Packet
	for range len(ws) { // warm up: pairs and buffers
		src.Next(&p)
		pl.process(&p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src.Next(&p)
		if err := pl.process(&p); err != nil {
			b.Fatal(err)
		}
	}
}

// VN names are arbitrary bytes: no two distinct pairs share a counter.
func TestCountPairKeepsNamesApart(t *testing.T) {
	st := &Stats{}
	pairs := [][2]string{{"a\xff", "b"}, {"a", "\xffb"}, {"a\x00", "b"}, {"a", "\x00b"}, {"b", "a"}}
	for i, p := range pairs {
		for range i + 1 {
			st.CountPair([]byte(p[0]), []byte(p[1]))
		}
	}
	got := st.Pairs()
	if len(got) != len(pairs) {
		t.Fatalf("%d pairs counted, want %d: %+v", len(got), len(pairs), got)
	}
	for _, g := range got {
		i := slices.Index(pairs, [2]string{g.SrcVN, g.DstVN})
		if i < 0 || g.Packets != uint64(i+1) {
			t.Errorf("%+v", g)
		}
	}
}

// The decoder keeps copies of the fragments it holds exactly when a
// rejects sink gets them: a datagram that never completes comes back to
// it fragment by fragment, as captured; without one nothing is copied.
func TestFragmentCopies(t *testing.T) {
	g, err := gen.New(gen.Options{Seed: 7, Mix: gen.Mix{gen.KindFragMissing: 1}, LinkType: layers.LinkTypeEthernet})
	if err != nil {
		t.Fatal(err)
	}
	c := g.Next().Clone()
	var rejected collectRaw
	pl := mustNew(t, Config{Source: &memSource{pkts: c.Packets}, Rejects: &rejected})
	if !pl.FragmentCopies() {
		t.Error("a pipeline with rejects keeps no fragment copies")
	}
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rejected.data) != len(c.Packets) {
		t.Fatalf("%d rejects of %d fragments", len(rejected.data), len(c.Packets))
	}
	for i, w := range c.Packets {
		if !bytes.Equal(rejected.data[i], w.Data) {
			t.Errorf("reject %d is not fragment %d as captured", i, i)
		}
	}

	st := &Stats{}
	pl = mustNew(t, Config{Source: &memSource{pkts: c.Packets}, Stats: st})
	if pl.FragmentCopies() {
		t.Error("a pipeline without rejects keeps fragment copies")
	}
	if err := pl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := st.Summary(); s.TotalMalformed() != uint64(len(c.Packets)) {
		t.Errorf("%d fragments counted as not decoded, want %d", s.TotalMalformed(), len(c.Packets))
	}
}

type collectRaw struct{ data [][]byte }

func (c *collectRaw) WritePacket(p *mirror.Packet) error {
	c.data = append(c.data, bytes.Clone(p.Data))
	return nil
}

func TestNewRefuses(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a source: no error")
	}
	_, err := New(Config{Source: &memSource{}, Decoder: mirror.Config{Traffic: mirror.Traffic{MirrorVLAN: 4095}}})
	if err == nil || !strings.Contains(err.Error(), "--mirror-vlan 4095") {
		t.Errorf("New with VLAN 4095: %v", err)
	}
}
