package pipeline

import (
	"fmt"
	"runtime"
	"testing"
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
