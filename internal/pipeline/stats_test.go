package pipeline

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Spoofed VN names cannot grow the pair table: past MaxPairs the quiet
// pairs give way, their packets are counted as other, and a busy pair
// keeps its exact count.
func TestPairsBounded(t *testing.T) {
	st := &Stats{MaxPairs: 1000}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	const spoofed = 300000
	busySrc, busyDst := []byte("default-domain:admin:vn-web"), []byte("default-domain:admin:vn-db")
	for i := range spoofed {
		st.CountPair(fmt.Appendf(nil, "default-domain:evil:vn-%07d", i), busyDst)
		st.CountPair(busySrc, busyDst)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.HeapInuse) - int64(before); grown > 4<<20 {
		t.Errorf("heap grew by %d bytes for %d pairs", grown, spoofed)
	}
	s := st.Summary()
	if len(s.Pairs) > 1000 {
		t.Fatalf("%d pairs kept", len(s.Pairs))
	}
	var total uint64
	for _, p := range s.Pairs {
		total += p.Packets
	}
	if total+s.PairsOther != 2*spoofed {
		t.Errorf("%d packets in the table + %d other, want %d", total, s.PairsOther, 2*spoofed)
	}
	if p := s.Pairs[0]; p.SrcVN != string(busySrc) || p.Packets != spoofed {
		t.Errorf("busiest pair %+v, want the real one with %d packets", p, spoofed)
	}
	if s.PairsEvicted != spoofed-999 {
		t.Errorf("%d pairs evicted", s.PairsEvicted)
	}
}

// An absent name and an empty one are different pairs, and names are
// bytes: no separator can join two pairs into one key.
func TestPairsKeyed(t *testing.T) {
	st := &Stats{}
	st.CountPair(nil, []byte("b"))
	st.CountPair([]byte{}, []byte("b"))
	st.CountPair([]byte("a\xffb"), []byte("c"))
	st.CountPair([]byte("a"), []byte("b\xffc"))
	if n := len(st.Pairs()); n != 4 {
		t.Fatalf("%d pairs, want 4", n)
	}
}

// The counters of several pipelines over one capture add up: counts by
// kind, VN pairs merged by name and bounded by MaxPairs, candidate ports
// merged by port, the latest packet.
func TestSum(t *testing.T) {
	a, b := &Stats{MaxPairs: 2}, &Stats{}
	a.Read.Add(10)
	b.Read.Add(5)
	a.Decoded[mirror.ModeJuniper].Add(7)
	b.Decoded[mirror.ModeJuniper].Add(3)
	b.Decoded[mirror.ModeVXLAN].Add(1)
	a.Malformed[mirror.ErrTruncated].Add(2)
	a.Merged.Add(1)
	b.Merged.Add(2)
	a.LastPacket.Store(time.Unix(100, 0).UnixNano())
	b.LastPacket.Store(time.Unix(200, 0).UnixNano())
	web, db, dns := []byte("vn-web"), []byte("vn-db"), []byte("vn-dns")
	for range 3 {
		a.CountPairBytes(web, db, 100)
	}
	b.CountPairBytes(web, db, 100)
	b.CountPairBytes(db, web, 100)
	b.CountPairBytes(db, web, 100)
	b.CountPairBytes(dns, db, 100)
	a.SetHints(mirror.Hints{CandidatePorts: []mirror.PortCount{{Port: 9000, Count: 4}}, ShortSnap: 1})
	b.SetHints(mirror.Hints{CandidatePorts: []mirror.PortCount{{Port: 9000, Count: 1}, {Port: 9001, Count: 2}}})

	s := Sum([]*Stats{a, b})
	if s.Read != 15 || s.Merged != 3 || s.Decoded["juniper"] != 10 || s.Decoded["vxlan"] != 1 ||
		s.Malformed[mirror.ErrTruncated.String()] != 2 || s.ShortSnap != 1 || !s.LastPacket.Equal(time.Unix(200, 0)) {
		t.Errorf("sum %+v", s)
	}
	want := []vnpair.Pair{{SrcVN: "vn-web", DstVN: "vn-db", Packets: 4, Bytes: 400}, {SrcVN: "vn-db", DstVN: "vn-web", Packets: 2, Bytes: 200}}
	if !slices.Equal(s.Pairs, want) || s.PairsOther != 1 {
		t.Errorf("pairs %+v, other %d; want %+v, 1", s.Pairs, s.PairsOther, want)
	}
	if ports := []mirror.PortCount{{Port: 9000, Count: 5}, {Port: 9001, Count: 2}}; !slices.Equal(s.CandidatePorts, ports) {
		t.Errorf("candidate ports %+v", s.CandidatePorts)
	}
	if one := Sum([]*Stats{a}); one.Read != 10 || len(one.Pairs) != 1 {
		t.Errorf("sum of one %+v", one)
	}
}
