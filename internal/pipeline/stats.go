package pipeline

import (
	"bytes"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Stats counts what went through a pipeline. It is safe for one writer (the
// pipeline) and any number of concurrent readers (HTTP metrics, progress).
type Stats struct {
	Read      atomic.Uint64 // packets from the source
	ReadBytes atomic.Uint64 // their captured bytes
	Merged    atomic.Uint64 // outer fragments merged into a reassembled datagram they did not end
	Decoded   [mirror.NumModes]atomic.Uint64
	Malformed [mirror.NumReasons]atomic.Uint64
	Truncated atomic.Uint64 // decoded, but the inner frame was cut by the snap length
	Filtered  atomic.Uint64 // decoded, then dropped by the filter
	Written   atomic.Uint64 // handed to the sinks
	SinkErrs  atomic.Uint64 // sink write failures (e.g. a link type a pcap file cannot hold)

	mu    sync.Mutex
	pairs map[string]map[string]*atomic.Uint64 // src VN -> dst VN -> packets

	// The last pair counted: consecutive packets mostly share it, which
	// saves the lock and two map look-ups. Only CountPair's single caller
	// touches these.
	lastSrc, lastDst []byte
	lastHasSrc       bool
	lastHasDst       bool
	last             *atomic.Uint64
}

// CountPair counts one decoded packet for its VN pair. It must be called
// from one goroutine only.
func (s *Stats) CountPair(src, dst []byte) {
	if s.last != nil && s.lastHasSrc == (src != nil) && s.lastHasDst == (dst != nil) &&
		bytes.Equal(s.lastSrc, src) && bytes.Equal(s.lastDst, dst) {
		s.last.Add(1)
		return
	}
	s.mu.Lock()
	if s.pairs == nil {
		s.pairs = make(map[string]map[string]*atomic.Uint64)
	}
	// Indexing with string(b) does not allocate; only a new pair does.
	inner := s.pairs[string(src)]
	if inner == nil {
		inner = make(map[string]*atomic.Uint64)
		s.pairs[string(src)] = inner
	}
	c := inner[string(dst)]
	if c == nil {
		c = new(atomic.Uint64)
		inner[string(dst)] = c
	}
	s.mu.Unlock()
	s.lastSrc, s.lastDst = append(s.lastSrc[:0], src...), append(s.lastDst[:0], dst...)
	s.lastHasSrc, s.lastHasDst, s.last = src != nil, dst != nil, c
	c.Add(1)
}

// Pair is a VN pair and its packet count.
type Pair struct {
	SrcVN   string `json:"src_vn"`
	DstVN   string `json:"dst_vn"`
	Packets uint64 `json:"packets"`
}

// Pairs returns the VN pairs, most packets first (ties by name).
func (s *Stats) Pairs() []Pair {
	s.mu.Lock()
	var ps []Pair
	for src, inner := range s.pairs {
		for dst, c := range inner {
			ps = append(ps, Pair{src, dst, c.Load()})
		}
	}
	s.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Packets != ps[j].Packets {
			return ps[i].Packets > ps[j].Packets
		}
		if ps[i].SrcVN != ps[j].SrcVN {
			return ps[i].SrcVN < ps[j].SrcVN
		}
		return ps[i].DstVN < ps[j].DstVN
	})
	return ps
}

// Summary is a point-in-time copy of Stats, in the form printed by --json.
type Summary struct {
	Read      uint64            `json:"packets_read"`
	ReadBytes uint64            `json:"bytes_read"`
	Merged    uint64            `json:"fragments_merged"`
	Decoded   map[string]uint64 `json:"decoded"`
	Malformed map[string]uint64 `json:"malformed"`
	Truncated uint64            `json:"truncated"`
	Filtered  uint64            `json:"filtered"`
	Written   uint64            `json:"written"`
	SinkErrs  uint64            `json:"sink_errors"`
	Pairs     []Pair            `json:"vn_pairs"`
}

// TotalMalformed is the number of packets that failed to decode.
func (s *Summary) TotalMalformed() uint64 {
	var n uint64
	for _, v := range s.Malformed {
		n += v
	}
	return n
}

// Summary copies the counters.
func (s *Stats) Summary() Summary {
	sum := Summary{
		Read: s.Read.Load(), ReadBytes: s.ReadBytes.Load(), Merged: s.Merged.Load(),
		Decoded: map[string]uint64{}, Malformed: map[string]uint64{},
		Truncated: s.Truncated.Load(), Filtered: s.Filtered.Load(),
		Written: s.Written.Load(), SinkErrs: s.SinkErrs.Load(), Pairs: s.Pairs(),
	}
	for _, m := range mirror.Modes() {
		sum.Decoded[m.String()] = s.Decoded[m].Load()
	}
	for _, r := range mirror.Reasons() {
		if n := s.Malformed[r].Load(); n > 0 {
			sum.Malformed[r.String()] = n
		}
	}
	return sum
}
